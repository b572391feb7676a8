package rtsp

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
)

// TestServerFailureReported: when the listener fails for good (here its
// socket is closed under the server), the server reports it: a log line,
// an EventError to the stream's SkyLine and an error on Failed. Before,
// the port just refused connections, silently.
func TestServerFailureReported(t *testing.T) {
	srv, err := NewServer(ServerConfig{Address: "127.0.0.1:0", DisableUDP: true, DisableMulticast: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	events := make(chan skyline.Event, 16)
	sl, err := NewSkyLine(srv, "/cam", skyline.Config{NoDotEnv: true, Logger: slog.New(slog.DiscardHandler),
		OnEvent: func(e skyline.Event) {
			if e.Kind == skyline.EventError {
				events <- e
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: 30, Width: 64, Height: 64}); err != nil {
		t.Fatal(err)
	}
	gl := srv.current().NetListener().(*guardListener)
	_ = gl.Listener.Close() // not through the server: a listener that broke
	select {
	case err := <-srv.Failed():
		if !errors.Is(err, ErrServerFailed) {
			t.Fatalf("Failed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the failure was not reported on Failed")
	}
	select {
	case e := <-events:
		if !errors.Is(e.Err, ErrServerFailed) || e.Destination != "rtsp:/cam" {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no EventError")
	}
	if srv.Addr() != nil {
		t.Fatal("the failed server still says it listens")
	}
}

// TestAcceptErrorsRetried: accept errors that pass (a full descriptor
// table, an aborted connection) are retried; the listener keeps serving.
func TestAcceptErrorsRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	flaky := &flakyListener{Listener: ln, errs: []error{
		&net.OpError{Op: "accept", Err: syscall.EMFILE}, &net.OpError{Op: "accept", Err: syscall.ECONNABORTED},
		&net.OpError{Op: "accept", Err: syscall.ENFILE}}}
	gl := newGuardListener(flaky, ServerConfig{}.withDefaults(), slog.New(slog.DiscardHandler))
	defer gl.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			_, _ = io.WriteString(c, "x")
			c.Close()
		}
	}()
	c, err := gl.Accept()
	if err != nil {
		t.Fatalf("Accept after passing errors: %v", err)
	}
	c.Close()
	if len(flaky.errs) != 0 {
		t.Fatal("errors not consumed")
	}
	gl.Close()
	if _, err := gl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

type flakyListener struct {
	net.Listener
	errs []error
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	return f.Listener.Accept()
}

// TestServerFailureWithHeldRequest: a DESCRIBE held for the first picture
// does not delay the failure report by HoldTimeout (gortsplib waits for
// every connection before its Wait returns): the held request is answered
// (or its connection closed) and Failed reports at once.
func TestServerFailureWithHeldRequest(t *testing.T) {
	srv, err := NewServer(ServerConfig{Address: "127.0.0.1:0", DisableUDP: true, DisableMulticast: true,
		HoldTimeout: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st, err := srv.AddStream("/cam", StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "DESCRIBE "+st.URL()+" RTSP/1.0\r\nCSeq: 1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); st.Stats().HeldRequests == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the DESCRIBE was not held")
		}
	}
	gl := srv.current().NetListener().(*guardListener)
	_ = gl.Listener.Close() // a listener that broke
	select {
	case err := <-srv.Failed():
		if !errors.Is(err, ErrServerFailed) {
			t.Fatalf("Failed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the failure was not reported while a request was held (it waits for HoldTimeout)")
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the held connection was neither answered nor closed: %v", err)
	}
}
