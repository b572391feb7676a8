package card_test

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"go.uber.org/goleak"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/card"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type collected struct {
	mu  sync.Mutex
	aus []*skyline.AccessUnit
	at  []time.Time
	ch  chan struct{}
}

func (c *collected) out(au *skyline.AccessUnit, at time.Time) {
	c.mu.Lock()
	c.aus, c.at = append(c.aus, au), append(c.at, at)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *collected) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.aus)
}

// waitN waits until n access units came (or fails after d).
func (c *collected) waitN(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for c.count() < n {
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("%d access units after %v, want %d", c.count(), d, n)
		}
	}
}

// size reads the picture size of a keyframe's in-band SPS.
func size(t *testing.T, au *skyline.AccessUnit) (int, int, bool) {
	t.Helper()
	var sps, pps bool
	var w, h int
	for _, n := range au.NALUs() {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			var p h264.SPS
			if err := p.Unmarshal(n); err != nil {
				t.Fatal(err)
			}
			w, h, sps = p.Width(), p.Height(), true
		case h264.NALUTypePPS:
			pps = true
		}
	}
	return w, h, sps && pps
}

// TestSource: a shown card is a stream of keyframes carrying SPS and PPS,
// at the card's size and about its frame rate, captured at increasing
// times; hidden, it stops; shown at a new size, it follows; Close ends
// its goroutines.
func TestSource(t *testing.T) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := &collected{ch: make(chan struct{}, 1)}
	src := card.New(skyline.OfflineCard{Width: 160, Height: 96, FPS: 5}, "/t", log, c.out, nil)
	defer src.Close()
	src.Show(card.Waiting, 0, 0)
	c.waitN(t, 4, 20*time.Second)
	src.Hide()
	time.Sleep(100 * time.Millisecond) // an access unit may be on its way
	n := c.count()
	time.Sleep(600 * time.Millisecond) // three frame times: nothing may come
	if m := c.count(); m != n {
		t.Fatalf("%d access units while hidden", m-n)
	}
	src.Show(card.Stopped, 320, 240)
	c.waitN(t, n+3, 20*time.Second)
	c.mu.Lock()
	aus, at := c.aus, c.at
	c.mu.Unlock()
	for i, au := range aus {
		w, h, inband := size(t, au)
		want := [2]int{160, 96}
		if i >= n {
			want = [2]int{320, 240}
		}
		if !au.Keyframe || !inband || w != want[0] || h != want[1] {
			t.Errorf("access unit %d: keyframe %v, SPS+PPS %v, %dx%d, want a keyframe with both at %dx%d",
				i, au.Keyframe, inband, w, h, want[0], want[1])
		}
		if i > 0 && !at[i].After(at[i-1]) {
			t.Errorf("access unit %d captured at %v, after %v", i, at[i], at[i-1])
		}
	}
	src.Close()
	src.Close() // idempotent
}

// TestSourceIdleWhileUnwatched: while nobody watches, a shown card is drawn
// once when it appears and once per change or kick, not at its frame rate
// (an idle server spends no CPU on it); once watched, it plays at its rate.
func TestSourceIdleWhileUnwatched(t *testing.T) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := &collected{ch: make(chan struct{}, 1)}
	var watched atomic.Bool
	src := card.New(skyline.OfflineCard{Width: 160, Height: 96, FPS: 10}, "/t", log, c.out, watched.Load)
	defer src.Close()
	src.Show(card.Waiting, 0, 0)
	c.waitN(t, 1, 20*time.Second)      // drawn once: the stream can describe itself
	time.Sleep(600 * time.Millisecond) // six frame times: nothing more may come
	if n := c.count(); n != 1 {
		t.Fatalf("%d access units while nobody watches, want 1", n)
	}
	src.Show(card.Stopped, 0, 0) // a change is drawn
	c.waitN(t, 2, 20*time.Second)
	src.Kick() // a viewer joining asks for a picture now
	c.waitN(t, 3, 20*time.Second)
	time.Sleep(300 * time.Millisecond) // three frame times: nothing more may come
	if n := c.count(); n != 3 {
		t.Fatalf("%d access units, want 3 (appear, change, kick)", n)
	}
	watched.Store(true)
	c.waitN(t, 8, 20*time.Second) // watched: the ticker draws
}
