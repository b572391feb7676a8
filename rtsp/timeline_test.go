package rtsp_test

import (
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
)

// TestTimelineAfterAProducerAheadOfTheClock: a producer piped faster than
// real time (a clip read at once, stamped n/fps) ends with its timestamps
// ahead of the wall clock. The offline card after it and the next session must still
// be timestamped at their own pace in the same RTP session: they were
// clamped to one 90 kHz tick after the previous picture until the clock
// caught up (ffmpeg saw 60 pictures with one PTS; players show such
// pictures in a burst or drop them).
func TestTimelineAfterAProducerAheadOfTheClock(t *testing.T) {
	const w, h, fps = smallW, smallH, 30.0
	srv := newServer(t, rtsp.ServerConfig{})
	st, err := srv.AddStream("/ahead", rtsp.StreamOptions{Offline: &skyline.OfflineCard{Width: w, Height: h, FPS: 10}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.RemoveStream("/ahead") })
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: testLogger, Timestamps: skyline.TimestampsFixedRate}, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sl.Close() })
	waitReady(t, st.URL())
	v := play(t, st.URL(), viewerOpts{})
	waitFor(t, 10*time.Second, "the card", func() bool { return v.count.Load() >= 1 })

	// Session 1: 90 frames put at once, stamped n/fps (a clip piped
	// faster than real time): it ends about 3 s ahead of the clock.
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	fr := newFrames(w, h)
	buf := make([]byte, w*h*3)
	for i := 0; i < 90; i++ {
		fr.draw(buf, i)
		if _, err := sl.Put(skyline.FrameBGR(buf, w, h, 0)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "session 1's pictures", func() bool { return st.Stats().AccessUnits >= 90 })
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	n1 := int(v.count.Load())
	waitFor(t, 10*time.Second, "the card after session 1", func() bool { return v.count.Load() >= int64(n1)+4 })

	// Session 2: a producer at real time.
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	f := startFeeder(t, sl, w, h, fps, 100)
	n2 := v.count.Load()
	waitFor(t, 10*time.Second, "session 2's pictures", func() bool { return v.count.Load() >= n2+20 })
	f.Stop()

	v.mu.Lock()
	aus := append([]au(nil), v.aus...) // every picture: session 1's are n/fps apart too
	v.mu.Unlock()
	squeezed := 0
	for i := 1; i < len(aus); i++ {
		// 1 ms: far below a frame at 30 fps (3000 ticks) or a card at 10 fps.
		if d := int32(aus[i].ts - aus[i-1].ts); d < 90 {
			squeezed++
		}
	}
	// A change of source (card to live, live to card: three here) may
	// come less than 1 ms of wall clock after the last picture of the
	// other source on a loaded machine; the timeline then advances by that
	// little. Without the fix every picture of the card and of session 2
	// until the clock catches up is squeezed (20 or more).
	if squeezed > 3 {
		t.Errorf("%d of %d pictures after the producer ahead of the clock are timestamped less than 1 ms after the one before", squeezed, len(aus)-1)
	}
}
