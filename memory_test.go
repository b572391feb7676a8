package skyline_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
)

// rssBytes reads the resident set size of this process.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// putAll puts f until accepted: when the queue is full (DropNewest refuses
// the frame) it yields briefly and tries again — flow control, as a real
// capture loop that must not lose frames would do.
func putAll(t *testing.T, sl *skyline.SkyLine, f skyline.Frame) {
	t.Helper()
	for {
		ok, err := sl.Put(f)
		if ok {
			return
		}
		if !errors.Is(err, skyline.ErrQueueFull) {
			t.Fatalf("Put: %v (state %v: %v)", err, sl.State(), sl.Err())
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// TestMemoryStable1080p pushes 3,000 full-HD frames through the real pipeline
// (encoder, file and Go receiver) and checks that the RSS stops growing
// after the warm-up: C buffers, samples and messages are all released.
func TestMemoryStable1080p(t *testing.T) {
	const w, h, total, warm = 1920, 1080, 3000, 300
	frames := make([][]byte, 4)
	for i := range frames {
		frames[i] = testpattern.NewBGR(w, h, i)
	}
	dst, err := skyline.NewFile(filepath.Join(t.TempDir(), "mem.mkv"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &auCounter{}
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Clock: newClock(30),
		Encoder: skyline.Encoder{Preset: "ultrafast", Bitrate: 1000}}, dst, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	var before int64
	for i := 0; i < total; i++ {
		if i == warm {
			runtime.GC()
			before = rssBytes(t)
		}
		putAll(t, sl, skyline.FrameBGR(frames[i%len(frames)], w, h, 0))
	}
	runtime.GC()
	after := rssBytes(t)
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := sl.Stats()
	if st.Accepted != total || st.Encoded != total || st.Written != total || rec.n.Load() != total {
		t.Fatalf("stats %+v, receiver %d", st, rec.n.Load())
	}
	growth := after - before
	t.Logf("RSS after warm-up %d MB, after %d frames %d MB (growth %+.1f MB)", before>>20, total, after>>20, float64(growth)/(1<<20))
	if growth > 50<<20 {
		t.Fatalf("RSS grew by %d MB over %d frames, want < 50 MB", growth>>20, total-warm)
	}
}
