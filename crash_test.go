package skyline_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
)

// TestRecordingSurvivesKill: a program recording to .mp4, .mov and
// segmented .mp4 is killed with SIGKILL in the middle of a keyframe
// interval; ffprobe then decodes from each recording at least every frame
// the program had written before the kill except the last keyframe
// interval. The recording runs in a child process (this test binary again).
func TestRecordingSurvivesKill(t *testing.T) {
	const w, h, fps, gop = 320, 240, 30, 30 // a keyframe every second
	if os.Getenv(childEnv) == t.Name() {
		crashChild(t, os.Getenv("DIR"), w, h, fps, gop)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name(), "DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	// The child reports, after each frame, how many access units every
	// file destination has taken. Kill it mid-interval once 4 s are in.
	written := -1
	bound := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() }) // ends the read below
	defer bound.Stop()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "written "))
		if err != nil {
			continue
		}
		if n >= 4*fps && n%gop >= gop/3 && n%gop < 2*gop/3 {
			written = n
			_ = cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	if written < 0 {
		t.Fatalf("the child ended, or took over a minute, before it was killed: %v\n%s", cmd.Wait(), stderr.String())
	}
	_ = cmd.Wait()
	killed = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, lose := range map[string]int{"rec.mp4": gop, "rec.mov": gop, "seg-*.mp4": gop} {
		files, _ := filepath.Glob(filepath.Join(dir, name))
		sort.Strings(files)
		if len(files) == 0 {
			t.Errorf("%s: no file", name)
			continue
		}
		decoded := 0
		for _, f := range files {
			st, err := mediatest.Probe(ctx, f)
			if err != nil {
				t.Errorf("%s after kill -9: %v", filepath.Base(f), err)
				continue
			}
			decoded += st.Frames
			t.Logf("%s: %d frames", filepath.Base(f), st.Frames)
		}
		t.Logf("%s: %d files, %d frames decoded of %d written before the kill", name, len(files), decoded, written)
		if decoded < written-lose {
			t.Errorf("%s: %d frames decoded after kill -9, want at least %d (all %d written but the last %d)",
				name, decoded, written-lose, written, lose)
		}
	}
}

func crashChild(t *testing.T, dir string, w, h, fps, gop int) {
	mp4, err := skyline.NewFile(filepath.Join(dir, "rec.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	mov, err := skyline.NewFile(filepath.Join(dir, "rec.mov"))
	if err != nil {
		t.Fatal(err)
	}
	seg, err := skyline.NewSegmentedFile(filepath.Join(dir, "seg-%03d.mp4"), 2*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, QueueSize: 64,
		Encoder: skyline.Encoder{KeyframeInterval: time.Duration(gop) * time.Second / time.Duration(fps)}}, mp4, mov, seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sl.Start(skyline.Params{FPS: float64(fps), Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(time.Second / time.Duration(fps))
	for i := 0; ; i++ { // until killed
		<-tick.C
		if ok, err := sl.Put(bgr(w, h, i)); !ok {
			t.Fatalf("Put %d: %v", i, err)
		}
		st := sl.Stats()
		fmt.Printf("written %d\n", st.Written)
	}
}
