// Package rtptime maps the capture times of access units to RTP timestamps
// of a 90 kHz clock (RFC 6184 section 5.1: the H.264 RTP clock), for one
// RTP stream that carries several sources one after the other: the
// sessions of a SkyLine and, between them, the offline card.
package rtptime

import "time"

// ClockRate is the H.264 RTP clock, in ticks per second (RFC 6184 5.1).
const ClockRate = 90000

// Ticks is d in 90 kHz ticks.
func Ticks(d time.Duration) int64 {
	return int64(d/time.Second)*ClockRate + int64(d%time.Second)*ClockRate/int64(time.Second)
}

// Duration is the inverse of Ticks.
func Duration(t int64) time.Duration {
	return time.Duration(t/ClockRate)*time.Second + time.Duration(t%ClockRate)*time.Second/ClockRate
}

// Source tells where an access unit comes from: one session of the
// feeding SkyLine (by its StreamInfo.Start), or the offline card. Two
// access units of the same Source have comparable capture times.
type Source struct {
	Card  bool
	Start time.Time
}

// Timeline converts capture times into ticks since an epoch, strictly
// increasing. The zero value is a timeline whose epoch is the first
// capture time given. Not safe for concurrent use: its stream's lock
// guards it.
//
// When the source changes (a new session after Stop and Start, the card
// after the live stream, the live stream after the card), the new source's
// capture times may lie behind the last timestamp sent: a producer piped
// faster than real time has its frames stamped ahead of the clock (a 20 s
// clip read in 1 s ends 19 s ahead). Clamped one tick at a time, every
// later picture of the card and of the next producers would carry nearly
// the same timestamp until the clock caught up (players show them in a
// burst, or drop them). So the new source is shifted to continue from the
// last timestamp plus the wall-clock time since it was sent.
type Timeline struct {
	epoch     time.Time
	shift     int64 // ticks added to the current source's capture times
	last      int64 // the last ticks returned
	have      bool
	src       Source
	lastWrite time.Time // wall clock of the last Ticks call
}

// Reset starts the timeline over at epoch (ticks 0).
func (t *Timeline) Reset(epoch time.Time) { *t = Timeline{epoch: epoch} }

// Epoch is the capture time of ticks 0 (zero before the first use).
func (t *Timeline) Epoch() time.Time { return t.epoch }

// Shift is how far the current source's timestamps are ahead of its
// capture times: ticks map to the capture time Epoch + Duration(ticks) -
// Shift.
func (t *Timeline) Shift() time.Duration { return Duration(t.shift) }

// Ticks converts the capture time at of an access unit of src, handled at
// the wall-clock time now, into ticks since the epoch: later than any
// ticks returned before, continuing at the wall clock's pace across a
// change of source.
func (t *Timeline) Ticks(at time.Time, src Source, now time.Time) int64 {
	if t.epoch.IsZero() {
		t.epoch = at
	}
	ticks := Ticks(at.Sub(t.epoch)) + t.shift
	if t.have && src != t.src {
		if next := t.last + max(Ticks(now.Sub(t.lastWrite)), 1); ticks < next {
			t.shift += next - ticks
			ticks = next
		}
	}
	if t.have && ticks <= t.last {
		ticks = t.last + 1
	}
	t.last, t.have, t.src, t.lastWrite = ticks, true, src, now
	return ticks
}
