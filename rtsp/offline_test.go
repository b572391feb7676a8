package rtsp_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/card"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/rtsp"
)

// cardPSNR is the least a decoded card must match its reference (title
// and state rows), in dB.
const cardPSNR = 25

// TestOfflineCardRTSP (issue 13, item 2): one ffmpeg viewer connected
// before Start sees the offline card (its pixels checked), then the live
// frames; across Stop and Start (same size) the same RTSP session shows the
// card again, then live frames whose numbers resume. ffmpeg never
// reconnects by itself, and the stream counts one viewer.
func TestOfflineCardRTSP(t *testing.T) {
	const w, h, fps, live = smallW, smallH, 30.0, 20
	srv := newServer(t, rtsp.ServerConfig{})
	st, err := srv.AddStream("/always", rtsp.StreamOptions{Offline: &skyline.OfflineCard{Width: w, Height: h, FPS: 4}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.RemoveStream("/always") })
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: testLogger}, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sl.Close() })

	fr := newFrames(w, h)
	var stop chan struct{}
	var fed <-chan struct{}
	startErr := make(chan error, 4)
	start := func(from int) {
		if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
			startErr <- err
			return
		}
		stop = make(chan struct{})
		_, fed = numberedPuts(t, sl, fr, fps, from, stop)
	}
	halt := func() {
		close(stop)
		<-fed
		if err := sl.Stop(); err != nil {
			startErr <- err
		}
	}

	// phase 0: card before Start; 1: live from 0; 2: card after Stop;
	// 3: live from 1000.
	var phase atomic.Int32
	cards, lives := [4]int{}, [4]int{}
	prev := -1
	errDone := errors.New("done")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The control goroutine owns the SkyLine's Start/Stop and the feeder.
	control := make(chan func(), 4)
	controlled := make(chan struct{})
	go func() {
		defer close(controlled)
		for f := range control {
			f()
		}
		if stop != nil {
			select {
			case <-stop:
			default:
				close(stop)
				<-fed
			}
		}
	}()
	defer func() {
		close(control)
		<-controlled
	}()
	err = mediatest.Decode(ctx, st.URL(), w, h, []string{"-rtsp_transport", "tcp"}, nil, func(i int, bgr []byte) error {
		select {
		case err := <-startErr:
			return err
		default:
		}
		p := phase.Load()
		// A card matches its reference; anything else must be a live
		// frame of this phase (the card's plain band would read as 0).
		if q := card.PSNR(bgr, w, h, "/always", card.Waiting, card.Starting, card.Stopped); q >= cardPSNR {
			if p == 1 && lives[1] > 0 || p == 3 && lives[3] > 0 {
				return fmt.Errorf("phase %d, picture %d: the card after live frames", p, i)
			}
			cards[p]++
		} else {
			num, ok := testpattern.ReadBGR(bgr, w, h)
			if !ok || (p == 1 || p == 2) != (num < 1000) || p == 0 {
				return fmt.Errorf("phase %d, picture %d: neither the card (%.1f dB) nor a live frame of this phase (%d %v)", p, i, q, num, ok)
			}
			if lives[p] > 0 && num != prev+1 {
				return fmt.Errorf("phase %d: frame %d after %d", p, num, prev)
			}
			// The live stream resumes at its first keyframe.
			if first := map[int32]int{1: 0, 3: 1000}[p]; lives[p] == 0 && (p == 1 || p == 3) && num > first+int(fps/2) {
				return fmt.Errorf("phase %d: live resumes at frame %d, want %d..%d", p, num, first, first+int(fps/2))
			}
			prev = num
			lives[p]++
		}
		switch {
		case p == 0 && cards[0] == 2:
			phase.Store(1)
			control <- func() { start(0) }
		case p == 1 && lives[1] == live:
			phase.Store(2)
			control <- halt
		case p == 2 && cards[2] == 2:
			phase.Store(3)
			control <- func() { start(1000) }
		case p == 3 && lives[3] == live:
			return errDone
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("%v (cards %v, live frames %v)", err, cards, lives)
	}
	t.Logf("cards %v, live frames %v", cards, lives)
	if n := st.Stats().ViewersTotal; n != 1 {
		t.Errorf("%d viewers played: the viewer reconnected", n)
	}
}
