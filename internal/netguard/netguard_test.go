package netguard

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/testlog"
)

type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (f *flakyListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

// TestAcceptErrorsRetried: Accept errors that pass (a full descriptor
// table, an aborted connection) are logged once (rate-limited) and
// retried; the next connection is returned. A fatal error is returned.
func TestAcceptErrorsRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Err: syscall.EMFILE}
	flaky := &flakyListener{Listener: ln, errs: []error{emfile, emfile, emfile,
		&net.OpError{Op: "accept", Err: syscall.ECONNABORTED}, &net.OpError{Op: "accept", Err: syscall.ENFILE}}}
	var logs testlog.Buffer
	l := New(flaky, Config{Name: "test", Logger: logs.Logger(slog.LevelInfo)})
	defer l.Close()
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			_, _ = io.WriteString(c, "x")
			c.Close()
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept after passing errors: %v", err)
	}
	c.Close()
	if len(flaky.errs) != 0 {
		t.Fatal("errors not consumed")
	}
	if n := strings.Count(logs.String(), "cannot accept a connection (retrying)"); n != 1 {
		t.Fatalf("%d log lines for 5 accept errors within a second, want 1 (rate-limited):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "too many open files") {
		t.Fatalf("the log does not name the error:\n%s", logs.String())
	}
	flaky.mu.Lock()
	flaky.errs = []error{&net.OpError{Op: "accept", Err: syscall.EBADF}}
	flaky.mu.Unlock()
	if _, err := l.Accept(); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("Accept after a fatal error: %v", err)
	}
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

// TestCaps: beyond MaxConnectionsPerClient (then MaxConnections) a new
// connection is closed at once with a warning; closing one frees its
// place.
func TestCaps(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		cap string
	}{
		{Config{MaxConnectionsPerClient: 3}, "MaxConnectionsPerClient"},
		{Config{MaxConnections: 3, MaxConnectionsPerClient: 10}, "MaxConnections"},
	} {
		t.Run(c.cap, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var logs testlog.Buffer
			c.cfg.Logger = logs.Logger(slog.LevelInfo)
			l := New(ln, c.cfg)
			defer l.Close()
			accepted := make(chan net.Conn, 16)
			go func() {
				for {
					sc, err := l.Accept()
					if err != nil {
						close(accepted)
						return
					}
					accepted <- sc
				}
			}()
			var clients, servers []net.Conn
			defer func() {
				for _, x := range append(clients, servers...) {
					x.Close()
				}
			}()
			dial := func() net.Conn {
				cc, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				clients = append(clients, cc)
				return cc
			}
			for i := 0; i < 3; i++ {
				dial()
				servers = append(servers, <-accepted)
			}
			extra := dial()
			_ = extra.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, err := extra.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("a connection beyond %s: %v, want closed at once", c.cap, err)
			}
			// The connection is closed first, then the line is logged.
			if !logs.WaitFor(5*time.Second, func(s string) bool { return strings.Contains(s, "too many connections ("+c.cap+")") }) {
				t.Fatalf("no log line:\n%s", logs.String())
			}
			if n := l.Connections(); n != 3 {
				t.Fatalf("%d connections counted, want 3", n)
			}
			servers[0].Close()
			servers[0].Close() // twice: counted once
			dial()
			select {
			case sc := <-accepted:
				servers = append(servers, sc)
			case <-time.After(5 * time.Second):
				t.Fatal("no connection admitted after one closed")
			}
			if n := l.Connections(); n != 3 {
				t.Fatalf("%d connections counted, want 3", n)
			}
		})
	}
}
