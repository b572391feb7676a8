// Package card makes the offline card of a served stream (see
// skyline.OfflineCard): a picture with the stream's path, state and clock,
// encoded by a SkyLine of its own at a low frame rate, every picture a
// keyframe, handed to the stream as access units with their capture time.
package card

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/skyline-go/skyline"
)

// The states a served stream's card shows.
const (
	Waiting  = "offline - waiting for the stream"
	Starting = "offline - starting"
	Stopped  = "offline - stopped, waiting for the stream"
)

// Output receives the card's access units (on the card encoder's outlet
// goroutine), with the wall-clock time each picture was drawn. It must not
// call the Source's Close.
type Output func(au *skyline.AccessUnit, at time.Time)

// Source draws and encodes the card while it is shown. One goroutine (run)
// owns the encoder; Show, Hide and Kick only record what is wanted and
// never wait, so a stream may call them under its own lock.
type Source struct {
	cfg     skyline.OfflineCard
	title   string
	out     Output
	watched func() bool
	log     *slog.Logger

	mu   sync.Mutex // guards want
	want state

	wake chan struct{} // cap 1: want changed, or Kick
	quit chan struct{}
	done chan struct{}
}

// state is what the card shows.
type state struct {
	show   bool
	text   string
	w, h   int
	kicked bool
}

// New starts a Source, hidden. cfg must be valid (OfflineCard.Validate).
//
// watched (nil: always true) tells whether anybody watches the stream; it
// is called on the Source's goroutine, with no lock held. While nobody
// does, the shown card is drawn and encoded only when it appears or
// changes (so that the stream can describe itself to the next viewer) and
// when kicked, not at cfg.FPS: an idle server spends no CPU on it.
func New(cfg skyline.OfflineCard, path string, log *slog.Logger, out Output, watched func() bool) *Source {
	cfg = cfg.WithDefaults()
	title := cfg.Title
	if title == "" {
		title = path
	}
	if watched == nil {
		watched = func() bool { return true }
	}
	s := &Source{cfg: cfg, title: title, out: out, watched: watched, log: log, want: state{w: cfg.Width, h: cfg.Height},
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *Source) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Show shows the card with the state text, at w x h (0: the size it has).
func (s *Source) Show(text string, w, h int) {
	s.mu.Lock()
	s.want.show, s.want.text = true, text
	if w > 0 && h > 0 {
		s.want.w, s.want.h = w&^1, h&^1
	}
	s.mu.Unlock()
	s.poke()
}

// Hide stops the card: the live stream has a picture.
func (s *Source) Hide() {
	s.mu.Lock()
	s.want.show = false
	s.mu.Unlock()
	s.poke()
}

// Kick draws the next picture now (a viewer joined and waits for a
// keyframe), when the card is shown.
func (s *Source) Kick() {
	s.mu.Lock()
	s.want.kicked = true
	s.mu.Unlock()
	s.poke()
}

// Close stops the card and its encoder (within the encoder's
// DrainTimeout). Safe to call more than once; not from Output.
func (s *Source) Close() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}

// receiver hands the card encoder's access units to the Output.
type receiver struct {
	src   *Source
	out   Output
	mu    sync.Mutex
	start time.Time
}

func (r *receiver) Name() string { return "offline-card" }

func (r *receiver) Open(info skyline.StreamInfo) error {
	r.mu.Lock()
	r.start = info.Start
	r.mu.Unlock()
	return nil
}

func (r *receiver) WriteAccessUnit(au *skyline.AccessUnit) error {
	r.src.mu.Lock()
	shown := r.src.want.show
	r.src.mu.Unlock()
	if !shown { // encoded before Hide: the live stream has the picture now
		return nil
	}
	r.mu.Lock()
	start := r.start
	r.mu.Unlock()
	r.out(au, start.Add(au.PTS))
	return nil
}

func (r *receiver) Close() {}

// run owns the card's SkyLine: it (re)starts it at the wanted size, Puts a
// picture every 1/FPS while shown (and at once when shown or kicked), and
// closes it at the end.
func (s *Source) run() {
	defer close(s.done)
	var sl *skyline.SkyLine
	defer func() {
		if sl != nil {
			_ = sl.Close()
		}
	}()
	var cur state // what the running SkyLine encodes (w, h), and shows
	var buf []byte
	period := time.Duration(float64(time.Second) / s.cfg.FPS)
	tick := time.NewTicker(period)
	defer tick.Stop()
	var last time.Time
	retry := time.Second // after an encoder that cannot start
	for {
		woken := false
		select {
		case <-s.quit:
			return
		case <-s.wake:
			woken = true
		case <-tick.C:
		}
		s.mu.Lock()
		want := s.want
		s.mu.Unlock()
		if !want.show {
			cur.show = false
			continue
		}
		fresh := !cur.show || want.text != cur.text
		if sl == nil || want.w != cur.w || want.h != cur.h {
			if sl != nil {
				_ = sl.Close()
				sl = nil
			}
			var err error
			if sl, err = s.open(want.w, want.h); err != nil {
				s.log.Warn("offline card: cannot start its encoder", "error", err, "retry_in", retry)
				s.wait(retry)
				retry = min(2*retry, 30*time.Second)
				continue
			}
			retry = time.Second
			cur.w, cur.h = want.w, want.h
			buf = make([]byte, want.w*want.h*3)
			fresh = true
		}
		cur.show, cur.text = true, want.text
		t := time.Now()
		// A wake-up draws at once when the card appears, changes or is
		// kicked (at most every 100 ms: a kick then waits for the ticker);
		// otherwise the ticker paces it.
		if woken && !fresh && (!want.kicked || t.Sub(last) < 100*time.Millisecond) {
			continue
		}
		if !woken && !fresh && !want.kicked && !s.watched() {
			continue // nobody watches: the ticker draws nothing
		}
		if want.kicked {
			s.mu.Lock()
			s.want.kicked = false
			s.mu.Unlock()
		}
		last = t
		Draw(buf, cur.w, cur.h, s.title, cur.text, t)
		if _, err := sl.Put(skyline.FrameBGR(buf, cur.w, cur.h, 0)); err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
			s.log.Warn("offline card: Put", "error", err)
		}
	}
}

// open starts a SkyLine that encodes w x h card pictures, each a keyframe.
func (s *Source) open(w, h int) (*skyline.SkyLine, error) {
	enc := s.cfg.Encoder
	enc.KeyframeInterval = time.Duration(float64(time.Second) / s.cfg.FPS) // every picture
	sl, err := skyline.New(skyline.Config{Name: "offline-card", Logger: quiet(s.log), Encoder: enc,
		QueueSize: 2, Drop: skyline.DropOldest}, &receiver{src: s, out: s.out})
	if err != nil {
		return nil, err
	}
	if err := sl.Start(skyline.Params{FPS: s.cfg.FPS, Width: w, Height: h}); err != nil {
		_ = sl.Close()
		return nil, fmt.Errorf("%dx%d at %g fps: %w", w, h, s.cfg.FPS, err)
	}
	return sl, nil
}

// wait sleeps d, or until Close.
func (s *Source) wait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.quit:
	}
}

// quiet keeps the card encoder's routine Info logs (started, stopped) out
// of the stream's log: warnings and errors only.
func quiet(l *slog.Logger) *slog.Logger {
	return slog.New(minLevel{l.Handler(), slog.LevelWarn})
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.Handler.Enabled(ctx, l)
}

func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(a), m.min}
}
func (m minLevel) WithGroup(g string) slog.Handler { return minLevel{m.Handler.WithGroup(g), m.min} }
