package webrtc_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/whepclient"
	"github.com/skyline-go/skyline/webrtc"
)

// TestWHEPOutOfDescriptors: offers that arrive while the process's
// descriptor table is full (the limit lowered, as a flood or a small
// container limit leaves it) are refused with 503 and the reason (a
// warning logged), never answered 201 with an answer that carries no ICE
// candidate (a session no viewer can ever reach, as before) nor 400 "bad
// offer" for a server fault (as before, unlogged); the viewer already
// playing keeps playing, and once descriptors are free again a new viewer
// is served.
func TestWHEPOutOfDescriptors(t *testing.T) {
	const offers = 12
	var logBuf bytes.Buffer
	logs := &syncWriter{w: &logBuf}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := newServer(t, webrtc.ServerConfig{HandshakeTimeout: 2 * time.Second, Logger: log})
	st, err := srv.AddStream("/cam", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sl := startSkyLine(t, smallW, smallH, smallFPS, nil, st)
	startFeeder(t, sl, smallW, smallH, smallFPS)
	viewer := dial(t, st.WHEPURL(), whepclient.Options{})
	checkConsecutive(t, "before", decodeN(t, viewer, smallW, smallH, 5, 30*time.Second))
	offer := makeOffer(t)

	// Connections opened (and accepted: a request answered on each) while
	// descriptors are free; the offers go over them once they are not.
	addr := srv.Addr().String()
	type kept struct {
		c net.Conn
		r *bufio.Reader
	}
	var conns []kept
	for i := 0; i < offers; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		k := kept{c, bufio.NewReader(c)}
		fmt.Fprintf(c, "GET /cam/clock HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(k.r, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		conns = append(conns, k)
	}

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	restore := func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) }
	defer restore()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(len(fds) + 4) // room for a session's socket or two, not for all
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	answered, refused := 0, 0
	for i, k := range conns {
		fmt.Fprintf(k.c, "POST /cam/whep HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(offer), offer)
		_ = k.c.SetReadDeadline(time.Now().Add(30 * time.Second))
		res, err := http.ReadResponse(k.r, nil)
		if err != nil {
			restore()
			t.Fatalf("offer %d: %v", i, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		body := string(b)
		switch {
		case res.StatusCode == http.StatusCreated && strings.Contains(body, "a=candidate:"):
			answered++
		case res.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, "short of resources"):
			refused++
		default:
			restore()
			t.Fatalf("offer %d with the descriptor table full: %d %.300q; want 201 with candidates or 503 naming the shortage",
				i, res.StatusCode, body)
		}
	}
	restore()
	if refused == 0 {
		t.Fatalf("%d offers with %d descriptors free: none refused (the test did not exhaust the table)", offers, low.Cur-uint64(len(fds)))
	}
	logs.mu.Lock()
	logged := logBuf.String()
	logs.mu.Unlock()
	if !strings.Contains(logged, "short of resources") {
		t.Errorf("no warning logged for the refused offers; log: %s", logged)
	}
	t.Logf("%d offers with the descriptor table full: %d answered with candidates, %d refused with 503", offers, answered, refused)
	checkConsecutive(t, "after", decodeN(t, viewer, smallW, smallH, 10, 30*time.Second))
	decodeN(t, dial(t, st.WHEPURL(), whepclient.Options{}), smallW, smallH, 5, 30*time.Second)
}
