package skyline

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyline-go/skyline/internal/gst"
	"github.com/skyline-go/skyline/internal/yuv"
)

// session is one streaming session: one encoder pipeline from Start (or the
// end of the warm-up) to Stop, and one outlet per destination. It owns the
// pipeline, the buffer pool, the encoded counter, two goroutines (bus
// watcher, access-unit puller) and the outlets, and releases all of them in
// close.
//
//	appsrc ! videoconvert ! videoscale ! I420 ! <encoder> ! h264parse ! appsink
//	  -> outlet (queue, goroutine) -> Receiver, or a GstDestination's own pipeline
type session struct {
	log     *slog.Logger
	params  Params
	start   time.Time // wall clock of PTS 0 (the session's start)
	cfg     Config
	encoder string

	pipe    *gst.Pipeline
	src     *gst.AppSrc
	enc     *gst.Element
	sink    *gst.AppSink
	pool    *gst.Pool
	encoded *gst.Counter
	outlets []*outlet
	out     *encodeStats // the SkyLine's output counters (bytes, encode latency)
	puts    *putRing     // Put times by frame, for the encode latency

	// The frame path: Put holds putMu while it converts and pushes one
	// frame (never longer: the push does not block). close sets shut under
	// it, after which no frame reaches the pipeline.
	putMu    sync.Mutex
	shut     bool
	buf      gst.Buffer
	scratch  []byte
	frames   int64 // pushed
	leaked   int64 // of those, discarded by the appsrc (DropOldest)
	lastPTS  time.Duration
	dur      time.Duration
	reanchor time.Duration // added to capture times from another clock
	anchored bool

	// paceMu guards next, the turn of the next frame (TimestampsPaced).
	paceMu sync.Mutex
	next   time.Time

	// relMu guards the encoder element against release while a keyframe
	// is requested (outlets, even detached ones, may ask at any time).
	relMu    sync.RWMutex
	released bool

	failed   atomic.Pointer[error]
	failedCh chan struct{} // closed when failed is set
	onFail   func(*session, error)
	eos      chan struct{}
	eosOnce  sync.Once
	stopping atomic.Bool // the goroutines end
	draining atomic.Bool // Stop is draining: errors are returned, not reported
	wg       sync.WaitGroup
	lastKey  atomic.Int64 // unix nanos of the last keyframe request
	// keyDeferred: a request that came too soon after lastKey waits
	keyDeferred atomic.Bool

	// TimestampsSteady (under putMu): the first frame's time, and its PTS.
	steadyFirst time.Time
	steadyBase  time.Duration
}

// launch builds the gst-launch description of the encoder pipeline.
func launch(p Params, cfg Config, encoder string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "appsrc name=src ! videoconvert ! videoscale ! video/x-raw,format=I420,width=%d,height=%d ! ", p.Width, p.Height)
	fmt.Fprintf(&b, "%s name=enc ! ", encoder)
	if cfg.Encoder.Profile != "" {
		fmt.Fprintf(&b, "video/x-h264,profile=%s ! ", cfg.Encoder.Profile)
	}
	b.WriteString("h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! ")
	b.WriteString("appsink name=out sync=false max-buffers=64 drop=false")
	return b.String()
}

func fraction(fps float64) string {
	if fps == math.Trunc(fps) {
		return fmt.Sprintf("%d/1", int(fps))
	}
	return fmt.Sprintf("%d/1000", int(math.Round(fps*1000)))
}

// openSession starts a session with the first of encoders that reaches
// PLAYING, logging why the others did not, then starts an outlet per
// destination and waits (at most openWait) for their first open attempt.
func openSession(p Params, cfg Config, encoders []string, dests []Destination, stats []*destStats,
	log *slog.Logger, emit func(Event), onFail func(*session, error), out *encodeStats) (*session, error) {
	if len(encoders) == 0 {
		return nil, &MissingElementsError{Missing: []string{DefaultEncoder}}
	}
	var errs []error
	for i, enc := range encoders {
		s, err := startEncoder(p, cfg, enc, log, onFail)
		if errors.Is(err, errUnexplained) {
			// GStreamer refused the state change without saying why (seen
			// under heavy load, e.g. a thread that could not start): once
			// more before giving up on this encoder.
			log.Warn("pipeline start failed without a reason; retrying once", "encoder", enc)
			time.Sleep(100 * time.Millisecond)
			s, err = startEncoder(p, cfg, enc, log, onFail)
		}
		if err == nil {
			s.out, s.puts = out, newPutRing()
			if i > 0 {
				log.Warn("using fallback encoder", "encoder", enc, "failed", errors.Join(errs...))
			}
			s.openOutlets(dests, stats, emit)
			return s, nil
		}
		if (errors.Is(err, ErrInvalidConfig) || errors.Is(err, ErrInvalidParams)) && cfg.Encoder.Element != "" {
			return nil, err
		}
		log.Warn("encoder cannot start", "encoder", enc, "error", err)
		errs = append(errs, fmt.Errorf("%s: %w", enc, err))
	}
	return nil, fmt.Errorf("%w: no encoder could start: %w", ErrPipeline, errors.Join(errs...))
}

// outletGrace is the least time destinations get to finish at the end of
// a session.
const outletGrace = 500 * time.Millisecond

// openWait bounds how long a session start waits for its destinations'
// first open attempt (they open in parallel, each in its own goroutine; a
// slower one comes up later and says so with EventDestinationUp).
const openWait = time.Second

// startEncoder builds and starts the encoder pipeline.
func startEncoder(p Params, cfg Config, encoder string, log *slog.Logger, onFail func(*session, error)) (*session, error) {
	if err := checkSize(encoder, p); err != nil {
		return nil, err
	}
	s := &session{log: log, params: p, cfg: cfg, encoder: encoder, onFail: onFail,
		eos: make(chan struct{}), failedCh: make(chan struct{})}
	s.dur = time.Duration(float64(time.Second) / p.FPS)
	desc := launch(p, cfg, encoder)
	log.Debug("pipeline", "launch", desc)
	pipe, err := gst.ParseLaunch(desc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPipeline, err)
	}
	s.pipe = pipe
	s.src = gst.AsAppSrc(pipe.ByName("src"))
	s.enc = pipe.ByName("enc")
	s.sink = gst.AsAppSink(pipe.ByName("out"))
	s.encoded = gst.NewCounter()
	ok := false
	defer func() {
		if !ok {
			s.release()
			s.encoded.Free()
		}
	}()
	caps := fmt.Sprintf("video/x-raw,format=I420,width=%d,height=%d,framerate=%s,colorimetry=bt601,interlace-mode=progressive",
		p.Width, p.Height, fraction(p.FPS))
	if err := s.src.Configure(caps, cfg.QueueSize, cfg.Drop == DropOldest); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPipeline, err)
	}
	for _, kv := range encoderProps(encoder, p, cfg.Encoder) {
		if err := s.enc.SetProperty(kv[0], kv[1]); err != nil {
			return nil, configErr("encoder %s: %v", encoder, err)
		}
	}
	s.enc.CountBuffers("src", s.encoded)
	if s.pool, err = gst.NewPool(yuv.Size(p.Width, p.Height), 2); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPipeline, err)
	}
	s.wg.Add(1)
	go s.watchBus()
	if err := pipe.SetState(gst.StatePlaying); err != nil {
		return nil, s.startError(err)
	}
	// A live pipeline's sinks complete PLAYING only with the first buffer:
	// "in progress" is success here, only a failure is not.
	if _, err := pipe.WaitState(200 * time.Millisecond); err != nil && !errors.Is(err, gst.ErrAsync) {
		return nil, s.startError(err)
	}
	if e := s.failed.Load(); e != nil {
		return nil, fmt.Errorf("%w: %v", ErrPipeline, *e)
	}
	s.start = cfg.Clock.Now()
	ok = true
	return s, nil
}

// openOutlets starts an outlet per destination and the access-unit
// puller, and waits (at most openWait) for the outlets' first open.
func (s *session) openOutlets(dests []Destination, stats []*destStats, emit func(Event)) {
	info := StreamInfo{Width: s.params.Width, Height: s.params.Height, FPS: s.params.FPS, Start: s.start,
		RequestKeyframe: s.requestKeyframe}
	for i, d := range dests {
		o := newOutlet(d, stats[i], s.cfg, s.log, emit, info)
		s.outlets = append(s.outlets, o)
		o.start()
	}
	deadline := time.Now().Add(openWait)
	for _, o := range s.outlets {
		o.waitOpened(deadline)
	}
	s.wg.Add(1)
	go s.pullAccessUnits()
}

// errUnexplained marks a start failure the bus gave no reason for.
var errUnexplained = errors.New("no reason given")

// startError prefers the bus's explanation of a failed start, which the
// bus may deliver just after the state change reports the failure.
func (s *session) startError(err error) error {
	select {
	case <-s.failedCh:
	case <-time.After(time.Second):
	}
	if e := s.failed.Load(); e != nil {
		return fmt.Errorf("%w: %v", ErrPipeline, *e)
	}
	return fmt.Errorf("%w: %v (%w)", ErrPipeline, err, errUnexplained)
}

// watchBus delivers bus messages until release stops it.
func (s *session) watchBus() {
	defer s.wg.Done()
	for {
		// A bounded wait: once the pipeline is NULL its bus is flushing and
		// drops the wake message, so the stop flag is checked here too.
		m, ok := s.pipe.PopMessage(50 * time.Millisecond)
		if !ok {
			if s.stopping.Load() {
				return
			}
			continue
		}
		switch m.Kind {
		case gst.MsgError:
			err := errors.New(m.String())
			if s.failed.CompareAndSwap(nil, &err) {
				close(s.failedCh)
				s.log.Error("pipeline error", "element", m.Source, "error", m.Text, "debug", m.Debug)
				if s.onFail != nil && !s.stopping.Load() && !s.draining.Load() {
					s.onFail(s, err) // a request to the owner; never blocks
				}
			}
			s.eosOnce.Do(func() { close(s.eos) }) // nothing more will drain
		case gst.MsgWarning:
			s.log.Warn("pipeline warning", "element", m.Source, "warning", m.Text)
		case gst.MsgEOS:
			s.eosOnce.Do(func() { close(s.eos) })
		case gst.MsgState:
			if m.FromPipeline {
				s.log.Debug("pipeline state", "from", m.Old.String(), "to", m.New.String())
			}
		case gst.MsgWake:
			if s.stopping.Load() {
				return
			}
		}
	}
}

// pullAccessUnits hands every encoded access unit to every outlet.
func (s *session) pullAccessUnits() {
	defer s.wg.Done()
	if len(s.outlets) == 0 { // nobody to hand them to: no copies
		for {
			size, pts, got, eos := s.sink.Discard(100 * time.Millisecond)
			if eos || (!got && s.stopping.Load()) {
				return
			}
			if got {
				s.out.bytes.Add(uint64(size))
				if d, ok := s.puts.match(pts); ok {
					s.out.observe(d)
				}
			}
		}
	}
	for {
		smp, eos := s.sink.Pull(100 * time.Millisecond)
		if eos {
			return
		}
		if smp == nil {
			if s.stopping.Load() {
				return
			}
			continue
		}
		au := &AccessUnit{PTS: smp.PTS, DTS: smp.DTS, Keyframe: smp.Keyframe, Data: smp.Data}
		s.out.bytes.Add(uint64(len(au.Data)))
		if d, ok := s.puts.match(au.PTS); ok {
			s.out.observe(d)
		}
		if au.DTS < 0 {
			au.DTS = au.PTS
		}
		for _, o := range s.outlets {
			o.offer(au)
		}
	}
}

// requestKeyframe asks the encoder for a keyframe, at most one request per
// 100 ms (viewers joining together share one). A request within 100 ms of
// the last one is deferred to the end of that interval, never dropped: the
// keyframe asked for earlier may already have gone out before the new
// viewer could receive it. Safe at any time, even after the session ended.
func (s *session) requestKeyframe() {
	now := time.Now().UnixNano()
	last := s.lastKey.Load()
	if wait := last + int64(100*time.Millisecond) - now; wait > 0 {
		if s.keyDeferred.CompareAndSwap(false, true) {
			time.AfterFunc(time.Duration(wait), func() {
				s.keyDeferred.Store(false)
				s.requestKeyframe()
			})
		}
		return
	}
	if !s.lastKey.CompareAndSwap(last, now) {
		return
	}
	s.relMu.RLock()
	defer s.relMu.RUnlock()
	if s.released || s.stopping.Load() {
		return
	}
	s.enc.ForceKeyUnit()
}

// push converts a frame into a pooled buffer and hands it to the appsrc.
// It never waits for the encoder: a full queue refuses the frame
// (DropNewest) or makes the appsrc discard its oldest (DropOldest).
func (s *session) push(f *Frame, now time.Time, dropped *atomic.Uint64) (bool, error) {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if s.shut {
		dropped.Add(1)
		return false, ErrOpening
	}
	if s.failed.Load() != nil {
		return false, ErrStreamFailed
	}
	if s.cfg.Drop == DropNone && s.src.Level() >= s.cfg.QueueSize {
		if err := s.waitRoom(); err != nil {
			dropped.Add(1)
			return false, err
		}
	}
	if s.src.Level() >= s.cfg.QueueSize {
		dropped.Add(1)
		if s.cfg.Drop == DropNewest {
			return false, ErrQueueFull
		}
		s.leaked++ // the appsrc discards its oldest frame
	}
	if err := s.pool.Acquire(&s.buf); err != nil {
		return false, fmt.Errorf("%w: %v", ErrPipeline, err)
	}
	mem := s.buf.MapWrite()
	if mem == nil {
		s.buf.Unref()
		return false, fmt.Errorf("%w: cannot map buffer", ErrPipeline)
	}
	dst := yuv.Layout(mem, s.params.Width, s.params.Height)
	var err error
	if f.Width == s.params.Width && f.Height == s.params.Height {
		err = f.toI420(dst)
	} else {
		// Size mismatch (SPEC A4): convert at the frame's size, then scale.
		n := yuv.Size(f.Width, f.Height)
		if cap(s.scratch) < n {
			s.scratch = make([]byte, n)
		}
		tmp := yuv.Layout(s.scratch[:n], f.Width, f.Height)
		if err = f.toI420(tmp); err == nil {
			err = yuv.Scale(tmp, dst)
		}
	}
	s.buf.Unmap()
	if err != nil {
		s.buf.Unref()
		return false, fmt.Errorf("%w: %v", ErrInvalidFrame, err)
	}
	pts := s.pts(f, now)
	s.buf.SetTimes(pts, s.dur)
	s.puts.stamp(s.frames, pts)
	if err := s.src.Push(&s.buf); err != nil {
		return false, fmt.Errorf("%w: %v", ErrPipeline, err)
	}
	s.frames++
	return true, nil
}

// waitRoom waits (DropNone), with putMu held on entry and on return, until
// the queue has room, at most PutWait. It returns ErrQueueFull past it,
// ErrOpening when the session ends meanwhile, ErrStreamFailed when it
// fails. The appsrc tells of room only to GLib callbacks: it is polled.
func (s *session) waitRoom() error {
	deadline := time.Now().Add(s.cfg.PutWait)
	for s.src.Level() >= s.cfg.QueueSize {
		if time.Now().After(deadline) {
			return ErrQueueFull
		}
		s.putMu.Unlock()
		time.Sleep(time.Millisecond)
		s.putMu.Lock()
		if s.shut {
			return ErrOpening
		}
		if s.failed.Load() != nil {
			return ErrStreamFailed
		}
	}
	return nil
}

// pace (TimestampsPaced) makes a frame Put ahead of its turn wait for it:
// turns are 1/fps apart; a frame more than one frame late starts a new
// series of turns at its own time. A Put waits at most one frame duration
// (and PutWait): the turns follow Config.Clock, the wait is real time, and
// a clock that does not follow real time (a test's) never makes a Put wait
// longer. It returns the time to stamp the frame with.
func (s *session) pace(now time.Time) time.Time {
	s.paceMu.Lock()
	turn := s.next
	if turn.IsZero() || now.Sub(turn) > s.dur {
		turn = now
	}
	wait := min(turn.Sub(now), s.dur, s.cfg.PutWait)
	if wait > 0 {
		turn = now.Add(wait)
	}
	s.next = turn.Add(s.dur)
	s.paceMu.Unlock()
	if wait <= 0 {
		return now
	}
	time.Sleep(wait)
	return turn
}

// captureSkew is how far a capture time (Frame.Time) may be from the Put
// time before it is taken for a reading of another clock: a frame is not
// captured after it is Put, nor (in a live stream) 5 s before.
const (
	captureAhead  = time.Second
	captureBehind = 5 * time.Second
)

// pts timestamps a frame: its capture time (or the Put time) since the
// session's start, or n/fps in fixed-rate mode; in steady mode its time
// relative to the first frame's (taken at the first Put), at least one frame
// period after the previous frame; always strictly increasing.
// A capture time from another clock (boot time, a camera's own) is
// re-anchored once to the Put time, with a warning, so that the spacing of
// the frames is kept (never compressed onto the session's start).
func (s *session) pts(f *Frame, now time.Time) time.Duration {
	var pts time.Duration
	if s.cfg.Timestamps == TimestampsFixedRate {
		pts = time.Duration(float64(s.frames) * float64(time.Second) / s.params.FPS)
	} else if s.cfg.Timestamps == TimestampsSteady {
		t := f.Time
		if t.IsZero() {
			t = now
		}
		if s.frames == 0 {
			s.steadyFirst, s.steadyBase = t, max(now.Sub(s.start), 0)
		}
		pts = s.steadyBase + t.Sub(s.steadyFirst)
		if s.frames > 0 {
			pts = max(pts, s.lastPTS+s.dur)
		}
	} else if f.Time.IsZero() {
		pts = now.Sub(s.start)
	} else {
		t := f.Time.Add(s.reanchor)
		if skew := now.Sub(t); !s.anchored && (skew < -captureAhead || skew > captureBehind) {
			s.anchored = true
			s.reanchor = now.Sub(f.Time)
			t = now
			s.log.Warn("Frame.Time is not on the clock of time.Now (more than 1 s ahead or 5 s behind the Put time); "+
				"re-anchoring capture times to the Put time", "skew", skew)
		}
		pts = t.Sub(s.start)
	}
	pts = max(pts, 0)
	if s.frames > 0 && pts <= s.lastPTS {
		pts = s.lastPTS + time.Millisecond
	}
	s.lastPTS = pts
	return pts
}

// close ends the session by deadline: no more frames, an end of stream
// through the encoder, then every destination finishes what it holds
// (files are finalised); one that does not finish in time is detached.
// Everything is released. It returns the first error.
func (s *session) close(deadline time.Time) error {
	s.putMu.Lock()
	s.shut = true
	s.putMu.Unlock()
	s.src.EndOfStream()
	var drainErr error
	timer := time.NewTimer(time.Until(deadline))
	select {
	case <-s.eos:
	case <-timer.C:
		s.log.Warn("encoder did not drain in time; frames still in it are lost", "timeout", s.cfg.DrainTimeout)
		drainErr = fmt.Errorf("%w: the encoder did not drain within DrainTimeout (%v); frames still in it are lost (Stats.Dropped)",
			ErrTimeout, s.cfg.DrainTimeout)
	}
	timer.Stop()
	s.stopping.Store(true)
	s.pipe.Wake()
	s.wg.Wait() // the puller has handed out the last access unit (it polls every 100 ms)
	// Destinations finish by the deadline, but always get a moment to
	// finalise what they hold (a file's index) even when the encoder used
	// the whole DrainTimeout: Stop stays within DrainTimeout + 1 s.
	if least := time.Now().Add(outletGrace); deadline.Before(least) {
		deadline = least
	}
	errs := s.closeOutlets(deadline)
	s.release()
	errs = append(errs, drainErr)
	if e := s.failed.Load(); e != nil {
		errs = append(errs, fmt.Errorf("%w: %v", ErrPipeline, *e))
	}
	return errors.Join(errs...)
}

// abort ends a failed session at once: its outlets are closed with
// deadline (they finish what they hold), the pipeline released.
func (s *session) abort(deadline time.Time) {
	s.putMu.Lock()
	s.shut = true
	s.putMu.Unlock()
	s.stopping.Store(true)
	s.pipe.Wake()
	s.wg.Wait()
	_ = s.closeOutlets(deadline)
	s.release()
}

// closeOutlets closes every outlet in parallel by deadline and returns
// their errors.
func (s *session) closeOutlets(deadline time.Time) []error {
	errs := make([]error, len(s.outlets))
	var wg sync.WaitGroup
	for i, o := range s.outlets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = o.close(deadline)
		}()
	}
	wg.Wait()
	return errs
}

// release stops the goroutines and frees the encoder pipeline. Idempotent.
func (s *session) release() {
	if s.pipe == nil {
		return
	}
	s.stopping.Store(true)
	s.pipe.Wake()
	s.wg.Wait()
	s.relMu.Lock()
	s.released = true
	s.relMu.Unlock()
	s.buf.Unref()
	s.sink.Unref()
	s.enc.Unref()
	s.src.Unref()
	s.pipe.Close()
	s.pipe = nil
	if s.pool != nil {
		s.pool.Close()
	}
}

// quoteLaunch quotes a value for gst-launch syntax.
func quoteLaunch(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}
