package webrtc_test

import (
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/whepclient"
	"github.com/skyline-go/skyline/webrtc"
)

// TestTimelineAfterAProducerAheadOfTheClock: a producer piped faster than
// real time (a clip read at once, stamped n/fps) ends with its timestamps
// ahead of the wall clock. The
// offline card after it, and the next session, must still be timestamped
// at their own pace in the same WebRTC session: they were clamped to one
// 90 kHz tick after the previous picture until the clock caught up (a
// browser shows such pictures in a burst, or holds them).
func TestTimelineAfterAProducerAheadOfTheClock(t *testing.T) {
	const w, h, fps = smallW, smallH, 30.0
	srv := newServer(t, webrtc.ServerConfig{})
	st, err := srv.AddStream("/ahead", webrtc.StreamOptions{Offline: &skyline.OfflineCard{Width: w, Height: h, FPS: 10}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.RemoveStream("/ahead") })
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: testLogger, Timestamps: skyline.TimestampsFixedRate}, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sl.Close() })
	c := dial(t, st.WHEPURL(), whepclient.Options{Queue: 4096})
	var aus []whepclient.AU
	next := func(what string) whepclient.AU {
		t.Helper()
		select {
		case au := <-c.AUs():
			aus = append(aus, au)
			return au
		case <-time.After(20 * time.Second):
			t.Fatalf("timeout waiting for %s (%d access units so far, lost %d)", what, len(aus), c.Lost())
		}
		return whepclient.AU{}
	}
	next("the card")

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
	for st.Stats().AccessUnits < 90 {
		next("session 1's pictures")
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	n1 := len(aus)
	for len(aus) < n1+4 {
		next("the card after session 1")
	}
	// Session 2: a producer at real time.
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	f := startFeeder(t, sl, w, h, fps)
	for n2 := len(aus); len(aus) < n2+20; {
		next("session 2's pictures")
	}
	f.Stop()

	squeezed := 0
	for i := 1; i < len(aus); i++ { // every picture: session 1's are n/fps apart too
		// 1 ms: far below a frame at 30 fps (3000 ticks) or a card at 10 fps.
		if d := int32(aus[i].RTPTime - aus[i-1].RTPTime); d < 90 {
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
