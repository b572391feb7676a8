package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
)

// TestServeExitsWhenServerFails: when the RTSP server of a running
// `skyline serve` really ends (its listening socket is shut down from
// outside the process, so that accept fails with EINVAL), the process logs
// the reason, stops, finalises its --out recording (every encoded frame
// decodes, numbers consecutive) and exits 1. Without serve's exit on
// Server.Failed it went on encoding with a dead URL.
func TestServeExitsWhenServerFails(t *testing.T) {
	const w, h = 320, 240
	port := freePort(t)
	rec := filepath.Join(t.TempDir(), "x.mkv")
	c := startCLI(t, "serve", "--input", "stdin", "--size", fmt.Sprintf("%dx%d", w, h), "--fps", "30",
		"--no-udp", "--status", "never", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--path", "/x",
		"--out", "file:"+rec)
	written := make(chan int, 1<<16)
	go func() { // a producer at 30 fps that never ends by itself
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for i := 0; ; i++ {
			if _, err := c.stdin.Write(testpattern.NewBGR(w, h, i)); err != nil {
				return // the process exited
			}
			written <- i
			<-tick.C
		}
	}()
	url := strings.Fields(c.line(t, "SkyLine: streaming"))[4]
	// The server really serves before it fails.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if st, err := mediatest.Probe(ctx, url, "-rtsp_transport", "tcp", "-read_intervals", "%+#5"); err != nil || st.Codec != "h264" {
		t.Fatalf("ffprobe before the failure: %+v %v; stderr: %s", st, err, c.stderr.String())
	}
	for i := range written { // a second of recording
		if i >= 30 {
			break
		}
	}

	shutdownListener(t, c.cmd.Process.Pid, port)

	select {
	case err := <-c.done:
		code := -1
		if c.cmd.ProcessState != nil {
			code = c.cmd.ProcessState.ExitCode()
		}
		if code != 1 {
			t.Fatalf("exit %d (%v), want 1; stderr: %s", code, err, c.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("skyline still runs 20 s after its RTSP listener failed; stderr: %s", c.stderr.String())
	}
	msg := c.stderr.String()
	for _, want := range []string{
		"RTSP listener failed", // the listener's log line, with the accept error
		"invalid argument",     // EINVAL, the reason
		`msg=error destination=rtsp:/x error="rtsp: server stopped serving`, // the EventError
		"skyline serve: rtsp: server stopped serving",                       // the exit's error
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr lacks %q: %s", want, msg)
		}
	}
	var last string
	for l := range c.lines { // the rest of stdout (closed at exit)
		if strings.Contains(l, "stopped after") {
			last = l
		}
	}
	var accepted, encoded int
	if _, err := fmt.Sscanf(last, "SkyLine: stopped after %d frames (%d encoded", &accepted, &encoded); err != nil || encoded < 30 {
		t.Fatalf("summary line %q (%v)", last, err)
	}
	// The recording was finalised: all encoded frames decode, in order.
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer dcancel()
	got := 0
	err := mediatest.Decode(dctx, rec, w, h, nil, nil, func(i int, bgr []byte) error {
		n, ok := testpattern.ReadBGR(bgr, w, h)
		if !ok || n != i {
			return fmt.Errorf("picture %d: frame %d (readable %v)", i, n, ok)
		}
		got++
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", rec, err)
	}
	if got != encoded {
		t.Fatalf("%s: %d pictures, %d encoded", rec, got, encoded)
	}
	if st, err := mediatest.Probe(dctx, rec); err != nil || st.Codec != "h264" || st.Width != w || st.Height != h {
		t.Fatalf("ffprobe %s: %+v %v", rec, st, err)
	}
}

// shutdownListener makes the accept of process pid's TCP listener on port
// fail for real: it takes a copy of the listening socket's descriptor
// (pidfd_getfd, Linux 5.6; same user, as ptrace) and shuts the socket
// down. On Linux, shutdown of a listening socket wakes its accept, which
// then fails with EINVAL; the socket stays open in the process.
func shutdownListener(t *testing.T, pid, port int) {
	t.Helper()
	inode := listenInode(t, port)
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	for _, e := range fds {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); l == "socket:["+inode+"]" {
			fd, _ = strconv.Atoi(e.Name())
		}
	}
	if fd < 0 {
		t.Fatalf("process %d has no descriptor of socket %s", pid, inode)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd_open: %v", err)
	}
	defer unix.Close(pidfd)
	own, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		t.Fatalf("pidfd_getfd: %v", err)
	}
	defer unix.Close(own)
	if err := unix.Shutdown(own, unix.SHUT_RDWR); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// listenInode is the inode of the socket listening on TCP port (state 0A
// in /proc/net/tcp or tcp6).
func listenInode(t *testing.T, port int) string {
	t.Helper()
	suffix := fmt.Sprintf(":%04X", port)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fs := strings.Fields(sc.Text())
			if len(fs) > 9 && strings.HasSuffix(fs[1], suffix) && fs[3] == "0A" {
				f.Close()
				return fs[9]
			}
		}
		f.Close()
	}
	t.Fatalf("no socket listens on port %d", port)
	return ""
}
