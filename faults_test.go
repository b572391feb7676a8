package skyline_test

// The core's promises under faults (issue 10): each test here failed on
// the design with one mutex held across slow work.

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
)

// TestWarmupEndDoesNotBlockPut: the Put that ends the warm-up hands the
// opening of the pipeline (encoder and two GStreamer destinations) to the
// owner goroutine; no Put around it waits for that.
func TestWarmupEndDoesNotBlockPut(t *testing.T) {
	dir := t.TempDir()
	var dests []skyline.Destination
	for i := range 2 {
		d, err := skyline.NewFile(filepath.Join(dir, fmt.Sprintf("d%d.mkv", i)))
		if err != nil {
			t.Fatal(err)
		}
		dests = append(dests, d)
	}
	const w, h, warm = 320, 240, 20
	sl := newTestSkyLine(t, newClock(30), skyline.Config{WarmupFrames: warm}, dests...)
	frames := make([][]byte, 4)
	for i := range frames {
		frames[i] = testpattern.NewBGR(w, h, i)
	}
	// A Put that waits for the pipeline blocks for hundreds of ms every
	// time; a busy shared machine may deschedule any Put now and then. So
	// up to three warm-ups are measured, and one clean one is the proof.
	var problems []string
	for attempt := 1; attempt <= 3; attempt++ {
		if err := sl.Start(skyline.Params{}); err != nil {
			t.Fatal(err)
		}
		var durs []time.Duration
		for i := 0; i < warm+10; i++ {
			f := skyline.FrameBGR(frames[i%len(frames)], w, h, 0)
			t0 := time.Now()
			ok, err := sl.Put(f)
			durs = append(durs, time.Since(t0))
			if err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
				t.Fatalf("Put %d: %v", i, err)
			}
			if i == warm-1 && !ok {
				t.Fatalf("the Put that ends the warm-up returned %v, %v", ok, err)
			}
		}
		if st := waitState(t, sl, skyline.StateStreaming, skyline.StateError); st != skyline.StateStreaming {
			t.Fatalf("state %v: %v", st, sl.Err())
		}
		around := slices.Clone(durs[warm-5 : warm+5])
		slices.Sort(around)
		median := around[len(around)/2]
		t.Logf("warm-up %d: Puts around its end %v (median %v)", attempt, durs[warm-5:warm+5], median)
		problems = problems[:0]
		for i, d := range durs[warm-5 : warm+5] {
			if d > 5*time.Millisecond {
				problems = append(problems, fmt.Sprintf("Put %d took %v, want < 5 ms", warm-5+i, d))
			}
		}
		if median > 2*time.Millisecond {
			problems = append(problems, fmt.Sprintf("median Put around the warm-up's end %v, want < 2 ms", median))
		}
		if len(problems) == 0 {
			return
		}
	}
	t.Errorf("three warm-ups, none without a slow Put; the last: %s", strings.Join(problems, "; "))
}

// stuckReceiver blocks in WriteAccessUnit until released.
type stuckReceiver struct {
	entered  chan struct{}
	release  chan struct{}
	once     sync.Once
	closed   chan struct{}
	closeOne sync.Once
	unblock  func()
}

func newStuckReceiver() *stuckReceiver {
	r := &stuckReceiver{entered: make(chan struct{}), release: make(chan struct{}), closed: make(chan struct{})}
	r.unblock = sync.OnceFunc(func() { close(r.release) })
	return r
}

func (r *stuckReceiver) Name() string                  { return "stuck" }
func (r *stuckReceiver) Open(skyline.StreamInfo) error { return nil }
func (r *stuckReceiver) WriteAccessUnit(*skyline.AccessUnit) error {
	r.once.Do(func() { close(r.entered) })
	<-r.release
	return nil
}
func (r *stuckReceiver) Close() { r.closeOne.Do(func() { close(r.closed) }) }

// TestStopBoundedWithStuckReceiver: Stop returns within DrainTimeout + 1 s
// although a Receiver never returns from WriteAccessUnit; Put keeps
// returning meanwhile, the other destination finishes, the stuck one is
// detached, reported, and closed when its call returns.
func TestStopBoundedWithStuckReceiver(t *testing.T) {
	const w, h = 160, 120
	const drain = 500 * time.Millisecond
	stuck, other := newStuckReceiver(), &collector{name: "other"}
	evs := newEventLog()
	sl := newTestSkyLine(t, newClock(30), skyline.Config{DrainTimeout: drain, QueueSize: 64, OnEvent: evs.add}, stuck, other)
	t.Cleanup(stuck.unblock) // before Close (cleanups run last first)
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	frame := testpattern.NewBGR(w, h, 1)
	for i := 0; i < 10; i++ {
		mustPut(t, sl, skyline.FrameBGR(frame, w, h, 0), true)
	}
	select {
	case <-stuck.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the receiver never got an access unit")
	}
	if !other.waitFor(10, 20*time.Second) {
		t.Fatal("the other receiver did not get 10 access units")
	}

	// Put from the vision loop while Stop runs: every call returns at once.
	stopDone := make(chan error, 1)
	var slowest atomic.Int64
	putting := make(chan struct{})
	go func() {
		defer close(putting)
		for {
			select {
			case <-stopDone:
				return
			default:
			}
			t0 := time.Now()
			_, _ = sl.Put(skyline.FrameBGR(frame, w, h, 0))
			if d := int64(time.Since(t0)); d > slowest.Load() {
				slowest.Store(d)
			}
			runtime.Gosched()
		}
	}()
	t0 := time.Now()
	err := sl.Stop()
	took := time.Since(t0)
	stopDone <- err
	close(stopDone)
	<-putting
	if took > drain+time.Second {
		t.Fatalf("Stop took %v with a stuck receiver, want < DrainTimeout + 1 s", took)
	}
	if !errors.Is(err, skyline.ErrDestination) || !strings.Contains(err.Error(), "stuck") {
		t.Errorf("Stop = %v, want an ErrDestination naming the stuck receiver", err)
	}
	if d := time.Duration(slowest.Load()); d > 100*time.Millisecond {
		t.Errorf("a Put took %v during Stop", d)
	}
	if sl.State() != skyline.StateStopped {
		t.Errorf("state %v after Stop", sl.State())
	}
	evs.wait(t, "a detached report", time.Second, func(e skyline.Event) bool {
		return e.Kind == skyline.EventDestinationDown && e.Destination == "stuck" && strings.Contains(fmt.Sprint(e.Err), "detached")
	})
	st := sl.Stats()
	if d := st.Destinations[0]; d.Up || d.Written+d.Lost+1 < st.Encoded {
		t.Errorf("stuck destination %+v of %d encoded: want down, every access unit written or lost but the one in its hands", d, st.Encoded)
	}
	if d := st.Destinations[1]; d.Written != st.Encoded {
		t.Errorf("other destination wrote %d of %d", d.Written, st.Encoded)
	}
	// A new session may start while the old call is still stuck; the
	// destination waits for it, and the other one streams.
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, sl, skyline.FrameBGR(frame, w, h, 0), true)
	stuck.unblock()
	select {
	case <-stuck.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the detached receiver was not closed once its call returned")
	}
}

// TestCallbacksMayCallAnyMethod: Config.OnEvent may call every method of
// the SkyLine, Close included, without deadlock.
func TestCallbacksMayCallAnyMethod(t *testing.T) {
	const w, h = 64, 48
	calls := map[string]func(sl *skyline.SkyLine){
		"Params":          func(sl *skyline.SkyLine) { _ = sl.Params() },
		"Stats":           func(sl *skyline.SkyLine) { _ = sl.Stats() },
		"State":           func(sl *skyline.SkyLine) { _, _ = sl.State(), sl.Err() },
		"RequestKeyframe": func(sl *skyline.SkyLine) { sl.RequestKeyframe() },
		"Put":             func(sl *skyline.SkyLine) { _, _ = sl.Put(bgr(w, h, 0)) },
		"Start":           func(sl *skyline.SkyLine) { _ = sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}) },
		"Stop":            func(sl *skyline.SkyLine) { _ = sl.Stop() },
		"Close":           func(sl *skyline.SkyLine) { _ = sl.Close() },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			var sl *skyline.SkyLine
			var once sync.Once
			called := make(chan struct{})
			cfg := skyline.Config{NoDotEnv: true, Clock: newClock(30), OnEvent: func(e skyline.Event) {
				if e.Kind == skyline.EventState && e.State == skyline.StateStreaming {
					once.Do(func() {
						call(sl)
						close(called)
					})
				}
			}}
			var err error
			if sl, err = skyline.New(cfg, &collector{name: "c"}); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil && !errors.Is(err, skyline.ErrClosed) {
					t.Error(err)
				}
				<-called
				_, _ = sl.Put(bgr(w, h, 1))
				_ = sl.Stop()
				_ = sl.Close()
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				buf := make([]byte, 1<<20)
				t.Fatalf("deadlock: %s from OnEvent\n%s", name, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

// panicker panics in WriteAccessUnit.
type panicker struct{ opens atomic.Int64 }

func (p *panicker) Name() string                              { return "panicker" }
func (p *panicker) Open(skyline.StreamInfo) error             { p.opens.Add(1); return nil }
func (p *panicker) WriteAccessUnit(*skyline.AccessUnit) error { panic("boom") }
func (p *panicker) Close()                                    {}

// TestPanickingReceiverIsIsolated: a Receiver that panics is recovered,
// marked down, reported and retried; the others keep streaming.
func TestPanickingReceiverIsIsolated(t *testing.T) {
	const w, h = 64, 48
	p, other := &panicker{}, &collector{name: "other"}
	evs := newEventLog()
	sl := newTestSkyLine(t, newClock(30), skyline.Config{QueueSize: 64, OnEvent: evs.add,
		RetryMin: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond}, p, other)
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		mustPut(t, sl, bgr(w, h, i), true)
	}
	e := evs.wait(t, "the panic reported", 20*time.Second, func(e skyline.Event) bool {
		return e.Kind == skyline.EventDestinationDown && e.Destination == "panicker"
	})
	if !errors.Is(e.Err, skyline.ErrDestination) || !strings.Contains(e.Err.Error(), "boom") {
		t.Errorf("down event error %v", e.Err)
	}
	if !other.waitFor(30, 20*time.Second) {
		t.Fatal("the other receiver stopped receiving")
	}
	// It is retried: opened again after its backoff (and panics again).
	tick := time.NewTicker(10 * time.Millisecond) // a frame stream: the retry comes with an access unit
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for i := 30; p.opens.Load() < 2; i++ {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("the panicking destination was never reopened")
		}
		putAll(t, sl, bgr(w, h, i))
	}
	evs.wait(t, "a retry", 20*time.Second, kindIs(skyline.EventDestinationRetrying, "panicker"))
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := sl.Stats()
	if d := st.Destinations[0]; d.Up || d.Written != 0 || d.Lost != st.Encoded {
		t.Errorf("panicking destination %+v of %d encoded, want down with all lost", d, st.Encoded)
	}
	if d := st.Destinations[1]; d.Written != st.Encoded || d.Lost != 0 {
		t.Errorf("other destination %+v of %d encoded", d, st.Encoded)
	}
}

// TestEncoderFallbackOnFirstFrame: an encoder that starts but fails on its
// first buffer (libav's OpenMAX encoder here, the shape of an NVENC session
// limit or a VA driver refusing the caps) makes way for x264enc in the same
// Start; the next Start remembers it.
func TestEncoderFallbackOnFirstFrame(t *testing.T) {
	const w, h = 64, 48
	rec := &collector{name: "rec"}
	evs := newEventLog()
	logs := &logRecorder{}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{QueueSize: 64, OnEvent: evs.add, Logger: slog.New(logs),
		Encoder: skyline.Encoder{Candidates: []string{"avenc_h264_omx", "x264enc"}}}, rec)
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	if enc := sl.Stats().Encoder; enc != "avenc_h264_omx" {
		t.Fatalf("first encoder %q", enc)
	}
	// Put until the stream comes out of the fallback encoder.
	for i := 0; !rec.waitFor(1, 10*time.Millisecond); i++ {
		ok, err := sl.Put(bgr(w, h, i))
		if !ok && !errors.Is(err, skyline.ErrNotAccepted) {
			t.Fatalf("Put: %v", err)
		}
		if i > 3000 {
			t.Fatalf("no access unit after %d frames; state %v %v", i, sl.State(), sl.Err())
		}
	}
	evs.wait(t, "the fallback event", 5*time.Second, func(e skyline.Event) bool {
		return e.Kind == skyline.EventEncoderFallback && e.Detail == "avenc_h264_omx -> x264enc"
	})
	for _, e := range evs.all() {
		if e.Kind == skyline.EventState && e.State == skyline.StateError {
			t.Fatalf("went through ERROR: %v", e.Err)
		}
	}
	if sl.State() != skyline.StateStreaming || sl.Stats().Encoder != "x264enc" {
		t.Fatalf("state %v encoder %q", sl.State(), sl.Stats().Encoder)
	}
	if logs.count(slog.LevelWarn, "trying the next one") != 1 {
		t.Error("the fallback was not logged")
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	// The next Start goes straight to x264enc.
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	if enc := sl.Stats().Encoder; enc != "x264enc" {
		t.Fatalf("second Start uses %q", enc)
	}
}

// TestEncoderFailingWithoutFallbackIsError: with the encoder named
// explicitly there is no fallback: the failure on the first frame is
// StateError (never a STREAMING that refuses every frame), and Put says so.
func TestEncoderFailingWithoutFallbackIsError(t *testing.T) {
	const w, h = 64, 48
	sl := newTestSkyLine(t, newClock(30), skyline.Config{Encoder: skyline.Encoder{Element: "avenc_h264_omx"}})
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, sl, bgr(w, h, 0), true)
	waitState(t, sl, skyline.StateError)
	if !errors.Is(sl.Err(), skyline.ErrPipeline) {
		t.Errorf("Err = %v", sl.Err())
	}
	if ok, err := sl.Put(bgr(w, h, 1)); ok || !errors.Is(err, skyline.ErrStreamFailed) {
		t.Errorf("Put in ERROR = %v, %v; want ErrStreamFailed", ok, err)
	}
}

// TestPutReasons: every false from Put comes with a reason errors.Is can
// test, and Put after Close is ErrClosed.
func TestPutReasons(t *testing.T) {
	const w, h = 640, 480
	sl := newTestSkyLine(t, newClock(30), skyline.Config{WarmupFrames: 3, QueueSize: 1, Drop: skyline.DropNewest, Encoder: skyline.Encoder{Preset: "slow"}})
	f := bgr(w, h, 0)
	check := func(what string, want error) {
		t.Helper()
		ok, err := sl.Put(f)
		if ok || !errors.Is(err, want) {
			t.Fatalf("%s: Put = %v, %v; want false, %v", what, ok, err, want)
		}
	}
	check("stopped", skyline.ErrStopped)
	if err := sl.Start(skyline.Params{}); err != nil {
		t.Fatal(err)
	}
	check("warm-up", skyline.ErrWarmingUp)
	if !errors.Is(skyline.ErrWarmingUp, skyline.ErrNotAccepted) || errors.Is(skyline.ErrInvalidFrame, skyline.ErrNotAccepted) {
		t.Fatal("the reasons must wrap ErrNotAccepted, and only they")
	}
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	full := false
	for i := 0; i < 200 && !full; i++ {
		ok, err := sl.Put(f)
		if !ok {
			if !errors.Is(err, skyline.ErrQueueFull) {
				t.Fatalf("Put = false, %v; want ErrQueueFull", err)
			}
			full = true
		}
	}
	if !full {
		t.Fatal("a queue of 1 never filled")
	}
	if err := sl.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed", skyline.ErrClosed)
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); !errors.Is(err, skyline.ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}

// TestCaptureTimeFromAnotherClock: capture times read from another clock
// (here a boot-time clock, near 1970) are re-anchored with a warning: the
// frames keep their spacing instead of being squeezed onto one instant.
func TestCaptureTimeFromAnotherClock(t *testing.T) {
	const w, h, n = 64, 48, 30
	rec := &collector{name: "rec"}
	logs := &logRecorder{}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{QueueSize: n, Logger: slog.New(logs)}, rec)
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	boot := time.Unix(0, 0).Add(3 * time.Hour) // a monotonic clock since boot
	for i := 0; i < n; i++ {
		f := bgr(w, h, i)
		f.Time = boot.Add(time.Duration(i) * time.Second / 30)
		mustPut(t, sl, f, true)
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	aus := rec.all()
	if len(aus) != n {
		t.Fatalf("%d access units", len(aus))
	}
	span := aus[n-1].PTS - aus[0].PTS
	want := time.Duration(n-1) * time.Second / 30
	if span < want-5*time.Millisecond || span > want+5*time.Millisecond {
		t.Fatalf("%d frames 1/30 s apart span %v of timestamps, want %v", n, span, want)
	}
	if logs.count(slog.LevelWarn, "re-anchoring") != 1 {
		t.Error("no warning about the capture clock")
	}
}

// TestSlowBranchBoundedMemory: a GStreamer branch three times slower than
// the stream (identity sleeps 100 ms per access unit of a 30 fps stream)
// loses access units, counted, while the memory stays bounded: nothing
// queues without limit in Go or in C. 60 s of 1280x720 at 20 Mbit/s.
func TestSlowBranchBoundedMemory(t *testing.T) {
	const w, h, fps = 1280, 720, 30
	const warm, total = 5 * time.Second, 60 * time.Second
	slow, err := skyline.NewGstSink("identity sleep-time=100000 ! fakesink sync=false")
	if err != nil {
		t.Fatal(err)
	}
	// Stop drains what waits (16 + 64 access units at 10 a second) to the end.
	sl := newTestSkyLine(t, nil, skyline.Config{DrainTimeout: 15 * time.Second, DestinationQueue: 16,
		Encoder: skyline.Encoder{Bitrate: 20000, Preset: "ultrafast"}}, slow)
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	frames := make([][]byte, 8)
	for i := range frames {
		frames[i] = testpattern.NewBGR(w, h, i)
	}
	tick := time.NewTicker(time.Second / fps)
	defer tick.Stop()
	start := time.Now()
	var before int64
	for i := 0; time.Since(start) < total; i++ {
		<-tick.C // real time: the branch is slow against the wall clock
		if before == 0 && time.Since(start) >= warm {
			runtime.GC()
			before = rssBytes(t)
		}
		if ok, err := sl.Put(skyline.FrameBGR(frames[i%len(frames)], w, h, 0)); !ok && !errors.Is(err, skyline.ErrQueueFull) {
			t.Fatalf("Put: %v, %v", ok, err)
		}
	}
	runtime.GC()
	after := rssBytes(t)
	mid := sl.Stats()
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := sl.Stats()
	d := st.Destinations[0]
	growth := after - before
	t.Logf("RSS %d MB -> %d MB (%+.1f MB); encoded %d, written %d, lost %d", before>>20, after>>20,
		float64(growth)/(1<<20), st.Encoded, d.Written, d.Lost)
	if !mid.Destinations[0].Up {
		t.Error("a slow branch is not a failed one: it should stay up")
	}
	if d.Lost < st.Encoded/2 || d.Written+d.Lost != st.Encoded {
		t.Errorf("written %d + lost %d of %d encoded: a branch at a third of the rate must lose about two thirds, all counted",
			d.Written, d.Lost, st.Encoded)
	}
	if growth > 50<<20 {
		t.Errorf("RSS grew by %d MB in %v, want < 50 MB", growth>>20, total-warm)
	}
}
