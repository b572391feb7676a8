package rtsp_test

import (
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
)

// TestRestartKeepsViewers: viewers stay connected across Stop/Start of the
// SkyLine with the same size, with increasing RTP timestamps; a new size
// ends their sessions and a new DESCRIBE carries the new SPS.
func TestRestartKeepsViewers(t *testing.T) {
	srv := newServer(t, rtsp.ServerConfig{})
	sl := startSkyLine(t, srv, "/re", smallW, smallH, smallFPS, skyline.Encoder{})
	st := srv.Stream("/re")
	f := startFeeder(t, sl, smallW, smallH, smallFPS, 0)
	waitReady(t, st.URL())
	v := play(t, st.URL(), viewerOpts{})
	waitFor(t, 10*time.Second, "frames before the restart", func() bool { return v.count.Load() >= 10 })
	if n := st.Viewers(); n != 1 {
		t.Errorf("Viewers() = %d, want 1", n)
	}
	f.Stop()
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	before := v.count.Load()
	if err := sl.Start(skyline.Params{FPS: smallFPS, Width: smallW, Height: smallH}); err != nil {
		t.Fatal(err)
	}
	f = startFeeder(t, sl, smallW, smallH, smallFPS, 1000)
	waitFor(t, 10*time.Second, "frames after the restart", func() bool { return v.count.Load() >= before+10 })
	if g, b := v.seqGaps.Load(), v.tsBack.Load(); g != 0 || b != 0 {
		t.Errorf("across the restart: %d sequence gaps, %d timestamps going back", g, b)
	}

	// A new size: the session ends.
	f.Stop()
	if err := sl.Start(skyline.Params{FPS: smallFPS, Width: 2 * smallW, Height: 2 * smallH}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- v.c.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a viewer stays connected across a size change")
	}
	waitFor(t, 5*time.Second, "the viewer to be gone", func() bool { return st.Viewers() == 0 })
	f = startFeeder(t, sl, 2*smallW, 2*smallH, smallFPS, 2000)
	waitReady(t, st.URL())
	desc, err := describe(st.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	v2 := play(t, st.URL(), viewerOpts{})
	if w, h := spsSize(t, v2.forma.SPS); w != 2*smallW || h != 2*smallH {
		t.Fatalf("SDP after the size change describes %dx%d", w, h)
	}
	_ = desc
	waitFor(t, 10*time.Second, "frames at the new size", func() bool { return v2.count.Load() > 0 })
	f.Stop()
}
