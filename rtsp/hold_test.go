package rtsp_test

import (
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
)

// numberedPuts Puts frames numbered from from at fps until stop is closed
// and records the number of the first frame the SkyLine accepted (the
// stream's first picture; after a warm-up, the frame that ended it).
func numberedPuts(t *testing.T, sl *skyline.SkyLine, fr *frames, fps float64, from int, stop <-chan struct{}) (first *atomic.Int64, done <-chan struct{}) {
	first = new(atomic.Int64)
	first.Store(-1)
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		buf := make([]byte, fr.w*fr.h*3)
		tick := time.NewTicker(time.Duration(float64(time.Second) / fps))
		defer tick.Stop()
		for n := from; ; n++ {
			fr.draw(buf, n)
			ok, err := sl.Put(skyline.FrameBGR(buf, fr.w, fr.h, 0))
			if err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
				t.Errorf("Put %d: %v", n, err)
				return
			}
			if ok {
				first.CompareAndSwap(-1, int64(n))
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return first, ch
}

// TestHoldUntilFirstPicture (issue 13, item 1): ffmpeg, GStreamer rtspsrc
// and OpenCV started before the stream has a picture (their DESCRIBE held:
// 0-50 ms before the first frame, and during a 100-frame warm-up) each
// decode consecutive frames from the first live keyframe on, instead of
// failing with 503.
func TestHoldUntilFirstPicture(t *testing.T) {
	const w, h, fps, n = smallW, smallH, 30.0, 30
	cases := []struct {
		name   string
		params skyline.Params
	}{
		{"before-first-frame", skyline.Params{FPS: fps, Width: w, Height: h}},
		{"during-warmup", skyline.Params{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newServer(t, rtsp.ServerConfig{})
			sl, err := rtsp.NewSkyLine(srv, "/hold", skyline.Config{NoDotEnv: true, Logger: testLogger, WarmupFrames: 100})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sl.Close() })
			st := srv.Stream("/hold")
			url := st.URL()
			if err := sl.Start(c.params); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			var first *atomic.Int64
			var fed <-chan struct{}
			t.Cleanup(func() { // before sl.Close
				close(stop)
				if fed != nil {
					<-fed
				}
			})
			fr := newFrames(w, h)
			if c.params.FPS == 0 {
				// The warm-up runs; the players start 10 frames into it.
				first, fed = numberedPuts(t, sl, fr, fps, 0, stop)
				waitFor(t, 10*time.Second, "the warm-up", func() bool { return sl.State() == skyline.StateWarmup })
				time.Sleep(10 * time.Second / fps)
			}
			var players []*player
			for _, k := range playerKinds {
				players = append(players, startPlayer(t, k, url, w, h, n))
			}
			if c.params.FPS != 0 {
				// Every player's DESCRIBE is waiting; the first frame comes
				// 0-50 ms later.
				waitFor(t, 20*time.Second, "the players' requests to be held", func() bool {
					return st.Stats().HeldRequests >= uint64(len(players))
				})
				time.Sleep(time.Duration(rand.IntN(51)) * time.Millisecond)
				first, fed = numberedPuts(t, sl, fr, fps, 0, stop)
			} else if st.Stats().AccessUnits != 0 {
				t.Fatal("the stream had a picture before the players started: the test proves nothing")
			}
			for _, p := range players {
				nums := p.wait(t)
				// From the first live keyframe: the players' PLAY asks for
				// one, so they start within a few frames of the first.
				checkFromStart(t, p.name, nums, int(first.Load()), int(fps/2))
			}
			if st.Stats().HeldRequests == 0 {
				t.Error("no request was held")
			}
		})
	}
}

// TestHoldEndsWithTheServer: a held DESCRIBE does not hold up Close or
// RemoveStream: Close returns at once and the request gets an answer or
// its connection closes; a held request on a removed path gets 404.
func TestHoldEndsWithTheServer(t *testing.T) {
	srv := newServer(t, rtsp.ServerConfig{HoldTimeout: time.Minute})
	a, err := srv.AddStream("/a", rtsp.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := srv.AddStream("/b", rtsp.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	answers := make(chan error, 2)
	go func() { _, err := describe(a.URL(), nil); answers <- err }()
	waitFor(t, 10*time.Second, "the request to be held", func() bool { return a.Stats().HeldRequests == 1 })
	if err := srv.RemoveStream("/a"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-answers:
		if statusCode(err) != 404 {
			t.Errorf("held DESCRIBE of a removed path: %v, want 404", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held request outlived its stream")
	}
	go func() { _, err := describe(b.URL(), nil); answers <- err }()
	waitFor(t, 10*time.Second, "the request to be held", func() bool { return b.Stats().HeldRequests == 1 })
	t0 := time.Now()
	srv.Close()
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Close took %v with a held request", d)
	}
	select {
	case err := <-answers:
		if err == nil {
			t.Error("a held DESCRIBE succeeded on a closed server")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held request outlived the server")
	}
}
