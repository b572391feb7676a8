package rtsp_test

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testlog"
	"github.com/skyline-go/skyline/rtsp"
)

// rawRTSP sends one RTSP request on c and reads the response: its status
// code and headers.
func rawRTSP(c net.Conn, r *bufio.Reader, cseq int, method, url string, hdr ...string) (int, textproto.MIMEHeader, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s RTSP/1.0\r\nCSeq: %d\r\n", method, url, cseq)
	for _, h := range hdr {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Write([]byte(b.String())); err != nil {
		return 0, nil, err
	}
	tp := textproto.NewReader(r)
	line, err := tp.ReadLine()
	if err != nil {
		return 0, nil, err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return 0, nil, err
	}
	if n, _ := strconv.Atoi(h.Get("Content-Length")); n > 0 {
		if _, err := r.Discard(n); err != nil {
			return 0, nil, err
		}
	}
	return code, h, nil
}

// udpSessionThenHangUp sets up and plays one UDP session on a connection of
// its own, then closes the connection (the session lives on: RFC 2326
// sessions are not tied to a connection). It returns the SETUP status.
func udpSessionThenHangUp(addr, url string, port int) (int, error) {
	return udpSession(addr, url, port, true)
}

// udpSession sets up one UDP session on a connection of its own, plays it
// if play, and hangs up. It returns the SETUP status.
func udpSession(addr, url string, port int, play bool) (int, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if code, _, err := rawRTSP(c, r, 1, "DESCRIBE", url, "Accept: application/sdp"); err != nil || code != 200 {
		return code, err
	}
	code, h, err := rawRTSP(c, r, 2, "SETUP", url+"/trackID=0",
		fmt.Sprintf("Transport: RTP/AVP;unicast;client_port=%d-%d", port, port+1))
	if err != nil || code != 200 {
		return code, err
	}
	if !play {
		return code, nil
	}
	sess, _, _ := strings.Cut(h.Get("Session"), ";")
	if code, _, err := rawRTSP(c, r, 3, "PLAY", url+"/", "Session: "+sess); err != nil || code != 200 {
		return 0, fmt.Errorf("PLAY: %d %v", code, err)
	}
	return 200, nil
}

// TestUDPSessionsCountedPerClient: a UDP session outlives its RTSP
// connection (until IdleTimeout), so a client that sets up a session and
// hangs up, again and again, would pile up sessions (each sent the whole
// stream) past the per-client connection cap. Sessions count against
// MaxConnectionsPerClient too: beyond it SETUP is answered 503, and the
// stream keeps at most that many viewers of one address; a session that
// ends (played or not, at IdleTimeout) frees its place.
func TestUDPSessionsCountedPerClient(t *testing.T) {
	const perClient = 3
	logs := &testlog.Buffer{}
	srv := newServer(t, rtsp.ServerConfig{UDPPort: freeUDPPair(t), MaxConnectionsPerClient: perClient,
		IdleTimeout: 2 * time.Second, Logger: logs.Logger(slog.LevelInfo)})
	sl := startSkyLine(t, srv, "/cam", smallW, smallH, smallFPS, skyline.Encoder{})
	f := startFeeder(t, sl, smallW, smallH, smallFPS, 0)
	defer f.Stop()
	url := srv.Stream("/cam").URL()
	waitReady(t, url)

	var codes []int
	for i := 0; i < perClient+3; i++ {
		// The client's RTP ports: real sockets (one pair per session), so
		// the server's packets land.
		port := freeUDPPair(t)
		code, err := udpSessionThenHangUp(srv.Addr().String(), url, port)
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		codes = append(codes, code)
	}
	for i, code := range codes {
		want := 200
		if i >= perClient {
			want = 503
		}
		if code != want {
			t.Fatalf("SETUP statuses %v: session %d got %d, want %d", codes, i, code, want)
		}
	}
	if n := srv.Stream("/cam").Viewers(); n > perClient {
		t.Fatalf("%d viewers of one address, want at most %d", n, perClient)
	}
	if !strings.Contains(logs.String(), "MaxConnectionsPerClient") {
		t.Fatalf("no log line names the cap:\n%s", logs)
	}
	// The hung-up sessions end at IdleTimeout (no RTCP receiver reports
	// come), and free their places.
	waitFor(t, 10*time.Second, "the idle sessions to end", func() bool { return srv.Stream("/cam").Viewers() == 0 })
	if code, err := udpSessionThenHangUp(srv.Addr().String(), url, freeUDPPair(t)); err != nil || code != 200 {
		t.Fatalf("SETUP after the idle sessions ended: %d %v", code, err)
	}

	// Sessions set up and never played do not pile up either (gortsplib
	// ends them with their connection, or at IdleTimeout).
	for i := 0; i < 2*perClient; i++ {
		if code, err := udpSession(srv.Addr().String(), url, freeUDPPair(t), false); err != nil || (code != 200 && code != 503) {
			t.Fatalf("SETUP %d without PLAY: %d %v", i, code, err)
		}
	}
	waitFor(t, 10*time.Second, "the sessions never played to end", func() bool {
		code, _ := udpSession(srv.Addr().String(), url, freeUDPPair(t), false)
		return code == 200
	})
}
