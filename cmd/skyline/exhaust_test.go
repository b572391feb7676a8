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

	"github.com/skyline-go/skyline/internal/mediatest"
)

// TestServeSurvivesDescriptorExhaustion: with the process's descriptor
// limit lowered (prlimit), more connections than the limit are opened and
// closed; the RTSP server logs the accept errors, retries, and serves a
// real ffprobe afterwards. Before, the first "too many open files" ended
// the server for good, silently, while the process kept running.
func TestServeSurvivesDescriptorExhaustion(t *testing.T) {
	port := freePort(t)
	c := startCLI(t, "serve", "--size", "320x240", "--fps", "15", "--no-udp",
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--path", "/x")
	url := strings.Fields(c.line(t, "SkyLine: streaming"))[4]
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
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			break // the backlog is full: more than the limit is open
		}
		conns = append(conns, conn)
	}
	c.waitStderr(t, 20*time.Second, fmt.Sprintf("accept error logged (%d connections, limit %d)", len(conns), limit),
		func(s string) bool { return strings.Contains(s, "cannot accept a connection") })
	for _, conn := range conns {
		conn.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := mediatest.Probe(ctx, url, "-rtsp_transport", "tcp", "-read_intervals", "%+#5")
	if err != nil || st.Codec != "h264" || st.Width != 320 || st.Frames < 1 {
		t.Fatalf("ffprobe after %d connections over a limit of %d: %+v %v; stderr: %s", len(conns), limit, st, err, c.stderr.String())
	}
	select {
	case err := <-c.done:
		t.Fatalf("skyline exited: %v", err)
	default:
	}
}
