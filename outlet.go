package skyline

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
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

// outlet isolates one destination: its own bounded queue and goroutine, so
// a slow or failing destination never stalls the encoder or the others.
// Overflow is dropped and counted, and delivery resumes at the next
// keyframe. A GstDestination runs in its own small pipeline
// (appsrc ! h264parse ! <its branch>), which is torn down when it fails and
// reopened with exponential backoff.
type outlet struct {
	dest  Destination
	name  string
	log   *slog.Logger
	emit  func(Event)
	cfg   Config
	info  StreamInfo
	queue chan *AccessUnit
	done  chan struct{}

	written  atomic.Int64 // access units delivered
	lost     atomic.Int64 // access units dropped (overflow, down, waiting for a keyframe)
	reported atomic.Int64 // lost already reported in an EventDropped
	up       atomic.Bool  // taking the stream (false while a failed one waits to retry)

	// owned by run
	needKey   bool
	lostSeen  int64
	lastLoss  time.Time
	branch    *branch // GstDestination: the running pipeline, nil while down
	failures  int
	restarts  int
	retryAt   time.Time
	everUp    bool
	wasDown   bool
	closeErr  error
	closeOnce sync.Once
}

func newOutlet(d Destination, cfg Config, log *slog.Logger, emit func(Event), info StreamInfo) *outlet {
	o := &outlet{dest: d, name: d.Name(), cfg: cfg, emit: emit, info: info, needKey: true,
		log:   log.With(slog.String("destination", d.Name())),
		queue: make(chan *AccessUnit, cfg.DestinationQueue), done: make(chan struct{})}
	o.info.Emit = func(e Event) {
		if e.Destination == "" {
			e.Destination = o.name
		}
		emit(e)
	}
	return o
}

// open starts the destination. For a Receiver an Open error fails the
// session start (a configuration problem); a GstDestination that cannot
// start is reported and retried like any later failure.
func (o *outlet) open() error {
	switch d := o.dest.(type) {
	case Receiver:
		if err := d.Open(o.info); err != nil {
			return fmt.Errorf("destination %s: %w", o.name, err)
		}
		o.markUp()
	case GstDestination:
		o.startBranch(time.Now())
	}
	go o.run()
	return nil
}

func (o *outlet) markUp() {
	o.up.Store(true)
	if !o.everUp {
		o.everUp = true
		o.emit(Event{Kind: EventDestinationUp, Destination: o.name})
	} else if o.wasDown {
		o.log.Info("destination recovered")
		o.emit(Event{Kind: EventDestinationRecovered, Destination: o.name})
	}
	o.wasDown = false
	o.failures = 0
}

// offer queues an access unit without ever blocking.
func (o *outlet) offer(au *AccessUnit) {
	select {
	case o.queue <- au:
	default:
		o.lost.Add(1)
	}
}

// run delivers queued access units until the queue is closed.
func (o *outlet) run() {
	defer close(o.done)
	_, isBranch := o.dest.(GstDestination)
	var tick <-chan time.Time
	if isBranch {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case au, ok := <-o.queue:
			if !ok {
				o.finish()
				return
			}
			o.deliver(au)
		case now := <-tick:
			o.poll(now)
		}
		o.reportLoss()
	}
}

func (o *outlet) deliver(au *AccessUnit) {
	if o.lost.Load() != o.lostSeen { // something was dropped: resume at a keyframe
		o.lostSeen = o.lost.Load()
		o.needKey = true
		o.info.RequestKeyframe()
	}
	_, isBranch := o.dest.(GstDestination)
	if isBranch && o.branch == nil {
		o.poll(time.Now()) // reopens it when its backoff has elapsed
		if o.branch == nil {
			o.lost.Add(1)
			o.lostSeen++
			return
		}
	}
	if o.needKey && !au.Keyframe {
		o.lost.Add(1)
		o.lostSeen++
		return
	}
	switch d := o.dest.(type) {
	case Receiver:
		d.WriteAccessUnit(au)
	case GstDestination:
		// A refused push fails it now; errors the branch posts later are
		// found by the 100 ms poll in run.
		if err := o.branch.push(au); err != nil {
			o.fail(err)
			o.lost.Add(1)
			o.lostSeen++
			return
		}
	}
	o.needKey = false
	o.written.Add(1)
}

// poll checks a running branch for errors and reopens a failed one when
// its backoff has elapsed.
func (o *outlet) poll(now time.Time) {
	if o.branch != nil {
		if err := o.branch.check(); err != nil {
			o.fail(err)
		}
		return
	}
	if !o.retryAt.IsZero() && !now.Before(o.retryAt) {
		o.startBranch(now)
	}
}

func (o *outlet) startBranch(now time.Time) {
	d := o.dest.(GstDestination)
	text := d.Launch()
	if r, ok := d.(interface{ LaunchRetry(int) string }); ok && o.failures > 0 {
		o.restarts++
		text = r.LaunchRetry(o.restarts)
	}
	b, err := startBranch(text, o.log)
	if err != nil {
		o.fail(err)
		return
	}
	o.branch = b
	o.retryAt = time.Time{}
	o.needKey = true
	o.info.RequestKeyframe()
	o.markUp()
}

// fail tears the branch down, reports it and schedules a retry.
func (o *outlet) fail(err error) {
	msg := maskSecrets(err.Error())
	if sec, ok := o.dest.(interface{ Secrets() []string }); ok {
		msg = mask(msg, sec.Secrets())
	}
	err = errors.New(msg)
	o.up.Store(false)
	if o.branch != nil {
		o.branch.abort()
		o.branch = nil
	}
	o.failures++
	o.wasDown = true
	backoff := min(o.cfg.RetryMin<<min(o.failures-1, 20), o.cfg.RetryMax)
	o.retryAt = time.Now().Add(backoff)
	o.log.Warn("destination failed; retrying", "error", err, "attempt", o.failures, "in", backoff)
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

// finish ends the destination after the last access unit: a branch gets
// an end of stream (files are finalised) within DrainTimeout.
func (o *outlet) finish() {
	o.reportLossNow()
	switch d := o.dest.(type) {
	case Receiver:
		d.Close()
	case GstDestination:
		if o.branch != nil {
			o.closeErr = o.branch.drain(o.cfg.DrainTimeout)
			o.branch = nil
		}
	}
}

func (o *outlet) reportLossNow() {
	if n := o.lost.Load() - o.reported.Load(); n > 0 {
		o.emit(Event{Kind: EventDropped, Destination: o.name, Count: n})
		o.reported.Store(o.lost.Load())
	}
}

// close ends the queue and waits for the destination to finish.
func (o *outlet) close() error {
	o.closeOnce.Do(func() { close(o.queue) })
	<-o.done
	return o.closeErr
}

// branch is a GstDestination's own pipeline.
type branch struct {
	pipe *gst.Pipeline
	src  *gst.AppSrc
	base time.Duration // first PTS: the branch's timestamps start at 0
	have bool
}

func branchLaunch(text string) string {
	return "appsrc name=src ! h264parse ! " + text
}

func startBranch(text string, log *slog.Logger) (*branch, error) {
	p, err := gst.ParseLaunch(branchLaunch(text))
	if err != nil {
		return nil, err
	}
	b := &branch{pipe: p, src: gst.AsAppSrc(p.ByName("src"))}
	if err := b.src.SetCaps("video/x-h264,stream-format=byte-stream,alignment=au"); err != nil {
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

// drain sends an end of stream and waits for it to be written out. A
// branch that never received an access unit has nothing to finalise.
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
			err = fmt.Errorf("%w: end of stream not written within %v", ErrPipeline, timeout)
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
}
