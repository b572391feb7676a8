package rtsp_test

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
)

func TestConfigValidation(t *testing.T) {
	for _, c := range []rtsp.ServerConfig{
		{Address: "nonsense"},
		{Pass: "secret"},
		{CertFile: "a.pem"},
		{UDPPort: 8001},
		{MulticastIPRange: "10.0.0.0/8"},
		{MulticastPort: 3},
		{WriteTimeout: -time.Second},
		{WriteQueueSize: -1},
		{AuthMethods: []rtsp.AuthMethod{42}},
	} {
		if _, err := rtsp.NewServer(c); !errors.Is(err, rtsp.ErrInvalidConfig) {
			t.Errorf("%v: got %v, want ErrInvalidConfig", c, err)
		}
	}
	if _, err := rtsp.NewServer(rtsp.ServerConfig{CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"}); !errors.Is(err, rtsp.ErrTLS) {
		t.Errorf("missing certificate: got %v, want ErrTLS", err)
	}
	// The zero value is valid, and the password never shows.
	c := rtsp.ServerConfig{User: "u", Pass: "hunter2"}
	if _, err := rtsp.NewServer(c); err != nil {
		t.Fatal(err)
	}
	if s := c.String(); strings.Contains(s, "hunter2") {
		t.Errorf("String shows the password: %s", s)
	}
	o := rtsp.StreamOptions{User: "u", Pass: "hunter2"}
	if strings.Contains(o.String(), "hunter2") {
		t.Errorf("StreamOptions.String shows the password")
	}
}

func TestPathsAndURLs(t *testing.T) {
	srv := newServer(t, rtsp.ServerConfig{})
	port := srv.Addr().(*net.TCPAddr).Port
	a, err := srv.AddStream("cam", rtsp.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Path() != "/cam" {
		t.Errorf("path %q, want /cam", a.Path())
	}
	if _, err := srv.AddStream("/cam", rtsp.StreamOptions{}); !errors.Is(err, rtsp.ErrStreamExists) {
		t.Errorf("duplicate: %v, want ErrStreamExists", err)
	}
	if _, err := srv.AddStream("/x/y", rtsp.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "/", "a b", "a?b", "x#", "a//b"} {
		if _, err := srv.AddStream(bad, rtsp.StreamOptions{}); !errors.Is(err, rtsp.ErrInvalidPath) {
			t.Errorf("AddStream(%q): %v, want ErrInvalidPath", bad, err)
		}
	}
	want := []string{"rtsp://127.0.0.1:" + itoa(port) + "/cam", "rtsp://127.0.0.1:" + itoa(port) + "/x/y"}
	if got := srv.URLs(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("URLs %v, want %v", got, want)
	}
	if a.URL() != want[0] {
		t.Errorf("URL %q, want %q", a.URL(), want[0])
	}
	if err := srv.RemoveStream("x/y"); err != nil {
		t.Fatal(err)
	}
	if err := srv.RemoveStream("x/y"); !errors.Is(err, rtsp.ErrStreamNotFound) {
		t.Errorf("second remove: %v", err)
	}
	if n := len(srv.URLs()); n != 1 {
		t.Errorf("%d URLs after remove", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestPortInUse(t *testing.T) {
	a := newServer(t, rtsp.ServerConfig{})
	b, err := rtsp.NewServer(rtsp.ServerConfig{Address: a.Addr().String(), DisableUDP: true, DisableMulticast: true, Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start()
	if !errors.Is(err, rtsp.ErrAddressInUse) {
		b.Close()
		t.Fatalf("got %v, want ErrAddressInUse", err)
	}
	if !strings.Contains(err.Error(), a.Addr().String()) {
		t.Errorf("error does not name the address: %v", err)
	}
	b.Close() // closing a server that never started is fine
}

// A DESCRIBE before the first keyframe is held for ServerConfig.HoldTimeout
// (not answered at once, which players do not retry), then gets a clear
// answer; an unknown path answers 404 at once.
func TestDescribeBeforeFirstKeyframe(t *testing.T) {
	srv := newServer(t, rtsp.ServerConfig{HoldTimeout: 300 * time.Millisecond})
	st, err := srv.AddStream("/early", rtsp.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	_, err = describe(st.URL(), nil)
	if statusCode(err) != base.StatusServiceUnavailable || !strings.Contains(err.Error(), "no picture yet") {
		t.Fatalf("DESCRIBE before the first keyframe: %v, want 503 with a reason", err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond || d > 2*time.Second {
		t.Errorf("answer took %v, want the 300 ms hold", d)
	}
	if st.Stats().HeldRequests != 1 {
		t.Errorf("stats %+v, want 1 held request", st.Stats())
	}
	t0 = time.Now()
	_, err = describe(strings.Replace(st.URL(), "/early", "/nothing", 1), nil)
	if statusCode(err) != base.StatusNotFound {
		t.Fatalf("unknown path: %v, want 404", err)
	}
	if d := time.Since(t0); d > 250*time.Millisecond {
		t.Errorf("404 took %v", d)
	}
}

// Bad input to the Receiver side never panics.
func TestWriteAccessUnitBadInput(t *testing.T) {
	srv := newServer(t, rtsp.ServerConfig{HoldTimeout: 100 * time.Millisecond})
	st, err := srv.AddStream("/bad", rtsp.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st.WriteAccessUnit(&skyline.AccessUnit{Data: []byte{0, 0, 1}}) // before Open: ignored
	if err := st.Open(skyline.StreamInfo{Width: 320, Height: 240, FPS: 30, Start: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.Open(skyline.StreamInfo{Width: 320, Height: 240, FPS: 30}); !errors.Is(err, rtsp.ErrStreamBusy) {
		t.Errorf("second Open: %v, want ErrStreamBusy", err)
	}
	for _, au := range []*skyline.AccessUnit{
		nil, {}, {Data: []byte{0, 0, 1}}, {Data: []byte{0, 0, 0, 1, 0x67}, Keyframe: true},
		{Data: []byte{0, 0, 1, 0x67, 0xff, 0xff, 0, 0, 1, 0x68, 0, 0, 1, 0x65, 1}, Keyframe: true},
		{Data: []byte{1, 2, 3, 4, 5}}, {Data: []byte{0, 0, 1, 0x41, 0x9a}, PTS: -time.Hour},
	} {
		st.WriteAccessUnit(au)
	}
	if _, err := describe(st.URL(), nil); statusCode(err) != base.StatusServiceUnavailable {
		t.Errorf("after garbage: %v, want 503", err)
	}
	st.Close()
	if err := srv.RemoveStream("/bad"); err != nil {
		t.Fatal(err)
	}
	if err := st.Open(skyline.StreamInfo{Width: 320, Height: 240, FPS: 30}); !errors.Is(err, rtsp.ErrStreamRemoved) {
		t.Errorf("Open after remove: %v, want ErrStreamRemoved", err)
	}
}
