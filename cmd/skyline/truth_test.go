package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testlog"
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
			var other testlog.Buffer
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

// TestServeTimestampsFastProducer: a 10 s clip at 30 fps decoded by ffmpeg
// and piped as fast as the pipe takes it records as 10.0 s (+/- one frame) with the default
// --timestamps (it used to last about 0.6 s: frames were stamped when they
// arrived) and with fixed.
func TestServeTimestampsFastProducer(t *testing.T) {
	const w, h, n, fps = 160, 120, 300, 30
	for _, mode := range []string{"", "fixed"} {
		t.Run("mode="+mode, func(t *testing.T) {
			rec := filepath.Join(t.TempDir(), "rec.mkv")
			args := []string{"serve", "--input", "stdin", "--size", fmt.Sprintf("%dx%d", w, h), "--fps", fmt.Sprint(fps),
				"--no-rtsp", "--status", "never", "--out", "file:" + rec}
			if mode != "" {
				args = append(args, "--timestamps", mode)
			}
			c := startCLI(t, args...)
			// The clip, decoded by ffmpeg as fast as it can.
			ff := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi",
				"-i", fmt.Sprintf("testsrc=size=%dx%d:rate=%d", w, h, fps), "-t", "10", "-f", "rawvideo", "-pix_fmt", "bgr24", "-")
			ff.Stdout = c.stdin
			if err := ff.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { _ = ff.Wait(); _ = c.stdin.Close() }()
			last := c.line(t, "stopped after")
			if code := c.wait(t); code != 0 {
				t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
			}
			// Frames the encoder could not take at once were retried, not
			// lost: none is counted as dropped.
			if !strings.Contains(last, fmt.Sprintf("stopped after %d frames (%d encoded, 0 dropped)", n, n)) {
				t.Errorf("last line %q", last)
			}
			ts := packetTimes(t, rec)
			if len(ts) != n {
				t.Fatalf("%d packets, want %d", len(ts), n)
			}
			if d := ts[n-1] - ts[0] + 1.0/fps; d < 10-1.0/fps || d > 10+1.0/fps {
				t.Fatalf("recording lasts %.3f s, want 10.0 s +/- one frame", d)
			}
		})
	}
}

// TestServeTimestampsPacedProducer: a live producer at 20 fps that pauses
// for 600 ms keeps its real timing, pause included, with --timestamps
// arrival, and with the default to within one frame.
func TestServeTimestampsPacedProducer(t *testing.T) {
	// Frames larger than a pipe's buffer (64 KiB): a write returns when
	// SkyLine has read most of the frame, so "sent" is close to "read".
	const w, h, n = 320, 240, 41
	for _, mode := range []string{"arrival", ""} {
		t.Run("mode="+mode, func(t *testing.T) {
			rec := filepath.Join(t.TempDir(), "rec.mkv")
			args := []string{"serve", "--input", "stdin", "--size", fmt.Sprintf("%dx%d", w, h), "--fps", "20",
				"--no-rtsp", "--status", "never", "--out", "file:" + rec}
			if mode != "" {
				args = append(args, "--timestamps", mode)
			}
			c := startCLI(t, args...)
			buf := testpattern.NewBGR(w, h, 0)
			if _, err := c.stdin.Write(buf); err != nil { // the first frame starts the stream
				t.Fatal(err)
			}
			c.line(t, "SkyLine: streaming")
			// Frames 1..n-1 at 20 fps, with a 600 ms pause after frame 20.
			sent := make([]time.Time, n)
			next := time.Now()
			for i := 1; i < n; i++ {
				time.Sleep(time.Until(next))
				testpattern.DrawBGR(buf, w, h, i)
				if _, err := c.stdin.Write(buf); err != nil {
					t.Fatal(err)
				}
				sent[i] = time.Now()
				next = next.Add(50 * time.Millisecond)
				if i == 20 {
					next = next.Add(600 * time.Millisecond)
				}
			}
			_ = c.stdin.Close()
			c.line(t, "stopped after")
			if code := c.wait(t); code != 0 {
				t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
			}
			ts := packetTimes(t, rec)
			if len(ts) != n {
				t.Fatalf("%d packets, want %d", len(ts), n)
			}
			// Frame 0 waited for the stream to start: compare from frame 1.
			// The default spaces frames at least 1/fps apart, so frame 1,
			// read right after frame 0, may start one frame late; that lag
			// goes at the pause.
			tol := 0.05 // one frame period: a burst or a squeeze is far more
			if mode == "" {
				tol += 0.05
			}
			for i := 2; i < n; i++ {
				got, want := ts[i]-ts[1], sent[i].Sub(sent[1]).Seconds()
				if d := got - want; d < -tol || d > tol {
					t.Errorf("frame %d at %.3f s after frame 1, sent %.3f s after it", i, got, want)
				}
			}
		})
	}
}

// framedHeader is the framed format's header, as the README's Python
// producer packs it (struct "<4sqII8s").
func framedHeaderBytes(capture time.Time, w, h int, format string) []byte {
	b := make([]byte, 28)
	copy(b, "SKYF")
	ns := uint64(capture.UnixNano())
	for i := 0; i < 8; i++ {
		b[4+i] = byte(ns >> (8 * i))
	}
	for i := 0; i < 4; i++ {
		b[12+i], b[16+i] = byte(uint32(w)>>(8*i)), byte(uint32(h)>>(8*i))
	}
	copy(b[20:], format)
	return b
}

// bgrToI420 converts a BGR picture to I420 (BT.601 video range), for a
// producer that sends i420.
func bgrToI420(bgr []byte, w, h int) []byte {
	out := make([]byte, w*h*3/2)
	u, v := out[w*h:w*h+w*h/4], out[w*h+w*h/4:]
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			b, g, r := float64(bgr[(y*w+x)*3]), float64(bgr[(y*w+x)*3+1]), float64(bgr[(y*w+x)*3+2])
			out[y*w+x] = byte(16 + 0.257*r + 0.504*g + 0.098*b)
			if x%2 == 0 && y%2 == 0 {
				u[(y/2)*(w/2)+x/2] = byte(128 - 0.148*r - 0.291*g + 0.439*b)
				v[(y/2)*(w/2)+x/2] = byte(128 + 0.439*r - 0.368*g - 0.071*b)
			}
		}
	}
	return out
}

// TestServeFramedInput: a framed producer (a header with capture time,
// size and pixel format before each frame) that captures at 20 fps but
// sends in bursts of five, changes its size and pixel format mid-stream:
// every frame is recorded at the stream's size, at its capture time (not
// at the bursts' arrival), and the pictures are right.
func TestServeFramedInput(t *testing.T) {
	const w, h, n = 320, 240, 30
	rec := filepath.Join(t.TempDir(), "rec.mkv")
	c := startCLI(t, "serve", "--input", "stdin", "--format", "framed", "--fps", "20",
		"--no-rtsp", "--status", "never", "--out", "file:"+rec)
	type shape struct {
		w, h   int
		format string
	}
	shapes := []shape{{w, h, "bgr24"}, {w, h, "i420"}, {640, 480, "bgr24"}, {160, 120, "bgr24"}, {w, h, "gray"}, {w, h, "bgr24"}}
	captured := make([]time.Time, n)
	var batch []byte
	next := time.Now()
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(next))
		next = next.Add(50 * time.Millisecond)
		s := shapes[i/5]
		captured[i] = time.Now()
		pic := testpattern.NewBGR(s.w, s.h, i)
		switch s.format {
		case "i420":
			pic = bgrToI420(pic, s.w, s.h)
		case "gray":
			pic = bgrToI420(pic, s.w, s.h)[:s.w*s.h]
		}
		batch = append(append(batch, framedHeaderBytes(captured[i], s.w, s.h, s.format)...), pic...)
		if i%5 == 4 { // a burst of five frames
			if _, err := c.stdin.Write(batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	_ = c.stdin.Close()
	c.line(t, "stopped after")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
	}
	ts := packetTimes(t, rec)
	if len(ts) != n {
		t.Fatalf("%d packets, want %d", len(ts), n)
	}
	for i := 1; i < n; i++ {
		got, want := ts[i]-ts[0], captured[i].Sub(captured[0]).Seconds()
		if d := got - want; d < -0.002 || d > 0.002 {
			t.Errorf("frame %d at %.3f s after frame 0, captured %.3f s after it", i, got, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := mediatest.Decode(ctx, rec, w, h, nil, nil, func(i int, bgr []byte) error {
		if s := shapes[i/5]; s.w == w && s.format != "gray" {
			if got, ok := testpattern.ReadBGR(bgr, w, h); !ok || got != i {
				return fmt.Errorf("picture %d (%s) reads as frame %d (%v)", i, s.format, got, ok)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := probeFrames(t, rec); st.Width != w || st.Height != h || st.Frames != n {
		t.Fatalf("recording %+v", st)
	}
}

// TestServeRefusedAtStart: a command line that cannot work is refused
// before anything starts, with the reason, exit status 2 (as Go's flag
// package), and leaves no file behind: unwritable destinations, pictures
// too small for mp4/mov, push URLs with impossible ports, one file named
// twice, and flag values that do not parse.
func TestServeRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "folder.mkv"), 0o755); err != nil {
		t.Fatal(err)
	}
	testsrc := func(size string, more ...string) []string {
		return append([]string{"--input", "testsrc", "--size", size, "--frames", "30"}, more...)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		reason string
	}{
		{"read-only fs", testsrc("64x48", "--out", "file:/sys/rec.mkv"), "cannot write in /sys"},
		{"no folder", testsrc("64x48", "--out", "file:missing/rec.mkv"), "missing"},
		{"folder", testsrc("64x48", "--out", "file:folder.mkv"), "folder.mkv is a folder"},
		{"segments read-only", testsrc("64x48", "--out", "file:/sys/rec-%05d.mp4?segment=2s"), "cannot write in /sys"},
		{"mp4 8x8", testsrc("8x8", "--out", "file:rec.mp4"), "need at least 16x16"},
		{"mp4 15x16", testsrc("15x16", "--out", "file:rec.mp4"), "need at least 16x16"},
		{"mov 64x14", testsrc("64x14", "--out", "file:rec.mov"), "need at least 16x16"},
		{"m4v 2x2", testsrc("2x2", "--out", "file:rec.m4v"), "need at least 16x16"},
		{"segmented mp4 8x8", testsrc("8x8", "--out", "file:rec-%05d.mp4?segment=2s"), "need at least 16x16"},
		{"framed mp4 8x8", []string{"--input", "stdin", "--format", "framed", "--out", "file:rec.mp4"}, "need at least 16x16"},
		{"srt port", testsrc("64x48", "--out", "srt://127.0.0.1:99999"), `port "99999"`},
		{"srt no port", testsrc("64x48", "--out", "srt://127.0.0.1"), "needs a port"},
		{"rtmp port", testsrc("64x48", "--out", "rtmp://127.0.0.1:0/app/SecretKey7"), `port "0"`},
		{"rtsp port", testsrc("64x48", "--out", "rtsp://127.0.0.1:70000/x"), `port "70000"`},
		{"same file", testsrc("64x48", "--out", "file:d.mkv", "--out", "file:./d.mkv"), "name the same file"},
		{"same file abs", testsrc("64x48", "--out", "file:d.mkv", "--out", "file:"+filepath.Join(dir, "d.mkv")), "name the same file"},
		{"fps nan", testsrc("64x48", "--fps", "nan", "--out", "file:d.mkv"), "--fps NaN"},
		{"frames -1", testsrc("64x48", "--frames", "-1", "--out", "file:d.mkv"), "--frames -1"},
		{"log level", testsrc("64x48", "--log-level", "loud", "--out", "file:d.mkv"), "--log-level"},
		{"input", []string{"--input", "bogus", "--out", "file:d.mkv"}, "--input"},
		{"pix-fmt", []string{"--input", "stdin", "--size", "64x48", "--pix-fmt", "yuv9", "--out", "file:d.mkv"}, "--pix-fmt"},
		{"format", []string{"--input", "stdin", "--format", "bogus", "--out", "file:d.mkv"}, "--format"},
		{"timestamps", testsrc("64x48", "--timestamps", "bogus", "--out", "file:d.mkv"), "--timestamps"},
		{"unknown flag", []string{"--bogus"}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, append([]string{"serve", "--no-rtsp", "--status", "never"}, tc.args...)...)
			cmd.Dir = dir
			if len(tc.args) > 1 && tc.args[1] == "stdin" { // one 8x8 framed frame
				cmd.Stdin = strings.NewReader(string(framedHeaderBytes(time.Now(), 8, 8, "bgr24")) + string(make([]byte, 8*8*3)))
			}
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), tc.reason) {
				t.Errorf("exit %d (%v), want 2 and %q in: %s", code, err, tc.reason, out)
			}
			if strings.Contains(string(out), "SecretKey7") || strings.Contains(string(out), "panic") {
				t.Errorf("output: %s", out)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != "folder.mkv" {
					t.Errorf("left %s behind", e.Name())
					_ = os.RemoveAll(filepath.Join(dir, e.Name()))
				}
			}
		})
	}
	// The sizes those containers take, and the others at any size, work.
	for _, tc := range []struct{ size, file string }{{"16x16", "ok.mp4"}, {"8x8", "ok.mkv"}, {"8x8", "ok.ts"}} {
		out, err := exec.Command(binary, "serve", "--no-rtsp", "--status", "never", "--input", "testsrc", "--size", tc.size,
			"--frames", "10", "--out", "file:"+filepath.Join(dir, tc.file)).CombinedOutput()
		if err != nil {
			t.Fatalf("%s at %s: %v: %s", tc.file, tc.size, err, out)
		}
		if st := probeFrames(t, filepath.Join(dir, tc.file)); st.Frames != 10 {
			t.Errorf("%s: %+v", tc.file, st)
		}
	}
}

// TestServeExitStatusNeverConnected: a push that never connects (nothing
// listens at its port) ends in exit 1 with a summary line saying it
// delivered nothing, for each kind of push, and is never said to have
// "recovered" (SRT's short connect_timeout makes it fail and retry while
// the stream runs); a recording next to it is complete and its line says
// so.
func TestServeExitStatusNeverConnected(t *testing.T) {
	for _, url := range []string{"rtsp://127.0.0.1:%d/x", "rtmp://127.0.0.1:%d/app/SecretKey7",
		"srt://127.0.0.1:%d?connect_timeout=300&streamid=SecretKey7"} {
		t.Run(strings.Split(url, ":")[0], func(t *testing.T) {
			rec := filepath.Join(t.TempDir(), "rec.mkv")
			port := freePort(t) // closed again: nothing listens there
			if strings.HasPrefix(url, "srt") {
				port = freeUDPPort(t)
			}
			c := startCLI(t, "serve", "--no-rtsp", "--status", "never", "--input", "testsrc", "--size", "160x120",
				"--frames", "45", "--out", fmt.Sprintf(url, port), "--out", "file:"+rec)
			c.line(t, "FAILED: delivered nothing")
			c.line(t, "file:"+rec+": 45 access units written, 0 lost: ok")
			if code := c.wait(t); code != 1 {
				t.Fatalf("exit %d, want 1; stderr: %s", code, c.stderr.String())
			}
			if stderr := c.stderr.String(); !strings.Contains(stderr, "delivered nothing") || strings.Contains(stderr, "SecretKey7") ||
				strings.Contains(stderr, "recovered") {
				t.Fatalf("stderr: %s", stderr)
			}
			if st := probeFrames(t, rec); st.Frames != 45 {
				t.Fatalf("recording: %+v", st)
			}
		})
	}
}

// TestServeSRTDelivered: the other side of the rule above, an SRT push to a
// real receiver (ffmpeg listening) counts every access unit written, exits
// 0, and the receiver decodes the pictures.
func TestServeSRTDelivered(t *testing.T) {
	port := freeUDPPort(t)
	got := filepath.Join(t.TempDir(), "got.mkv")
	ff := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-i", fmt.Sprintf("srt://127.0.0.1:%d?mode=listener", port),
		"-c", "copy", "-f", "matroska", got)
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	ffDone := make(chan error, 1)
	go func() { ffDone <- ff.Wait() }()
	defer func() { _ = ff.Process.Kill(); <-ffDone }()
	// The caller repeats its handshake until ffmpeg listens (connect_timeout).
	c := startCLI(t, "serve", "--no-rtsp", "--status", "never", "--input", "testsrc", "--size", "160x120",
		"--frames", "45", "--out", fmt.Sprintf("srt://127.0.0.1:%d", port))
	c.line(t, fmt.Sprintf("push:srt://127.0.0.1:%d: 45 access units written, 0 lost: ok", port))
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d, want 0; stderr: %s", code, c.stderr.String())
	}
	select { // the receiver ends when the publisher closes
	case <-ffDone:
		ffDone <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("ffmpeg did not end after the publisher closed")
	}
	// SRT's live mode drops what is in flight at close: the last picture
	// may be cut (ffmpeg says so on stderr), the others decode.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := 0
	if err := mediatest.Decode(ctx, got, 160, 120, nil, nil, func(int, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n < 40 {
		t.Fatalf("decoded %d pictures, want about 45", n)
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestServeSmallItems: a camera that cannot start reports GStreamer's
// reason (the bus used to be read after the pipeline was closed: a
// GStreamer-CRITICAL and "state change failed"); every command's flag errors
// exit 2; help is printed once.
func TestServeSmallItems(t *testing.T) {
	for dev, reason := range map[string]string{"/dev/null": "v4l2", "/dev/video-skyline-none": "Cannot identify device"} {
		out, err := exec.Command(binary, "serve", "--no-rtsp", "--status", "never", "--input", "v4l2:"+dev,
			"--out", "file:"+filepath.Join(t.TempDir(), "x.mkv")).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), reason) ||
			!strings.Contains(string(out), dev) || strings.Contains(string(out), "CRITICAL") ||
			strings.Contains(string(out), "state change") {
			t.Errorf("v4l2:%s: %v: %s", dev, err, out)
		}
	}
	// Every command refuses what it cannot parse with exit status 2, as Go's
	// flag package does.
	for _, args := range [][]string{{"serve", "extra"}, {"serve", "--bogus"}, {"serve", "--fps", "x"},
		{"kvs-local", "extra"}, {"kvs-local", "--bogus"}, {"kvs-local", "--log-level", "loud"},
		{"doctor", "extra"}, {"doctor", "--bogus"}, {"version", "extra"}, {"nosuchcommand"}, {}} {
		cmd := exec.Command(binary, args...)
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 || len(out) == 0 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, out)
		}
	}
	for _, sub := range []string{"serve", "kvs-local", "doctor"} {
		out, err := exec.Command(binary, sub, "--help").CombinedOutput()
		if err != nil || strings.Count(string(out), "Usage of "+sub) != 1 || strings.Count(string(out), "  -log-level") > 1 {
			t.Errorf("%s --help: %v: %s", sub, err, out)
		}
	}
}

// TestServeHeadPipeline runs the reported form as written: ffmpeg feeds a
// live 5 s clip, the status line goes to `head -c 200`, which exits after
// two status lines; skyline exits 0 at the end of the input and the
// recording is complete.
func TestServeHeadPipeline(t *testing.T) {
	dir := t.TempDir()
	script := `set -o pipefail; ffmpeg -v error -nostdin -re -f lavfi -i testsrc=size=160x120:rate=30 -t 5 -f rawvideo -pix_fmt bgr24 - | ` +
		binary + ` serve --input stdin --size 160x120 --fps 30 --no-rtsp --status always --out file:rec.mp4 | head -c 200 >/dev/null`
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if st := probeFrames(t, filepath.Join(dir, "rec.mp4")); st.Frames != 150 {
		t.Fatalf("recording: %+v, want 150 frames", st)
	}
}

// TestReadmeFramedPython runs the README's Python producer for the framed
// format as written (the code block with b"SKYF"), sending frames of two
// sizes at 20 fps: every frame is recorded at the first frame's size, at
// the capture times the producer stamped.
func TestReadmeFramedPython(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var snippet string
	for _, block := range strings.Split(string(readme), "```python\n")[1:] {
		if code, _, _ := strings.Cut(block, "```"); strings.Contains(code, `b"SKYF"`) {
			snippet = code
		}
	}
	if snippet == "" {
		t.Fatal(`no python block with b"SKYF" in README.md`)
	}
	if n := strings.Count(strings.TrimSpace(snippet), "\n") + 1; n > 5 {
		t.Errorf("the README's producer has %d lines, promised five", n)
	}
	// The loop keeps the capture times send() stamps (time.time_ns) to
	// compare them with the recording.
	script := snippet + `
import numpy as np
stamps, clock = [], time.time_ns
def stamp():
    stamps.append(clock())
    return stamps[-1]
time.time_ns = stamp
for i in range(30):
    w, h = (320, 240) if i < 15 else (640, 480)
    send(np.full((h, w, 3), (i * 8) % 256, np.uint8))
    sys.stdout.buffer.flush()
    time.sleep(0.05)
open(sys.argv[1], "w").write("\n".join(str(s) for s in stamps))
`
	dir := t.TempDir()
	rec, stampFile := filepath.Join(dir, "rec.mkv"), filepath.Join(dir, "stamps")
	cmd := exec.Command("bash", "-c", `set -o pipefail; /usr/bin/python3 -c "$SCRIPT" `+stampFile+` | `+binary+
		` serve --input stdin --format framed --fps 30 --no-rtsp --status never --out file:`+rec)
	cmd.Env = append(os.Environ(), "SCRIPT="+script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if st := probeFrames(t, rec); st.Frames != 30 || st.Width != 320 || st.Height != 240 {
		t.Fatalf("recording %+v", st)
	}
	b, err := os.ReadFile(stampFile)
	if err != nil {
		t.Fatal(err)
	}
	var stamps []int64
	for _, l := range strings.Fields(string(b)) {
		v, err := strconv.ParseInt(l, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		stamps = append(stamps, v)
	}
	ts := packetTimes(t, rec)
	if len(stamps) != 30 || len(ts) != 30 {
		t.Fatalf("%d stamps, %d packets", len(stamps), len(ts))
	}
	for i := 1; i < len(ts); i++ {
		got, want := ts[i]-ts[0], float64(stamps[i]-stamps[0])/1e9
		if d := got - want; d < -0.002 || d > 0.002 {
			t.Errorf("frame %d at %.3f s after frame 0, captured %.3f s after it", i, got, want)
		}
	}
}
