package skyline_test

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/internal/yuv"
)

var quiet = slog.New(slog.DiscardHandler)

var benchSizes = []struct {
	name string
	w, h int
}{{"720p", 1280, 720}, {"1080p", 1920, 1080}}

// BenchmarkPut streams BGR frames through the real pipeline (x264enc,
// ultrafast, no destination) as fast as they are accepted. One op is one
// accepted frame: when the queue is full Put returns false and the frame is
// retried after a short sleep, so ns/op is the sustained time per frame of
// the whole encode on this machine, while put-ns is what an accepted Put
// costs its caller (the BGR->I420 conversion into the pooled buffer and the
// push). allocs/op is the Go heap allocations per frame in steady state
// (the goal is 0); C allocations inside GStreamer are not counted.
func BenchmarkPut(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			sl, err := skyline.New(skyline.Config{
				Logger:     quiet,
				NoDotEnv:   true,
				Timestamps: skyline.TimestampsFixedRate,
				Drop:       skyline.DropNewest, // Put's own cost, without waiting for the encoder
				Encoder:    skyline.Encoder{Preset: "ultrafast", Bitrate: 500},
			})
			if err != nil {
				b.Fatal(err)
			}
			defer sl.Close()
			if err := sl.Start(skyline.Params{FPS: 30, Width: sz.w, Height: sz.h}); err != nil {
				b.Fatal(err)
			}
			frames := make([]skyline.Frame, 4)
			for i := range frames {
				frames[i] = skyline.FrameBGR(testpattern.NewBGR(sz.w, sz.h, i), sz.w, sz.h, 0)
			}
			put := func(f skyline.Frame) (retries int, d time.Duration) {
				for {
					t0 := time.Now()
					ok, err := sl.Put(f)
					if !ok && !errors.Is(err, skyline.ErrQueueFull) {
						b.Fatal(err)
					}
					if ok {
						return retries, time.Since(t0)
					}
					retries++
					time.Sleep(200 * time.Microsecond)
				}
			}
			// Steady state first: buffers in the pool, caps negotiated.
			for i := 0; i < 30; i++ {
				put(frames[i%len(frames)])
			}
			var putTime time.Duration
			retries := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, d := put(frames[i%len(frames)])
				retries += r
				putTime += d
			}
			b.StopTimer()
			b.ReportMetric(float64(putTime.Nanoseconds())/float64(b.N), "put-ns")
			b.ReportMetric(float64(retries)/float64(b.N), "retries/op")
			if err := sl.Stop(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkConvert is the BGR->I420 conversion alone (libyuv, as Put does
// it), into a Go buffer.
func BenchmarkConvert(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			src := testpattern.NewBGR(sz.w, sz.h, 0)
			dst := yuv.Layout(make([]byte, yuv.Size(sz.w, sz.h)), sz.w, sz.h)
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := yuv.ToI420(yuv.BGR, src, sz.w*3, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPutAllocs checks the allocation count of Put in steady state.
// It counts allocations, never time.
func TestPutAllocs(t *testing.T) {
	const w, h = 320, 240
	// AllocsPerRun counts every goroutine's allocations. Without
	// destinations the puller drops access units without copying them, so
	// after the warm-up only Put's path (conversion, buffer, timestamps,
	// push) is counted.
	sl, err := skyline.New(skyline.Config{Logger: quiet, NoDotEnv: true, Clock: newClock(30), QueueSize: 1000,
		Encoder: skyline.Encoder{Preset: "ultrafast"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	f := skyline.FrameBGR(testpattern.NewBGR(w, h, 0), w, h, 0)
	// Warm up: the pipeline reaches PLAYING with the first frames (its bus
	// messages allocate, on another goroutine, and AllocsPerRun counts the
	// whole process).
	for i := 0; i < 10; i++ {
		putAll(t, sl, f)
	}
	deadline := time.Now().Add(30 * time.Second)
	for sl.Stats().Encoded < 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // no event for "encoded"
	}
	var failure error
	n := testing.AllocsPerRun(200, func() {
		if ok, err := sl.Put(f); err != nil || !ok {
			failure = fmt.Errorf("Put: ok=%v err=%v", ok, err)
		}
	})
	if failure != nil {
		t.Fatal(failure)
	}
	if n > 0 {
		t.Errorf("Put allocates %.1f times per frame in steady state, want 0", n)
	}
}
