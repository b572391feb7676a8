package rtptime

import (
	"testing"
	"time"
)

func TestTicksRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{0, time.Second / 30, time.Second, 90 * time.Minute, 25 * time.Hour} {
		ticks := Ticks(d)
		if got := Duration(ticks); got < d-time.Second/ClockRate || got > d {
			t.Errorf("Duration(Ticks(%v)) = %v", d, got)
		}
	}
	if Ticks(time.Second) != ClockRate {
		t.Errorf("Ticks(1 s) = %d", Ticks(time.Second))
	}
}

// TestTimelineSourceChange: within a source the capture times give the
// ticks (strictly increasing); a source that starts behind the last
// timestamp continues from it at the wall clock's pace, and Shift says by
// how much; one that starts ahead keeps its own times.
func TestTimelineSourceChange(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var tl Timeline
	a := Source{Start: t0}
	// Source a: 30 frames captured 1 s apart, handled within 30 ms.
	var last int64
	for i := 0; i < 30; i++ {
		last = tl.Ticks(t0.Add(time.Duration(i)*time.Second), a, t0.Add(time.Duration(i)*time.Millisecond))
	}
	if last != 29*ClockRate {
		t.Fatalf("last ticks of a: %d, want %d", last, 29*ClockRate)
	}
	// The card, 1 s of wall clock later, captured at the wall clock (28 s
	// behind the last timestamp).
	now := t0.Add(29*time.Millisecond + time.Second)
	card := Source{Card: true}
	got := tl.Ticks(now, card, now)
	if want := last + ClockRate; got != want {
		t.Fatalf("first card ticks %d, want %d (the last + 1 s of wall clock)", got, want)
	}
	// Its next picture 100 ms later is 100 ms later on the timeline.
	if next := tl.Ticks(now.Add(100*time.Millisecond), card, now.Add(100*time.Millisecond)); next != got+ClockRate/10 {
		t.Fatalf("second card ticks %d, want %d", next, got+ClockRate/10)
	}
	if sh := tl.Shift(); sh < 27*time.Second || sh > 29*time.Second {
		t.Fatalf("shift %v, want about 28 s", sh)
	}
	// Equal capture times within a source stay strictly increasing.
	x := tl.Ticks(now.Add(100*time.Millisecond), card, now.Add(200*time.Millisecond))
	if y := tl.Ticks(now.Add(100*time.Millisecond), card, now.Add(200*time.Millisecond)); y <= x {
		t.Fatalf("ticks %d after %d", y, x)
	}
	// A source ahead of the timeline keeps its times (no shift added).
	far := now.Add(time.Hour)
	shift := tl.Shift()
	b := Source{Start: far}
	if got := tl.Ticks(far, b, now.Add(300*time.Millisecond)); got != Ticks(far.Sub(t0))+Ticks(shift) {
		t.Fatalf("ticks of a source ahead: %d", got)
	}
}
