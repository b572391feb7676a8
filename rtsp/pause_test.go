package rtsp_test

import (
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
)

// TestPauseAndResume: a viewer's PAUSE is answered 200 and its session gets
// nothing while paused (ffplay sends PAUSE when its user pauses, then stops
// reading: answered 501 and still fed, it was disconnected as a slow viewer
// after SlowViewerTimeout); the next PLAY resumes the same session at a
// keyframe, and the viewer is counted once.
func TestPauseAndResume(t *testing.T) {
	srv := newServer(t, rtsp.ServerConfig{})
	sl := startSkyLine(t, srv, "/pause", smallW, smallH, smallFPS, skyline.Encoder{})
	st := srv.Stream("/pause")
	startFeeder(t, sl, smallW, smallH, smallFPS, 0)
	waitReady(t, st.URL())
	v := play(t, st.URL(), viewerOpts{})
	waitFor(t, 10*time.Second, "frames before PAUSE", func() bool { return v.count.Load() >= 5 })

	if _, err := v.c.Pause(); err != nil {
		t.Fatalf("PAUSE: %v", err)
	}
	paused := v.count.Load()
	aus := st.Stats().AccessUnits
	waitFor(t, 10*time.Second, "the stream to go on while the viewer is paused", func() bool {
		return st.Stats().AccessUnits >= aus+10
	})
	if n := v.count.Load() - paused; n != 0 {
		t.Errorf("a paused viewer received %d access units", n)
	}
	if n := st.Viewers(); n != 1 {
		t.Errorf("Viewers() while paused = %d, want 1", n)
	}

	if _, err := v.c.Play(nil); err != nil {
		t.Fatalf("PLAY after PAUSE: %v", err)
	}
	waitFor(t, 10*time.Second, "frames after the resume", func() bool { return v.count.Load() >= paused+5 })
	v.mu.Lock()
	first := v.aus[paused]
	v.mu.Unlock()
	if !first.key {
		t.Error("the first access unit after the resume is not a keyframe")
	}
	if s := st.Stats(); s.ViewersTotal != 1 || s.Viewers != 1 {
		t.Errorf("after the resume: %d viewers, %d in total; want 1 and 1", s.Viewers, s.ViewersTotal)
	}
}
