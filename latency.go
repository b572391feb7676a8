package skyline

import (
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds of the encode-latency histogram in
// Stats.EncodeLatency.
var LatencyBuckets = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second,
}

const numLatencyBuckets = 12 // len(LatencyBuckets)

// LatencyHistogram is a histogram of durations.
type LatencyHistogram struct {
	// Count and Sum of the observations.
	Count uint64
	Sum   time.Duration
	// Bounds are the buckets' upper bounds (LatencyBuckets); Counts[i]
	// counts the observations in (Bounds[i-1], Bounds[i]], and the last
	// entry, Counts[len(Bounds)], those above the last bound.
	Bounds []time.Duration
	Counts []uint64
}

// encodeStats are the output counters of a SkyLine, shared by its
// sessions and updated by their access-unit pullers.
type encodeStats struct {
	bytes      atomic.Uint64
	latCount   atomic.Uint64
	latSum     atomic.Int64 // nanoseconds
	latBuckets [numLatencyBuckets + 1]atomic.Uint64
	bounds     [numLatencyBuckets]time.Duration // LatencyBuckets when the SkyLine was created
}

func newEncodeStats() *encodeStats {
	e := &encodeStats{}
	copy(e.bounds[:], LatencyBuckets)
	return e
}

func (e *encodeStats) observe(d time.Duration) {
	i := 0
	for i < numLatencyBuckets && d > e.bounds[i] {
		i++
	}
	e.latBuckets[i].Add(1)
	e.latSum.Add(int64(d))
	e.latCount.Add(1)
}

func (e *encodeStats) histogram() LatencyHistogram {
	h := LatencyHistogram{Bounds: append([]time.Duration(nil), e.bounds[:]...), Counts: make([]uint64, numLatencyBuckets+1)}
	for i := range h.Counts {
		h.Counts[i] = e.latBuckets[i].Load()
		h.Count += h.Counts[i]
	}
	h.Sum = time.Duration(e.latSum.Load())
	return h
}

// putRingSize is how many frames in flight the encode-latency measurement
// follows (queue, encoder look-ahead and appsink together hold far fewer).
const putRingSize = 512

// putStamp is the time a frame with a given PTS was pushed. Written by
// Put, read by the puller: pts is set to -1 while at changes, so a reader
// that sees the same pts before and after reading at has a consistent pair.
type putStamp struct {
	pts atomic.Int64
	at  atomic.Int64 // nanoseconds since the session's base
}

// putRing matches access units to the Put of their frame: a fixed ring
// indexed by frame count, so Put never allocates.
type putRing struct {
	base  time.Time // monotonic reference
	slots [putRingSize]putStamp
	read  int64 // the puller's cursor (puller only)
}

func newPutRing() *putRing {
	r := &putRing{base: time.Now()}
	for i := range r.slots {
		r.slots[i].pts.Store(-1)
	}
	return r
}

// stamp records that frame number n with timestamp pts is being pushed now.
func (r *putRing) stamp(n int64, pts time.Duration) {
	s := &r.slots[n%putRingSize]
	s.pts.Store(-1)
	s.at.Store(int64(time.Since(r.base)))
	s.pts.Store(int64(pts))
}

// match returns the time since the Put of the frame with timestamp pts.
// Frames come out in order; frames skipped on the way (dropped by
// DropOldest) are passed over. It returns false when the frame is not in
// the ring (an encoder that changes timestamps).
func (r *putRing) match(pts time.Duration) (time.Duration, bool) {
	if pts < 0 {
		return 0, false
	}
	want := int64(pts)
	for c := r.read; c < r.read+putRingSize; c++ {
		s := &r.slots[c%putRingSize]
		p := s.pts.Load()
		if p > want {
			return 0, false
		}
		if p != want {
			continue // older, dropped, unused or being rewritten
		}
		at := s.at.Load()
		if s.pts.Load() != want {
			return 0, false
		}
		r.read = c + 1
		return time.Since(r.base) - time.Duration(at), true
	}
	return 0, false
}
