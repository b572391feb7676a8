package skyline_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
)

// logRecorder is a slog handler that keeps records for assertions.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// has reports whether a record carries the attribute key=value.
func (h *logRecorder) has(key, value string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		found := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key && a.Value.String() == value {
				found = true
			}
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

func (h *logRecorder) count(level slog.Level, substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level == level && strings.Contains(r.Message, substr) {
			n++
		}
	}
	return n
}

func bgr(w, h, n int) skyline.Frame {
	return skyline.FrameBGR(testpattern.NewBGR(w, h, n), w, h, 0)
}

func newTestSkyLine(t *testing.T, clock skyline.Clock, cfg skyline.Config, dests ...skyline.Destination) *skyline.SkyLine {
	t.Helper()
	cfg.Clock = clock
	cfg.NoDotEnv = true
	sl, err := skyline.New(cfg, dests...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sl.Close() })
	return sl
}

// waitState waits (at most 20 s) for one of the states and returns the
// state then.
func waitState(t *testing.T, sl *skyline.SkyLine, want ...skyline.State) skyline.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := sl.WaitState(ctx, want...)
	if err != nil {
		t.Fatalf("state %v, want %v: %v", st, want, err)
	}
	return st
}

func mustPut(t *testing.T, sl *skyline.SkyLine, f skyline.Frame, want bool) {
	t.Helper()
	ok, err := sl.Put(f)
	if ok && err != nil || !ok && err == nil {
		t.Fatalf("Put = %v, %v: a false needs a reason, a true none", ok, err)
	}
	if err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
		t.Fatalf("Put: %v", err)
	}
	if ok != want {
		t.Fatalf("Put returned %v in state %v, want %v", ok, sl.State(), want)
	}
}

func TestWarmupMeasuresFPSAndSize(t *testing.T) {
	clock := newClock(25) // Put every 40 ms
	sl := newTestSkyLine(t, clock, skyline.Config{WarmupFrames: 10})
	if sl.State() != skyline.StateStopped {
		t.Fatalf("initial state %v", sl.State())
	}
	mustPut(t, sl, bgr(64, 48, 0), false) // STOPPED
	if err := sl.Start(skyline.Params{}); err != nil {
		t.Fatal(err)
	}
	if sl.State() != skyline.StateStartWarmup {
		t.Fatalf("after Start(Auto): %v", sl.State())
	}
	mustPut(t, sl, bgr(64, 48, 0), false)
	if sl.State() != skyline.StateWarmup {
		t.Fatalf("after first Put: %v", sl.State())
	}
	for i := 1; i < 9; i++ {
		mustPut(t, sl, bgr(64, 48, i), false)
		if sl.State() != skyline.StateWarmup {
			t.Fatalf("frame %d: %v", i, sl.State())
		}
	}
	// The 10th frame ends the warm-up and is the first one sent, once the
	// pipeline has opened in the background.
	mustPut(t, sl, bgr(64, 48, 9), true)
	if waitState(t, sl, skyline.StateStreaming) != skyline.StateStreaming {
		t.Fatalf("after warm-up: %v", sl.State())
	}
	if got, want := sl.Params(), (skyline.Params{FPS: 25, Width: 64, Height: 48}); got != want {
		t.Fatalf("measured %+v, want %+v", got, want)
	}
	mustPut(t, sl, bgr(64, 48, 10), true)
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := sl.Stats(); st.Accepted != 2 || st.Encoded != 2 {
		t.Fatalf("stats %+v", st)
	}
	if sl.State() != skyline.StateStopped {
		t.Fatalf("after Stop: %v", sl.State())
	}
	mustPut(t, sl, bgr(64, 48, 0), false)
}

func TestWarmupOddSizeRoundsDown(t *testing.T) {
	sl := newTestSkyLine(t, newClock(10), skyline.Config{WarmupFrames: 2})
	if err := sl.Start(skyline.Params{FPS: 10}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, sl, bgr(65, 49, 0), false)
	mustPut(t, sl, bgr(65, 49, 1), true)
	waitState(t, sl, skyline.StateStreaming)
	if got := sl.Params(); got.Width != 64 || got.Height != 48 || got.FPS != 10 {
		t.Fatalf("params %+v", got)
	}
}

func TestLastValueEachParameter(t *testing.T) {
	sl := newTestSkyLine(t, newClock(30), skyline.Config{WarmupFrames: 3})
	// No previous session: LastValue falls back to a warm-up.
	if err := sl.Start(skyline.LastParams); err != nil {
		t.Fatal(err)
	}
	if sl.State() != skyline.StateStartWarmup {
		t.Fatalf("LastValue without history: %v", sl.State())
	}
	if err := sl.Start(skyline.Params{FPS: 30, Width: 96, Height: 64}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		p    skyline.Params
		want skyline.Params
	}{
		{"fps", skyline.Params{FPS: skyline.LastValue, Width: 64, Height: 32}, skyline.Params{FPS: 30, Width: 64, Height: 32}},
		{"width", skyline.Params{FPS: 15, Width: skyline.LastValue, Height: 48}, skyline.Params{FPS: 15, Width: 64, Height: 48}},
		{"height", skyline.Params{FPS: 20, Width: 80, Height: skyline.LastValue}, skyline.Params{FPS: 20, Width: 80, Height: 48}},
		{"all", skyline.LastParams, skyline.Params{FPS: 20, Width: 80, Height: 48}},
	}
	for _, c := range cases {
		if err := sl.Start(c.p); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if sl.State() != skyline.StateStreaming || sl.Params() != c.want {
			t.Fatalf("%s: state %v params %+v, want STREAMING %+v", c.name, sl.State(), sl.Params(), c.want)
		}
		mustPut(t, sl, bgr(c.want.Width, c.want.Height, 0), true)
		if err := sl.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	// Height unknown, width known from last: only the height is measured.
	if err := sl.Start(skyline.Params{FPS: skyline.LastValue, Width: skyline.LastValue, Height: skyline.Auto}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		mustPut(t, sl, bgr(80, 36, i), false)
	}
	mustPut(t, sl, bgr(80, 36, 2), true)
	waitState(t, sl, skyline.StateStreaming)
	if got := sl.Params(); got != (skyline.Params{FPS: 20, Width: 80, Height: 36}) {
		t.Fatalf("params %+v", got)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	dst, err := skyline.NewFile(filepath.Join(dir, "r.mkv"))
	if err != nil {
		t.Fatal(err)
	}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{WarmupFrames: 3}, dst)
	p := skyline.Params{FPS: 30, Width: 64, Height: 48}
	if err := sl.Start(p); err != nil {
		t.Fatal(err)
	}
	mustPut(t, sl, bgr(64, 48, 0), true)
	// Start while streaming restarts.
	if err := sl.Start(p); err != nil {
		t.Fatal(err)
	}
	if sl.State() != skyline.StateStreaming {
		t.Fatalf("after restart: %v", sl.State())
	}
	mustPut(t, sl, bgr(64, 48, 1), true)
	// Start(Auto) while streaming goes to a warm-up; Start while warming up
	// restarts the warm-up.
	if err := sl.Start(skyline.Params{}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, sl, bgr(64, 48, 2), false)
	mustPut(t, sl, bgr(64, 48, 3), false)
	if err := sl.Start(skyline.Params{}); err != nil {
		t.Fatal(err)
	}
	if sl.State() != skyline.StateStartWarmup {
		t.Fatalf("restart during warm-up: %v", sl.State())
	}
	for i := 0; i < 100; i++ { // many cycles on one instance
		if err := sl.Start(p); err != nil {
			t.Fatal(err)
		}
		mustPut(t, sl, bgr(64, 48, i), true)
		if err := sl.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	if st := sl.Stats(); st.Accepted != 102 || st.Encoded != 102 || st.Written != 102 {
		t.Fatalf("stats %+v", st)
	}
}

func TestErrorWhenPipelineCannotOpen(t *testing.T) {
	// identity exists but passes raw video where H.264 is needed: the
	// encoder pipeline cannot be built.
	logs := &logRecorder{}
	clock := newClock(1) // every Now() is one second later
	sl := newTestSkyLine(t, clock, skyline.Config{Logger: slog.New(logs), Encoder: skyline.Encoder{Element: "identity"}})
	err := sl.Start(skyline.Params{FPS: 30, Width: 64, Height: 48})
	if !errors.Is(err, skyline.ErrPipeline) {
		t.Fatalf("Start: %v, want ErrPipeline", err)
	}
	if sl.State() != skyline.StateError || sl.Err() == nil {
		t.Fatalf("state %v err %v", sl.State(), sl.Err())
	}
	if !strings.Contains(err.Error(), "identity") || !strings.Contains(err.Error(), "h264parse") {
		t.Errorf("error does not say what failed: %v", err)
	}
	// Put in ERROR: false, and a warning at most once a minute.
	for i := 0; i < 60; i++ { // one Put a second: the first warns
		mustPut(t, sl, bgr(64, 48, i), false)
	}
	if n := logs.count(slog.LevelWarn, "ERROR state"); n != 1 {
		t.Fatalf("%d warnings in 59 s, want 1", n)
	}
	mustPut(t, sl, bgr(64, 48, 0), false) // 60 s after the first
	if n := logs.count(slog.LevelWarn, "ERROR state"); n != 2 {
		t.Fatalf("%d warnings after 60 s, want 2", n)
	}
	// Stop leaves ERROR.
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	if sl.State() != skyline.StateStopped {
		t.Fatalf("after Stop: %v", sl.State())
	}
}

func TestLoggerIsChildNamedAfterType(t *testing.T) {
	logs := &logRecorder{}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{Logger: slog.New(logs).With("app", "demo")})
	if err := sl.Start(skyline.Params{FPS: 30, Width: 64, Height: 48}); err != nil {
		t.Fatal(err)
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	if logs.count(slog.LevelInfo, "streaming") == 0 {
		t.Fatal("no streaming log through the parent logger")
	}
	var buf strings.Builder
	sl2 := newTestSkyLine(t, newClock(30), skyline.Config{Logger: slog.New(slog.NewTextHandler(&buf, nil)), Name: "RTSPSkyLine"})
	sl2.Logger().Info("hello")
	if !strings.Contains(buf.String(), "component=RTSPSkyLine") {
		t.Fatalf("child logger attrs: %q", buf.String())
	}
}

func TestDropNewestWhenQueueFull(t *testing.T) {
	// A tiny queue and many frames pushed at once: some are refused, every
	// accepted one is encoded.
	sl := newTestSkyLine(t, newClock(30), skyline.Config{QueueSize: 1, Drop: skyline.DropNewest, Encoder: skyline.Encoder{Preset: "slow"}})
	if err := sl.Start(skyline.Params{FPS: 30, Width: 640, Height: 480}); err != nil {
		t.Fatal(err)
	}
	f := bgr(640, 480, 1)
	var accepted uint64
	for i := 0; i < 200; i++ {
		ok, err := sl.Put(f)
		if !ok && !errors.Is(err, skyline.ErrQueueFull) {
			t.Fatalf("Put = %v, %v: want true, or false with ErrQueueFull", ok, err)
		}
		if ok {
			accepted++
		}
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := sl.Stats()
	if st.Dropped == 0 || st.Accepted != accepted || st.Accepted+st.Dropped != 200 || st.Encoded != accepted {
		t.Fatalf("stats %+v (accepted %d)", st, accepted)
	}
}

func TestTimestampsFollowCaptureTime(t *testing.T) {
	// Irregular capture times are kept (B4); a Receiver sees them as PTS.
	rec := &collector{name: "collector"}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{}, rec)
	if err := sl.Start(skyline.Params{FPS: 30, Width: 64, Height: 48}); err != nil {
		t.Fatal(err)
	}
	base := time.Now()
	offsets := []time.Duration{0, 10 * time.Millisecond, 200 * time.Millisecond, 210 * time.Millisecond, 900 * time.Millisecond}
	for i, off := range offsets {
		f := bgr(64, 48, i)
		f.Time = base.Add(time.Second + off)
		mustPut(t, sl, f, true)
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	aus := rec.all()
	if len(aus) != len(offsets) {
		t.Fatalf("%d access units, want %d", len(aus), len(offsets))
	}
	for i := range aus {
		if got, want := aus[i].PTS-aus[0].PTS, offsets[i]; got != want {
			t.Errorf("AU %d PTS offset %v, want %v", i, got, want)
		}
	}
	if !aus[0].Keyframe {
		t.Error("first access unit is not a keyframe")
	}
}

func TestTimestampsFixedRate(t *testing.T) {
	rec := &collector{name: "collector"}
	sl := newTestSkyLine(t, newClock(7), skyline.Config{Timestamps: skyline.TimestampsFixedRate}, rec)
	if err := sl.Start(skyline.Params{FPS: 25, Width: 64, Height: 48}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		mustPut(t, sl, bgr(64, 48, i), true)
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	for i, au := range rec.all() {
		if want := time.Duration(i) * 40 * time.Millisecond; au.PTS != want {
			t.Errorf("AU %d PTS %v, want %v", i, au.PTS, want)
		}
	}
}

// collector is a Receiver that keeps every access unit.
type collector struct {
	name    string
	changed chan struct{} // closed and replaced on every access unit
	mu      sync.Mutex
	aus     []*skyline.AccessUnit
	opened  []skyline.StreamInfo
	closed  int
}

func (c *collector) Name() string { return c.name }
func (c *collector) Open(info skyline.StreamInfo) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opened = append(c.opened, info)
	return nil
}
func (c *collector) WriteAccessUnit(au *skyline.AccessUnit) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.aus = append(c.aus, au)
	if c.changed != nil {
		close(c.changed)
	}
	c.changed = make(chan struct{})
	return nil
}

// waitFor waits until n access units have arrived (false on timeout).
func (c *collector) waitFor(n int, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		if len(c.aus) >= n {
			c.mu.Unlock()
			return true
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}
func (c *collector) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed++
}
func (c *collector) all() []*skyline.AccessUnit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*skyline.AccessUnit(nil), c.aus...)
}

// auCounter counts access units without keeping them.
type auCounter struct{ n atomic.Int64 }

func (c *auCounter) Name() string                              { return "counter" }
func (c *auCounter) Open(skyline.StreamInfo) error             { return nil }
func (c *auCounter) WriteAccessUnit(*skyline.AccessUnit) error { c.n.Add(1); return nil }
func (c *auCounter) Close()                                    {}

func TestRequestKeyframe(t *testing.T) {
	// With a 10 s GOP, only a requested keyframe can appear mid-stream.
	rec := &collector{name: "collector"}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{QueueSize: 64, Encoder: skyline.Encoder{KeyframeInterval: 10 * time.Second}}, rec)
	if err := sl.Start(skyline.Params{FPS: 30, Width: 64, Height: 48}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		mustPut(t, sl, bgr(64, 48, i), true)
	}
	if !rec.waitFor(20, 10*time.Second) {
		t.Fatalf("only %d access units arrived", len(rec.all()))
	}
	sl.RequestKeyframe()
	for i := 20; i < 40; i++ {
		mustPut(t, sl, bgr(64, 48, i), true)
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	var keys []int
	for i, au := range rec.all() {
		if au.Keyframe {
			keys = append(keys, i)
			if !bytes.Contains(au.Data, []byte{0, 0, 1, 0x67}) && !bytes.Contains(au.Data, []byte{0, 0, 1, 0x27}) {
				t.Errorf("keyframe %d carries no SPS in-band", i)
			}
		}
	}
	if len(keys) != 2 || keys[0] != 0 || keys[1] < 20 || keys[1] > 25 {
		t.Fatalf("keyframes at %v, want 0 and one just after 20", keys)
	}
}
