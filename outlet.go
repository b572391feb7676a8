package skyline

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/skyline-go/skyline/internal/gst"
)

// Defaults for destination isolation.
const (
	// DefaultDestinationQueue is how many access units may wait for one
	// destination (about 4 s at 30 fps) before its excess is dropped.
	DefaultDestinationQueue = 128
	// DefaultRetryMin and DefaultRetryMax bound the exponential backoff
	// between attempts to reopen a failed destination.
	DefaultRetryMin = 500 * time.Millisecond
	DefaultRetryMax = 30 * time.Second
)

// branchQueue bounds the access units waiting inside a GstDestination's
// own pipeline (its appsrc), for a branch that is slower than the stream
// (a stalled RTMP peer, a hung network file system). When it is full the
// outlet waits, so its own queue (Config.DestinationQueue) takes the
// burst; past that, access units are dropped, counted in Lost, and the
// branch resumes at a keyframe. The appsrc is also set to drop (leaky) at
// this bound so that nothing queues without limit in C.
const branchQueue = 64

// stableAfter is how long a reopened destination must deliver before its
// backoff starts again from RetryMin: one that opens and then fails at
// once backs off ever longer.
const stableAfter = 5 * time.Second

// destStats are one destination's counters across sessions (Stats). The
// outlets of successive sessions update them.
type destStats struct {
	written, lost atomic.Uint64
	up            atomic.Bool
	reporter      DeliveryReporter // nil unless the Receiver is one
	// last is the done channel of the destination's latest outlet, which
	// may still run after its session when it was detached (owner only).
	last chan struct{}
}

// outlet isolates one destination for one session: its own bounded queue
// and goroutine (run), so a slow, stuck, failing or panicking destination
// never stalls the encoder, the control plane or the others. It owns every
// destination kind's failure handling: backoff, reopening, events and
// counters. A GstDestination runs in its own small pipeline
// (appsrc ! h264parse ! <its branch>).
type outlet struct {
	dest  Destination
	recv  Receiver       // nil for a GstDestination
	gstd  GstDestination // nil for a Receiver
	name  string
	log   *slog.Logger
	emit  func(Event)
	cfg   Config
	info  StreamInfo
	st    *destStats
	prev  <-chan struct{} // the previous session's outlet (nil: none running)
	queue chan *AccessUnit

	// secrets are the destination's (SecretHolder), masked in every error,
	// event and log line about it.
	secrets []Secret

	// closing is closed (after queue) when the session ends; deadline is
	// written before and read after, so the channel orders them.
	closing  chan struct{}
	deadline time.Time
	opened   chan struct{} // closed after the first open attempt
	done     chan struct{}

	detached atomic.Bool  // the session gave up waiting for it
	overflow atomic.Int64 // access units the full queue refused
	offered  atomic.Bool  // the stream has begun (access units came)
	lost     atomic.Int64 // all of this outlet's losses
	reported atomic.Int64 // lost already reported in an EventDropped
	closeErr error        // written by run before done is closed

	// owned by run
	isOpen       bool
	branch       *branch // GstDestination: the running pipeline
	needKey      bool
	overflowSeen int64
	lastLoss     time.Time
	failures     int
	restarts     int
	retryAt      time.Time
	upSince      time.Time // when a write last proved it works (zero: not since the last failure)
	everUp       bool
	wasDown      bool
	// A DeliveryReporter that cannot deliver was reported down (owned by
	// run); its recovery is reported once it can again.
	reportedDown bool
	// After a reopen the destination is "recovered" only once a write has
	// worked: a Receiver's WriteAccessUnit returned nil, or a branch's sink
	// rendered what it was given (proven access units, see settle) and its
	// bus reports no error (and, for files, the file is no longer empty).
	unproven bool
	pushed   int // access units pushed into the current branch
	// marks holds, for each access unit pushed into the current branch and
	// not yet proven written, its sinks' buffer count when it was pushed
	// (see settle); delivered counts the branch's proven ones.
	marks     []int64
	delivered int
	reuse     bool // the last attempt's empty file was removed: its name is free again
	// Recordings: the file the branch writes; for a segmented one, the
	// segment's number and first PTS.
	file     *File
	segIndex int
	segStart time.Duration
	segHave  bool
}

func newOutlet(d Destination, st *destStats, cfg Config, log *slog.Logger, emit func(Event), info StreamInfo) *outlet {
	o := &outlet{dest: d, name: d.Name(), cfg: cfg, emit: emit, info: info, st: st, needKey: true,
		log:   log.With(slog.String("destination", d.Name())),
		queue: make(chan *AccessUnit, cfg.DestinationQueue), closing: make(chan struct{}),
		opened: make(chan struct{}), done: make(chan struct{})}
	o.recv, _ = d.(Receiver)
	o.gstd, _ = d.(GstDestination)
	o.secrets = SecretsOf(d)
	o.info.Emit = func(e Event) { // what the destination reports is masked too
		if e.Destination == "" {
			e.Destination = o.name
		}
		e.Err = RedactError(e.Err, o.secrets...)
		e.Detail = o.redact(e.Detail)
		e.Viewer = o.redact(e.Viewer)
		emit(e)
	}
	if st.last != nil {
		o.prev = st.last
	}
	st.last = o.done
	return o
}

// redact masks the destination's secrets (and any secret property or URL
// credential) in text about it.
func (o *outlet) redact(text string) string {
	if text == "" {
		return ""
	}
	return Redact(text, o.secrets...)
}

// start launches the outlet's goroutine, which opens the destination.
func (o *outlet) start() { go o.run() }

// offer queues an access unit without ever blocking (the puller calls it).
func (o *outlet) offer(au *AccessUnit) {
	o.offered.Store(true)
	select {
	case o.queue <- au:
	default:
		o.overflow.Add(1)
		o.lose(1)
	}
}

func (o *outlet) lose(n int64) {
	o.lost.Add(n)
	o.st.lost.Add(uint64(n))
}

// run opens the destination and delivers queued access units until the
// queue is closed.
func (o *outlet) run() {
	defer func() {
		// done means "the destination is free": never before the previous
		// session's outlet has let go of it too.
		if o.prev != nil {
			<-o.prev
		}
		close(o.done)
	}()
	if o.prev != nil { // the last session's outlet may be detached: one at a time
		select {
		case <-o.prev:
		default:
			o.log.Warn("destination still busy in the previous session's call (detached); waiting for it")
			select {
			case <-o.prev:
			case <-o.closing:
			}
		}
	}
	if !o.closed() {
		o.reopen()
	}
	close(o.opened)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case au, ok := <-o.queue:
			if !ok {
				o.finish()
				return
			}
			if o.detached.Load() {
				o.lose(1)
				continue
			}
			o.deliver(au)
		case now := <-tick.C:
			o.poll(now)
		}
		o.reportLoss()
	}
}

func (o *outlet) closed() bool {
	select {
	case <-o.closing:
		return true
	default:
		return false
	}
}

func (o *outlet) deliver(au *AccessUnit) {
	if n := o.overflow.Load(); n != o.overflowSeen { // the queue overflowed: resume at a keyframe
		o.overflowSeen = n
		o.needKey = true
		o.info.RequestKeyframe()
	}
	if !o.isOpen {
		o.poll(time.Now()) // reopens it when its backoff has elapsed
		if !o.isOpen {
			o.lose(1)
			return
		}
	}
	if o.needKey && !au.Keyframe {
		o.lose(1)
		return
	}
	var err error
	if o.recv != nil {
		err = o.protect("WriteAccessUnit", func() error { return o.recv.WriteAccessUnit(au) })
	} else {
		if err = o.rotate(au); err == nil {
			err = o.waitRoom()
		}
		if err == nil {
			// A refused push fails it now; errors the branch posts later
			// are found by the 100 ms poll in run.
			err = o.branch.push(au)
		} else if errors.Is(err, errGaveUp) {
			o.lose(1)
			return
		}
	}
	if err != nil {
		o.lose(1)
		o.fail(err)
		return
	}
	o.needKey = false
	if o.branch != nil {
		if o.file != nil {
			// A recording's file is its proof (wrote, repair): counted
			// when taken, as its crash-safety is measured against it.
			o.st.written.Add(1)
		} else {
			// Written once the branch's sink shows it rendered it (settle).
			o.marks = append(o.marks, o.branch.rendered.Load())
		}
		o.pushed++
		if !o.segHave {
			o.segStart, o.segHave = au.PTS, true
		}
		o.settle()
	} else {
		o.st.written.Add(1)
		if o.unproven {
			o.proven() // WriteAccessUnit worked
		}
	}
	if o.failures > 0 && !o.unproven && time.Since(o.upSince) >= stableAfter {
		o.failures = 0 // it has worked for a while: the next failure backs off from RetryMin
	}
}

// errGaveUp: the session ended while a branch had no room.
var errGaveUp = errors.New("gave up waiting for the branch")

// waitRoom waits while the branch's own queue is full: the backpressure
// falls on this outlet's queue, which absorbs bursts and, when the branch
// stays behind, overflows (counted lost) while memory stays bounded. It
// returns a branch error, or errGaveUp once the session is past its
// deadline or has detached the outlet.
func (o *outlet) waitRoom() error {
	for o.branch.src.Level() >= branchQueue {
		if err := o.branch.check(); err != nil {
			return err
		}
		if o.detached.Load() || (o.closed() && time.Now().After(o.deadline)) {
			return errGaveUp
		}
		time.Sleep(2 * time.Millisecond) // the appsrc signals room only to GLib callbacks
	}
	return nil
}

// protect calls a Receiver method, turning a panic into an error.
func (o *outlet) protect(what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			o.log.Debug("destination panicked", "in", what, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %s panicked: %v", ErrDestination, what, r)
		}
	}()
	return fn()
}

// poll checks a running branch for errors and reopens a failed destination
// when its backoff has elapsed (never once the session is ending).
func (o *outlet) poll(now time.Time) {
	if o.isOpen {
		if o.branch != nil {
			if err := o.branch.check(); err != nil {
				o.fail(err)
				return
			}
			o.settle()
			if o.unproven && (o.delivered > 0 || o.file != nil && o.pushed > 0) && o.wrote() {
				o.proven()
			}
		}
		o.pollDelivery()
		return
	}
	if !o.retryAt.IsZero() && !now.Before(o.retryAt) && !o.closed() {
		o.reopen()
	}
}

// reopen opens the destination (the first time, or after a failure).
func (o *outlet) reopen() {
	var err error
	if o.recv != nil {
		err = o.protect("Open", func() error { return o.recv.Open(o.info) })
	} else {
		text := o.gstd.Launch()
		r, canRetry := o.gstd.(interface{ LaunchRetry(int) string })
		if canRetry && o.failures > 0 && !o.reuse {
			o.restarts++
		}
		o.reuse = false
		o.segIndex, o.segHave = 0, false
		o.file = o.fileFor(0)
		switch {
		case o.file != nil:
			text = o.file.Launch()
		case canRetry && o.restarts > 0:
			text = r.LaunchRetry(o.restarts)
		}
		o.pushed, o.delivered, o.marks = 0, 0, nil
		o.branch, err = startBranch(text, o.log)
	}
	if err != nil {
		o.fail(err)
		return
	}
	o.isOpen = true
	o.retryAt = time.Time{}
	o.needKey = true
	o.upSince = time.Now()
	if o.detached.Load() { // the session gave up on this call: finish closes it, silently
		return
	}
	// A keyframe now, unless the stream's first access unit will be one, or
	// the destination keeps failing (then it waits for the next natural
	// keyframe rather than cost every viewer a keyframe per attempt).
	if (o.everUp || o.offered.Load()) && o.failures <= 1 {
		o.info.RequestKeyframe()
	}
	if o.wasDown { // up and recovered once a write has worked (proven)
		o.unproven = true
		return
	}
	o.st.up.Store(true)
	if !o.everUp {
		o.everUp = true
		o.emit(Event{Kind: EventDestinationUp, Destination: o.name})
	}
}

// proven marks a reopened destination up and recovered: a write worked.
// Its backoff starts again from RetryMin once it has worked for
// stableAfter.
func (o *outlet) proven() {
	o.unproven = false
	o.upSince = time.Now()
	o.wasDown = false
	o.st.up.Store(true)
	if !o.everUp {
		o.everUp = true
		o.emit(Event{Kind: EventDestinationUp, Destination: o.name})
		return
	}
	o.log.Info("destination recovered")
	o.emit(Event{Kind: EventDestinationRecovered, Destination: o.name})
}

// settle counts as written the access units a branch's sink has shown it
// is past (pushes and gst: sinks; a recording's file is its own proof: see
// wrote). Access units pushed into the branch count as written only once
// proven: a sink pad takes a buffer only after it has rendered the one
// before it, so an access unit is proven once two buffers have reached the
// branch's sinks since it was pushed (the first of them is done). A sink
// that never gets going (a push that never connects blocks in its first
// buffer) proves nothing, and what it was given is counted lost when the
// branch fails (settleAll). The proof is of the sink's progress, not of
// each access unit's own bytes: what a muxer still holds when a sink fails
// later may have been counted written.
func (o *outlet) settle() {
	if o.branch == nil || len(o.marks) == 0 {
		return
	}
	n, i := o.branch.rendered.Load(), 0
	for i < len(o.marks) && o.marks[i]+2 <= n {
		i++
	}
	o.prove(i)
}

func (o *outlet) prove(n int) {
	if n == 0 {
		return
	}
	o.marks = o.marks[n:]
	o.delivered += n
	o.st.written.Add(uint64(n))
}

// settleAll ends a branch's accounting: after an end of stream that was
// written out (ok), every access unit it was given is written; after a
// failure or a drain cut short, the unproven ones are lost.
func (o *outlet) settleAll(ok bool) {
	if ok {
		o.prove(len(o.marks))
		return
	}
	o.lose(int64(len(o.marks)))
	o.marks = nil
}

// fileFor is the file a recording's current attempt writes (segment
// index of a segmented one), nil for other destinations.
func (o *outlet) fileFor(index int) *File {
	switch d := o.gstd.(type) {
	case *File:
		return d.at(o.restarts)
	case *Sink:
		if d.seg != nil {
			return d.seg.file(o.restarts, index)
		}
	}
	return nil
}

// wrote tells whether the current branch's output shows a write: for a
// recording, a picture in its file.
func (o *outlet) wrote() bool { return o.file == nil || o.file.wroteMedia() }

// rotate starts the next segment of a segmented recording at the first
// keyframe after the segment duration: the current file is finalised, the
// oldest beyond keep deleted.
func (o *outlet) rotate(au *AccessUnit) error {
	d, ok := o.gstd.(*Sink)
	if !ok || d.seg == nil || !au.Keyframe || !o.segHave || au.PTS-o.segStart < d.seg.every {
		return nil
	}
	err := o.branch.drain(o.cfg.DrainTimeout)
	o.branch = nil
	o.settleAll(err == nil)
	if err != nil {
		return err
	}
	o.segIndex++
	if d.seg.keep > 0 && o.segIndex >= d.seg.keep {
		_ = os.Remove(d.seg.file(o.restarts, o.segIndex-d.seg.keep).path)
	}
	o.file = d.seg.file(o.restarts, o.segIndex)
	o.segHave, o.pushed = false, 0
	o.branch, err = startBranch(o.file.Launch(), o.log)
	return err
}

// pollDelivery reports a DeliveryReporter that delivers on its own (it
// keeps what it took and retries itself, so it is not closed and reopened)
// with the events of every destination: EventDestinationDown once when it
// reports an error and cannot deliver, EventDestinationRecovered once it
// can again.
func (o *outlet) pollDelivery() {
	if o.st.reporter == nil {
		return
	}
	ds := deliveryStatus(o.st.reporter)
	switch {
	case !o.reportedDown && !ds.Connected && ds.Err != nil:
		o.reportedDown = true
		err := o.destErr(ds.Err)
		o.log.Warn("destination cannot deliver; it retries by itself", "error", err)
		o.emit(Event{Kind: EventDestinationDown, Destination: o.name, Err: err})
	case o.reportedDown && ds.Connected:
		o.reportedDown = false
		o.log.Info("destination recovered")
		o.emit(Event{Kind: EventDestinationRecovered, Destination: o.name})
	}
}

// destErr wraps a destination's error in ErrDestination, secrets masked.
func (o *outlet) destErr(err error) error {
	return fmt.Errorf("%w: %s", ErrDestination, o.redact(err.Error()))
}

// fail closes the destination, reports it and schedules a retry.
func (o *outlet) fail(err error) {
	msg := o.redact(err.Error())
	err = fmt.Errorf("%w: %s", ErrDestination, msg)
	o.st.up.Store(false)
	if o.isOpen && o.recv != nil {
		_ = o.protect("Close", func() error { o.recv.Close(); return nil })
	}
	if o.branch != nil {
		o.branch.abort()
		o.branch = nil
	}
	o.settleAll(false) // what the branch did not prove it delivered is lost
	if o.file != nil {
		// A half-written fragment is cut off; an attempt that wrote no
		// picture leaves no file behind (a full disk must not fill a
		// folder with empty files), and the next attempt may use its name
		// again, unless earlier segments of this one are kept under it.
		o.file.repair()
		o.reuse = o.file.removeIfNoMedia() && o.segIndex == 0
	}
	o.unproven = false
	o.isOpen = false
	o.failures++
	o.wasDown = true
	backoff := min(o.cfg.RetryMin<<min(o.failures-1, 20), o.cfg.RetryMax)
	o.retryAt = time.Now().Add(backoff)
	o.log.Warn("destination failed; retrying", "error", msg, "attempt", o.failures, "in", backoff)
	o.emit(Event{Kind: EventDestinationDown, Destination: o.name, Err: err})
	o.emit(Event{Kind: EventDestinationRetrying, Destination: o.name, Attempt: o.failures, Retry: backoff})
}

// reportLoss emits EventDropped at most once a second while losing.
func (o *outlet) reportLoss() {
	lost := o.lost.Load()
	if lost == 0 || time.Since(o.lastLoss) < time.Second {
		return
	}
	if n := lost - o.reported.Load(); n > 0 {
		o.lastLoss = time.Now()
		o.emit(Event{Kind: EventDropped, Destination: o.name, Count: n})
		o.reported.Store(lost)
	}
}

func (o *outlet) reportLossNow() {
	if n := o.lost.Load() - o.reported.Load(); n > 0 {
		o.emit(Event{Kind: EventDropped, Destination: o.name, Count: n})
		o.reported.Store(o.lost.Load())
	}
}

// finish ends the destination after the last access unit: a Receiver is
// closed, a branch gets an end of stream (files are finalised) within what
// is left of the deadline.
func (o *outlet) finish() {
	if o.isOpen {
		if o.recv != nil {
			_ = o.protect("Close", func() error { o.recv.Close(); return nil })
		} else {
			o.closeErr = o.branch.drain(time.Until(o.deadline))
			o.branch = nil
			o.settleAll(o.closeErr == nil)
			if o.file != nil {
				o.file.removeIfNoMedia()
			}
		}
	}
	o.isOpen = false
	o.st.up.Store(false) // the next session's outlet opens only after this one is done
	o.reportLossNow()
}

// close ends the queue and waits until deadline for the destination to
// finish. One that does not is detached: marked down, reported, its
// waiting access units counted lost; its goroutine closes it whenever its
// current call returns, and the destination's next outlet waits for that.
func (o *outlet) close(deadline time.Time) error {
	o.deadline = deadline
	close(o.queue)
	close(o.closing)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-o.done:
		return RedactError(o.closeErr, o.secrets...)
	case <-timer.C:
	}
	o.detached.Store(true)
	o.st.up.Store(false)
	for drained := false; !drained; {
		select {
		case _, ok := <-o.queue:
			if !ok {
				drained = true
			} else {
				o.lose(1)
			}
		default:
			drained = true
		}
	}
	err := fmt.Errorf("%w: %s did not finish within DrainTimeout (%v); detached", ErrDestination, o.name, o.cfg.DrainTimeout)
	o.log.Warn("destination did not finish in time; detached", "timeout", o.cfg.DrainTimeout)
	o.emit(Event{Kind: EventDestinationDown, Destination: o.name, Err: err})
	o.reportLossNow()
	return err
}

// waitOpened waits until the first open attempt is done or deadline.
func (o *outlet) waitOpened(deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-o.opened:
	case <-timer.C:
	}
}

// branch is a GstDestination's own pipeline.
type branch struct {
	pipe *gst.Pipeline
	src  *gst.AppSrc
	// rendered counts the buffers that reached the branch's sinks (settle);
	// freed after the pipeline is closed.
	rendered *gst.Counter
	base     time.Duration // first PTS: the branch's timestamps start at 0
	have     bool
}

func branchLaunch(text string) string {
	return "appsrc name=src ! h264parse ! " + text
}

func startBranch(text string, log *slog.Logger) (*branch, error) {
	p, err := gst.ParseLaunch(branchLaunch(text))
	if err != nil {
		return nil, err
	}
	b := &branch{pipe: p, src: gst.AsAppSrc(p.ByName("src")), rendered: gst.NewCounter()}
	p.CountRendered(b.rendered)
	if err := b.src.SetCaps("video/x-h264,stream-format=byte-stream,alignment=au", branchQueue); err != nil {
		b.abort()
		return nil, err
	}
	if err := p.SetState(gst.StatePlaying); err != nil {
		err = b.busError(err)
		b.abort()
		return nil, err
	}
	if _, err := p.WaitState(200 * time.Millisecond); err != nil && !errors.Is(err, gst.ErrAsync) {
		err = b.busError(err)
		b.abort()
		return nil, err
	}
	log.Debug("branch started")
	return b, nil
}

// busError prefers the bus's explanation of a failure.
func (b *branch) busError(fallback error) error {
	for {
		m, ok := b.pipe.PopMessage(300 * time.Millisecond)
		if !ok {
			return fallback
		}
		if m.Kind == gst.MsgError {
			return errors.New(m.String())
		}
	}
}

func (b *branch) push(au *AccessUnit) error {
	if !b.have {
		b.base, b.have = au.DTS, true
	}
	pts, dts := au.PTS-b.base, au.DTS-b.base
	return b.src.PushBytes(au.Data, max(pts, 0), max(dts, 0), -1, au.Keyframe)
}

// check returns the first error on the branch's bus, if any.
func (b *branch) check() error {
	for {
		m, ok := b.pipe.PopMessage(0)
		if !ok {
			return nil
		}
		if m.Kind == gst.MsgError {
			return errors.New(m.String())
		}
	}
}

// drain sends an end of stream and waits up to timeout for it to be
// written out. A branch that never received an access unit has nothing to
// finalise.
func (b *branch) drain(timeout time.Duration) error {
	if !b.have {
		b.abort()
		return nil
	}
	b.src.EndOfStream()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		left := time.Until(deadline)
		if left <= 0 {
			err = fmt.Errorf("%w: end of stream not written within the drain timeout", ErrPipeline)
			break
		}
		m, ok := b.pipe.PopMessage(left)
		if !ok {
			continue
		}
		if m.Kind == gst.MsgEOS {
			break
		}
		if m.Kind == gst.MsgError {
			err = fmt.Errorf("%w: %s", ErrPipeline, m.String())
			break
		}
	}
	b.abort()
	return err
}

func (b *branch) abort() {
	b.src.Unref()
	b.pipe.Close()
	b.rendered.Free() // the closed pipeline no longer counts
}
