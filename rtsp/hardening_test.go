package rtsp_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testlog"
	"github.com/skyline-go/skyline/rtsp"
)

// closedWithin reads c until the server closes it, and fails the test when
// that takes longer than d (c must send nothing more).
func closedWithin(c net.Conn, d time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("still open")
	}
	return nil
}

// TestSilentAndPartialConnectionsClosed: 500 TCP connections that send
// nothing are closed within FirstRequestTimeout, connections that stop in
// the middle of a request within ReadTimeout, and the server serves a real
// ffprobe afterwards.
func TestSilentAndPartialConnectionsClosed(t *testing.T) {
	const first, read = time.Second, time.Second
	srv := newServer(t, rtsp.ServerConfig{FirstRequestTimeout: first, ReadTimeout: read,
		MaxConnections: 2000, MaxConnectionsPerClient: 2000})
	sl := startSkyLine(t, srv, "/cam", smallW, smallH, smallFPS, skyline.Encoder{})
	f := startFeeder(t, sl, smallW, smallH, smallFPS, 0)
	defer f.Stop()
	url := srv.Stream("/cam").URL()
	waitReady(t, url)
	addr := srv.Addr().String()

	conns := make([]net.Conn, 0, 510)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	t0 := time.Now()
	for i := 0; i < 500; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	partial := []string{"D", "DESCRIBE " + url + " RTSP/1.0\r\n", "DESCRIBE " + url + " RTSP/1.0\r\nCSeq: 1\r\n"}
	for _, p := range partial {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, p); err != nil {
			t.Fatal(err)
		}
	}
	// One that trickles a byte every 200 ms: each byte is in time, the
	// request never completes.
	trickle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer trickle.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for _, b := range []byte(strings.Repeat("X", 100)) {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := trickle.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	conns = append(conns, trickle)

	limit := first + read + 3*time.Second // generous under load; the old server kept them forever
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := 0
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if closedWithin(c, limit-time.Since(t0)) != nil {
				mu.Lock()
				open++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if open > 0 {
		t.Fatalf("%d of %d silent or partial connections still open %v after they were opened", open, len(conns), time.Since(t0))
	}
	t.Logf("%d connections closed by the server within %v", len(conns), time.Since(t0).Round(time.Millisecond))
	checkProbe(t, probe(t, url, "tcp"), smallW, smallH)
}

// TestConnectionCaps: beyond MaxConnectionsPerClient (or MaxConnections) a
// new connection is closed at once with a clear log line; the connections
// already open keep being served.
func TestConnectionCaps(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  rtsp.ServerConfig
		cap  string
	}{
		{"per-client", rtsp.ServerConfig{MaxConnectionsPerClient: 4}, "MaxConnectionsPerClient"},
		{"server-wide", rtsp.ServerConfig{MaxConnections: 4}, "MaxConnections"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs testlog.Buffer
			c.cfg.Logger = logs.Logger(slog.LevelInfo)
			srv := newServer(t, c.cfg)
			sl := startSkyLine(t, srv, "/cam", smallW, smallH, smallFPS, skyline.Encoder{})
			f := startFeeder(t, sl, smallW, smallH, smallFPS, 0)
			defer f.Stop()
			url := srv.Stream("/cam").URL()
			waitReady(t, url)
			v := play(t, url, viewerOpts{}) // 1 connection
			var held []net.Conn
			defer func() {
				for _, h := range held {
					h.Close()
				}
			}()
			for i := 0; i < 3; i++ {
				h, err := net.Dial("tcp", srv.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, h)
			}
			extra, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer extra.Close()
			if err := closedWithin(extra, 3*time.Second); err != nil {
				t.Fatalf("a connection beyond %s: %v", c.cap, err)
			}
			if !logs.WaitFor(5*time.Second, func(l string) bool {
				return strings.Contains(l, "refused a connection: too many connections ("+c.cap+")")
			}) {
				t.Fatalf("no log line naming %s:\n%s", c.cap, logs.String())
			}
			n := v.count.Load()
			waitFor(t, 5*time.Second, "the viewer to keep receiving", func() bool { return v.count.Load() > n+5 })
			for _, h := range held {
				h.Close()
			}
			held = nil
			waitFor(t, 5*time.Second, "a DESCRIBE after the held connections closed", func() bool {
				_, err := describe(url, nil)
				return err == nil
			})
		})
	}
}

// TestViewerLeftHasAddress: the viewer-left event and log line carry the
// viewer's address, as viewer-joined does.
func TestViewerLeftHasAddress(t *testing.T) {
	var logs testlog.Buffer
	srv := newServer(t, rtsp.ServerConfig{Logger: logs.Logger(slog.LevelInfo)})
	events := make(chan skyline.Event, 100)
	sl, err := rtsp.NewSkyLine(srv, "/cam", skyline.Config{NoDotEnv: true, Logger: testLogger,
		OnEvent: func(e skyline.Event) {
			if e.Kind == skyline.EventViewerJoined || e.Kind == skyline.EventViewerLeft {
				events <- e
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sl.Close() })
	if err := sl.Start(skyline.Params{FPS: smallFPS, Width: smallW, Height: smallH}); err != nil {
		t.Fatal(err)
	}
	f := startFeeder(t, sl, smallW, smallH, smallFPS, 0)
	defer f.Stop()
	url := srv.Stream("/cam").URL()
	waitReady(t, url)
	for i := 0; i < 3; i++ {
		v := play(t, url, viewerOpts{})
		waitFor(t, 10*time.Second, "pictures", func() bool { return v.count.Load() > 0 })
		v.Close()
		var joined, left skyline.Event
		for left.Kind == "" {
			select {
			case e := <-events:
				if e.Kind == skyline.EventViewerJoined {
					joined = e
				} else {
					left = e
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no viewer-left event")
			}
		}
		if _, _, err := net.SplitHostPort(left.Viewer); err != nil || left.Viewer != joined.Viewer {
			t.Fatalf("viewer-left address %q, viewer-joined %q", left.Viewer, joined.Viewer)
		}
		if !logs.WaitFor(5*time.Second, func(l string) bool {
			return strings.Contains(l, `msg="viewer left"`) && strings.Contains(l, "remote="+left.Viewer+" reason=")
		}) {
			t.Fatalf("no viewer-left log line with the address:\n%s", logs.String())
		}
	}
}
