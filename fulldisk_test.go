package skyline_test

import (
	"context"
	"math/rand"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/metrics"
)

// TestFullDiskTmpfs: a recording and a segmented recording on a 5 MiB
// tmpfs that fills up. What was recorded before stays playable; the retries leave no empty files
// behind, back off ever longer (never "recovered" without a write), and
// their loss is counted in Stats and metrics; the destinations next to it
// (a file on another disk, a Go receiver) get every access unit.
func TestFullDiskTmpfs(t *testing.T) {
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", small).Run() })
	// Fill it but for 1.5 MiB, which the recording fills within a second or two.
	if err := os.WriteFile(filepath.Join(small, "filler"), make([]byte, 5<<20-3<<19), 0o644); err != nil {
		t.Fatal(err)
	}
	full, err := skyline.NewFile(filepath.Join(small, "rec.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	segs, err := skyline.NewSegmentedFile(filepath.Join(small, "seg-%03d.mp4"), time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	goodPath := filepath.Join(t.TempDir(), "ok.mkv")
	good, err := skyline.NewFile(goodPath)
	if err != nil {
		t.Fatal(err)
	}
	rec := &collector{name: "collector"}
	events := newEventLog()
	const retryMin, retryMax = 50 * time.Millisecond, 10 * time.Second
	c := metrics.New()
	sl := newTestSkyLine(t, nil, skyline.Config{QueueSize: 64, OnEvent: c.OnEvent("cam", events.add), RetryMin: retryMin, RetryMax: retryMax,
		Drop: skyline.DropNone, Encoder: skyline.Encoder{Bitrate: 8000}}, full, segs, good, rec)
	if err := c.Add("cam", sl); err != nil {
		t.Fatal(err)
	}
	const w, h = 320, 240
	noise := make([][]byte, 8) // incompressible: 8 Mbit/s fills the disk
	rnd := rand.New(rand.NewSource(1))
	for i := range noise {
		noise[i] = make([]byte, w*h*3)
		rnd.Read(noise[i])
	}
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(time.Second / 30) // a live producer
	defer tick.Stop()
	put := func(from, n int) {
		for i := from; i < from+n; i++ {
			<-tick.C
			putAll(t, sl, skyline.FrameBGR(noise[i%len(noise)], w, h, 0))
		}
	}
	n := 0
	for downs := 0; downs < 2; n++ {
		if n == 600 {
			t.Fatalf("no failure after 20 s of 8 Mbit/s to 1.5 MiB: %v", events.all())
		}
		put(n, 1)
		downs = 0
		for _, name := range []string{full.Name(), segs.Name()} {
			for _, e := range events.all() {
				if kindIs(skyline.EventDestinationDown, name)(e) {
					downs++
					break
				}
			}
		}
	}
	t.Logf("both down after %d frames", n)
	// 4 s more of streaming (at 30 fps): retries with a backoff that
	// did not grow would be 4 s / 50 ms = 80 attempts.
	downAt := time.Now()
	put(n, 120)
	window := time.Since(downAt)
	if err := sl.Stop(); err != nil {
		t.Logf("Stop: %v", err)
	}
	for _, name := range []string{full.Name(), segs.Name()} {
		var retries []time.Duration
		for _, e := range events.all() {
			if e.Destination != name {
				continue
			}
			switch e.Kind {
			case skyline.EventDestinationRetrying:
				retries = append(retries, e.Retry)
			case skyline.EventDestinationRecovered:
				t.Errorf("%s: recovered without a write: %+v", name, e)
			}
		}
		t.Logf("%s: %d attempts in %v: backoffs %v", name, len(retries), window.Round(time.Millisecond), retries)
		if len(retries) < 3 {
			t.Fatalf("%s: %d retries in %v, want the destination retried", name, len(retries), window)
		}
		for i := 1; i < len(retries); i++ {
			if retries[i] < retries[i-1] {
				t.Errorf("%s: backoff shrank from %v to %v: it must grow across failed attempts", name, retries[i-1], retries[i])
			}
		}
		if last := retries[len(retries)-1]; last < 8*retryMin {
			t.Errorf("%s: last backoff %v after %d failed attempts, want it grown to >= %v", name, last, len(retries), 8*retryMin)
		}
	}
	// No empty file left behind; the recording from before the disk filled plays.
	files, _ := filepath.Glob(filepath.Join(small, "*.mp4"))
	for _, f := range files {
		st, _ := os.Stat(f)
		t.Logf("%s: %d bytes", filepath.Base(f), st.Size())
		if st.Size() == 0 {
			t.Errorf("%s: empty file left behind", filepath.Base(f))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, f := range files { // every file left plays cleanly
		if st, err := mediatest.Probe(ctx, f); err != nil || st.Frames == 0 {
			t.Errorf("%s after the disk filled: %+v, %v; want it playable", filepath.Base(f), st, err)
		}
	}
	st := sl.Stats()
	t.Logf("encoded %d; %+v", st.Encoded, st.Destinations)
	if st.Destinations[0].Lost == 0 || st.Destinations[1].Lost == 0 {
		t.Error("the full disk's loss is not counted")
	}
	for _, d := range st.Destinations[2:] {
		if d.Written != st.Encoded || d.Lost != 0 {
			t.Errorf("%s: written %d lost %d, want all %d", d.Name, d.Written, d.Lost, st.Encoded)
		}
	}
	if got := len(rec.all()); uint64(got) != st.Encoded {
		t.Errorf("receiver got %d access units, want %d", got, st.Encoded)
	}
	if ok, err := mediatest.Probe(ctx, goodPath); err != nil || uint64(ok.Frames) != st.Encoded {
		t.Errorf("%s: %+v, %v; want %d frames", goodPath, ok, err, st.Encoded)
	}
	// The metrics endpoint counts the loss too.
	rw := httptest.NewRecorder()
	metrics.Handler(c).ServeHTTP(rw, httptest.NewRequest("GET", "/metrics", nil))
	m := regexp.MustCompile(`skyline_destination_lost_total\{[^}]*rec\.mp4[^}]*\} (\d+)`).FindStringSubmatch(rw.Body.String())
	if m == nil {
		t.Fatalf("no lost counter for the full disk in the metrics")
	}
	if n, _ := strconv.ParseUint(m[1], 10, 64); n != st.Destinations[0].Lost {
		t.Errorf("metrics lost %d, Stats %d", n, st.Destinations[0].Lost)
	}
}
