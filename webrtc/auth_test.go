package webrtc_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/whepclient"
	"github.com/skyline-go/skyline/webrtc"
)

// request sends one HTTP request and returns the status and headers.
func request(t *testing.T, method, url, user, pass, ctype, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

const fakeOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\n"

// TestAuth: with credentials, the page, the clock and WHEP answer 401
// without them or with wrong ones, and work with them; a stream may have
// its own credentials or be public; the password never reaches the logs.
func TestAuth(t *testing.T) {
	var logs bytes.Buffer
	sw := &syncWriter{w: &logs}
	log := slog.New(slog.NewTextHandler(sw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := newServer(t, webrtc.ServerConfig{User: "admin", Pass: "s3cret-pw", Logger: log})
	st, err := srv.AddStream("/private", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	own, err := srv.AddStream("/own", webrtc.StreamOptions{User: "bob", Pass: "bobs-pw"})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := srv.AddStream("/public", webrtc.StreamOptions{Public: true})
	if err != nil {
		t.Fatal(err)
	}
	sl := startSkyLine(t, smallW, smallH, smallFPS, nil, st)
	startFeeder(t, sl, smallW, smallH, smallFPS)

	base := strings.TrimSuffix(srv.URLs()[0], "/own/")
	for _, c := range []struct {
		method, path, user, pass, ctype, body string
		want                                  int
	}{
		{"GET", "/private/", "", "", "", "", 401},
		{"GET", "/private/", "admin", "wrong", "", "", 401},
		{"GET", "/private/", "bob", "bobs-pw", "", "", 401},
		{"GET", "/private/", "admin", "s3cret-pw", "", "", 200},
		{"POST", "/private/whep", "", "", "application/sdp", fakeOffer, 401},
		{"POST", "/private/whep", "admin", "nope", "application/sdp", fakeOffer, 401},
		{"GET", "/private/clock", "", "", "", "", 401},
		{"GET", "/private/clock", "admin", "s3cret-pw", "", "", 200},
		{"DELETE", "/private/whep/0123", "", "", "", "", 401},
		{"GET", "/", "", "", "", "", 401},
		{"GET", "/nothing/", "", "", "", "", 401}, // unknown paths are not revealed
		{"GET", "/nothing/", "admin", "s3cret-pw", "", "", 404},
		{"GET", "/own/", "admin", "s3cret-pw", "", "", 401},
		{"GET", "/own/", "bob", "bobs-pw", "", "", 200},
		{"POST", "/own/whep", "", "", "application/sdp", fakeOffer, 401},
		{"GET", "/public/", "", "", "", "", 200},
	} {
		code, h, _ := request(t, c.method, base+c.path, c.user, c.pass, c.ctype, c.body, nil)
		if code != c.want {
			t.Errorf("%s %s as %q/%q: %d, want %d", c.method, c.path, c.user, c.pass, code, c.want)
		}
		if code == 401 && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s %s: 401 without a basic challenge", c.method, c.path)
		}
	}

	// With the credentials, WHEP works end to end.
	if _, err := whepclient.Dial(context.Background(), st.WHEPURL(), whepclient.Options{}); !isStatus(err, 401) {
		t.Errorf("WHEP without credentials: %v, want HTTP 401", err)
	}
	c := dial(t, st.WHEPURL(), whepclient.Options{User: "admin", Pass: "s3cret-pw"})
	pics := decodeN(t, c, smallW, smallH, 10, 30*time.Second)
	if err := consecutive(pics); err != nil {
		t.Error(err)
	}
	c.Close()
	_ = pub
	_ = own
	srv.Close()
	sw.mu.Lock()
	all := logs.String()
	sw.mu.Unlock()
	if strings.Contains(all, "s3cret-pw") || strings.Contains(all, "bobs-pw") {
		t.Errorf("a password reached the logs:\n%s", all)
	}
	if s := (webrtc.ServerConfig{Pass: "s3cret-pw"}).String(); strings.Contains(s, "s3cret-pw") {
		t.Errorf("ServerConfig.String shows the password: %s", s)
	}
}

func isStatus(err error, code int) bool {
	var he *whepclient.HTTPError
	return errors.As(err, &he) && he.Status == code
}

// TestCORS: preflights and answers carry CORS headers for allowed origins
// only.
func TestCORS(t *testing.T) {
	srv := newServer(t, webrtc.ServerConfig{AllowOrigins: []string{"https://app.example.org"}})
	st, err := srv.AddStream("/c", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		origin string
		allow  bool
	}{{"https://app.example.org", true}, {"https://evil.example.org", false}} {
		code, h, _ := request(t, "OPTIONS", st.WHEPURL(), "", "", "", "", map[string]string{
			"Origin": c.origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
		got := h.Get("Access-Control-Allow-Origin")
		if code != 204 || (got == c.origin) != c.allow || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
			t.Errorf("preflight from %s: %d, Allow-Origin %q", c.origin, code, got)
		}
		_, h, _ = request(t, "GET", strings.TrimSuffix(st.WHEPURL(), "whep")+"clock", "", "", "", "", map[string]string{"Origin": c.origin})
		if got := h.Get("Access-Control-Allow-Origin"); (got == c.origin) != c.allow {
			t.Errorf("GET from %s: Allow-Origin %q", c.origin, got)
		}
	}
}

// TestBadInput: bad configurations, paths, requests and offers are
// rejected with clear errors and statuses.
func TestBadInput(t *testing.T) {
	for _, cfg := range []webrtc.ServerConfig{
		{Address: "nohostport"},
		{Pass: "x"},
		{User: "a:b", Pass: "x"},
		{CertFile: "c.pem"},
		{UDPPort: -1}, {UDPPort: 70000}, {TCPPort: 70000},
		{AdvertiseIPs: []string{"not-an-ip"}},
		{ICEServers: []webrtc.ICEServer{{}}},
		{ICEServers: []webrtc.ICEServer{{URLs: []string{"http://x"}}}},
		{AllowOrigins: []string{"example.org"}},
		{ViewerQueue: -1}, {HandshakeTimeout: -time.Second},
	} {
		if _, err := webrtc.NewServer(cfg); !errors.Is(err, webrtc.ErrInvalidConfig) {
			t.Errorf("NewServer(%v): %v, want ErrInvalidConfig", cfg, err)
		}
	}
	srv := newServer(t, webrtc.ServerConfig{})
	for _, p := range []string{"", "/", "a b", "/x?y", "/a//b", "/x/whep", "/x/clock", "/whep/y", "/a/../b"} {
		if _, err := srv.AddStream(p, webrtc.StreamOptions{}); !errors.Is(err, webrtc.ErrInvalidPath) {
			t.Errorf("AddStream(%q): %v, want ErrInvalidPath", p, err)
		}
	}
	if _, err := srv.AddStream("/x", webrtc.StreamOptions{Pass: "p"}); !errors.Is(err, webrtc.ErrInvalidConfig) {
		t.Errorf("AddStream with a password alone: %v", err)
	}
	st, err := srv.AddStream("x", webrtc.StreamOptions{})
	if err != nil || st.Path() != "/x" {
		t.Fatalf("AddStream(x): %v %v", st, err)
	}
	if _, err := srv.AddStream("/x/", webrtc.StreamOptions{}); !errors.Is(err, webrtc.ErrStreamExists) {
		t.Errorf("second AddStream: %v", err)
	}
	if err := srv.RemoveStream("/nope"); !errors.Is(err, webrtc.ErrStreamNotFound) {
		t.Errorf("RemoveStream(/nope): %v", err)
	}
	if err := srv.Start(); !errors.Is(err, webrtc.ErrRunning) {
		t.Errorf("second Start: %v", err)
	}
	// Port in use.
	busy, err := webrtc.NewServer(webrtc.ServerConfig{Address: srv.Addr().String(), Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	if err := busy.Start(); !errors.Is(err, webrtc.ErrAddressInUse) {
		busy.Close()
		t.Errorf("Start on a busy port: %v, want ErrAddressInUse", err)
	}
	l, err := net.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busyUDP, _ := webrtc.NewServer(webrtc.ServerConfig{Address: "127.0.0.1:0", UDPPort: l.LocalAddr().(*net.UDPAddr).Port, Logger: testLogger})
	if err := busyUDP.Start(); !errors.Is(err, webrtc.ErrAddressInUse) {
		busyUDP.Close()
		t.Errorf("Start on a busy UDP port: %v, want ErrAddressInUse", err)
	}

	// Requests.
	url := st.WHEPURL()
	for _, c := range []struct {
		method, url, ctype, body string
		want                     int
	}{
		{"POST", url, "text/plain", fakeOffer, 415},
		{"POST", url, "application/sdp", "garbage", 400},
		{"POST", url, "application/sdp", strings.ReplaceAll(fakeOffer, "H264", "VP8"), 400},
		{"POST", url, "application/sdp", fakeOffer, 400}, // no ICE credentials, no fingerprint
		{"GET", url, "", "", 405},
		{"POST", strings.Replace(url, "/x/", "/y/", 1), "application/sdp", fakeOffer, 404},
		{"DELETE", url + "/nosuchsession", "", "", 404},
		{"GET", strings.TrimSuffix(url, "/whep"), "", "", 200}, // redirected to the page
	} {
		if code, _, body := request(t, c.method, c.url, "", "", c.ctype, c.body, nil); code != c.want {
			t.Errorf("%s %s (%s): %d %q, want %d", c.method, c.url, c.ctype, code, body, c.want)
		}
	}

	// A stream takes one SkyLine at a time.
	info := skyline.StreamInfo{Width: 320, Height: 240, FPS: 30, Start: time.Now(), RequestKeyframe: func() {}, Emit: func(skyline.Event) {}}
	if err := st.Open(info); err != nil {
		t.Fatal(err)
	}
	if err := st.Open(info); !errors.Is(err, webrtc.ErrStreamBusy) {
		t.Errorf("second Open: %v, want ErrStreamBusy", err)
	}
	st.WriteAccessUnit(nil)
	st.WriteAccessUnit(&skyline.AccessUnit{Data: []byte{0, 0, 1}})
	st.Close()
	if err := srv.RemoveStream("/x"); err != nil {
		t.Fatal(err)
	}
	if err := st.Open(info); !errors.Is(err, webrtc.ErrStreamRemoved) {
		t.Errorf("Open after removal: %v, want ErrStreamRemoved", err)
	}
	if _, err := webrtc.NewSkyLine(nil, "/z", skyline.Config{}); !errors.Is(err, webrtc.ErrInvalidConfig) {
		t.Errorf("NewSkyLine(nil): %v", err)
	}
}
