package skyline_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
)

// eventLog collects events and lets tests wait for one.
type eventLog struct {
	mu      sync.Mutex
	events  []skyline.Event
	changed chan struct{}
}

func newEventLog() *eventLog { return &eventLog{changed: make(chan struct{})} }

func (l *eventLog) add(e skyline.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *eventLog) all() []skyline.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]skyline.Event(nil), l.events...)
}

// wait waits for an event matching ok and returns it.
func (l *eventLog) wait(t *testing.T, what string, timeout time.Duration, ok func(skyline.Event) bool) skyline.Event {
	t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		l.mu.Lock()
		evs, ch := l.events[seen:], l.changed
		seen = len(l.events)
		l.mu.Unlock()
		for _, e := range evs {
			if ok(e) {
				return e
			}
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %s event within %v; events: %v", what, timeout, l.all())
		}
	}
}

func kindIs(k skyline.EventKind, dest string) func(skyline.Event) bool {
	return func(e skyline.Event) bool { return e.Kind == k && (dest == "" || e.Destination == dest) }
}

// stream puts n numbered w x h frames at 30 fps of a fake clock.
func stream(t *testing.T, sl *skyline.SkyLine, w, h, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		putAll(t, sl, bgr(w, h, i))
	}
}

func TestGstSinkText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.mkv")
	sink, err := skyline.NewGstSink("matroskamux ! filesink location=" + path)
	if err != nil {
		t.Fatal(err)
	}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{QueueSize: 64}, sink)
	if err := sl.Start(skyline.Params{FPS: 30, Width: 160, Height: 120}); err != nil {
		t.Fatal(err)
	}
	stream(t, sl, 160, 120, 0, 60)
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	verify(t, path, 160, 120, 60, func(i int) []byte { return testpattern.NewBGR(160, 120, i) })

	for _, c := range []struct{ text, names string }{
		{"matroskamux ! nosuchsink", "nosuchsink"},
		{"filesink nosuchproperty=3", "nosuchproperty"},
		{"filesink location=", ""},
		{"", "empty"},
		{"matroskamux ! ! filesink", ""},
	} {
		_, err := skyline.NewGstSink(c.text)
		if !errors.Is(err, skyline.ErrInvalidConfig) || !strings.Contains(err.Error(), c.names) {
			t.Errorf("NewGstSink(%q) = %v, want ErrInvalidConfig naming %q", c.text, err, c.names)
		}
	}
}

func TestSegmentedRecording(t *testing.T) {
	dir := t.TempDir()
	seg, err := skyline.NewSegmentedFile(filepath.Join(dir, "rec-%05d.mp4"), 2*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	const w, h = 160, 120
	sl := newTestSkyLine(t, newClock(30), skyline.Config{QueueSize: 64}, seg)
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	stream(t, sl, w, h, 0, 180) // 6 s at 30 fps, a keyframe every 2 s
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "rec-*.mp4"))
	sort.Strings(files)
	if len(files) != 3 {
		t.Fatalf("segments %v, want 3", files)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	next := 0
	for _, f := range files {
		st, err := mediatest.Probe(ctx, f) // each plays on its own
		if err != nil {
			t.Fatal(err)
		}
		if st.Codec != "h264" || st.Frames != 60 {
			t.Fatalf("%s: %+v, want 60 h264 frames", filepath.Base(f), st)
		}
		err = mediatest.Decode(ctx, f, w, h, nil, nil, func(i int, b []byte) error {
			if n, ok := testpattern.ReadBGR(b, w, h); !ok || n != next {
				return fmt.Errorf("%s picture %d: frame %d, want %d", filepath.Base(f), i, n, next)
			}
			next++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if next != 180 {
		t.Fatalf("%d frames across segments, want 180", next)
	}
	if _, err := skyline.NewSegmentedFile(filepath.Join(dir, "x.mp4"), time.Second, 0); !errors.Is(err, skyline.ErrInvalidConfig) {
		t.Errorf("pattern without a number: %v", err)
	}
}

// TestFullDiskIsolated: a destination that cannot write (a full disk:
// /dev/full) reports an error event and is retried, while the file next to
// it records every frame.
func TestFullDiskIsolated(t *testing.T) {
	full, err := skyline.NewGstSink("matroskamux ! filesink location=/dev/full buffer-mode=unbuffered")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ok.mp4")
	good, err := skyline.NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	events := newEventLog()
	const w, h, n = 160, 120, 90
	sl := newTestSkyLine(t, newClock(30), skyline.Config{QueueSize: 64, OnEvent: events.add,
		RetryMin: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond}, full, good)
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	stream(t, sl, w, h, 0, n/2)
	down := events.wait(t, "destination-down", 30*time.Second, kindIs(skyline.EventDestinationDown, full.Name()))
	if down.Err == nil || !strings.Contains(down.Err.Error(), "space") {
		t.Errorf("down event error %v, want the disk-full reason", down.Err)
	}
	events.wait(t, "destination-retrying", 5*time.Second, kindIs(skyline.EventDestinationRetrying, full.Name()))
	stream(t, sl, w, h, n/2, n/2)
	if err := sl.Stop(); err != nil && !strings.Contains(err.Error(), "space") {
		t.Fatal(err)
	}
	if sl.State() != skyline.StateStopped {
		t.Fatalf("state %v", sl.State())
	}
	st := sl.Stats()
	if st.Destinations[1].Written != n || st.Destinations[1].Lost != 0 || st.Destinations[0].Lost == 0 {
		t.Fatalf("stats %+v", st.Destinations)
	}
	verify(t, path, w, h, n, func(i int) []byte { return testpattern.NewBGR(w, h, i) })
}

func TestEncoderIsX264OnThisMachine(t *testing.T) {
	if got := skyline.AvailableEncoders(); len(got) != 1 || got[0] != "x264enc" {
		t.Fatalf("available encoders %v", got)
	}
	logs := &logRecorder{}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{Logger: slog.New(logs)})
	if err := sl.Start(skyline.Params{FPS: 30, Width: 64, Height: 48}); err != nil {
		t.Fatal(err)
	}
	if logs.count(slog.LevelInfo, "streaming") != 1 || !logs.has("encoder", "x264enc") {
		t.Fatal("the stream did not start with x264enc")
	}
}
