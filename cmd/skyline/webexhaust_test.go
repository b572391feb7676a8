package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/internal/whepclient"
)

// TestServeWebSurvivesDescriptorExhaustion: `skyline serve --web` with the
// process's descriptor limit lowered (prlimit): more connections than the
// limit are opened to the web port; the WebRTC server logs the accept
// errors (a warning, rate-limited), retries, and once they are closed a
// real WHEP viewer (still under the lowered limit) gets an answer and decodes the stream's numbered pictures. Before,
// net/http retried too but said nothing above debug level.
func TestServeWebSurvivesDescriptorExhaustion(t *testing.T) {
	web := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c := startCLI(t, "serve", "--input", "testsrc", "--size", "320x240", "--fps", "15", "--no-rtsp",
		"--web", web, "--path", "/cam", "--status", "never", "--log-level", "warn")
	c.line(t, "browser:")
	pid := c.cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	limit := len(fds) + 20
	if out, err := exec.Command("prlimit", "--pid", fmt.Sprint(pid), fmt.Sprintf("--nofile=%d:%d", limit, limit)).CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v %s", err, out)
	}
	var conns []net.Conn
	for i := 0; i < limit+40; i++ {
		conn, err := net.DialTimeout("tcp", web, 5*time.Second)
		if err != nil {
			break // the backlog is full: more than the limit is open
		}
		conns = append(conns, conn)
	}
	c.waitStderr(t, 20*time.Second, fmt.Sprintf("accept error logged (%d connections, limit %d)", len(conns), limit),
		func(s string) bool { return strings.Contains(s, "cannot accept a connection (retrying)") })
	for _, conn := range conns {
		conn.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wc, err := whepclient.Dial(ctx, "http://"+web+"/cam/whep", whepclient.Options{})
	if err != nil {
		t.Fatalf("WHEP after %d connections over a limit of %d: %v; stderr: %s", len(conns), limit, err, c.stderr.String())
	}
	defer wc.Close()
	dec, err := whepclient.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for got := 0; got < 5; {
		select {
		case au := <-wc.AUs():
			if err := dec.Push(au.Data, au.Keyframe); err != nil {
				t.Fatal(err)
			}
		case pic := <-dec.Pictures():
			if _, ok := testpattern.ReadBGR(pic.BGR, pic.Width, pic.Height); !ok || pic.Width != 320 {
				t.Fatalf("picture %d: %dx%d, number readable %v", got, pic.Width, pic.Height, ok)
			}
			got++
		case <-ctx.Done():
			t.Fatalf("no pictures after the exhaustion; stderr: %s", c.stderr.String())
		}
	}
	select {
	case err := <-c.done:
		t.Fatalf("skyline exited: %v", err)
	default:
	}
}
