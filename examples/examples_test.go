// Package examples_test builds every example of the core module and runs
// each one the way its comment says, reading its stream back with ffmpeg.
// (The gocv example is in the gocv module and tested there.)
package examples_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "skyline-examples")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

// build compiles and links every example (and the skyline CLI, which
// python-pipe pipes into) into binDir, once.
func build(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", binDir+string(os.PathSeparator), "../cmd/skyline", "./...").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./examples/...: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// TestExamplesBuild: every example under examples/ is a main package that
// builds and links (go build -o DIR ./examples/... ../cmd/skyline).
func TestExamplesBuild(t *testing.T) {
	build(t)
	for _, name := range []string{"image-to-rtsp", "multi-destination", "frames-to-kvs", "skyline"} {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			t.Error(err)
		}
	}
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents { // a new example must come with its test
		if e.IsDir() && !map[string]bool{"image-to-rtsp": true, "multi-destination": true, "python-pipe": true, "frames-to-kvs": true}[e.Name()] {
			t.Errorf("examples/%s is not built and run by this test: add it", e.Name())
		}
	}
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

// program is a running example, its stdout split into lines.
type program struct {
	cmd    *exec.Cmd
	lines  chan string
	mu     sync.Mutex
	out    []string // every line read so far
	stderr strings.Builder
	done   chan error
}

// start runs name (a command) in a process group of its own, killed (all of
// it) at the end of the test.
func start(t *testing.T, env []string, name string, args ...string) *program {
	t.Helper()
	p := &program{cmd: exec.Command(name, args...), lines: make(chan string, 1000), done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stderr = &lockedWriter{w: &p.stderr, mu: &p.mu}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		for range p.lines { // let the reader finish
		}
	})
	return p
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *program) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *program) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.out, "\n")
}

// line waits for a stdout line containing substr.
func (p *program) line(t *testing.T, substr string) string {
	t.Helper()
	timeout := time.After(90 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s exited before printing %q; stderr: %s", p.cmd.Path, substr, p.stderrText())
			}
			if strings.Contains(l, substr) {
				return l
			}
		case <-timeout:
			t.Fatalf("%s printed no line with %q; stderr: %s", p.cmd.Path, substr, p.stderrText())
		}
	}
}

// wait waits for the program to exit (draining its output) and returns
// its exit status.
func (p *program) wait(t *testing.T) int {
	t.Helper()
	timeout := time.After(90 * time.Second)
	for {
		select {
		case _, ok := <-p.lines:
			if ok {
				continue
			}
			err := <-p.done
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode()
			}
			if err != nil {
				t.Fatal(err)
			}
			return 0
		case <-timeout:
			t.Fatalf("%s did not exit; stderr: %s", p.cmd.Path, p.stderrText())
		}
	}
}

// interrupt is Ctrl-C for a Go example, which must then exit 0.
func (p *program) interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("%s: exit %d after Ctrl-C; stderr: %s", p.cmd.Path, code, p.stderrText())
	}
}

// url is the last field of the line announcing the stream.
func url(t *testing.T, line string) string {
	t.Helper()
	for _, f := range strings.Fields(line) {
		if strings.HasPrefix(f, "rtsp://") {
			return f
		}
	}
	t.Fatalf("no URL in %q", line)
	return ""
}

// watch decodes n pictures of w x h from a live RTSP URL with ffmpeg.
func watch(t *testing.T, url string, w, h, n int, each func(i int, bgr []byte) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	got := 0
	err := mediatest.Decode(ctx, url, w, h, []string{"-rtsp_transport", "tcp"}, []string{"-frames:v", fmt.Sprint(n)},
		func(i int, bgr []byte) error { got++; return each(i, bgr) })
	if err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("%s: decoded %d pictures, want %d", url, got, n)
	}
}

// whiteRun is the longest run of white pixels on row y.
func whiteRun(bgr []byte, w, y int) int {
	best, run := 0, 0
	for x := 0; x < w; x++ {
		p := bgr[(y*w+x)*3:]
		if p[0] > 200 && p[1] > 200 && p[2] > 200 {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

// TestImageToRTSP runs image-to-rtsp: its URL plays the picture it draws
// (a white 80-pixel square crossing the middle); Ctrl-C ends it cleanly.
func TestImageToRTSP(t *testing.T) {
	build(t)
	const w, h = 640, 360
	p := start(t, nil, filepath.Join(binDir, "image-to-rtsp"), "-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-no-udp")
	u := url(t, p.line(t, "streaming at"))
	watch(t, u, w, h, 20, func(i int, bgr []byte) error {
		if r := whiteRun(bgr, w, h/2); r < 70 || r > 90 {
			return fmt.Errorf("picture %d: white run of %d pixels in the middle row, want the 80-pixel square", i, r)
		}
		return nil
	})
	p.interrupt(t)
}

// TestMultiDestination runs multi-destination: RTSP plays, the three
// destinations report up, the viewer is an event, and after Ctrl-C the
// segment and the Matroska file are complete H.264 recordings.
func TestMultiDestination(t *testing.T) {
	build(t)
	const w, h = 640, 360
	dir := t.TempDir()
	p := start(t, nil, filepath.Join(binDir, "multi-destination"),
		"-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-no-udp", "-dir", dir, "-segment", "2s")
	u := url(t, p.line(t, "streaming at"))
	watch(t, u, w, h, 20, func(i int, bgr []byte) error {
		for y := 0; y < h; y += 5 { // the 20-row bar is somewhere
			if whiteRun(bgr, w, y) > w-10 {
				return nil
			}
		}
		return fmt.Errorf("picture %d: no white bar across the picture", i)
	})
	p.line(t, "event: viewer-joined rtsp:/live")
	p.interrupt(t)
	out := p.output()
	for _, want := range []string{
		"event: destination-up rtsp:/live",
		"event: destination-up file:" + filepath.Join(dir, "rec-%05d.mp4"),
		"event: destination-up gst:matroskamux",
		"event: state STOPPED -> STREAMING",
		"stopped after",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, f := range []string{"rec-00000.mp4", "all.mkv"} {
		st, err := mediatest.Probe(ctx, filepath.Join(dir, f))
		if err != nil {
			t.Error(err)
			continue
		}
		if st.Codec != "h264" || st.Width != w || st.Height != h || st.Frames < 10 {
			t.Errorf("%s: %+v, want h264 %dx%d with at least 10 frames", f, st, w, h)
		}
	}
}

// TestPythonPipe runs python-pipe/run.sh as documented (Debian's
// python3-opencv drawing numbered frames, piped into skyline serve): ffmpeg
// reads consecutive frame numbers over RTSP, and at the end of the Python
// loop skyline has encoded every frame and exits 0.
func TestPythonPipe(t *testing.T) {
	build(t)
	const w, h, total, n = 640, 360, 300, 45
	p := start(t, []string{"SKYLINE=" + filepath.Join(binDir, "skyline"), fmt.Sprintf("FRAMES=%d", total)},
		"./python-pipe/run.sh", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--no-udp", "--status", "never")
	u := url(t, p.line(t, "SkyLine: streaming"))
	if !strings.HasSuffix(u, "/python") {
		t.Fatalf("URL %s", u)
	}
	first, prev := -1, -1
	watch(t, u, w, h, n, func(i int, bgr []byte) error {
		num, ok := testpattern.ReadBGR(bgr, w, h)
		if !ok {
			return fmt.Errorf("picture %d: frame number unreadable", i)
		}
		if prev >= 0 && num != prev+1 {
			return fmt.Errorf("picture %d: frame %d after %d", i, num, prev)
		}
		if first < 0 {
			first = num
		}
		prev = num
		return nil
	})
	if prev >= total {
		t.Fatalf("frame numbers %d..%d beyond the %d sent", first, prev, total)
	}
	last := p.line(t, "stopped after")
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, p.stderrText())
	}
	if want := fmt.Sprintf("stopped after %d frames (%d encoded", total, total); !strings.Contains(last, want) {
		t.Fatalf("last line %q, want %q", last, want)
	}
	t.Logf("frames %d..%d read back", first, prev)
}

// TestFramesToKVS runs frames-to-kvs against its in-process local endpoint:
// every fragment is persisted and the stored media is H.264 ffprobe reads.
func TestFramesToKVS(t *testing.T) {
	build(t)
	data := t.TempDir()
	p := start(t, nil, filepath.Join(binDir, "frames-to-kvs"), "-seconds", "4", "-data", data)
	last := p.line(t, "persisted")
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, p.stderrText())
	}
	var frames, frags, persisted, acks int
	if _, err := fmt.Sscanf(last, "sent %d frames in %d fragments; %d persisted (acks seen: %d)", &frames, &frags, &persisted, &acks); err != nil {
		t.Fatalf("%q: %v", last, err)
	}
	if frames != 60 || frags == 0 || persisted != frags || acks != frags {
		t.Fatalf("%q", last)
	}
	files, _ := filepath.Glob(filepath.Join(data, "demo", "*.mkv"))
	if len(files) == 0 {
		t.Fatal("no media stored")
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", files[0]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "h264,640,480") {
		t.Fatalf("ffprobe %s: %v %s", files[0], err, out)
	}
}
