package kvs_test

import (
	"sync"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
)

// hookRecv is a Receiver with the optional BeforePut hook the kvssink
// backend uses for its per-frame credential check.
type hookRecv struct {
	mu    sync.Mutex
	times []time.Time
}

func (h *hookRecv) Name() string                              { return "hook" }
func (h *hookRecv) Open(skyline.StreamInfo) error             { return nil }
func (h *hookRecv) WriteAccessUnit(*skyline.AccessUnit) error { return nil }
func (h *hookRecv) Close()                                    {}
func (h *hookRecv) BeforePut(now time.Time) {
	h.mu.Lock()
	h.times = append(h.times, now)
	h.mu.Unlock()
}

// SkyLine calls BeforePut once per streamed frame with the Put time.
func TestBeforePutHook(t *testing.T) {
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	h := &hookRecv{}
	s := newStream(t, h, 64, 48, 10, clock, 20)
	s.put(20)
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.times) != 20 {
		t.Fatalf("BeforePut called %d times for 20 frames", len(h.times))
	}
	for i, ts := range h.times {
		if !ts.Equal(s.frameTime(i)) {
			t.Fatalf("BeforePut %d at %v, want %v", i, ts, s.frameTime(i))
		}
	}
}
