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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/mediatest"
)

// The producer timeout (issue 13, a listening input's producer that
// delivers no complete frame): each test runs `serve --input unix:SOCK`
// with a short --producer-timeout and one ffmpeg RTSP viewer, opened before
// any producer, that must see the card, then live frames, on one session.

// startListening runs serve listening on network ("unix": a socket file,
// "tcp": a free loopback port) at 320x240 and returns its --input, a
// dialer of it, the child and the RTSP URL.
func startListening(t *testing.T, network string, extra ...string) (string, func() (net.Conn, error), *cli, string) {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "in.sock")
	if network == "tcp" {
		addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	args := append([]string{"serve", "--input", network + ":" + addr, "--size", "320x240",
		"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--no-udp", "--path", "/x", "--status", "never"}, extra...)
	c := startCLI(t, args...)
	url := strings.Fields(c.line(t, "SkyLine: streaming "+network+":"))[4]
	return network + ":" + addr, func() (net.Conn, error) { return net.Dial(network, addr) }, c, url
}

// viewerFlags: ffmpeg over TCP, starting at once (the default probing
// buffers 5 s of the card before the first picture).
var viewerFlags = []string{"-rtsp_transport", "tcp", "-probesize", "32", "-analyzeduration", "0"}

// watchdog ends the viewer (cancels its context with a cause) unless ok
// holds d after it is armed.
type watchdog struct {
	cancel context.CancelCauseFunc
}

func (wd watchdog) arm(d time.Duration, what string, ok func() bool) {
	time.AfterFunc(d, func() {
		if !ok() {
			wd.cancel(fmt.Errorf("%s: not within %v", what, d))
		}
	})
}

// listenRun is a listening test's viewer context (a minute at most, or
// until the watchdog cancels it with a cause) and its producers, each
// started by connect (320x240 frames numbered from from) and ended at the
// test's end.
type listenRun struct {
	ctx  context.Context
	wd   watchdog
	dial func() (net.Conn, error)
	prod atomic.Pointer[producer] // the last producer connected
}

func newListenRun(t *testing.T, dial func() (net.Conn, error)) *listenRun {
	ctx, cancel := context.WithCancelCause(context.Background())
	ctx, stop := context.WithTimeout(ctx, 60*time.Second)
	r := &listenRun{ctx: ctx, wd: watchdog{cancel}, dial: dial}
	t.Cleanup(func() {
		stop()
		cancel(nil)
		if p := r.prod.Load(); p != nil {
			p.end()
		}
	})
	return r
}

// connect starts a producer on a new connection (a failed dial ends the
// viewer with the error).
func (r *listenRun) connect(from int) {
	conn, err := r.dial()
	if err != nil {
		r.wd.cancel(err)
		return
	}
	r.prod.Store(produce(conn, 320, 240, from))
}

// phaseState reads a phases' progress.
func (ph *phases) state() (phase int, cards, lives [4]int) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return ph.phase, ph.cards, ph.lives
}

// watch runs the viewer through the phases; it fails the test with the
// watchdog's cause or the child's log.
func watch(t *testing.T, ctx context.Context, c *cli, url string, ph *phases) {
	t.Helper()
	err := mediatest.Decode(ctx, url, 320, 240, viewerFlags, nil, func(i int, bgr []byte) error {
		return ph.see(bgr, 320, 240, "/x")
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("RTSP viewer: %v (cause: %v); stderr: %s", err, context.Cause(ctx), c.stderr.String())
	}
	_, cards, lives := ph.state()
	t.Logf("RTSP viewer: cards %v, live frames %v", cards, lives)
}

// stopCLI interrupts the child, checks its exit and returns its log.
func stopCLI(t *testing.T, c *cli) string {
	t.Helper()
	_ = c.cmd.Process.Signal(os.Interrupt)
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
	}
	return c.stderr.String()
}

// TestListenSilentConnectionTakenOver: a connection that sends nothing (a
// stranger's nc, a producer frozen before its first frame) is the active
// producer when the real one connects; the real one takes over once the
// silent one has been waited on for the takeover grace (1 s, less than the
// 2 s bound), and its frames reach the viewer, then the next producer's on
// the same RTSP session. On main the real producer was refused.
func TestListenSilentConnectionTakenOver(t *testing.T) {
	const bound = 2 * time.Second
	_, dial, c, url := startListening(t, "unix", "--fps", "30", "--producer-timeout", bound.String())
	r := newListenRun(t, dial)
	ctx, wd, prod, connect := r.ctx, r.wd, &r.prod, r.connect
	silentEnd := make(chan error, 1)
	var ph *phases
	ph = &phases{live: 20, next: func(p int) {
		switch p {
		case 1:
			silent, err := dial()
			if err != nil {
				wd.cancel(err)
				return
			}
			go func() {
				defer silent.Close()
				_ = silent.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, err := silent.Read(make([]byte, 1))
				silentEnd <- err
			}()
			connect(0)
			wd.arm(bound+3*time.Second, "the real producer's frames after a silent connection", func() bool {
				_, _, lives := ph.state()
				return lives[1] > 0
			})
		case 2:
			prod.Load().end()
		case 3:
			connect(1000)
		}
	}}
	watch(t, ctx, c, url, ph)
	if err := <-silentEnd; errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the silent connection was not closed: %v", err)
	}
	prod.Load().end()
	if log := stopCLI(t, c); !strings.Contains(log, "takes over from a silent one") ||
		!strings.Contains(log, "replaced by a new producer") {
		t.Errorf("no log line for the takeover; stderr: %s", log)
	}
}

// TestListenProducerHangsMidFrame: a producer streams over TCP, then sends
// half a frame and hangs with its connection open (a frozen program, a
// half-open TCP peer). Within the bound its session ends (idle timeout, logged): the
// viewer shows the offline card, and the next producer's frames follow on
// the same RTSP session. On main the viewer froze on the last frame and
// the next producer was refused.
func TestListenProducerHangsMidFrame(t *testing.T) {
	const bound = time.Second
	_, dial, c, url := startListening(t, "tcp", "--fps", "30", "--producer-timeout", bound.String())
	r := newListenRun(t, dial)
	ctx, wd, prod, connect := r.ctx, r.wd, &r.prod, r.connect
	var hung atomic.Pointer[producer]
	var ph *phases
	ph = &phases{live: 20, next: func(p int) {
		switch p {
		case 1:
			connect(0)
		case 2:
			first := prod.Load()
			hung.Store(first)
			close(first.hang)
			<-first.hung
			wd.arm(bound+4*time.Second, "the offline card after a producer hung mid-frame", func() bool {
				p, cards, _ := ph.state()
				return p > 2 || cards[2] > 0
			})
		case 3:
			connect(1000)
		}
	}}
	watch(t, ctx, c, url, ph)
	hung.Load().end()
	prod.Load().end()
	if log := stopCLI(t, c); !strings.Contains(log, "idle timeout: frame") || !strings.Contains(log, "within 1s") {
		t.Errorf("no log line for the idle timeout; stderr: %s", log)
	}
}

// TestListenSlowDripDropped: a connection that sends one byte every 200 ms
// (each read well within the 1 s bound, but never a whole frame) is closed
// by the bound on its first frame, and the next producer's frames reach
// the viewer. On main it held the input for as long as it dripped.
func TestListenSlowDripDropped(t *testing.T) {
	const bound = time.Second
	_, dial, c, url := startListening(t, "unix", "--fps", "30", "--producer-timeout", bound.String())
	r := newListenRun(t, dial)
	ctx, wd, prod, connect := r.ctx, r.wd, &r.prod, r.connect
	dropped := make(chan time.Duration, 1)
	var ph *phases
	ph = &phases{live: 20, next: func(p int) {
		switch p {
		case 1:
			drip, err := dial()
			if err != nil {
				wd.cancel(err)
				return
			}
			defer drip.Close()
			wd.arm(bound+4*time.Second, "the slow-drip producer dropped and the next one's frames", func() bool {
				_, _, lives := ph.state()
				return lives[1] > 0
			})
			start := time.Now()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for sent := 0; ; sent++ {
				if _, err := drip.Write([]byte{byte(sent)}); err != nil {
					break // closed by serve
				}
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
			}
			dropped <- time.Since(start)
			connect(0)
		case 2:
			prod.Load().end()
		case 3:
			connect(1000)
		}
	}}
	watch(t, ctx, c, url, ph)
	t.Logf("the slow-drip producer was dropped after %v", <-dropped)
	prod.Load().end()
	if log := stopCLI(t, c); !strings.Contains(log, "first-frame timeout") {
		t.Errorf("no log line for the first-frame timeout; stderr: %s", log)
	}
}

// TestListenLowFPSProducerKept: at --fps 2 a producer sends a frame every
// 500 ms, longer than the 300 ms --producer-timeout: the bound is at least
// 3 frame periods (1.5 s), so it is not dropped between frames; the viewer
// sees its frames consecutive and nothing times out.
func TestListenLowFPSProducerKept(t *testing.T) {
	_, dial, c, url := startListening(t, "unix", "--fps", "2", "--producer-timeout", "300ms")
	ctx, stop := context.WithTimeout(context.Background(), 60*time.Second)
	defer stop()
	var prod atomic.Pointer[producer]
	t.Cleanup(func() {
		if p := prod.Load(); p != nil {
			p.end()
		}
	})
	cards, lives, prev := 0, 0, -1
	err := mediatest.Decode(ctx, url, 320, 240, viewerFlags, nil, func(i int, bgr []byte) error {
		isCard, num, ok := classify(bgr, 320, 240, "/x", false)
		switch {
		case !ok:
			return fmt.Errorf("neither the card nor a live frame (cards %d, live %d)", cards, lives)
		case isCard && lives > 0:
			return fmt.Errorf("the card after %d live frames: the producer was dropped", lives)
		case isCard:
			if cards++; cards == 2 {
				conn, err := dial()
				if err != nil {
					return err
				}
				prod.Store(producePaced(conn, 320, 240, 0, 500*time.Millisecond))
			}
			return nil
		case prev >= 0 && num != prev+1:
			return fmt.Errorf("frame %d after %d", num, prev)
		}
		prev = num
		if lives++; lives == 6 {
			return errDone
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("RTSP viewer: %v; stderr: %s", err, c.stderr.String())
	}
	prod.Load().end()
	if log := stopCLI(t, c); strings.Contains(log, "--producer-timeout") || strings.Contains(log, "producer ended") {
		t.Errorf("the low-fps producer was dropped; stderr: %s", log)
	}
}

// TestListenTimeoutFormats: the bound holds for raw and framed input alike,
// whatever part of a frame is missing: a connection that sends nothing, one
// that hangs inside a header (framed) or a frame after a complete frame, and
// one that drips a byte every 100 ms after a complete frame are each closed
// by serve within the bound (plus a session's stop), with the log line
// naming the bound.
func TestListenTimeoutFormats(t *testing.T) {
	const w, h = 64, 48
	const bound = 500 * time.Millisecond
	frame := make([]byte, w*h*3)
	for _, format := range []string{"raw", "framed"} {
		t.Run(format, func(t *testing.T) {
			_, dial, c, _ := startListening(t, "unix", "--size", fmt.Sprintf("%dx%d", w, h), "--fps", "30",
				"--format", format, "--producer-timeout", bound.String())
			whole := frame
			if format == "framed" {
				whole = append(framedHeaderBytes(time.Now(), w, h, "bgr24"), frame...)
			}
			cases := []struct {
				name string
				send func(conn net.Conn) error
			}{
				{"nothing", func(net.Conn) error { return nil }},
				{"half a frame", func(conn net.Conn) error {
					_, err := conn.Write(append(append([]byte{}, whole...), whole[:len(whole)/2]...))
					return err
				}},
				{"half a header", func(conn net.Conn) error {
					_, err := conn.Write(append(append([]byte{}, whole...), whole[:10]...))
					return err
				}},
				{"a byte every 100 ms", func(conn net.Conn) error {
					if _, err := conn.Write(whole); err != nil {
						return err
					}
					go func() {
						tick := time.NewTicker(100 * time.Millisecond)
						defer tick.Stop()
						for range tick.C {
							if _, err := conn.Write([]byte{0}); err != nil {
								return // closed by serve (or by the test)
							}
						}
					}()
					return nil
				}},
			}
			for _, tc := range cases {
				conn, err := dial()
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				if err := tc.send(conn); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				_ = conn.SetReadDeadline(time.Now().Add(bound + 5*time.Second))
				_, err = conn.Read(make([]byte, 1))
				took := time.Since(start)
				conn.Close()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("%s: not closed by serve within %v", tc.name, bound+5*time.Second)
				}
				t.Logf("%s: closed after %v", tc.name, took.Round(time.Millisecond))
			}
			log := stopCLI(t, c)
			for _, want := range []struct {
				line string
				n    int
			}{
				{"first-frame timeout: no complete frame within 500ms", 1},
				{"idle timeout: frame 2 not complete within 500ms", 3},
			} {
				if n := strings.Count(log, want.line); n != want.n {
					t.Errorf("%d log lines with %q, want %d; stderr: %s", n, want.line, want.n, log)
				}
			}
		})
	}
}

// TestListenPythonRestartAfterFreeze (issue 13, the README's Python side
// over TCP, default flags): the Python producer freezes (SIGSTOP: its
// connection stays open, as after a crash that leaves it half-open) and is
// started again; the new run takes over after the 1 s grace, long before
// the 10 s producer timeout, and its frames follow on the same RTSP session.
func TestListenPythonRestartAfterFreeze(t *testing.T) {
	in, _, c, url := startListening(t, "tcp", "--fps", "30")
	var runs []*exec.Cmd
	run := func(from int) error {
		cmd := exec.Command("/usr/bin/python3", "../../examples/python-pipe/send.py", "--size", "320x240", "--fps", "30",
			"--start", fmt.Sprint(from), "--connect", in)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		runs = append(runs, cmd)
		return nil
	}
	t.Cleanup(func() {
		for _, cmd := range runs {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	r := newListenRun(t, nil)
	ctx, wd := r.ctx, r.wd
	var resumed atomic.Bool
	cards, first, second, prev := 0, 0, 0, -1
	var frozeAt time.Time
	err := mediatest.Decode(ctx, url, 320, 240, viewerFlags, nil, func(i int, bgr []byte) error {
		isCard, num, ok := classify(bgr, 320, 240, "/x", true)
		switch {
		case !ok:
			return fmt.Errorf("neither the card nor a live frame (cards %d, first run %d, second %d)", cards, first, second)
		case isCard:
			if cards++; cards == 2 {
				return run(0)
			}
			return nil
		case num < 1000:
			if second > 0 {
				return fmt.Errorf("the frozen run's frame %d after the new run's", num)
			}
			if first++; first == 20 {
				if err := runs[0].Process.Signal(syscall.SIGSTOP); err != nil {
					return err
				}
				frozeAt = time.Now()
				wd.arm(5*time.Second, "the new run's frames after the old one froze (the producer timeout is 10 s)", resumed.Load)
				return run(1000)
			}
			return nil
		case second > 0 && num != prev+1:
			return fmt.Errorf("frame %d after %d", num, prev)
		}
		if second == 0 {
			resumed.Store(true)
			t.Logf("the new run's first frame %v after the old one froze", time.Since(frozeAt).Round(time.Millisecond))
		}
		prev = num
		if second++; second == 20 {
			return errDone
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("RTSP viewer: %v (cause: %v); stderr: %s", err, context.Cause(ctx), c.stderr.String())
	}
	if log := stopCLI(t, c); !strings.Contains(log, "takes over from a silent one") {
		t.Errorf("no takeover logged; stderr: %s", log)
	}
}
