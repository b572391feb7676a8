package skyline_test

// Regression tests for the control plane: Start, Stop and Close requests,
// warm-up hand-over, detached destinations, backoff and the counters. Each
// test failed before the review fixes of commit 07a09a5.

import (
	"context"
	"errors"
	"fmt"
	"image"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
)

const ctlW, ctlH = 64, 48

var ctlParams = skyline.Params{FPS: 30, Width: ctlW, Height: ctlH}

// ctlReceiver is a Receiver whose calls a test can observe and hold: it
// counts every call, records how many ran at once, and can make one Open
// or WriteAccessUnit wait until unblock is called.
type ctlReceiver struct {
	name      string
	holdOpen  int   // the Open call (1, 2, ...) that waits for unblock; 0: none
	holdWrite int   // the WriteAccessUnit call that waits for unblock; 0: none
	writeErr  error // returned by every WriteAccessUnit when set

	release chan struct{}
	unblock func() // releases the held call; safe to call more than once

	mu          sync.Mutex
	calls       map[string]int
	waiters     []ctlWaiter
	inFlight    int
	maxInFlight int
}

type ctlWaiter struct {
	method string
	n      int
	ch     chan struct{}
}

func newCtlReceiver(name string) *ctlReceiver {
	r := &ctlReceiver{name: name, release: make(chan struct{}), calls: map[string]int{}}
	r.unblock = sync.OnceFunc(func() { close(r.release) })
	return r
}

// enter records a call to method and returns its number (1, 2, ...).
func (r *ctlReceiver) enter(method string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[method]++
	n := r.calls[method]
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
	r.waiters = slices.DeleteFunc(r.waiters, func(w ctlWaiter) bool {
		if w.method == method && n >= w.n {
			close(w.ch)
			return true
		}
		return false
	})
	return n
}

func (r *ctlReceiver) exit() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
}

// reached returns a channel closed once method has been entered n times.
func (r *ctlReceiver) reached(method string, n int) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	if r.calls[method] >= n {
		close(ch)
	} else {
		r.waiters = append(r.waiters, ctlWaiter{method, n, ch})
	}
	return ch
}

// count is how many times method has been called.
func (r *ctlReceiver) count(method string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[method]
}

// most is the largest number of its calls that ran at once.
func (r *ctlReceiver) most() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxInFlight
}

func (r *ctlReceiver) Name() string { return r.name }

func (r *ctlReceiver) Open(skyline.StreamInfo) error {
	defer r.exit()
	if r.enter("Open") == r.holdOpen {
		<-r.release
	}
	return nil
}

func (r *ctlReceiver) WriteAccessUnit(*skyline.AccessUnit) error {
	defer r.exit()
	if r.enter("WriteAccessUnit") == r.holdWrite {
		<-r.release
	}
	return r.writeErr
}

func (r *ctlReceiver) Close() {
	defer r.exit()
	r.enter("Close")
}

// await waits (at most 20 s) for ch to be closed.
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: did not happen within 20 s", what)
	}
}

// putTally counts what Put returned, so that the counters can be checked:
// every accepted frame is encoded or counted in Dropped, which also counts
// the frames Put refused with ErrOpening or ErrQueueFull.
type putTally struct {
	mu           sync.Mutex
	ok, refused  int
	undocumented map[string]int // reasons Put does not document
}

func (c *putTally) put(sl *skyline.SkyLine, f skyline.Frame) (bool, error) {
	ok, err := sl.Put(f)
	c.note(ok, err)
	return ok, err
}

func (c *putTally) note(ok bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case ok && err == nil:
		c.ok++
	case ok || err == nil:
		c.other(fmt.Sprintf("%v with %v", ok, err))
	case errors.Is(err, skyline.ErrOpening), errors.Is(err, skyline.ErrQueueFull):
		c.refused++
	case errors.Is(err, skyline.ErrNotAccepted), errors.Is(err, skyline.ErrClosed):
	default:
		c.other(err.Error())
	}
}

func (c *putTally) other(what string) {
	if c.undocumented == nil {
		c.undocumented = map[string]int{}
	}
	c.undocumented[what]++
}

// checkAccounted checks Accepted == Encoded + discarded, where discarded
// is Dropped less the frames Put refused (read once the SkyLine is stopped).
func checkAccounted(t *testing.T, sl *skyline.SkyLine, c *putTally) {
	t.Helper()
	c.mu.Lock()
	ok, refused := c.ok, c.refused
	c.mu.Unlock()
	st := sl.Stats()
	discarded := int64(st.Dropped) - int64(refused)
	t.Logf("Put true %d, refused %d; Stats Accepted %d Encoded %d Dropped %d", ok, refused, st.Accepted, st.Encoded, st.Dropped)
	if st.Accepted != uint64(ok) {
		t.Errorf("Stats.Accepted %d, but Put returned true %d times", st.Accepted, ok)
	}
	if int64(st.Accepted) != int64(st.Encoded)+discarded {
		t.Errorf("accepted frames lost uncounted: Accepted %d != Encoded %d + discarded %d (Dropped %d - refused %d)",
			st.Accepted, st.Encoded, discarded, st.Dropped, refused)
	}
}

// TestControlStartDuringWarmupCountsEveryFrame: a Start with known
// parameters during a warm-up opens the pipeline while Puts go on. Before
// the fix the warm-up went on meanwhile: the Put that ended it returned
// true and the owner then ignored the stale result, so an accepted frame
// was neither encoded nor counted as dropped.
func TestControlStartDuringWarmupCountsEveryFrame(t *testing.T) {
	r := newCtlReceiver("slow-open")
	r.holdOpen = 1 // holds the owner inside Start (it waits up to 1 s for the open)
	sl := newTestSkyLine(t, newClock(30), skyline.Config{WarmupFrames: 3, QueueSize: 64}, r)
	t.Cleanup(r.unblock)
	if err := sl.Start(skyline.Params{}); err != nil {
		t.Fatal(err)
	}
	var c putTally
	mustPut(t, sl, bgr(ctlW, ctlH, 0), false) // START_WARMUP -> WARMUP
	started := make(chan error, 1)
	go func() { started <- sl.Start(ctlParams) }()
	await(t, r.reached("Open", 1), "the new session opening its destination")
	// The owner is inside Start; these Puts are enough to end the warm-up.
	for i := 1; i <= 4; i++ {
		c.put(sl, bgr(ctlW, ctlH, i))
	}
	r.unblock()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	for i := 5; i < 15; i++ {
		if ok, err := c.put(sl, bgr(ctlW, ctlH, i)); !ok {
			t.Fatalf("Put %d while streaming: %v", i, err)
		}
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	checkAccounted(t, sl, &c)
}

// TestControlDetachedOpenNeverShowsUp: a destination whose Open is still
// running when Stop gives up on it (detaches it) must stay down when that
// Open returns. Before the fix the detached outlet marked it Up, for good,
// and reported destination-up while the SkyLine was STOPPED.
func TestControlDetachedOpenNeverShowsUp(t *testing.T) {
	r := newCtlReceiver("slow-open")
	r.holdOpen = 1
	evs := newEventLog()
	sl := newTestSkyLine(t, newClock(30), skyline.Config{DrainTimeout: 100 * time.Millisecond, OnEvent: evs.add}, r)
	t.Cleanup(r.unblock)
	if err := sl.Start(ctlParams); err != nil { // returns after 1 s with the Open still running
		t.Fatal(err)
	}
	if err := sl.Stop(); !errors.Is(err, skyline.ErrDestination) {
		t.Fatalf("Stop = %v, want the destination detached (ErrDestination)", err)
	}
	stopped := time.Now()
	r.unblock() // the slow Open returns now, after Stop
	await(t, r.reached("Close", 1), "the detached destination closed")
	if d := sl.Stats().Destinations[0]; d.Up {
		t.Errorf("STOPPED, yet the detached destination shows %+v", d)
	}
	if err := sl.Close(); err != nil { // delivers every event queued
		t.Fatal(err)
	}
	for _, e := range evs.all() {
		if e.Kind == skyline.EventDestinationUp && e.Time.After(stopped) {
			t.Errorf("%s %s %v after Stop returned", e.Kind, e.Destination, e.Time.Sub(stopped))
		}
	}
	if d := sl.Stats().Destinations[0]; d.Up {
		t.Errorf("closed, yet the destination shows %+v", d)
	}
}

// TestControlReceiverNeverCalledTwiceAtOnce: a Receiver stuck in a call of
// the first session, then two more sessions. Before the fix the second
// session's outlet, which never got the Receiver, let it go at once when
// its session ended, so the third session called Open while the first
// session's WriteAccessUnit was still running.
func TestControlReceiverNeverCalledTwiceAtOnce(t *testing.T) {
	r := newCtlReceiver("stuck-once")
	sl := startStuck(t, 100*time.Millisecond, r)
	for session := 1; session <= 2; session++ {
		if err := sl.Stop(); err != nil { // the stuck outlet is detached
			t.Logf("Stop of session %d: %v", session, err)
		}
		if err := sl.Start(ctlParams); err != nil {
			t.Fatal(err)
		}
	}
	// Start has waited for the third session's open attempt (or 1 s).
	if n := r.most(); n > 1 {
		t.Errorf("the Receiver had %d calls in flight at once while the first session's call was stuck", n)
	}
	r.unblock()
	await(t, r.reached("Open", 2), "the third session opening the Receiver once it is free")
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := r.most(); n > 1 {
		t.Errorf("the Receiver had %d calls in flight at once", n)
	}
}

// TestControlFailingReceiverBacksOffWithoutKeyframes: a Receiver that opens
// fine but fails every write (a push target that accepts the connection and
// then resets it). Its backoff must grow, and its reopenings must not cost
// the healthy destination beside it a keyframe each. Before the fix every
// successful Open reset the backoff to RetryMin and forced a keyframe on
// the shared encoder.
func TestControlFailingReceiverBacksOffWithoutKeyframes(t *testing.T) {
	const (
		fps      = 30
		interval = 500 * time.Millisecond
		gop      = 15 // access units per keyframe interval
		n        = 3 * gop
		retryMin = 100 * time.Millisecond
		retryMax = 10 * time.Second
	)
	flappy, healthy := newCtlReceiver("flappy"), &collector{name: "healthy"}
	flappy.writeErr = errors.New("connection reset by peer")
	evs := newEventLog()
	sl := newTestSkyLine(t, nil, skyline.Config{OnEvent: evs.add, QueueSize: 64, RetryMin: retryMin, RetryMax: retryMax,
		Encoder: skyline.Encoder{KeyframeInterval: interval}}, flappy, healthy)
	if err := sl.Start(skyline.Params{FPS: fps, Width: ctlW, Height: ctlH}); err != nil {
		t.Fatal(err)
	}
	// A camera at 30 fps: the backoff runs on the wall clock, so must the frames.
	tick := time.NewTicker(time.Second / fps)
	defer tick.Stop()
	for i := 0; i < n; i++ {
		<-tick.C
		mustPut(t, sl, bgr(ctlW, ctlH, i), true)
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	// Events come in order: once STOPPED is seen, every earlier one is in.
	evs.wait(t, "state STOPPED", 10*time.Second, func(e skyline.Event) bool {
		return e.Kind == skyline.EventState && e.State == skyline.StateStopped
	})
	var retries []time.Duration
	for _, e := range evs.all() {
		if e.Kind == skyline.EventDestinationRetrying && e.Destination == "flappy" {
			retries = append(retries, e.Retry)
		}
	}
	aus := healthy.all()
	var keys []int
	for i, au := range aus[:min(n, len(aus))] {
		if au.Keyframe {
			keys = append(keys, i)
		}
	}
	t.Logf("flappy: %d opens, backoffs %v; healthy: keyframes at %v of %d access units", flappy.count("Open"), retries, keys, len(aus))
	if len(aus) < n {
		t.Fatalf("the healthy destination got %d access units of %d", len(aus), n)
	}
	if len(retries) < 3 {
		t.Fatalf("flappy failed %d times in %d access units, want at least 3", len(retries), n)
	}
	for i := 1; i < len(retries); i++ {
		if retries[i] <= retries[i-1] && retries[i-1] < retryMax {
			t.Errorf("the backoff did not grow: %v", retries)
			break
		}
	}
	// One keyframe per interval, and one asked for when flappy first
	// reopened; not one per reopening.
	if want := (n+gop-1)/gop + 1; len(keys) > want {
		t.Errorf("%d keyframes in the healthy destination's first %d access units (one every %d), want at most %d: a failing destination forced keyframes on everyone",
			len(keys), n, gop, want)
	}
}

// TestControlTimedOutStopStillStops: a Stop that times out while the owner
// is busy with an earlier Start is carried out afterwards ("it goes on in
// the background"). Before the fix it was dropped: the SkyLine went on
// streaming.
func TestControlTimedOutStopStillStops(t *testing.T) {
	stuck, other := newCtlReceiver("stuck"), newCtlReceiver("other")
	const drain = 10 * time.Millisecond // Stop's bound: DrainTimeout + 1 s
	sl := startStuck(t, drain, stuck, other)
	// A second Start keeps the owner busy for about 1.5 s: ending the
	// session waits 500 ms for the stuck destination, opening the next one
	// 1 s for its first open attempt (it waits for the stuck call).
	restarted := make(chan error, 1)
	go func() { restarted <- sl.Start(ctlParams) }()
	await(t, other.reached("Close", 1), "the owner ending the first session")
	err := sl.Stop()
	t.Logf("Stop: %v", err)
	if !errors.Is(err, skyline.ErrTimeout) {
		t.Fatalf("Stop = %v; the owner was busy for longer than Stop's bound, want ErrTimeout", err)
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st, err := sl.WaitState(ctx, skyline.StateStopped); err != nil {
		t.Fatalf("Stop timed out (\"it goes on in the background\"), yet the SkyLine stays %v: %v", st, err)
	}
}

// TestControlCloseWinsOverQueuedStarts: Starts waiting for the owner when
// Close is called are answered ErrClosed; none opens a session after Close.
// Before the fix the owner picked at random between Close and a waiting
// request, so each trial caught it with probability 1/2; the trials run in
// parallel.
func TestControlCloseWinsOverQueuedStarts(t *testing.T) {
	const trials = 10
	var wg sync.WaitGroup
	for trial := range trials {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := closeWinsTrial(); err != nil {
				t.Errorf("trial %d: %v", trial, err)
			}
		}()
	}
	wg.Wait()
}

// closeWinsTrial: a Start (A) holds the owner (its destination's Open
// waits, and the owner waits 1 s for that); three more Starts queue behind
// it; then Close, long before the owner is done with A. A may finish; the
// three must not. (A Start that reaches the SkyLine only after Close was
// called is ErrClosed anyway.)
func closeWinsTrial() error {
	const drain = time.Second // Close's bound, DrainTimeout + 1 s, is well above the 1 s A takes
	r := newCtlReceiver("slow-open")
	r.holdOpen = 1
	sl, err := skyline.New(skyline.Config{Clock: newClock(30), NoDotEnv: true, DrainTimeout: drain}, r)
	if err != nil {
		return err
	}
	defer func() {
		r.unblock()
		_ = sl.Close()
	}()
	first := make(chan error, 1)
	go func() {
		err := sl.Start(ctlParams)
		r.unblock() // A is over: let its destination go
		first <- err
	}()
	select {
	case <-r.reached("Open", 1):
	case <-time.After(20 * time.Second):
		return errors.New("the first Start never opened its destination")
	}
	var queued, done sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		queued.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			queued.Done()
			errs[i] = sl.Start(ctlParams)
		}()
	}
	queued.Wait()
	t0 := time.Now()
	closeErr := sl.Close()
	took, state := time.Since(t0), sl.State()
	done.Wait()
	firstErr := <-first
	var problems []error
	for _, err := range errs {
		if !errors.Is(err, skyline.ErrClosed) {
			problems = append(problems, fmt.Errorf("a Start waiting when Close was called returned %v, want ErrClosed", err))
		}
	}
	if took > drain+time.Second {
		problems = append(problems, fmt.Errorf("Close took %v (%v), want at most DrainTimeout + 1 s", took, closeErr))
	}
	if state != skyline.StateStopped {
		problems = append(problems, fmt.Errorf("state %v after Close", state))
	}
	if len(problems) > 0 {
		problems = append(problems, fmt.Errorf("(the Start in progress returned %v; Close %v in %v)", firstErr, closeErr, took))
	}
	return errors.Join(problems...)
}

// TestControlDrainCutShortIsCounted: when the encoder does not drain within
// DrainTimeout, Stop says so (ErrTimeout) and the accepted frames still in
// it are counted in Dropped. Before the fix Stop returned nil and those
// frames were lost uncounted.
func TestControlDrainCutShortIsCounted(t *testing.T) {
	const w, h, n = 1280, 720, 10
	// An encoder far slower than Put (one thread, the slowest preset):
	// frames are still queued at Stop, and it takes longer than the
	// puller's 100 ms poll for each.
	sl := newTestSkyLine(t, newClock(30), skyline.Config{QueueSize: n, DrainTimeout: time.Millisecond,
		Encoder: skyline.Encoder{Preset: "slower", Properties: map[string]string{"threads": "1"}}})
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	frames := make([]skyline.Frame, 4) // moving pictures: nothing for the encoder to skip
	for i := range frames {
		frames[i] = bgr(w, h, 10*i)
	}
	var c putTally
	for i := 0; i < n; i++ {
		if ok, err := c.put(sl, frames[i%len(frames)]); !ok {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	t0 := time.Now()
	err := sl.Stop()
	t.Logf("Stop after %v: %v", time.Since(t0), err)
	if !errors.Is(err, skyline.ErrTimeout) {
		t.Errorf("Stop = %v after a drain cut short, want ErrTimeout", err)
	}
	checkAccounted(t, sl, &c)
	if st := sl.Stats(); st.Dropped == 0 || st.Encoded == n {
		t.Errorf("every frame was encoded (%+v): the drain was not cut short, the test proves nothing", st)
	}
}

// panicReporter is a Receiver whose DeliveryStatus panics.
type panicReporter struct{ *ctlReceiver }

func (panicReporter) DeliveryStatus() skyline.DeliveryStatus { panic("status boom") }

// TestControlDeliveryStatusPanicContained: a DeliveryReporter that panics
// must not take down the caller of Stats (a metrics exporter); the
// destination shows down. Before the fix the panic escaped Stats.
func TestControlDeliveryStatusPanicContained(t *testing.T) {
	r := panicReporter{newCtlReceiver("reporter")}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{}, r)
	if err := sl.Start(ctlParams); err != nil {
		t.Fatal(err)
	}
	await(t, r.reached("Open", 1), "the destination opened")
	var st skyline.Stats
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("Stats panicked: %v", p)
			}
		}()
		st = sl.Stats()
	}()
	if d := st.Destinations[0]; d.Up {
		t.Errorf("a destination whose DeliveryStatus panics shows %+v, want down", d)
	}
}

// TestControlSecondCloseWaits: a Close called while another runs returns
// only once the SkyLine is closed. Before the fix it returned nil at once,
// while the first was still stopping.
func TestControlSecondCloseWaits(t *testing.T) {
	stuck, other := newCtlReceiver("stuck"), newCtlReceiver("other")
	sl := startStuck(t, 100*time.Millisecond, stuck, other) // the first Close waits 500 ms for it
	firstDone := make(chan error, 1)
	go func() { firstDone <- sl.Close() }()
	await(t, other.reached("Close", 1), "the first Close ending the session")
	if err := sl.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if st := sl.State(); st != skyline.StateStopped {
		t.Errorf("the second Close returned while the SkyLine was %v", st)
	}
	select {
	case err := <-firstDone:
		t.Logf("first Close: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the first Close did not return")
	}
}

// TestControlHammer: every method at once from many goroutines (Put,
// PutImage, Start with measured and known parameters, Stop,
// RequestKeyframe, Stats, Params, WaitState) and an OnEvent that calls back
// into the SkyLine (Stop included), then two concurrent Closes. Put gives
// only documented reasons, the SkyLine ends STOPPED, and every accepted
// frame is encoded or counted as dropped.
func TestControlHammer(t *testing.T) {
	const hammerFor = 4 * time.Second
	file, err := skyline.NewFile(filepath.Join(t.TempDir(), "hammer.mkv"))
	if err != nil {
		t.Fatal(err)
	}
	var slp atomic.Pointer[skyline.SkyLine]
	var callbacks atomic.Int64
	sl := newTestSkyLine(t, nil, skyline.Config{WarmupFrames: 5, DrainTimeout: 300 * time.Millisecond,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		OnEvent: func(e skyline.Event) {
			s := slp.Load()
			if s == nil {
				return
			}
			n := callbacks.Add(1)
			_, _ = s.Stats(), s.Params()
			s.RequestKeyframe()
			if e.Kind == skyline.EventDestinationUp && n%7 == 0 {
				_ = s.Stop()
			}
		}}, &auCounter{}, file)
	slp.Store(sl)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var badMu sync.Mutex
	bad := map[string]int{}
	note := func(what string, err error) {
		badMu.Lock()
		defer badMu.Unlock()
		bad[what+": "+err.Error()]++
	}
	// loop calls fn(0), fn(1), ... until stop, pausing pause(i) after
	// each call.
	loop := func(pause func(i int) time.Duration, fn func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				fn(i)
				timer := time.NewTimer(pause(i))
				select {
				case <-stop:
					timer.Stop()
					return
				case <-timer.C:
				}
			}
		}()
	}
	often := func(int) time.Duration { return time.Millisecond }
	var c putTally
	for range 2 {
		loop(often, func(i int) { c.put(sl, bgr(ctlW+2*(i%2), ctlH, i)) })
	}
	img := image.NewRGBA64(image.Rect(0, 0, ctlW, ctlH)) // drawn into a scratch image by PutImage
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	loop(func(int) time.Duration { return 2 * time.Millisecond }, func(int) { c.note(sl.PutImage(img)) })
	// Starts, measured (warm-up) and with known parameters, some back to
	// back: a Start with known parameters while a warm-up ends, and one
	// that waits for its warm-up to open the pipeline.
	starts := []struct {
		p     skyline.Params
		pause time.Duration
	}{
		{skyline.Params{}, 0}, {ctlParams, 200 * time.Millisecond},
		{skyline.Params{}, 400 * time.Millisecond}, {ctlParams, 0},
		{skyline.Params{}, 0}, {ctlParams, 300 * time.Millisecond},
	}
	loop(func(i int) time.Duration { return starts[i%len(starts)].pause }, func(i int) {
		if err := sl.Start(starts[i%len(starts)].p); err != nil && !errors.Is(err, skyline.ErrClosed) {
			note("Start", err)
		}
	})
	loop(func(int) time.Duration { return 700 * time.Millisecond }, func(int) {
		if err := sl.Stop(); err != nil && !errors.Is(err, skyline.ErrClosed) {
			note("Stop", err)
		}
	})
	loop(often, func(int) { sl.RequestKeyframe() })
	loop(often, func(int) {
		_, _, _, _ = sl.Stats(), sl.Params(), sl.State(), sl.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loop(often, func(int) { _, _ = sl.WaitState(ctx, skyline.StateStreaming) })

	<-time.After(hammerFor)
	// Two Closes at once: each returns once the SkyLine is closed.
	var closes sync.WaitGroup
	closeErrs := make([]error, 2)
	states := make([]skyline.State, 2)
	for i := range closeErrs {
		closes.Add(1)
		go func() {
			defer closes.Done()
			closeErrs[i] = sl.Close()
			states[i] = sl.State()
		}()
	}
	closes.Wait()
	cancel()
	close(stop)
	wg.Wait()

	t.Logf("Closes: %v, %v; %d callbacks; other errors (not checked): %v", closeErrs[0], closeErrs[1], callbacks.Load(), bad)
	for i, st := range states {
		if st != skyline.StateStopped {
			t.Errorf("Close %d returned while the SkyLine was %v", i+1, st)
		}
	}
	if len(c.undocumented) > 0 {
		t.Errorf("Put returned undocumented reasons: %v", c.undocumented)
	}
	checkAccounted(t, sl, &c)
}

// startStuck starts a SkyLine streaming to stuck (which blocks in its first
// WriteAccessUnit until the test ends) and others, and returns once stuck
// is blocked.
func startStuck(t *testing.T, drain time.Duration, stuck *ctlReceiver, others ...skyline.Destination) *skyline.SkyLine {
	t.Helper()
	stuck.holdWrite = 1
	sl := newTestSkyLine(t, newClock(30), skyline.Config{DrainTimeout: drain, QueueSize: 64},
		append([]skyline.Destination{stuck}, others...)...)
	t.Cleanup(stuck.unblock) // before Close (cleanups run last first)
	if err := sl.Start(ctlParams); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		mustPut(t, sl, bgr(ctlW, ctlH, i), true)
	}
	await(t, stuck.reached("WriteAccessUnit", 1), "the stuck destination's first access unit")
	return sl
}
