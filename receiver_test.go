package skyline_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
)

// countingReceiver counts access units.
type countingReceiver struct {
	aus, opens, closes atomic.Int64
}

func (r *countingReceiver) Name() string                              { return "count" }
func (r *countingReceiver) Open(skyline.StreamInfo) error             { r.opens.Add(1); return nil }
func (r *countingReceiver) WriteAccessUnit(*skyline.AccessUnit) error { r.aus.Add(1); return nil }
func (r *countingReceiver) Close()                                    { r.closes.Add(1) }

// Stop with only a Receiver must return: the pipeline goes to NULL (its bus
// then flushes) while the bus watcher waits for a wake-up message.
func TestReceiverStopReturns(t *testing.T) {
	const w, h = 160, 120
	r := &countingReceiver{}
	sl, err := skyline.New(skyline.Config{Clock: newClock(30), NoDotEnv: true, QueueSize: 64}, r)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	for round := 0; round < 3; round++ {
		if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			if _, err := sl.Put(skyline.FrameBGR(testpattern.NewBGR(w, h, i), w, h, 0)); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() { done <- sl.Stop() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Stop did not return")
		}
	}
	if r.opens.Load() != 3 || r.closes.Load() != 3 || r.aus.Load() != 30 {
		t.Fatalf("opens %d closes %d access units %d, want 3, 3, 30", r.opens.Load(), r.closes.Load(), r.aus.Load())
	}
}
