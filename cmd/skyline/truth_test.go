package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
)

// packetTimes are the presentation times (s) of the video packets of a
// recording, in order.
func packetTimes(t *testing.T, file string) []float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time", "-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var ts []float64
	for _, l := range strings.Fields(string(out)) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64)
		if err != nil {
			t.Fatalf("ffprobe %s: pts %q", file, l)
		}
		ts = append(ts, v)
	}
	sort.Float64s(ts)
	return ts
}

// probeFrames decodes a recording and returns its frame count.
func probeFrames(t *testing.T, file string) mediatest.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := mediatest.Probe(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// feedBGR writes n numbered BGR test pictures of w x h as fast as the pipe
// takes them, then closes it.
func feedBGR(w io.WriteCloser, n, width, height int) {
	buf := make([]byte, width*height*3)
	for i := 0; i < n; i++ {
		testpattern.DrawBGR(buf, width, height, i)
		if _, err := w.Write(buf); err != nil {
			break
		}
	}
	_ = w.Close()
}

// TestServeOutputReaderGone: a reader of SkyLine's stdout or stderr that is
// gone (`skyline serve ... | head -c 200`) costs only that output: the
// recording goes on, the end of the input still finalises it, exit 0. The
// pipe's reader is closed before SkyLine writes anything, so the first line
// printed meets a broken pipe (it used to end the process with SIGPIPE, exit
// 141, and an unplayable .mp4).
func TestServeOutputReaderGone(t *testing.T) {
	const w, h, n = 320, 240, 300
	for _, which := range []string{"stdout", "stderr"} {
		t.Run(which, func(t *testing.T) {
			rec := filepath.Join(t.TempDir(), "rec.mp4")
			cmd := exec.Command(binary, "serve", "--input", "stdin", "--size", fmt.Sprintf("%dx%d", w, h), "--fps", "30",
				"--no-rtsp", "--status", "always", "--log-level", "debug", "--out", "file:"+rec)
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			_ = pr.Close() // the reader is gone
			var other lockedBuffer
			if which == "stdout" {
				cmd.Stdout, cmd.Stderr = pw, &other
			} else {
				cmd.Stdout, cmd.Stderr = &other, pw
			}
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			_ = pw.Close()
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			go feedBGR(in, n, w, h)
			errc := make(chan error, 1)
			go func() { errc <- cmd.Wait() }()
			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("%v (the %s reader is gone); other output: %s", err, which, other.String())
				}
			case <-time.After(90 * time.Second):
				t.Fatal("skyline did not exit")
			}
			if st := probeFrames(t, rec); st.Frames != n || st.Width != w || st.Height != h {
				t.Fatalf("recording: %+v, want %d frames", st, n)
			}
		})
	}
}
