package skyline_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Without destinations the frames are encoded and discarded; Stop must still
// see the end of stream come out of the pipeline rather than give up
// waiting for it.
func TestStopWithoutDestinationsDrains(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	const w, h, n = 320, 240, 30
	sl, err := skyline.New(skyline.Config{Logger: log, Clock: newClock(30), NoDotEnv: true, QueueSize: n})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	buf := testpattern.NewBGR(w, h, 0)
	for i := 0; i < n; i++ {
		if ok, err := sl.Put(skyline.FrameBGR(buf, w, h, 0)); !ok || err != nil {
			t.Fatalf("Put %d: ok=%v err=%v", i, ok, err)
		}
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := sl.Stats(); st.Encoded != n {
		t.Errorf("encoded %d of %d frames", st.Encoded, n)
	}
	if strings.Contains(logs.String(), "did not drain") {
		t.Errorf("Stop timed out waiting for the end of stream:\n%s", logs.String())
	}
}
