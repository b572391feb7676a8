package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testlog"
	"github.com/skyline-go/skyline/internal/testpattern"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "skyline-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "skyline")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// cli runs the skyline binary with a stdin pipe.
type cli struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr testlog.Buffer
	done   chan error
}

func startCLI(t *testing.T, args ...string) *cli {
	t.Helper()
	return startCLIIn(t, "", nil, args...)
}

// startCLIIn runs the binary in dir (or the test's folder) with extra
// environment variables.
func startCLIIn(t *testing.T, dir string, env []string, args ...string) *cli {
	t.Helper()
	c := &cli{cmd: exec.Command(binary, args...), lines: make(chan string, 100), done: make(chan error, 1)}
	c.cmd.Dir = dir
	if env != nil {
		c.cmd.Env = append(os.Environ(), env...)
	}
	c.cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.done <- c.cmd.Wait()
	}()
	t.Cleanup(func() { _ = c.cmd.Process.Kill() })
	return c
}

// line waits for a stdout line containing substr.
func (c *cli) line(t *testing.T, substr string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("skyline exited before printing %q; stderr: %s", substr, c.stderr.String())
			}
			if strings.Contains(l, substr) {
				return l
			}
		case <-timeout:
			t.Fatalf("no line with %q; stderr: %s", substr, c.stderr.String())
		}
	}
}

// waitStderr waits until what stderr holds satisfies cond (checked at each
// write), for at most d; else the test fails, naming what.
func (c *cli) waitStderr(t *testing.T, d time.Duration, what string, cond func(stderr string) bool) {
	t.Helper()
	if !c.stderr.WaitFor(d, cond) {
		t.Fatalf("no %s within %v; stderr: %s", what, d, c.stderr.String())
	}
}

func (c *cli) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-c.done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		t.Fatalf("skyline did not exit; stderr: %s", c.stderr.String())
	}
	return -1
}

// TestServeStdin runs the exact documented form: raw BGR frames piped into
// stdin, read back by ffmpeg over RTSP with their numbers consecutive; at EOF
// the program shuts down cleanly and exits 0.
func TestServeStdin(t *testing.T) {
	const w, h, total, watch = 1280, 720, 240, 45
	port := freePort(t)
	c := startCLI(t, "serve", "--input", "stdin", "--pix-fmt", "bgr24", "--size", "1280x720", "--fps", "30",
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--path", "/x")
	frames := make([][]byte, 8)
	for i := range frames {
		frames[i] = make([]byte, w*h*3)
	}
	written := make(chan int, total)
	go func() {
		// A producer at 30 fps, like a vision loop: frame i carries number i.
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for i := 0; i < total; i++ {
			buf := frames[i%len(frames)]
			testpattern.DrawBGR(buf, w, h, i)
			if _, err := c.stdin.Write(buf); err != nil {
				return
			}
			written <- i
			<-tick.C
		}
		_ = c.stdin.Close()
	}()
	url := strings.Fields(c.line(t, "SkyLine: streaming"))[4]
	if url != fmt.Sprintf("rtsp://127.0.0.1:%d/x", port) {
		t.Fatalf("printed URL %q", url)
	}
	c.line(t, "ffplay")
	for i := range written { // let a few frames flow before the viewer joins
		if i >= 10 {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prev, got := -1, 0
	err := mediatest.Decode(ctx, url, w, h, []string{"-rtsp_transport", "tcp"}, []string{"-frames:v", fmt.Sprint(watch)},
		func(i int, bgr []byte) error {
			n, ok := testpattern.ReadBGR(bgr, w, h)
			if !ok {
				return fmt.Errorf("picture %d: frame number unreadable", i)
			}
			if prev >= 0 && n != prev+1 {
				return fmt.Errorf("picture %d: frame %d after %d", i, n, prev)
			}
			if p := mediatest.PSNR(bgr, testpattern.NewBGR(w, h, n)); p < 30 {
				return fmt.Errorf("frame %d: PSNR %.1f dB", n, p)
			}
			prev = n
			got++
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if got != watch {
		t.Fatalf("decoded %d pictures, want %d", got, watch)
	}
	last := c.line(t, "stopped after")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
	}
	if !strings.Contains(last, fmt.Sprintf("stopped after %d frames (%d encoded", total, total)) {
		t.Fatalf("last line %q, want all %d frames", last, total)
	}
}

// TestServeStdinShortRead: a stream that ends inside a frame (or a wrong
// --size) is reported, the frames before it are delivered, exit status 1.
func TestServeStdinShortRead(t *testing.T) {
	const w, h = 320, 240
	c := startCLI(t, "serve", "--input", "stdin", "--size", "320x240", "--fps", "30",
		"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--no-udp", "--status", "never")
	for i := 0; i < 10; i++ {
		if _, err := c.stdin.Write(testpattern.NewBGR(w, h, i)); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = c.stdin.Write(make([]byte, w*h)) // a third of a frame
	_ = c.stdin.Close()
	last := c.line(t, "stopped after")
	if code := c.wait(t); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(last, "stopped after 10 frames (10 encoded") {
		t.Fatalf("last line %q", last)
	}
	if msg := c.stderr.String(); !strings.Contains(msg, "inside a frame (76800 of 230400 bytes)") || !strings.Contains(msg, "--size") {
		t.Fatalf("stderr: %s", msg)
	}
}

func TestServeBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--input", "stdin"},
		{"serve", "--input", "stdin", "--size", "12"},
		{"serve", "--size", "0x10"},
		{"serve", "--fps", "-1"},
		{"serve", "--producer-timeout", "0"},
		{"serve", "--input", "bogus", "--no-udp", "--listen", "127.0.0.1:0"},
		{"serve", "--user", "u"},
		{"serve", "--input", "stdin", "--size", "64x48", "--pix-fmt", "yuv9"},
		{"nosuchcommand"},
	} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() == 0 || len(out) == 0 || strings.Contains(string(out), "panic") {
			t.Errorf("%v: err %v, output %q", args, err, out)
		}
	}
}

// TestServeOutputs runs the documented multi-destination form as written:
// publish to an RTSP receiver (ffmpeg listening) and record 2 s segments,
// next to the RTSP server; Ctrl-C ends it cleanly.
func TestServeOutputs(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	recv := filepath.Join(dir, "received.mkv")
	ff := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-rtsp_flags", "listen", "-timeout", "30",
		"-i", fmt.Sprintf("rtsp://127.0.0.1:%d/live", port), "-c", "copy", "-f", "matroska", recv)
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ff.Process.Kill(); _ = ff.Wait() })

	c := startCLIIn(t, dir, nil, "serve", "--input", "testsrc",
		"--out", fmt.Sprintf("rtsp://127.0.0.1:%d/live", port), "--out", "file:rec-%05d.mp4?segment=2s")
	c.line(t, "rtsp://127.0.0.1:8554/skyline")
	// Three segments exist once the third has started (about 4 s in).
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "rec-00002.mp4")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no third segment; stderr: %s", c.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	c.line(t, "stopped after")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
	}
	_ = ff.Process.Signal(os.Interrupt)
	_ = ff.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	segs, _ := filepath.Glob(filepath.Join(dir, "rec-*.mp4"))
	if len(segs) < 3 {
		t.Fatalf("segments %v, want at least 3", segs)
	}
	sort.Strings(segs)
	for i, f := range append(segs, recv) {
		st, err := mediatest.Probe(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		// Every full segment holds 2 s; the last one ends at Ctrl-C.
		minFrames := 30
		if i == len(segs)-1 {
			minFrames = 1
		}
		if st.Codec != "h264" || st.Width != 1280 || st.Height != 720 || st.Frames < minFrames {
			t.Errorf("%s: %+v", filepath.Base(f), st)
		}
	}
}

// TestServeFileInput restreams a video file (decoded by GStreamer) into a
// recording, without the RTSP server.
func TestServeFileInput(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "in.mp4"), filepath.Join(dir, "out.mkv")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
		"-frames:v", "45", "-pix_fmt", "yuv420p", src).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	c := startCLI(t, "serve", "--input", "file:"+src, "--no-rtsp", "--out", "file:"+dst, "--status", "never")
	last := c.line(t, "stopped after")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
	}
	if !strings.Contains(last, "stopped after 45 frames (45 encoded") {
		t.Fatalf("last line %q", last)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := mediatest.Probe(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Codec != "h264" || st.Width != 320 || st.Height != 240 || st.Frames != 45 {
		t.Fatalf("recording: %+v", st)
	}
	if out, _ := exec.Command(binary, "serve", "--no-rtsp").CombinedOutput(); !strings.Contains(string(out), "--no-rtsp needs") {
		t.Errorf("--no-rtsp without --out: %s", out)
	}
}

// TestServeToLocalKVS runs the documented KVS form as written, against
// `skyline kvs-local`: the media appears under the endpoint's folder as
// files ffprobe reads.
func TestServeToLocalKVS(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	creds := []string{"AWS_ACCESS_KEY_ID=AKIDSKYLINETEST", "AWS_SECRET_ACCESS_KEY=skyline-test-secret", "AWS_REGION=us-east-1"}
	local := exec.Command(binary, "kvs-local", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data", dir)
	local.Env = append(os.Environ(), creds...)
	localOut, err := local.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var localErr testlog.Buffer
	local.Stderr = &localErr
	if err := local.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = local.Process.Kill(); _ = local.Wait() })
	sc := bufio.NewScanner(localOut)
	if !sc.Scan() || !strings.Contains(sc.Text(), "endpoint at http://127.0.0.1:") {
		t.Fatalf("kvs-local did not start: %q %s", sc.Text(), localErr.String())
	}
	go func() { // keep reading its output
		for sc.Scan() {
		}
	}()

	c := startCLIIn(t, "", append(creds, fmt.Sprintf("AWS_ENDPOINT_URL_KINESIS_VIDEO=http://127.0.0.1:%d", port)),
		"serve", "--input", "testsrc", "--no-rtsp", "--out", "kvs://us-east-1/demo")
	c.line(t, "out:     kvs")
	// Wait until two fragments (2 s each) are stored, then stop.
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "demo", "fragments.jsonl"))
		if bytes.Count(b, []byte("\n")) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fragments stored; serve stderr: %s; kvs-local: %s", c.stderr.String(), localErr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	c.line(t, "stopped after")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "demo", "*.mkv"))
	if len(files) == 0 {
		t.Fatal("no media files stored")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	frames := 0
	for _, f := range files {
		st, err := mediatest.Probe(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Codec != "h264" || st.Width != 1280 || st.Height != 720 {
			t.Fatalf("%s: %+v", filepath.Base(f), st)
		}
		frames += st.Frames
	}
	if frames < 60 {
		t.Fatalf("%d frames stored", frames)
	}
	if strings.Contains(c.stderr.String()+localErr.String(), "skyline-test-secret") {
		t.Fatal("a secret reached the logs")
	}
}

// TestServeStdinTinyOddSizes: pictures of 1x1 and 3x3 stream (at 2x2, the
// smallest 4:2:0 size); they used to end in "stream is WARMUP".
func TestServeStdinTinyOddSizes(t *testing.T) {
	for _, sz := range []struct{ w, h int }{{1, 1}, {3, 3}} {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			c := startCLI(t, "serve", "--input", "stdin", "--size", fmt.Sprintf("%dx%d", sz.w, sz.h), "--fps", "30",
				"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--no-udp", "--status", "never")
			for i := 0; i < 10; i++ {
				if _, err := c.stdin.Write(testpattern.NewBGR(sz.w, sz.h, i)); err != nil {
					t.Fatal(err)
				}
			}
			_ = c.stdin.Close()
			last := c.line(t, "stopped after")
			if code := c.wait(t); code != 0 {
				t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
			}
			if !strings.Contains(last, "stopped after 10 frames (10 encoded") {
				t.Fatalf("last line %q; stderr: %s", last, c.stderr.String())
			}
		})
	}
}
