package skyline

import (
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
// Close at the end. All methods are safe for concurrent use; Put is meant
// to be called from one goroutine (the vision loop).
type SkyLine struct {
	cfg      Config
	log      *slog.Logger
	dests    []Destination
	clock    Clock
	encoders []string // encoders to try, in order
	events   *eventQueue

	state atomic.Int32 // State; written under mu (and by a failing session, CAS)
	err   atomic.Pointer[error]

	mu       sync.Mutex // guards everything below
	closed   bool
	want     Params // resolved request of the current Start (Auto = measure)
	last     Params // parameters of the last streaming session
	cur      Params // parameters of the current session
	sess     *session
	warm     warmup
	lastWarn time.Time
	// putHooks are the destinations with an optional BeforePut(now)
	// method, called for every frame streamed (kvssink's credential file
	// refresh check). They must be cheap.
	putHooks []interface{ BeforePut(time.Time) }

	sessPtr  atomic.Pointer[session] // the live session, for Stats
	statsMu  sync.Mutex              // guards the counters of closed sessions and sessPtr's counters
	accepted atomic.Uint64
	dropped  atomic.Uint64
	encoded  uint64
	written  []uint64
	lost     []uint64
	out      *encodeStats
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
		events: newEventQueue(cfg.OnEvent), written: make([]uint64, len(dests)), lost: make([]uint64, len(dests)),
		out: newEncodeStats()}
	for _, d := range dests {
		if h, ok := d.(interface{ BeforePut(time.Time) }); ok {
			s.putHooks = append(s.putHooks, h)
		}
	}
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
		return configErr("destination %s: %s", d.Name(), maskSecrets(err.Error()))
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess != nil {
		return s.cur
	}
	return s.last
}

// Start starts a streaming session (the original's start_streaming). Each of
// p's fields is a value, Auto or LastValue. When all are known the pipeline
// opens now (StateStreaming, or StateError and an error if it cannot);
// otherwise the next Puts warm up to measure them. Starting while warming up
// or streaming ends the current session first.
func (s *SkyLine) Start(p Params) error {
	if err := p.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.endSessionLocked(); err != nil {
		s.log.Warn("previous session ended with an error", "error", err)
	}
	s.err.Store(nil)
	s.want = p.resolve(s.last)
	if !s.want.complete() {
		s.log.Info("starting warm-up", "fps", s.want.FPS, "width", s.want.Width, "height", s.want.Height,
			"frames", s.cfg.WarmupFrames)
		s.setState(StateStartWarmup)
		return nil
	}
	return s.openLocked(s.want)
}

// openLocked opens a session with complete parameters.
func (s *SkyLine) openLocked(p Params) error {
	sess, err := openSession(p, s.cfg, s.encoders, s.dests, s.log, s.events.emit, s.fail, s.out)
	if err != nil {
		s.log.Error("cannot open the pipeline", "error", err)
		s.err.Store(&err)
		s.setState(StateError)
		return err
	}
	s.sess, s.cur, s.last = sess, p, p
	s.sessPtr.Store(sess)
	s.setState(StateStreaming)
	s.log.Info("streaming", "fps", p.FPS, "width", p.Width, "height", p.Height,
		"encoder", sess.encoder, "bitrate_kbps", s.cfg.Encoder.bitrate(p))
	return nil
}

// fail moves a streaming SkyLine to StateError when its encoder fails.
func (s *SkyLine) fail(err error) {
	err = fmt.Errorf("%w: %v", ErrPipeline, err)
	if s.state.CompareAndSwap(int32(StateStreaming), int32(StateError)) {
		s.err.Store(&err)
		s.log.Error("streaming failed", "error", err)
		s.events.emit(Event{Kind: EventState, State: StateError, From: StateStreaming, Err: err})
	}
}

func (s *SkyLine) setState(st State) {
	old := State(s.state.Swap(int32(st)))
	if old != st {
		s.log.Debug("state", "from", old.String(), "to", st.String())
		ev := Event{Kind: EventState, State: st, From: old}
		if st == StateError {
			ev.Err = s.Err()
		}
		s.events.emit(ev)
	}
}

// Put hands one frame to the stream (the original's put). It returns true
// iff the frame was handed to the pipeline; false while warming up, when
// stopped, in error, or when the frame was dropped because the encoder is
// behind (see Config.Drop). A malformed frame returns an error wrapping
// ErrInvalidFrame. Put copies the frame before returning and never waits for
// the encoder.
func (s *SkyLine) Put(f Frame) (bool, error) {
	if err := f.validate(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	switch State(s.state.Load()) {
	case StateStopped:
		return false, nil
	case StateError:
		if s.lastWarn.IsZero() || now.Sub(s.lastWarn) >= time.Minute {
			s.lastWarn = now
			s.log.Warn("Put called in ERROR state; call Start to try again", "error", s.Err())
		}
		return false, nil
	case StateStartWarmup:
		s.warm = warmup{first: now, last: now, n: 1}
		s.setState(StateWarmup)
		return false, nil
	case StateWarmup:
		s.warm.n++
		s.warm.last = now
		if s.warm.n < s.cfg.WarmupFrames {
			return false, nil
		}
		p := s.warm.result(s.want, f)
		s.log.Info("warm-up done", "fps", p.FPS, "width", p.Width, "height", p.Height)
		if err := s.openLocked(p); err != nil {
			return false, nil
		}
	}
	for _, h := range s.putHooks {
		h.BeforePut(now)
	}
	ok, err := s.sess.push(&f, now, &s.dropped)
	if ok {
		s.accepted.Add(1)
	}
	return ok, err
}

// RequestKeyframe asks the encoder for a keyframe now (no-op when not
// streaming).
func (s *SkyLine) RequestKeyframe() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess != nil {
		s.sess.requestKeyframe()
	}
}

// Stop ends the session (the original's stop_streaming) with a clean end of
// stream, so files and fragments are finalised, and returns to StateStopped.
// It returns the error the pipeline ended with, if any.
func (s *SkyLine) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.endSessionLocked()
	s.setState(StateStopped)
	return err
}

// Close stops and releases the SkyLine. It is safe to call more than once.
func (s *SkyLine) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.endSessionLocked()
	s.setState(StateStopped)
	s.events.close()
	return err
}

func (s *SkyLine) endSessionLocked() error {
	if s.sess == nil {
		return nil
	}
	sess := s.sess
	sess.draining.Store(true) // a failure while draining is not a new ERROR
	err := sess.close()
	s.statsMu.Lock()
	s.encoded += uint64(sess.encoded.Load())
	written, lost := sess.destinationCounts()
	for i := range written {
		s.written[i] += uint64(written[i])
		s.lost[i] += uint64(lost[i])
	}
	s.sess = nil
	s.sessPtr.Store(nil)
	sess.encoded.Free()
	s.statsMu.Unlock()
	s.log.Info("stopped", "frames", sess.frames)
	return err
}

// Stats are counters since New, across sessions.
type Stats struct {
	// Accepted: frames Put returned true for.
	Accepted uint64
	// Dropped: frames refused (DropNewest) or discarded (DropOldest)
	// because the encoder was behind.
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
	// Destinations: access units taken by each destination, in the order
	// given to New.
	Destinations []DestinationStats
}

// DestinationStats counts one destination's access units.
type DestinationStats struct {
	Name string
	// Written: access units the destination took.
	Written uint64
	// Lost: access units it missed (its queue overflowed, it was down, or
	// it waited for a keyframe to resume).
	Lost uint64
	// Up: it takes the stream now (false when not streaming, or while a
	// failed destination waits to be retried).
	Up bool
}

// Stats reads the counters. Cheap; safe at any time.
func (s *SkyLine) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := Stats{Accepted: s.accepted.Load(), Dropped: s.dropped.Load(), Encoded: s.encoded,
		EncodedBytes: s.out.bytes.Load(), EncodeLatency: s.out.histogram()}
	st.Destinations = make([]DestinationStats, len(s.dests))
	for i, d := range s.dests {
		st.Destinations[i] = DestinationStats{Name: d.Name(), Written: s.written[i], Lost: s.lost[i]}
	}
	// The live session's counters are atomics in C and Go, valid until
	// freeCounters, which runs under statsMu.
	if sess := s.liveSession(); sess != nil {
		st.Encoded += uint64(sess.encoded.Load())
		written, lost := sess.destinationCounts()
		for i := range written {
			st.Destinations[i].Written += uint64(written[i])
			st.Destinations[i].Lost += uint64(lost[i])
			st.Destinations[i].Up = sess.outlets[i].up.Load()
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

func (s *SkyLine) liveSession() *session { return s.sessPtr.Load() }
