package skyline

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyline-go/skyline/internal/gst"
	"github.com/skyline-go/skyline/internal/yuv"
)

// session is one streaming session: one GStreamer pipeline from Start (or the
// end of the warm-up) to Stop. It owns the pipeline, the buffer pool, the
// counters and two goroutines (bus watcher, access-unit puller), and
// releases all of them in close.
type session struct {
	log    *slog.Logger
	params Params
	start  time.Time // wall clock of PTS 0 (the session's start)
	cfg    Config

	pipe *gst.Pipeline
	src  *gst.AppSrc
	enc  *gst.Element
	sink *gst.AppSink // nil without receivers
	pool *gst.Pool

	receivers []Receiver
	destNames []string
	encoded   *gst.Counter
	written   []*gst.Counter // per GstDestination, then receivers counted in Go
	recvCount []atomic.Int64

	// frame path state, used under SkyLine.mu
	buf     gst.Buffer
	scratch []byte
	frames  int64
	lastPTS time.Duration
	dur     time.Duration

	failed   atomic.Pointer[error]
	onFail   func(error)
	eos      chan struct{}
	eosOnce  sync.Once
	stopping atomic.Bool
	wg       sync.WaitGroup
	lastKey  atomic.Int64 // unix nanos of the last keyframe request
}

// launch builds the gst-launch description of the pipeline.
func launch(p Params, cfg Config, gdests []GstDestination, withSink bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "appsrc name=src ! videoconvert ! videoscale ! video/x-raw,format=I420,width=%d,height=%d ! ", p.Width, p.Height)
	fmt.Fprintf(&b, "%s name=enc ! ", cfg.Encoder.Element)
	if cfg.Encoder.Profile != "" {
		fmt.Fprintf(&b, "video/x-h264,profile=%s ! ", cfg.Encoder.Profile)
	}
	b.WriteString("h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! tee name=t allow-not-linked=true")
	for i, d := range gdests {
		fmt.Fprintf(&b, " t. ! queue name=dq%d max-size-buffers=0 max-size-bytes=0 max-size-time=3000000000 ! h264parse ! %s", i, d.Launch())
	}
	if withSink {
		b.WriteString(" t. ! queue name=rq max-size-buffers=0 max-size-bytes=0 max-size-time=3000000000 ! appsink name=out sync=false max-buffers=64 drop=false")
	}
	return b.String()
}

// encoderProps are the encoder properties for a stream, defaults first.
func encoderProps(p Params, e Encoder) [][2]string {
	var props [][2]string
	if e.Element == "x264enc" {
		kf := max(1, int(math.Round(e.KeyframeInterval.Seconds()*p.FPS)))
		props = append(props,
			[2]string{"tune", "zerolatency"},
			[2]string{"speed-preset", e.Preset},
			[2]string{"bframes", "0"},
			[2]string{"key-int-max", fmt.Sprint(kf)},
			[2]string{"bitrate", fmt.Sprint(e.bitrate(p))},
		)
	}
	for k, v := range e.Properties {
		props = append(props, [2]string{k, v})
	}
	return props
}

func fraction(fps float64) string {
	if fps == math.Trunc(fps) {
		return fmt.Sprintf("%d/1", int(fps))
	}
	return fmt.Sprintf("%d/1000", int(math.Round(fps*1000)))
}

// openSession builds and starts a pipeline for p.
func openSession(p Params, cfg Config, dests []Destination, log *slog.Logger, onFail func(error)) (*session, error) {
	var gdests []GstDestination
	s := &session{log: log, params: p, cfg: cfg, onFail: onFail, eos: make(chan struct{})}
	for _, d := range dests {
		switch d := d.(type) {
		case GstDestination:
			gdests = append(gdests, d)
		case Receiver:
			s.receivers = append(s.receivers, d)
		}
	}
	for _, d := range gdests {
		s.destNames = append(s.destNames, d.Name())
	}
	for _, r := range s.receivers {
		s.destNames = append(s.destNames, r.Name())
	}
	s.recvCount = make([]atomic.Int64, len(s.receivers))
	s.dur = time.Duration(float64(time.Second) / p.FPS)
	desc := launch(p, cfg, gdests, len(s.receivers) > 0)
	log.Debug("pipeline", "launch", maskSecrets(desc))
	pipe, err := gst.ParseLaunch(desc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPipeline, err)
	}
	s.pipe = pipe
	ok := false
	defer func() {
		if !ok {
			s.release()
		}
	}()
	srcEl := pipe.ByName("src")
	s.src = gst.AsAppSrc(srcEl)
	s.enc = pipe.ByName("enc")
	caps := fmt.Sprintf("video/x-raw,format=I420,width=%d,height=%d,framerate=%s,colorimetry=bt601,interlace-mode=progressive",
		p.Width, p.Height, fraction(p.FPS))
	if err := s.src.Configure(caps, cfg.QueueSize, cfg.Drop == DropOldest); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPipeline, err)
	}
	for _, kv := range encoderProps(p, cfg.Encoder) {
		if err := s.enc.SetProperty(kv[0], kv[1]); err != nil {
			return nil, configErr("encoder %s: %v", cfg.Encoder.Element, err)
		}
	}
	s.encoded = gst.NewCounter()
	s.enc.CountBuffers("src", s.encoded)
	for i := range gdests {
		c := gst.NewCounter()
		s.written = append(s.written, c)
		if q := pipe.ByName(fmt.Sprintf("dq%d", i)); q != nil {
			q.CountBuffers("src", c)
			q.Unref()
		}
	}
	if len(s.receivers) > 0 {
		s.sink = gst.AsAppSink(pipe.ByName("out"))
	}
	size := yuv.Size(p.Width, p.Height)
	if s.pool, err = gst.NewPool(size, 2); err != nil {
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
	info := StreamInfo{Width: p.Width, Height: p.Height, FPS: p.FPS, Start: s.start, RequestKeyframe: s.requestKeyframe}
	for i, r := range s.receivers {
		if err := r.Open(info); err != nil {
			for _, r := range s.receivers[:i] {
				r.Close()
			}
			s.receivers = nil
			return nil, fmt.Errorf("%w: destination %s: %v", ErrPipeline, r.Name(), err)
		}
	}
	if s.sink != nil {
		s.wg.Add(1)
		go s.pullAccessUnits()
	}
	ok = true
	return s, nil
}

// startError prefers the bus's explanation of a failed start.
func (s *session) startError(err error) error {
	if e := s.failed.Load(); e != nil {
		return fmt.Errorf("%w: %v", ErrPipeline, *e)
	}
	return fmt.Errorf("%w: %v", ErrPipeline, err)
}

// watchBus delivers bus messages until close wakes it.
func (s *session) watchBus() {
	defer s.wg.Done()
	for {
		// A bounded wait: the wake message can be flushed away when the
		// pipeline goes to NULL (its bus flushes), so stopping is also
		// checked between messages.
		m, ok := s.pipe.PopMessage(100 * time.Millisecond)
		if !ok {
			if s.stopping.Load() {
				return
			}
			continue
		}
		switch m.Kind {
		case gst.MsgError:
			err := fmt.Errorf("%s", m.String())
			if s.failed.CompareAndSwap(nil, &err) {
				s.log.Error("pipeline error", "element", m.Source, "error", m.Text, "debug", m.Debug)
				if s.onFail != nil && !s.stopping.Load() {
					s.onFail(err)
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

// pullAccessUnits fans encoded access units out to the receivers.
func (s *session) pullAccessUnits() {
	defer s.wg.Done()
	for {
		smp, eos := s.sink.Pull(100 * time.Millisecond)
		if eos {
			return
		}
		if smp == nil {
			if s.stopping.Load() && s.failed.Load() != nil {
				return
			}
			select {
			case <-s.eos:
				return
			default:
			}
			continue
		}
		au := &AccessUnit{PTS: smp.PTS, DTS: smp.DTS, Keyframe: smp.Keyframe, Data: smp.Data}
		if au.DTS < 0 {
			au.DTS = au.PTS
		}
		for i, r := range s.receivers {
			r.WriteAccessUnit(au)
			s.recvCount[i].Add(1)
		}
	}
}

// requestKeyframe asks the encoder for a keyframe, at most one request per
// 100 ms (viewers joining together share one).
func (s *session) requestKeyframe() {
	now := time.Now().UnixNano()
	last := s.lastKey.Load()
	if now-last < int64(100*time.Millisecond) || !s.lastKey.CompareAndSwap(last, now) {
		return
	}
	if s.stopping.Load() {
		return
	}
	s.enc.ForceKeyUnit()
}

// push converts f into a pipeline buffer and hands it to appsrc. It returns
// false when the frame was dropped (queue full under DropNewest).
func (s *session) push(f *Frame, now time.Time, dropped *atomic.Uint64) (bool, error) {
	if s.failed.Load() != nil {
		return false, nil
	}
	if s.src.Level() >= s.cfg.QueueSize {
		dropped.Add(1)
		if s.cfg.Drop == DropNewest {
			return false, nil
		}
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
	s.buf.SetTimes(s.pts(f, now), s.dur)
	if err := s.src.Push(&s.buf); err != nil {
		return false, fmt.Errorf("%w: %v", ErrPipeline, err)
	}
	s.frames++
	return true, nil
}

// pts timestamps a frame: capture time or Put time relative to the first
// frame, or n/fps; always strictly increasing.
func (s *session) pts(f *Frame, now time.Time) time.Duration {
	var pts time.Duration
	if s.cfg.Timestamps == TimestampsFixedRate {
		pts = time.Duration(float64(s.frames) * float64(time.Second) / s.params.FPS)
	} else {
		t := f.Time
		if t.IsZero() {
			t = now
		}
		pts = max(t.Sub(s.start), 0)
	}
	if s.frames > 0 && pts <= s.lastPTS {
		pts = s.lastPTS + time.Millisecond
	}
	s.lastPTS = pts
	return pts
}

// close ends the session: EOS so files are finalised, a bounded wait for it
// to drain, then NULL and release. It returns the pipeline's error, if any.
func (s *session) close() error {
	s.src.EndOfStream()
	timer := time.NewTimer(s.cfg.DrainTimeout)
	select {
	case <-s.eos:
	case <-timer.C:
		s.log.Warn("pipeline did not drain in time; some frames may be lost", "timeout", s.cfg.DrainTimeout)
	}
	timer.Stop()
	s.release()
	if e := s.failed.Load(); e != nil {
		return fmt.Errorf("%w: %v", ErrPipeline, *e)
	}
	return nil
}

// release stops the goroutines and frees everything. Idempotent.
func (s *session) release() {
	if s.pipe == nil {
		return
	}
	s.stopping.Store(true)
	// Wake the bus watcher before any state change: a pipeline going to
	// NULL sets its bus flushing, which would drop the wake-up message.
	s.pipe.Wake()
	if s.sink != nil {
		// Unblocks the puller if it waits on a sample that will never come.
		_ = s.pipe.SetState(gst.StateNull)
	}
	s.wg.Wait()
	for _, r := range s.receivers {
		r.Close()
	}
	s.receivers = nil
	s.buf.Unref()
	if s.sink != nil {
		s.sink.Unref()
	}
	s.enc.Unref()
	s.src.Unref()
	s.pipe.Close()
	s.pipe = nil
	if s.pool != nil {
		s.pool.Close()
	}
}

// destinationCounts reads the per-destination written counters.
func (s *session) destinationCounts() []int64 {
	out := make([]int64, 0, len(s.written)+len(s.recvCount))
	for _, c := range s.written {
		out = append(out, c.Load())
	}
	for i := range s.recvCount {
		out = append(out, s.recvCount[i].Load())
	}
	return out
}

func (s *session) freeCounters() {
	s.encoded.Free()
	for _, c := range s.written {
		c.Free()
	}
}

// quoteLaunch quotes a value for gst-launch syntax.
func quoteLaunch(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// secretProps matches property assignments whose values are secrets
// (kvssink's access-key, secret-key and session-token, passwords).
var secretProps = regexp.MustCompile(`\b([a-z-]*(?:secret|token|access-key|password|passwd|user-pw)[a-z-]*)=("(?:[^"\\]|\\.)*"|[^\s!]+)`)

// maskSecrets replaces secret property values in a pipeline description so
// it can be logged.
func maskSecrets(desc string) string {
	return secretProps.ReplaceAllString(desc, "$1=****")
}
