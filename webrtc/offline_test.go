package webrtc_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/card"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/internal/whepclient"
	"github.com/skyline-go/skyline/webrtc"
)

// cardPSNR is the least a decoded card must match its reference (title
// and state rows), in dB.
const cardPSNR = 25

var cardStates = []string{card.Waiting, card.Starting, card.Stopped}

// switcher starts and stops a SkyLine feeding numbered frames.
type switcher struct {
	t    *testing.T
	sl   *skyline.SkyLine
	fr   *frames
	w, h int
	fps  float64
	stop chan struct{}
	done chan struct{}
}

func newSwitcher(t *testing.T, st *webrtc.Stream, w, h int, fps float64) *switcher {
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: testLogger}, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sl.Close() })
	s := &switcher{t: t, sl: sl, fr: newFrames(w, h), w: w, h: h, fps: fps}
	t.Cleanup(s.halt) // before sl.Close
	return s
}

// start starts the SkyLine and Puts frames numbered from from.
func (s *switcher) start(from int) {
	if err := s.sl.Start(skyline.Params{FPS: s.fps, Width: s.w, Height: s.h}); err != nil {
		s.t.Error(err)
		return
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func(stop, done chan struct{}) {
		defer close(done)
		buf := make([]byte, s.w*s.h*3)
		tick := time.NewTicker(time.Duration(float64(time.Second) / s.fps))
		defer tick.Stop()
		for n := from; ; n++ {
			s.fr.draw(buf, n)
			if _, err := s.sl.Put(skyline.FrameBGR(buf, s.w, s.h, 0)); err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
				s.t.Errorf("Put %d: %v", n, err)
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}(s.stop, s.done)
}

// halt stops feeding and stops the SkyLine (idempotent).
func (s *switcher) halt() {
	if s.stop == nil {
		return
	}
	close(s.stop)
	<-s.done
	s.stop = nil
	if err := s.sl.Stop(); err != nil {
		s.t.Error(err)
	}
}

// TestOfflineCardWHEP (issue 13, item 2): a WHEP viewer connected before
// Start receives the offline card (its pixels checked), then live frames;
// across Stop and Start the same session shows the card again, then live
// frames whose numbers resume.
func TestOfflineCardWHEP(t *testing.T) {
	const w, h, fps, live = smallW, smallH, 30.0, 20
	srv := newServer(t, webrtc.ServerConfig{})
	st, err := srv.AddStream("/always", webrtc.StreamOptions{Offline: &skyline.OfflineCard{Width: w, Height: h, FPS: 4}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.RemoveStream("/always") })
	sw := newSwitcher(t, st, w, h, fps)
	c := dial(t, st.WHEPURL(), whepclient.Options{})
	dec, err := whepclient.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()

	// phase 0: card before Start; 1: live from 0; 2: card after Stop;
	// 3: live from 1000.
	phase := 0
	cards, lives := [4]int{}, [4]int{}
	prev := -1
	deadline := time.After(60 * time.Second)
	for phase < 4 {
		var pic whepclient.Picture
		select {
		case au := <-c.AUs():
			if err := dec.Push(au.Data, au.Keyframe); err != nil {
				t.Fatal(err)
			}
			continue
		case pic = <-dec.Pictures():
		case <-deadline:
			t.Fatalf("timeout in phase %d (cards %v, live frames %v, lost %d)", phase, cards, lives, c.Lost())
		}
		if pic.Width != w || pic.Height != h {
			t.Fatalf("picture %dx%d", pic.Width, pic.Height)
		}
		if q := card.PSNR(pic.BGR, w, h, "/always", cardStates...); q >= cardPSNR {
			if lives[phase] > 0 && (phase == 1 || phase == 3) {
				t.Fatalf("phase %d: the card after live frames", phase)
			}
			cards[phase]++
		} else {
			num, ok := testpattern.ReadBGR(pic.BGR, w, h)
			if !ok || phase == 0 || (phase == 1 || phase == 2) != (num < 1000) {
				t.Fatalf("phase %d: neither the card (%.1f dB) nor a live frame of this phase (%d %v)", phase, q, num, ok)
			}
			if lives[phase] > 0 && num != prev+1 {
				t.Fatalf("phase %d: frame %d after %d", phase, num, prev)
			}
			prev = num
			lives[phase]++
		}
		switch {
		case phase == 0 && cards[0] == 2:
			phase = 1
			sw.start(0)
		case phase == 1 && lives[1] == live:
			phase = 2
			sw.halt()
		case phase == 2 && cards[2] == 2:
			phase = 3
			sw.start(1000)
		case phase == 3 && lives[3] == live:
			phase = 4
		}
	}
	t.Logf("cards %v, live frames %v", cards, lives)
	if s := st.Stats(); s.ViewersTotal != 1 || s.Sessions != 1 {
		t.Errorf("stats %+v: the viewer reconnected", s)
	}
}

// TestOfflineCardPage (issue 13, item 2): the browser page opened before
// Start shows the card (read back from a screenshot), then the live
// stream, the card again after Stop, and the live stream again after
// Start, with no reload and no new WHEP session.
func TestOfflineCardPage(t *testing.T) {
	const w, h, fps = 320, 240, 30.0
	srv := newServer(t, webrtc.ServerConfig{})
	st, err := srv.AddStream("/always", webrtc.StreamOptions{Offline: &skyline.OfflineCard{Width: w, Height: h, FPS: 4}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.RemoveStream("/always") })
	sw := newSwitcher(t, st, w, h, fps)

	b := startChromium(t)
	sess := b.open(t, st.URL())
	var ps pageState
	b.eval(t, sess, fmt.Sprintf(waitPlaying, 1, 60000), &ps, 90*time.Second)
	if ps.Frames < 1 {
		t.Fatalf("the page shows nothing: state %q error %q", ps.State, ps.Error)
	}
	b.eval(t, sess, `window.loadMarker = "still the same page"`, nil, 10*time.Second)

	// see polls screenshots until the video shows what want accepts.
	see := func(what string, want func(bgr []byte) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			b.eval(t, sess, fmt.Sprintf(waitPlaying, 0, 0), &ps, 10*time.Second)
			bgr := crop(b.screenshot(t, sess), int(ps.X+0.5), int(ps.Y+0.5), int(ps.W+0.5), int(ps.H+0.5), w, h)
			if want(bgr) {
				return
			}
			if time.Now().After(deadline) {
				n, ok := testpattern.ReadBGR(bgr, w, h)
				t.Fatalf("the page never showed %s (state %q, last: frame %d %v, card %.1f dB)", what, ps.State, n, ok,
					card.PSNR(bgr, w, h, "/always", cardStates...))
			}
			time.Sleep(100 * time.Millisecond) // a screenshot rate, not a synchronisation
		}
	}
	isCard := func(bgr []byte) bool { return card.PSNR(bgr, w, h, "/always", cardStates...) >= 20 }
	liveFrom := func(from int) func([]byte) bool {
		return func(bgr []byte) bool {
			n, ok := testpattern.ReadBGR(bgr, w, h)
			return ok && n >= from && n < from+1000 && mediatest.PSNR(bgr, sw.fr.ref(n)) >= 25
		}
	}
	see("the card before Start", isCard)
	sw.start(0)
	see("the live stream", liveFrom(0))
	sw.halt()
	see("the card after Stop", isCard)
	sw.start(1000)
	see("the live stream after Start", liveFrom(1000))

	var marker string
	b.eval(t, sess, `window.loadMarker`, &marker, 10*time.Second)
	if marker != "still the same page" {
		t.Errorf("the page was reloaded (marker %q)", marker)
	}
	if s := st.Stats(); s.ViewersTotal != 1 {
		t.Errorf("stats %+v: the page opened a new WHEP session", s)
	}
}
