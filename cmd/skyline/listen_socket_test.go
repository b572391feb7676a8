package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestListenSocketInUse: a second serve started on the socket path of a
// running one (the same --input by mistake) is refused with a clear error
// and leaves the running one's socket alone; before, it removed the file
// and listened in its place, so the first serve kept running with no way
// in for its producers. And a serve removes its socket file at the end only
// while the path is still its own: one deleted and taken by another
// program since is left to that program (before, the first serve's exit
// removed the file the second listened on). A stale socket file (nothing
// listens on it) is still replaced.
func TestListenSocketInUse(t *testing.T) {
	input, dial, c, _ := startListening(t, "unix")
	sock := strings.TrimPrefix(input, "unix:")
	before, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second) // before the fix it ran on
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "serve", "--input", input, "--size", "320x240", "--no-rtsp",
		"--out", "file:"+filepath.Join(t.TempDir(), "x.mp4"), "--status", "never").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), "is in use") {
		t.Fatalf("second serve on %s: %v, output %q; want an error saying the socket is in use", sock, err, out)
	}
	if after, err := os.Lstat(sock); err != nil || !os.SameFile(before, after) {
		t.Fatalf("the running serve's socket was replaced or removed (%v)", err)
	}
	conn, err := dial()
	if err != nil {
		t.Fatalf("the running serve no longer accepts producers: %v", err)
	}
	_ = conn.Close()

	// The path deleted and taken by another program: not removed at exit.
	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	other, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	stopCLI(t, c)
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("serve removed at its exit a socket file that was no longer its own: %v", err)
	}

	// A stale socket file (its listener gone without removing it) is
	// replaced, and removed at exit.
	other.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = other.Close()
	c2 := startCLI(t, "serve", "--input", input, "--size", "320x240", "--no-rtsp",
		"--out", "file:"+filepath.Join(t.TempDir(), "y.mp4"), "--status", "never")
	c2.line(t, "SkyLine: streaming unix:")
	if conn, err := net.Dial("unix", sock); err != nil {
		t.Fatalf("serve on a stale socket file: %v; stderr: %s", err, c2.stderr.String())
	} else {
		_ = conn.Close()
	}
	stopCLI(t, c2)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file left at exit: %v", err)
	}
}

// TestListenRefusalsLogRateLimited: a flood of connections while a
// producer streams is refused without flooding the log: at most one line a
// second, the next one counting those left out (before, one warning per
// connection: 200 lines for 200 connections).
func TestListenRefusalsLogRateLimited(t *testing.T) {
	const flood = 200
	_, dial, c, _ := startListening(t, "unix", "--fps", "30")
	conn, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	p := produce(conn, 320, 240, 0)
	defer p.end()
	refusedConn := func() error {
		fc, err := dial()
		if err != nil {
			return err
		}
		defer fc.Close()
		_ = fc.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := fc.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("not closed by serve within 20 s")
		}
		return nil
	}
	start := time.Now()
	errs := make(chan error, flood)
	for i := 0; i < flood; i++ {
		go func() { errs <- refusedConn() }()
	}
	for i := 0; i < flood; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("flood connection: %v", err)
		}
	}
	elapsed := time.Since(start)
	const line = "refused a second producer"
	waitLog := func(n int) {
		c.waitStderr(t, 10*time.Second, fmt.Sprintf("%d refusal lines", n),
			func(s string) bool { return strings.Count(s, line) >= n })
	}
	waitLog(1)
	logged := strings.Count(c.stderr.String(), line)
	if most := int(elapsed/time.Second) + 2; logged > most {
		t.Fatalf("%d connections refused in %v: %d log lines, want at most %d", flood, elapsed, logged, most)
	}
	// A refusal a second later is logged with the count of those left out:
	// the limiter's interval must pass (the rule under test; no event).
	time.Sleep(1100 * time.Millisecond)
	if err := refusedConn(); err != nil {
		t.Fatal(err)
	}
	waitLog(logged + 1)
	if !strings.Contains(c.stderr.String(), "not_logged_since=") {
		t.Fatalf("no count of the refusals left out of the log; stderr: %s", c.stderr.String())
	}
	t.Logf("%d connections refused in %v: %d log lines", flood, elapsed, logged)
	p.end()
	stopCLI(t, c)
}

// TestListenInterruptWhileStreamingQuiet: Ctrl-C (or SIGTERM) while a
// producer streams, or while one is connected and silent, ends serve with
// exit 0, the socket file removed and no warning (before, every such stop
// logged "producer ended with an error" error="context canceled").
func TestListenInterruptWhileStreamingQuiet(t *testing.T) {
	for _, c := range []struct {
		name   string
		sig    os.Signal
		silent bool
	}{{"streaming/SIGINT", os.Interrupt, false}, {"streaming/SIGTERM", syscall.SIGTERM, false}, {"silent/SIGINT", os.Interrupt, true}} {
		t.Run(c.name, func(t *testing.T) {
			input, dial, cl, _ := startListening(t, "unix", "--fps", "30", "--log-level", "info")
			conn, err := dial()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if !c.silent {
				p := produce(conn, 320, 240, 0)
				defer p.end()
				// Until its frames are encoded: the SkyLine streams.
				cl.waitStderr(t, 20*time.Second, "streaming", func(s string) bool { return strings.Contains(s, "msg=streaming") })
			} else {
				_, _ = conn.Write(make([]byte, 1000)) // part of a frame, then nothing
				// Until serve has taken the connection: it reads the frame.
				cl.waitStderr(t, 20*time.Second, "the producer taken", func(s string) bool {
					return strings.Contains(s, `msg="producer connected"`)
				})
			}
			_ = cl.cmd.Process.Signal(c.sig)
			if code := cl.wait(t); code != 0 {
				t.Fatalf("exit %d; stderr: %s", code, cl.stderr.String())
			}
			if strings.Contains(cl.stderr.String(), "level=WARN") || strings.Contains(cl.stderr.String(), "level=ERROR") {
				t.Errorf("a warning at a plain stop: %s", cl.stderr.String())
			}
			if _, err := os.Lstat(strings.TrimPrefix(input, "unix:")); !os.IsNotExist(err) {
				t.Errorf("socket file left: %v", err)
			}
		})
	}
}

// TestListenRefusedPythonProducerTold: the example Python producer
// (examples/python-pipe/send.py --connect) refused because another
// producer streams says so and exits 1 (it exited 0 without a word, as if
// it had streamed).
func TestListenRefusedPythonProducerTold(t *testing.T) {
	input, dial, c, _ := startListening(t, "unix", "--fps", "30")
	conn, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	p := produce(conn, 320, 240, 0)
	defer p.end()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", "../../examples/python-pipe/send.py", "--size", "320x240",
		"--fps", "30", "--connect", input).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "skyline closed the connection") {
		t.Fatalf("refused send.py: %v, output %q; want exit 1 saying skyline closed the connection", err, out)
	}
	if !strings.Contains(c.stderr.String(), "refused a second producer") {
		t.Errorf("serve did not log the refusal; stderr: %s", c.stderr.String())
	}
	p.end()
	stopCLI(t, c)
}

// TestListenAbstractSocket: a socket in Linux's abstract namespace
// (unix:@NAME, no file) is served too, and a second serve on it is refused.
func TestListenAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@skyline-test-%d", os.Getpid())
	args := []string{"serve", "--input", "unix:" + name, "--size", "320x240", "--no-rtsp", "--status", "never"}
	c := startCLI(t, append(args, "--out", "file:"+filepath.Join(t.TempDir(), "x.mp4"))...)
	c.line(t, "SkyLine: streaming unix:@")
	conn, err := net.Dial("unix", name)
	if err != nil {
		t.Fatalf("dial %s: %v; stderr: %s", name, err, c.stderr.String())
	}
	p := produce(conn, 320, 240, 0)
	out, err := exec.Command(binary, append(args, "--out", "file:"+filepath.Join(t.TempDir(), "y.mp4"))...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), "address already in use") {
		t.Errorf("second serve on %s: %v, output %q", name, err, out)
	}
	p.end()
	stopCLI(t, c)
}

// TestListenTCPBeyondLoopbackWarned: a TCP producer input that listens
// beyond loopback (tcp::PORT, tcp:0.0.0.0:PORT) takes frames from whoever
// reaches it, with no credentials: serve says so at start; on 127.0.0.1 it
// does not.
func TestListenTCPBeyondLoopbackWarned(t *testing.T) {
	for _, c := range []struct {
		host string
		warn bool
	}{{"0.0.0.0", true}, {"", true}, {"127.0.0.1", false}} {
		addr := fmt.Sprintf("%s:%d", c.host, freePort(t))
		cl := startCLI(t, "serve", "--input", "tcp:"+addr, "--size", "320x240", "--no-rtsp", "--status", "never",
			"--out", "file:"+filepath.Join(t.TempDir(), "x.mp4"))
		cl.line(t, "SkyLine: streaming tcp:")
		log := stopCLI(t, cl)
		if got := strings.Contains(log, "no authentication"); got != c.warn {
			t.Errorf("tcp:%s: warned %v, want %v; stderr: %s", addr, got, c.warn, log)
		}
	}
}
