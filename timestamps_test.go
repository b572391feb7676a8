package skyline_test

import (
	"testing"
	"time"

	"github.com/skyline-go/skyline"
)

// TestTimestampsSteady: frames closer than one frame period (a burst, a
// producer faster than real time) are spaced 1/fps apart; a pause and
// frames further apart than the period keep their times.
func TestTimestampsSteady(t *testing.T) {
	// Times on the clock of time.Now, and from another clock (taken as
	// given: a producer's own clock, or times placed ahead of the wall clock
	// by a producer faster than real time).
	for _, base := range []time.Time{time.Now().Add(time.Second), time.Unix(1000, 0)} {
		testTimestampsSteady(t, base)
	}
}

func testTimestampsSteady(t *testing.T, base time.Time) {
	rec := &collector{name: "collector"}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{Timestamps: skyline.TimestampsSteady}, rec)
	if err := sl.Start(skyline.Params{FPS: 25, Width: 64, Height: 48}); err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	capture := []time.Duration{0, 0, 0, 0, 500 * ms, 510 * ms, 700 * ms, 701 * ms}
	want := []time.Duration{0, 40 * ms, 80 * ms, 120 * ms, 500 * ms, 540 * ms, 700 * ms, 740 * ms}
	for i, c := range capture {
		f := bgr(64, 48, i)
		f.Time = base.Add(c)
		mustPut(t, sl, f, true)
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	aus := rec.all()
	if len(aus) != len(want) {
		t.Fatalf("%d access units, want %d", len(aus), len(want))
	}
	for i := range aus {
		if got := aus[i].PTS - aus[0].PTS; got != want[i] {
			t.Errorf("AU %d PTS offset %v, want %v", i, got, want[i])
		}
	}
}
