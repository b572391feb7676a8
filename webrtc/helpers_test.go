package webrtc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/internal/whepclient"
	"github.com/skyline-go/skyline/webrtc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// newServer starts a server on a free local port and closes it at the end
// of the test.
func newServer(t *testing.T, cfg webrtc.ServerConfig) *webrtc.Server {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger
	}
	srv, err := webrtc.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// frames draws numbered test frames quickly: the moving background cycles
// through a few precomputed pictures, the number band is drawn per frame.
type frames struct {
	w, h int
	bg   [][]byte
	y0   int
	y1   int
}

func newFrames(w, h int) *frames {
	f := &frames{w: w, h: h}
	for i := 0; i < 8; i++ {
		f.bg = append(f.bg, testpattern.NewBGR(w, h, i*15))
	}
	f.y0, f.y1 = int(0.03*float64(h)), int(0.17*float64(h))+1
	return f
}

// draw writes frame n into buf (w*h*3 bytes).
func (f *frames) draw(buf []byte, n int) {
	copy(buf, f.bg[n%len(f.bg)])
	for y := f.y0; y < f.y1 && y < f.h; y++ {
		for x := 0; x < f.w; x++ {
			fx, fy := (float64(x)+0.5)/float64(f.w), (float64(y)+0.5)/float64(f.h)
			if fy >= 0.04 && fy < 0.16 && fx >= 0.04 && fx < 0.96 {
				b, g, r := testpattern.Pixel(x, y, f.w, f.h, n)
				i := (y*f.w + x) * 3
				buf[i], buf[i+1], buf[i+2] = b, g, r
			}
		}
	}
}

func (f *frames) ref(n int) []byte {
	buf := make([]byte, f.w*f.h*3)
	f.draw(buf, n)
	return buf
}

// feeder Puts numbered frames into a SkyLine in real time until stopped.
// Numbers are consecutive in the stream: a frame Put refuses is Put again
// at the next tick.
type feeder struct {
	sl    *skyline.SkyLine
	fr    *frames
	fps   float64
	next  atomic.Int64
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	putAt map[int]time.Time
}

func startFeeder(t *testing.T, sl *skyline.SkyLine, w, h int, fps float64) *feeder {
	t.Helper()
	f := &feeder{sl: sl, fr: newFrames(w, h), fps: fps, stop: make(chan struct{}), done: make(chan struct{}),
		putAt: map[int]time.Time{}}
	f.next.Store(1)
	go f.run(t)
	t.Cleanup(f.Stop)
	return f
}

func (f *feeder) run(t *testing.T) {
	defer close(f.done)
	buf := make([]byte, f.fr.w*f.fr.h*3)
	tick := time.NewTicker(time.Duration(float64(time.Second) / f.fps))
	defer tick.Stop()
	for n := 1; ; {
		select {
		case <-f.stop:
			return
		case <-tick.C:
		}
		f.fr.draw(buf, n)
		t0 := time.Now()
		ok, err := f.sl.Put(skyline.FrameBGR(buf, f.fr.w, f.fr.h, 0))
		if err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
			t.Errorf("Put %d: %v", n, err)
			return
		}
		if ok {
			f.mu.Lock()
			f.putAt[n] = t0
			f.mu.Unlock()
			n++
			f.next.Store(int64(n))
		}
	}
}

// Stop stops feeding (idempotent); the SkyLine keeps its state.
func (f *feeder) Stop() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

// startSkyLine creates a SkyLine feeding dests and starts it.
func startSkyLine(t *testing.T, w, h int, fps float64, onEvent func(skyline.Event), dests ...skyline.Destination) *skyline.SkyLine {
	t.Helper()
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: testLogger, OnEvent: onEvent}, dests...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sl.Close() })
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	return sl
}

// dial opens a WHEP session, closed at the end of the test.
func dial(t *testing.T, url string, o whepclient.Options) *whepclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := whepclient.Dial(ctx, url, o)
	if err != nil {
		t.Fatalf("WHEP %s: %v", url, err)
	}
	t.Cleanup(c.Close)
	return c
}

// decoded is one decoded picture and its frame number.
type decoded struct {
	n   int
	bgr []byte
	at  time.Time
}

// decodeN decodes the client's access units until n pictures came out, or
// fails after d. It checks each picture's number is readable.
func decodeN(t *testing.T, c *whepclient.Client, w, h, n int, d time.Duration) []decoded {
	t.Helper()
	pics, err := tryDecodeN(c, w, h, n, d)
	if err != nil {
		t.Fatal(err)
	}
	return pics
}

// tryDecodeN is decodeN returning its error (for goroutines).
func tryDecodeN(c *whepclient.Client, w, h, n int, d time.Duration) ([]decoded, error) {
	dec, err := whepclient.NewDecoder()
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	var out []decoded
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for len(out) < n {
		select {
		case au := <-c.AUs():
			if err := dec.Push(au.Data, au.Keyframe); err != nil {
				return out, err
			}
		case pic := <-dec.Pictures():
			if pic.Width != w || pic.Height != h {
				return out, fmt.Errorf("decoded %dx%d, want %dx%d", pic.Width, pic.Height, w, h)
			}
			num, ok := testpattern.ReadBGR(pic.BGR, w, h)
			if !ok {
				return out, fmt.Errorf("decoded picture %d: number unreadable", len(out))
			}
			out = append(out, decoded{num, pic.BGR, pic.Decoded})
		case <-deadline.C:
			return out, fmt.Errorf("timeout after %v: decoded %d pictures of %d (lost %d AUs)", d, len(out), n, c.Lost())
		}
	}
	return out, nil
}

// consecutive reports the first break in the pictures' numbers.
func consecutive(pics []decoded) error {
	for i := 1; i < len(pics); i++ {
		if pics[i].n != pics[i-1].n+1 {
			return fmt.Errorf("picture %d carries number %d after %d", i, pics[i].n, pics[i-1].n)
		}
	}
	return nil
}

// checkConsecutive fails unless the pictures carry consecutive numbers.
func checkConsecutive(t *testing.T, what string, pics []decoded) {
	t.Helper()
	for i := 1; i < len(pics); i++ {
		if pics[i].n != pics[i-1].n+1 {
			t.Errorf("%s: picture %d carries number %d after %d", what, i, pics[i].n, pics[i-1].n)
		}
	}
}

// events collects a SkyLine's events and lets a test wait for one.
type events struct {
	mu   sync.Mutex
	list []skyline.Event
	ch   chan struct{}
}

func newEvents() *events { return &events{ch: make(chan struct{}, 1)} }

func (e *events) on(ev skyline.Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	e.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
	default:
	}
}

// wait waits until count events of kind arrived.
func (e *events) wait(t *testing.T, kind skyline.EventKind, count int, d time.Duration) []skyline.Event {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		var got []skyline.Event
		for _, ev := range e.list {
			if ev.Kind == kind {
				got = append(got, ev)
			}
		}
		e.mu.Unlock()
		if len(got) >= count {
			return got
		}
		select {
		case <-e.ch:
		case <-deadline.C:
			t.Fatalf("timeout after %v waiting for %d %s events (got %d)", d, count, kind, len(got))
		}
	}
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
