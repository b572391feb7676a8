package skyline

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyline-go/skyline/internal/gst"
)

// SkyLine streams frames through one H.264 encode to its destinations.
// Create it with New; then Start, Put frames, Stop, as often as needed;
// Close at the end. All methods are safe for concurrent use, and may be
// called from Config.OnEvent.
//
// One goroutine (run) owns the control plane: it opens, falls back, drains
// and closes sessions; Start, Stop and Close are requests to it that wait
// with a bound. Put never waits for it: it reads the live session
// atomically, copies the frame and enqueues it.
type SkyLine struct {
	cfg      Config
	log      *slog.Logger
	dests    []Destination
	dstats   []*destStats // per destination, across sessions
	clock    Clock
	encoders []string // encoders to try, in order
	events   *eventQueue
	out      *encodeStats
	// putHooks are the destinations with an optional BeforePut(now)
	// method, called for every frame streamed (kvssink's credential file
	// refresh check). They must be cheap.
	putHooks []interface{ BeforePut(time.Time) }

	state  atomic.Int32 // State; changed under stateMu
	err    atomic.Pointer[error]
	live   atomic.Pointer[session] // the session Put feeds; nil while none
	params atomic.Pointer[Params]  // current or last session's
	closed atomic.Bool
	// closeErr: what the last session ended with, for Close.
	closeErr atomic.Pointer[error]

	// Requests to the owner goroutine. quit is closed by Close; done when
	// run has returned.
	reqs   chan request
	warmCh chan warmResult
	failCh chan sessionFailure
	quit   chan struct{}
	done   chan struct{}

	// stateMu orders state changes between the owner and the Puts of a
	// warm-up; it guards the warm-up below and is never held across
	// anything slow.
	stateMu  sync.Mutex
	changed  chan struct{} // closed and replaced at every state change
	want     Params        // resolved request of the current Start (Auto = measure)
	warm     warmup
	epoch    uint64 // counts warm-ups; a stale warm-up result is ignored
	warmSent bool   // this warm-up's result went to the owner
	lastWarn atomic.Int64

	accepted atomic.Uint64
	dropped  atomic.Uint64

	statsMu  sync.Mutex // guards the three below
	encoded  uint64     // access units of ended sessions
	statSess *session   // the owner's session, for its live counter
	encoder  string     // the encoder of the current or last session

	// owned by run
	sess *session
	last Params           // parameters of the last streaming session
	bad  map[string]error // encoders that failed on their first frames
}

// maxPendingRequests bounds the Start and Stop requests waiting for the
// owner; a request once queued is always carried out, even when its caller
// stopped waiting.
const maxPendingRequests = 64

type reqKind int

const (
	reqStart reqKind = iota
	reqStop
)

type request struct {
	kind   reqKind
	params Params
	reply  chan error
}

// warmResult is sent by the Put that ends a warm-up.
type warmResult struct {
	epoch uint64
	p     Params
	first Frame     // the frame that ended the warm-up (a copy), streamed first
	at    time.Time // its Put time
}

type sessionFailure struct {
	sess *session
	err  error
}

// New creates a SkyLine that will stream to dests (none is allowed: the
// frames are then encoded and discarded, useful for measurements). It
// loads .env, initialises GStreamer, and checks that every element the
// encoder and the destinations need is installed.
func New(cfg Config, dests ...Destination) (*SkyLine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.resolveAuto(dests)
	log := cfg.Logger.With(slog.String("component", cfg.Name))
	names := map[string]bool{}
	needed := append(append([]string(nil), CoreElements...), cfg.Encoder.Element)
	needPluginPath := false
	for i, d := range dests {
		if d == nil {
			return nil, configErr("destination %d is nil", i)
		}
		if names[d.Name()] {
			return nil, configErr("two destinations are named %q", d.Name())
		}
		names[d.Name()] = true
		switch d := d.(type) {
		case GstDestination:
			needed = append(needed, d.Elements()...)
			if n, ok := d.(interface{ NeedsPluginPath() bool }); ok && n.NeedsPluginPath() {
				needPluginPath = true
			}
		case Receiver:
		default:
			return nil, configErr("destination %q is neither a Receiver nor a GstDestination", d.Name())
		}
	}
	if err := setupEnvironment(cfg, log, needPluginPath); err != nil {
		return nil, err
	}
	if err := checkElements(needed); err != nil {
		log.Error("missing GStreamer elements", "error", err)
		return nil, err
	}
	encoders := encoderChoices(gstRegistry{}, cfg.Encoder)
	if len(encoders) == 0 {
		return nil, &MissingElementsError{Missing: []string{DefaultEncoder}}
	}
	if err := checkEncoder(encoders[0], cfg.Encoder); err != nil {
		return nil, err
	}
	for _, d := range dests {
		if g, ok := d.(GstDestination); ok {
			if err := checkBranch(g); err != nil {
				return nil, err
			}
		}
	}
	s := &SkyLine{cfg: cfg, log: log, dests: dests, clock: cfg.Clock, encoders: encoders,
		events: newEventQueue(cfg.OnEvent), out: newEncodeStats(), bad: map[string]error{},
		reqs: make(chan request, maxPendingRequests), warmCh: make(chan warmResult, 1), failCh: make(chan sessionFailure, 8),
		quit: make(chan struct{}), done: make(chan struct{}), changed: make(chan struct{})}
	for _, d := range dests {
		st := &destStats{}
		st.reporter, _ = d.(DeliveryReporter)
		s.dstats = append(s.dstats, st)
		if h, ok := d.(interface{ BeforePut(time.Time) }); ok {
			s.putHooks = append(s.putHooks, h)
		}
	}
	go s.run()
	return s, nil
}

type gstRegistry struct{}

func (gstRegistry) HasElement(name string) bool { return gst.HasElement(name) }

// checkEncoder builds the encoder alone to validate its properties early.
func checkEncoder(element string, e Encoder) error {
	p, err := gst.ParseLaunch(element + " name=enc")
	if err != nil {
		return configErr("encoder %s: %v", element, err)
	}
	defer p.Close()
	enc := p.ByName("enc")
	defer enc.Unref()
	for _, kv := range encoderProps(element, Params{FPS: 30, Width: 640, Height: 480}, e) {
		if err := enc.SetProperty(kv[0], kv[1]); err != nil {
			return configErr("encoder %s: %v", element, err)
		}
	}
	return nil
}

// checkBranch builds a GstDestination's pipeline (without starting it) so
// that bad text is an error at New, before any frame is lost.
func checkBranch(d GstDestination) error {
	p, err := gst.ParseLaunch(branchLaunch(d.Launch()))
	if err != nil {
		return configErr("destination %s: %s", d.Name(), Redact(err.Error(), SecretsOf(d)...))
	}
	p.Close()
	return nil
}

// Logger is the instance's logger (the original's logger attribute).
func (s *SkyLine) Logger() *slog.Logger { return s.log }

// State is the current state.
func (s *SkyLine) State() State { return State(s.state.Load()) }

// Err is the error that put the SkyLine in StateError, or nil.
func (s *SkyLine) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Params are the parameters of the current streaming session, or of the
// last one when not streaming (the original's video_fps, video_width,
// video_height). Unknown values are 0.
func (s *SkyLine) Params() Params {
	if p := s.params.Load(); p != nil {
		return *p
	}
	return Params{}
}

// Start starts a streaming session (the original's start_streaming). Each of
// p's fields is a value, Auto or LastValue. When all are known the pipeline
// opens now (StateStreaming, or StateError and an error if it cannot);
// otherwise the next Puts warm up to measure them. Starting while warming up
// or streaming ends the current session first (as Stop does).
//
// Start waits at most DrainTimeout (ending a running session) plus
// StartTimeout (opening the encoder, trying the next candidate when one
// fails); past that it returns ErrTimeout and the opening goes on (State
// tells its outcome). Destinations open in the background, each on its
// own: Start waits up to 1 s for them, a slower or failing one is reported
// by events and retried.
func (s *SkyLine) Start(p Params) error {
	if err := p.validate(); err != nil {
		return err
	}
	return s.request(request{kind: reqStart, params: p}, s.cfg.DrainTimeout+s.cfg.StartTimeout)
}

// Stop ends the session (the original's stop_streaming) with a clean end of
// stream, so files and fragments are finalised, and returns to StateStopped.
// It returns the error the pipeline or a destination ended with, if any. It
// returns within DrainTimeout + 1 s: a destination that has not finished
// by DrainTimeout is detached (reported, its waiting access units counted
// lost) and closed when its current call returns.
func (s *SkyLine) Stop() error {
	return s.request(request{kind: reqStop}, s.cfg.DrainTimeout+time.Second)
}

// Close stops and releases the SkyLine, then delivers the events already
// queued and waits for the OnEvent callback to return (unless Close is
// called from that callback), all within DrainTimeout + 1 s; what is left
// then ends in the background. It is safe to call more than once; every
// other method then returns ErrClosed.
func (s *SkyLine) Close() error {
	if !s.closed.CompareAndSwap(false, true) { // another Close runs: wait for it, as long
		timer := time.NewTimer(s.cfg.DrainTimeout + time.Second)
		defer timer.Stop()
		select {
		case <-s.done:
		case <-timer.C:
		}
		return nil
	}
	close(s.quit)
	var err error
	deadline := time.Now().Add(s.cfg.DrainTimeout + time.Second)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-s.done:
		if p := s.closeErr.Load(); p != nil {
			err = *p
		}
	case <-timer.C:
		err = fmt.Errorf("%w: Close: the session did not end within DrainTimeout + 1 s; it ends in the background", ErrTimeout)
	}
	if !s.events.close(time.Until(deadline)) {
		s.log.Warn("OnEvent callback still running at Close; its remaining events are delivered in the background")
	}
	return err
}

// request queues a request for the owner and waits for its answer, at
// most bound. A queued request is carried out even when the wait times out.
func (s *SkyLine) request(r request, bound time.Duration) error {
	if s.closed.Load() {
		return ErrClosed
	}
	r.reply = make(chan error, 1)
	select {
	case s.reqs <- r:
	default:
		return fmt.Errorf("%w: %d Start/Stop requests are already waiting; this one was not queued", ErrTimeout, maxPendingRequests)
	}
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case err := <-r.reply:
		return err
	case <-s.done: // closed meanwhile: answered, or never to be
		select {
		case err := <-r.reply:
			return err
		default:
			return ErrClosed
		}
	case <-timer.C:
		return fmt.Errorf("%w: not done within %v; it goes on in the background", ErrTimeout, bound)
	}
}

// run is the owner goroutine: every session is opened, failed over,
// drained and closed here, one request at a time. Close wins over any
// request still waiting.
func (s *SkyLine) run() {
	defer close(s.done)
	for {
		select {
		case <-s.quit:
			s.shutdown()
			return
		default:
		}
		select {
		case r := <-s.reqs:
			switch r.kind {
			case reqStart:
				r.reply <- s.doStart(r.params)
			case reqStop:
				r.reply <- s.doStop()
			}
		case w := <-s.warmCh:
			s.doWarmedUp(w)
		case f := <-s.failCh:
			s.doFail(f)
		case <-s.quit:
			s.shutdown()
			return
		}
	}
}

// shutdown ends the session for Close and answers what is still waiting.
func (s *SkyLine) shutdown() {
	if err := s.doStop(); err != nil {
		s.closeErr.Store(&err)
	}
	for {
		select {
		case r := <-s.reqs:
			r.reply <- ErrClosed
		case <-s.warmCh: // the kept frame that ended a warm-up
			s.dropped.Add(1)
		default:
			return
		}
	}
}

func (s *SkyLine) doStart(p Params) error {
	s.stateMu.Lock()
	s.epoch++         // a warm-up result on its way is stale
	s.warmSent = true // a warm-up in progress measures no more: ErrOpening
	s.stateMu.Unlock()
	if err := s.endSession(); err != nil {
		s.log.Warn("previous session ended with an error", "error", err)
	}
	want := p.resolve(s.last)
	if !want.complete() {
		s.err.Store(nil)
		s.log.Info("starting warm-up", "fps", want.FPS, "width", want.Width, "height", want.Height,
			"frames", s.cfg.WarmupFrames)
		s.stateMu.Lock()
		s.want, s.warm, s.warmSent = want, warmup{}, false
		s.setState(StateStartWarmup)
		s.stateMu.Unlock()
		return nil
	}
	return s.open(want, nil, time.Time{})
}

func (s *SkyLine) doStop() error {
	err := s.endSession()
	s.stateMu.Lock()
	s.epoch++ // a warm-up result still on its way is stale
	s.setState(StateStopped)
	s.stateMu.Unlock()
	return err
}

func (s *SkyLine) doWarmedUp(w warmResult) {
	s.stateMu.Lock()
	current := w.epoch == s.epoch && State(s.state.Load()) == StateWarmup
	s.stateMu.Unlock()
	if !current { // a Start, Stop or Close came first
		s.dropped.Add(1) // the kept frame, which Put counted accepted
		return
	}
	s.log.Info("warm-up done", "fps", w.p.FPS, "width", w.p.Width, "height", w.p.Height)
	if err := s.open(w.p, &w.first, w.at); err != nil {
		s.dropped.Add(1) // the frame that ended the warm-up
	}
}

// candidates are the encoders to try: those that have not failed on their
// first frames in this SkyLine (all of them again when every one has).
func (s *SkyLine) candidates() []string {
	var out []string
	for _, e := range s.encoders {
		if s.bad[e] == nil {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return s.encoders
	}
	return out
}

// open opens a session with complete parameters and, when first is set,
// streams it as the session's first frame.
func (s *SkyLine) open(p Params, first *Frame, at time.Time) error {
	sess, err := openSession(p, s.cfg, s.candidates(), s.dests, s.dstats, s.log, s.events.emit, s.onSessionFail, s.out)
	if err != nil {
		s.log.Error("cannot open the pipeline", "error", err)
		return s.setError(err)
	}
	s.sess, s.last = sess, p
	s.err.Store(nil)
	s.params.Store(&p)
	s.statsMu.Lock()
	s.statSess, s.encoder = sess, sess.encoder
	s.statsMu.Unlock()
	if first != nil {
		if ok, _ := sess.push(first, at, &s.dropped); !ok { // Put counted it accepted
			s.dropped.Add(1)
		}
	}
	s.live.Store(sess)
	s.stateMu.Lock()
	s.setState(StateStreaming)
	s.stateMu.Unlock()
	s.log.Info("streaming", "fps", p.FPS, "width", p.Width, "height", p.Height,
		"encoder", sess.encoder, "bitrate_kbps", s.cfg.Encoder.bitrate(p))
	return nil
}

// setError moves to StateError with err (owner only).
func (s *SkyLine) setError(err error) error {
	s.err.Store(&err)
	s.stateMu.Lock()
	s.setState(StateError)
	s.stateMu.Unlock()
	return err
}

// onSessionFail is called by a session's bus watcher when its pipeline
// fails: a request to the owner that never blocks (one per session).
func (s *SkyLine) onSessionFail(sess *session, err error) {
	select {
	case s.failCh <- sessionFailure{sess, err}:
	default:
	}
}

// doFail handles a pipeline failure. An encoder that fails before its first
// access unit (an NVENC session limit, a driver refusing the caps) makes
// way for the next candidate in the same Start (SPEC B7), and is not tried
// again by this SkyLine; any other failure is StateError.
func (s *SkyLine) doFail(f sessionFailure) {
	sess := s.sess
	if f.sess != sess || sess == nil {
		return // a session that has ended already
	}
	s.live.Store(nil)
	sess.abort(time.Now().Add(s.cfg.DrainTimeout))
	s.retire(sess)
	if sess.encoded.Load() == 0 && len(s.encoders) > 1 && s.bad[sess.encoder] == nil {
		s.bad[sess.encoder] = f.err
		if next := s.candidates(); len(next) > 0 && s.bad[next[0]] == nil {
			s.log.Warn("encoder failed on its first frames; trying the next one", "encoder", sess.encoder,
				"next", next[0], "error", f.err)
			s.events.emit(Event{Kind: EventEncoderFallback, Err: fmt.Errorf("%w: %s: %v", ErrPipeline, sess.encoder, f.err),
				Detail: sess.encoder + " -> " + next[0]})
			_ = s.open(sess.params, nil, time.Time{})
			return
		}
	}
	err := fmt.Errorf("%w: %v", ErrPipeline, f.err)
	s.log.Error("streaming failed", "error", err)
	_ = s.setError(err)
}

// endSession drains and closes the current session within DrainTimeout.
func (s *SkyLine) endSession() error {
	sess := s.sess
	if sess == nil {
		return nil
	}
	s.live.Store(nil)
	sess.draining.Store(true) // a failure while draining is returned, not a new ERROR
	err := sess.close(time.Now().Add(s.cfg.DrainTimeout))
	s.retire(sess)
	s.log.Info("stopped", "frames", sess.frames)
	return err
}

// retire folds an ended session's counter into the SkyLine's, counts
// the frames it accepted that never came out of the encoder (a drain cut
// short, a failure) as dropped, and frees the counter.
func (s *SkyLine) retire(sess *session) {
	encoded := int64(sess.encoded.Load())
	s.statsMu.Lock()
	s.encoded += uint64(encoded)
	s.statSess = nil
	s.statsMu.Unlock()
	if n := sess.frames - sess.leaked - encoded; n > 0 {
		s.dropped.Add(uint64(n))
		s.log.Warn("frames accepted but not encoded", "frames", n)
	}
	sess.encoded.Free()
	s.sess = nil
}

// setState changes the state and reports it. The caller holds stateMu.
func (s *SkyLine) setState(st State) {
	old := State(s.state.Swap(int32(st)))
	if old != st {
		close(s.changed)
		s.changed = make(chan struct{})
		s.log.Debug("state", "from", old.String(), "to", st.String())
		ev := Event{Kind: EventState, State: st, From: old}
		if st == StateError {
			ev.Err = s.Err()
		}
		s.events.emit(ev)
	}
}

// Put hands one frame to the stream (the original's put). It returns true
// iff the frame was taken: it will be encoded and sent. Otherwise the error
// says why, and errors.Is tells:
//   - ErrNotAccepted (normal flow, nothing is wrong): ErrStopped, ErrWarmingUp
//     (the warm-up measured it), ErrOpening (the pipeline is opening or
//     closing), ErrQueueFull (the encoder is behind; see Config.Drop),
//     ErrStreamFailed (StateError; also logged once a minute);
//   - ErrInvalidFrame: the frame is malformed (the message says how);
//   - ErrClosed: after Close.
//
// Put copies the frame before returning and never waits for the control
// plane: it costs one conversion into the pipeline's buffer. It waits for
// room in the queue with DropNone (the default; at most Config.PutWait),
// and for the frame's turn with TimestampsPaced (a producer faster than the
// declared rate; at most one frame). With the defaults a recording loses
// no frame and times frame n at n/fps, and live viewers get every frame of
// a fast producer at the declared rate.
// The frame that ends a warm-up is kept and streamed first once the
// pipeline has opened (Put returns true for it).
func (s *SkyLine) Put(f Frame) (bool, error) {
	if s.closed.Load() {
		return false, ErrClosed
	}
	if err := f.validate(); err != nil {
		return false, err
	}
	now := s.clock.Now()
	switch State(s.state.Load()) {
	case StateStopped:
		return false, ErrStopped
	case StateError:
		if last := s.lastWarn.Load(); last == 0 || now.UnixNano()-last >= int64(time.Minute) {
			if s.lastWarn.CompareAndSwap(last, now.UnixNano()) {
				s.log.Warn("Put called in ERROR state; call Start to try again", "error", s.Err())
			}
		}
		return false, ErrStreamFailed
	case StateStartWarmup, StateWarmup:
		return s.warmupPut(&f, now)
	}
	sess := s.live.Load()
	if sess == nil {
		s.dropped.Add(1)
		return false, ErrOpening
	}
	if s.cfg.Timestamps == TimestampsPaced {
		now = sess.pace(now)
	}
	for _, h := range s.putHooks {
		h.BeforePut(now)
	}
	ok, err := sess.push(&f, now, &s.dropped)
	if ok {
		s.accepted.Add(1)
	}
	return ok, err
}

// warmupPut measures a warm-up frame. The frame that ends the warm-up is
// copied and handed to the owner, which opens the pipeline and streams it
// first; Put does not wait for that.
func (s *SkyLine) warmupPut(f *Frame, now time.Time) (bool, error) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	switch State(s.state.Load()) {
	case StateStartWarmup:
		s.warm = warmup{first: now, last: now, n: 1}
		s.setState(StateWarmup)
		return false, ErrWarmingUp
	case StateWarmup:
		if s.warmSent {
			s.dropped.Add(1)
			return false, ErrOpening
		}
		s.warm.n++
		s.warm.last = now
		if s.warm.n < s.cfg.WarmupFrames {
			return false, ErrWarmingUp
		}
		w := warmResult{epoch: s.epoch, p: s.warm.result(s.want, *f), first: f.clone(), at: now}
		s.warmSent = true
		select { // a stale result (an earlier warm-up) may sit there
		case <-s.warmCh:
		default:
		}
		s.warmCh <- w // room for one, and only this goroutine sends
		s.accepted.Add(1)
		return true, nil
	case StateStopped:
		return false, ErrStopped
	case StateError:
		return false, ErrStreamFailed
	}
	s.dropped.Add(1)
	return false, ErrOpening // it just became StateStreaming
}

// WaitState waits until the state is one of want and returns it, or
// returns the current state and ctx's error. Synchronise on it rather than
// on time: the pipeline opens in the background after a warm-up, and after
// a Start with known parameters State is already final.
func (s *SkyLine) WaitState(ctx context.Context, want ...State) (State, error) {
	for {
		s.stateMu.Lock()
		cur, changed := State(s.state.Load()), s.changed
		s.stateMu.Unlock()
		for _, w := range want {
			if cur == w {
				return cur, nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return cur, ctx.Err()
		}
	}
}

// RequestKeyframe asks the encoder for a keyframe now (no-op when not
// streaming).
func (s *SkyLine) RequestKeyframe() {
	if sess := s.live.Load(); sess != nil {
		sess.requestKeyframe()
	}
}

// Stats are counters since New, across sessions.
type Stats struct {
	// Accepted: frames Put returned true for.
	Accepted uint64
	// Dropped: frames refused (ErrQueueFull, ErrOpening), and frames
	// accepted but then discarded: by DropOldest, in an encoder that failed
	// or did not drain within DrainTimeout, or the frame that ended a
	// warm-up when a Start or Stop came first.
	Dropped uint64
	// Encoded: access units out of the encoder.
	Encoded uint64
	// Written: access units every destination has taken (the minimum over
	// Destinations).
	Written uint64
	// EncodedBytes: bytes of the access units out of the encoder; its
	// rate is the output bitrate.
	EncodedBytes uint64
	// EncodeLatency: for each access unit, the time from the Put of its
	// frame to its leaving the encoder (queue wait, conversion and
	// encoding).
	EncodeLatency LatencyHistogram
	// Encoder: the encoder element of the current or last session.
	Encoder string
	// Destinations: per destination, in the order given to New.
	Destinations []DestinationStats
}

// DestinationStats counts one destination's access units.
type DestinationStats struct {
	Name string
	// Written: access units the destination accepted (WriteAccessUnit
	// returned nil; a branch took it).
	Written uint64
	// Lost: access units it missed: its queue overflowed, it was down or
	// stuck, it waited for a keyframe to resume, or (DeliveryReporter) it
	// gave them up after taking them.
	Lost uint64
	// Up: it takes and delivers the stream now (false when not streaming,
	// while a failed destination waits to be retried, and while a
	// DeliveryReporter is disconnected).
	Up bool
}

// Stats reads the counters. Cheap; safe at any time.
func (s *SkyLine) Stats() Stats {
	s.statsMu.Lock()
	encoded := s.encoded
	if s.statSess != nil { // its C counter is freed only after retire, under statsMu
		encoded += uint64(s.statSess.encoded.Load())
	}
	st := Stats{Accepted: s.accepted.Load(), Dropped: s.dropped.Load(), Encoded: encoded, Encoder: s.encoder,
		EncodedBytes: s.out.bytes.Load(), EncodeLatency: s.out.histogram()}
	s.statsMu.Unlock()
	st.Destinations = make([]DestinationStats, len(s.dests))
	for i, d := range s.dests {
		ds := s.dstats[i]
		st.Destinations[i] = DestinationStats{Name: d.Name(), Written: ds.written.Load(), Lost: ds.lost.Load(), Up: ds.up.Load()}
		if ds.reporter != nil {
			rs := deliveryStatus(ds.reporter)
			st.Destinations[i].Up = st.Destinations[i].Up && rs.Connected
			st.Destinations[i].Lost += rs.Lost
		}
	}
	st.Written = math.MaxUint64
	for _, d := range st.Destinations {
		st.Written = min(st.Written, d.Written)
	}
	if len(st.Destinations) == 0 {
		st.Written = 0
	}
	return st
}

// deliveryStatus asks a DeliveryReporter, treating a panic as "down".
func deliveryStatus(r DeliveryReporter) (st DeliveryStatus) {
	defer func() {
		if recover() != nil {
			st = DeliveryStatus{}
		}
	}()
	return r.DeliveryStatus()
}
