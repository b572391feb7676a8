package kvs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.uber.org/goleak"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/kvs"
	"github.com/skyline-go/skyline/kvs/kvslocal"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testAK = "AKIDLOCALTEST0000001"
	testSK = "local/secret/key/0123456789abcdefXYZ"
)

// testClock is a settable clock shared by SkyLine, the client and the
// endpoint: time moves only when the test says so.
type testClock struct {
	mu sync.Mutex
	t  time.Time
	// onSet, when set, is called with the new time before it is set.
	onSet func(time.Time)
}

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	if c.onSet != nil {
		c.onSet(t)
	}
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// events collects a destination's events and lets tests wait for them.
type events struct {
	mu   sync.Mutex
	list []kvs.Event
	ch   chan struct{}
}

func newEvents() *events { return &events{ch: make(chan struct{}, 1)} }

func (e *events) add(ev kvs.Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	e.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
	default:
	}
}

func (e *events) snapshot() []kvs.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]kvs.Event(nil), e.list...)
}

// wait waits until pred holds for the events so far.
func (e *events) wait(t *testing.T, what string, timeout time.Duration, pred func([]kvs.Event) bool) []kvs.Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		evs := e.snapshot()
		if pred(evs) {
			return evs
		}
		select {
		case <-e.ch:
		case <-time.After(10 * time.Millisecond): // predicates may read Stats too
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; %d events, last: %v", what, len(evs), lastEvents(evs, 5))
		}
	}
}

func lastEvents(evs []kvs.Event, n int) string {
	s := ""
	for _, ev := range evs[max(0, len(evs)-n):] {
		s += fmt.Sprintf("[%v %v %v] ", ev.Type, ev.Ack.EventType, ev.Err)
	}
	return s
}

func count(evs []kvs.Event, typ kvs.EventType) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

func countAcks(evs []kvs.Event, typ kvs.AckType) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == kvs.EventAck && ev.Ack.EventType == typ {
			n++
		}
	}
	return n
}

func startLocal(t *testing.T, cfg kvslocal.Config) *kvslocal.Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.AccessKey == "" && cfg.Lookup == nil {
		cfg.AccessKey, cfg.SecretKey = testAK, testSK
	}
	srv, err := kvslocal.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func staticCreds() credentials.StaticCredentialsProvider {
	return credentials.NewStaticCredentialsProvider(testAK, testSK, "")
}

// stream is a SkyLine feeding one destination with numbered frames whose
// capture times are base + i/fps.
type stream struct {
	t     *testing.T
	sl    *skyline.SkyLine
	w, h  int
	fps   float64
	base  time.Time
	clock *testClock
	next  int
	bg    []byte
	// frames from pauseAt on are captured pause later (a producer that
	// stops for a while).
	pauseAt int
	pause   time.Duration
	// jitter: capture times late by 0..8 ms, as a real capture is.
	jitter bool
}

// drawNumber makes frame n cheaply: the static background of frame 0 with
// the number band of frame n (testpattern.ReadBGR reads only the band).
func drawNumber(buf, bg []byte, w, h, n int) {
	copy(buf, bg)
	for y := h * 3 / 100; y < h*17/100; y++ {
		for x := 0; x < w; x++ {
			b, g, r := testpattern.Pixel(x, y, w, h, n)
			i := (y*w + x) * 3
			buf[i], buf[i+1], buf[i+2] = b, g, r
		}
	}
}

func newStream(t *testing.T, dst skyline.Destination, w, h int, fps float64, clock *testClock, queue int) *stream {
	t.Helper()
	base := clock.Now().Add(time.Millisecond)
	sl, err := skyline.New(skyline.Config{Clock: clock, NoDotEnv: true, QueueSize: queue}, dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sl.Close() })
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	return &stream{t: t, sl: sl, w: w, h: h, fps: fps, base: base, clock: clock}
}

func (s *stream) frameTime(i int) time.Time {
	t := s.base.Add(time.Duration(float64(i) * float64(time.Second) / s.fps))
	if s.pause > 0 && i >= s.pauseAt {
		t = t.Add(s.pause)
	}
	if s.jitter {
		t = t.Add(time.Duration((i*37)%9) * time.Millisecond)
	}
	return t
}

// put sends frames up to (not including) n, advancing the clock.
func (s *stream) put(n int) {
	s.t.Helper()
	if s.bg == nil {
		s.bg = testpattern.NewBGR(s.w, s.h, 0)
	}
	buf := make([]byte, s.w*s.h*3)
	for ; s.next < n; s.next++ {
		ft := s.frameTime(s.next)
		s.clock.Set(ft)
		drawNumber(buf, s.bg, s.w, s.h, s.next)
		f := skyline.FrameBGR(buf, s.w, s.h, 0)
		f.Time = ft
		for {
			ok, err := s.sl.Put(f)
			if ok {
				break
			}
			if !errors.Is(err, skyline.ErrQueueFull) {
				s.t.Fatalf("Put %d: %v (state %v)", s.next, err, s.sl.State())
			}
			time.Sleep(2 * time.Millisecond) // encoder behind: the queue frees up
		}
	}
}

// checkStored verifies the endpoint's stored fragments: every frame
// 0..n-1 once, in order, timecodes within 1 ms of the frame times, and the
// media files decode with ffmpeg to the frame numbers in order.
func checkStored(t *testing.T, srv *kvslocal.Server, name string, s *stream, n int) []kvslocal.Fragment {
	t.Helper()
	frs, err := srv.Fragments(name)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, f := range frs {
		if !f.Keyframe {
			t.Errorf("fragment %d does not start with a keyframe", f.Timecode)
		}
		for _, tc := range f.FrameTimecodes {
			if i >= n {
				t.Fatalf("more stored frames than the %d sent", n)
			}
			want := s.frameTime(i)
			if d := time.UnixMilli(tc).Sub(want); d > time.Millisecond || d < -time.Millisecond {
				t.Fatalf("frame %d stored at %d ms, sent at %v (off by %v)", i, tc, want.UnixNano(), d)
			}
			i++
		}
	}
	if i != n {
		t.Fatalf("stored %d frames in %d fragments, want %d", i, len(frs), n)
	}
	files, err := srv.Files(name)
	if err != nil || len(files) == 0 {
		t.Fatalf("no media files: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got := 0
	for _, path := range files {
		st, err := mediatest.Probe(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Codec != "h264" || st.Width != s.w || st.Height != s.h {
			t.Fatalf("%s: ffprobe %+v", filepath.Base(path), st)
		}
		err = mediatest.Decode(ctx, path, s.w, s.h, nil, []string{"-fps_mode", "passthrough"}, func(_ int, bgr []byte) error {
			num, ok := testpattern.ReadBGR(bgr, s.w, s.h)
			if !ok || num != got {
				return fmt.Errorf("%s: decoded frame %d carries number %d (readable %v)", filepath.Base(path), got, num, ok)
			}
			got++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if got != n {
		t.Fatalf("decoded %d frames from %d files, want %d", got, len(files), n)
	}
	t.Logf("%d frames in %d fragments, %d files, decoded in order", n, len(frs), len(files))
	return frs
}

// logBuffer captures every log line (debug level) for secret scanning.
type logBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.b = append(l.b, p...)
	l.mu.Unlock()
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// noSecrets fails if any secret appears in the logs or the event errors.
func noSecrets(t *testing.T, logs string, evs []kvs.Event, secrets ...string) {
	t.Helper()
	var text strings.Builder
	text.WriteString(logs)
	for _, ev := range evs {
		if ev.Err != nil {
			text.WriteString(ev.Err.Error())
		}
	}
	all := text.String()
	if len(logs) == 0 {
		t.Fatal("no logs captured")
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(all, s) {
			t.Fatalf("secret %q found in logs or errors", s[:4]+"...")
		}
	}
}

// putPaced sends frames up to n like put, but every `every` frames waits
// until the destination holds at most `ahead` unpersisted fragments, so the
// test clock moves with the client instead of racing ahead of it.
func (s *stream) putPaced(n, every, ahead int, dst *kvs.Native, ev *events) {
	s.t.Helper()
	for s.next < n {
		s.put(min(n, s.next+every))
		ev.wait(s.t, "the client to catch up", time.Minute, func([]kvs.Event) bool {
			st := dst.Stats()
			return st.Frames >= uint64(s.next) && st.BufferedFragments <= ahead
		})
	}
}
