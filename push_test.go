package skyline_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
)

func freeTCP(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeUDP(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestPushToRealReceivers publishes over RTMP and SRT to ffmpeg listening as
// the server, and decodes what it received.
func TestPushToRealReceivers(t *testing.T) {
	cases := []struct {
		name, url, listen string
	}{
		{"rtmp", "rtmp://127.0.0.1:%d/live/secretkey", "rtmp://127.0.0.1:%d/live/secretkey"},
		{"srt", "srt://127.0.0.1:%d", "srt://127.0.0.1:%d?mode=listener"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const w, h, n = 160, 120, 90
			port := freeTCP(t)
			if c.name == "srt" {
				port = freeUDP(t)
			}
			out := filepath.Join(t.TempDir(), "got.mkv")
			args := []string{"-v", "error", "-nostdin"}
			if c.name == "rtmp" {
				args = append(args, "-listen", "1")
			}
			args = append(args, "-i", fmt.Sprintf(c.listen, port), "-c", "copy", "-f", "matroska", out)
			ff := exec.Command("ffmpeg", args...)
			ff.Stderr = os.Stderr
			if err := ff.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = ff.Process.Kill(); _ = ff.Wait() }()
			if c.name == "rtmp" { // ffmpeg takes one client: see its socket listen, do not connect
				waitListening(t, port, 20*time.Second)
			}
			push, err := skyline.NewPush(fmt.Sprintf(c.url, port))
			if err != nil {
				t.Fatal(err)
			}
			events := newEventLog()
			sl := newTestSkyLine(t, newClock(30), skyline.Config{OnEvent: events.add, QueueSize: 64,
				RetryMin: 100 * time.Millisecond, RetryMax: 300 * time.Millisecond}, push)
			if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
				t.Fatal(err)
			}
			// A producer paced at 30 fps (real servers expect real time).
			tick := time.NewTicker(time.Second / 30)
			defer tick.Stop()
			for i := 0; i < n; i++ {
				<-tick.C
				putAll(t, sl, bgr(w, h, i))
			}
			if err := sl.Stop(); err != nil {
				t.Logf("stop: %v", err)
			}
			done := make(chan error, 1)
			go func() { done <- ff.Wait() }()
			select { // the receiver ends when the publisher closes
			case <-done:
			case <-time.After(20 * time.Second):
				_ = ff.Process.Signal(os.Interrupt)
				<-done
			}
			for _, e := range events.all() {
				if e.Err != nil && containsSecret(e.Err.Error()) {
					t.Errorf("event leaks the stream key: %v", e.Err)
				}
			}
			if containsSecret(push.Name()) {
				t.Errorf("name leaks the stream key: %s", push.Name())
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var nums []int
			err = mediatest.Decode(ctx, out, w, h, nil, nil, func(i int, b []byte) error {
				num, _ := testpattern.ReadBGR(b, w, h)
				nums = append(nums, num)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// SRT's live mode drops what is still in flight when the
			// session closes: the last picture may be cut (decoded as a
			// repeat). Everything before it must be complete and in order.
			check := nums
			if c.name == "srt" && len(check) > 0 {
				check = check[:len(check)-1]
			}
			for i := range check {
				if check[i] != i {
					t.Fatalf("picture %d carries frame %d", i, check[i])
				}
			}
			count, prev := len(check), len(check)-1
			if count < n*8/10 {
				t.Fatalf("received %d of %d frames", count, n)
			}
			t.Logf("%s: received %d frames, up to %d", c.name, count, prev)
		})
	}
}

func containsSecret(s string) bool { return strings.Contains(s, "secretkey") }

// waitListening waits until a TCP socket listens on port (a row in state
// 0A of /proc/net/tcp or tcp6), without connecting to it, for at most d.
func waitListening(t *testing.T, port int, d time.Duration) {
	t.Helper()
	want := fmt.Sprintf(":%04X ", port)
	deadline := time.Now().Add(d)
	for {
		for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			b, _ := os.ReadFile(f)
			for _, line := range strings.Split(string(b), "\n") {
				fields := strings.Fields(line)
				if len(fields) > 3 && strings.HasSuffix(fields[1]+" ", want) && fields[3] == "0A" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %d after %v", port, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
