package rtsp_test

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
)

// TestManyViewersAndAStalledOne: 20 TCP viewers for 10 s at 640x480@30 each
// receive every access unit in order, while one more viewer that never
// reads changes neither their counts nor Put's latency.
func TestManyViewersAndAStalledOne(t *testing.T) {
	const w, h, fps, n = 640, 480, 30, 20
	// A small queue and write timeout, so that the stalled viewer overflows
	// and is disconnected within the window.
	srv := newServer(t, rtsp.ServerConfig{WriteQueueSize: 64, WriteTimeout: 4 * time.Second, SocketWriteBuffer: 32 << 10})
	// A live loop's settings: Put never waits (a held-up encoder shows as
	// refused frames, asserted below) and frames keep their capture times,
	// so Put's latency is its own work only.
	sl, err := rtsp.NewSkyLine(srv, "/many", skyline.Config{NoDotEnv: true, Logger: testLogger,
		Drop: skyline.DropNewest, Timestamps: skyline.TimestampsCapture})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sl.Close() })
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	st := srv.Stream("/many")
	f := startFeeder(t, sl, w, h, fps, 0)
	waitReady(t, st.URL())
	viewers := make([]*viewer, n)
	for i := range viewers {
		viewers[i] = play(t, st.URL(), viewerOpts{})
	}
	waitFor(t, 20*time.Second, "every viewer to receive", func() bool {
		for _, v := range viewers {
			if v.count.Load() == 0 {
				return false
			}
		}
		return true
	})

	// Baseline Put latency with the 20 viewers.
	f.latencies(true)
	time.Sleep(2 * time.Second) // a measurement window, not a synchronisation
	base := f.latencies(true)

	dropped0 := sl.Stats().Dropped
	stalled := stalledViewer(t, st.URL())
	waitFor(t, 5*time.Second, "21 viewers", func() bool { return st.Viewers() == n+1 })
	t.Cleanup(func() { stalled.Close() })
	a0 := st.Stats().AccessUnits
	c0 := make([]int64, n)
	for i, v := range viewers {
		c0[i] = v.count.Load()
	}
	time.Sleep(10 * time.Second) // the test's 10 s window
	f.Stop()
	with := f.latencies(false)
	if d := sl.Stats().Dropped - dropped0; d != 0 {
		t.Errorf("%d frames refused by Put while a viewer stalled: the encoder was held up", d)
	}
	if err := sl.Stop(); err != nil { // drains: every encoded picture is written
		t.Fatal(err)
	}
	sent := int64(st.Stats().AccessUnits - a0)
	waitFor(t, 10*time.Second, "every viewer to receive every access unit", func() bool {
		for i, v := range viewers {
			if v.count.Load()-c0[i] < sent {
				return false
			}
		}
		return true
	})
	for i, v := range viewers {
		got := v.count.Load() - c0[i]
		if g, b := v.seqGaps.Load(), v.tsBack.Load(); g != 0 || b != 0 || got > sent+5 {
			t.Errorf("viewer %d: %d access units for %d sent, %d sequence gaps, %d timestamps going back", i, got, sent, g, b)
		}
	}
	stats := st.Stats()
	t.Logf("sent %d access units in 10 s to %d viewers; stalled viewer: %d packets dropped, %d slow viewers disconnected",
		sent, n, stats.PacketsDropped, stats.SlowViewersDisconnected)
	if sent < 250 {
		t.Errorf("only %d access units in 10 s at %d fps", sent, fps)
	}
	if stats.PacketsDropped == 0 && stats.SlowViewersDisconnected == 0 {
		t.Errorf("the stalled viewer never overflowed: the test did not stall it")
	}
	// Put's own time (conversion, push) must not change: compared by the
	// median, which a burst of unrelated load on a shared machine does not
	// move (the p95 is logged; bench/rtsp measures latency properly).
	bp50, wp50 := percentile(base, 0.5), percentile(with, 0.5)
	t.Logf("Put latency p50/p95/max: baseline %v/%v/%v, with the stalled viewer %v/%v/%v",
		bp50, percentile(base, 0.95), percentile(base, 1), wp50, percentile(with, 0.95), percentile(with, 1))
	if wp50 > 2*bp50+2*time.Millisecond {
		t.Errorf("Put p50 rose from %v to %v with a stalled viewer", bp50, wp50)
	}
	stalled.Close()
}

// stalledViewer plays url over TCP with a raw RTSP exchange and a small
// receive buffer, then never reads again.
func stalledViewer(t *testing.T, url string) net.Conn {
	t.Helper()
	host := strings.SplitN(strings.TrimPrefix(url, "rtsp://"), "/", 2)[0]
	// The receive buffer is set before connecting, so that the advertised
	// window stays small and the server's socket fills quickly.
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	session := ""
	do := func(cseq int, method, u, extra string) {
		t.Helper()
		fmt.Fprintf(c, "%s %s RTSP/1.0\r\nCSeq: %d\r\n%s\r\n", method, u, cseq, extra)
		status, err := r.ReadString('\n')
		if err != nil || !strings.Contains(status, " 200 ") {
			t.Fatalf("%s: %q %v", method, status, err)
		}
		length := 0
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimSpace(v)
			switch strings.ToLower(k) {
			case "content-length":
				length, _ = strconv.Atoi(v)
			case "session":
				session, _, _ = strings.Cut(v, ";")
			}
		}
		if _, err := r.Discard(length); err != nil {
			t.Fatal(err)
		}
	}
	do(1, "DESCRIBE", url, "")
	do(2, "SETUP", url+"/trackID=0", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
	do(3, "PLAY", url, "Session: "+session+"\r\n")
	_ = c.SetDeadline(time.Time{})
	return c // never read again
}
