package webrtc_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/whepclient"
	"github.com/skyline-go/skyline/webrtc"
)

// postOffer POSTs an SDP offer and returns the status and body.
func postOffer(url, offer string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(offer))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if loc := res.Header.Get("Location"); res.StatusCode == http.StatusCreated && loc != "" {
		// End the session at once: the test only wants the status.
		del, _ := http.NewRequest(http.MethodDelete, strings.TrimSuffix(url, "/whep")+loc[strings.LastIndex(loc, "/whep/"):], nil)
		if r, err := http.DefaultClient.Do(del); err == nil {
			r.Body.Close()
		}
	}
	return res.StatusCode, strings.TrimSpace(string(b)), nil
}

func makeOffer(t *testing.T, profiles ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sdp, err := whepclient.Offer(ctx, whepclient.Options{H264Profiles: profiles})
	if err != nil {
		t.Fatal(err)
	}
	return sdp
}

// TestWHEPFloodRefused: a flood of offers beyond MaxSessions is refused
// with 503 and a reason, while the viewer already playing keeps playing
// (consecutive pictures); once the flood's sessions time out, a new viewer
// is served.
func TestWHEPFloodRefused(t *testing.T) {
	const maxSessions, flood = 8, 80
	srv := newServer(t, webrtc.ServerConfig{MaxSessions: maxSessions, HandshakeTimeout: 2 * time.Second})
	st, err := srv.AddStream("/cam", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sl := startSkyLine(t, smallW, smallH, smallFPS, nil, st)
	startFeeder(t, sl, smallW, smallH, smallFPS)
	viewer := dial(t, st.WHEPURL(), whepclient.Options{})
	checkConsecutive(t, "before the flood", decodeN(t, viewer, smallW, smallH, 10, 30*time.Second))

	offer := makeOffer(t)
	// Offers that never connect: their sessions hold a slot until the
	// handshake timeout.
	type result struct {
		code int
		body string
		err  error
	}
	results := make(chan result, flood)
	var wg sync.WaitGroup
	for i := 0; i < flood; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, st.WHEPURL(), strings.NewReader(offer))
			req.Header.Set("Content-Type", "application/sdp")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			results <- result{code: res.StatusCode, body: string(b)}
		}()
	}
	pics := decodeN(t, viewer, smallW, smallH, 30, 30*time.Second)
	wg.Wait()
	close(results)
	created, refused := 0, 0
	for r := range results {
		switch {
		case r.err != nil:
			t.Errorf("flood request: %v", r.err)
		case r.code == http.StatusCreated:
			created++
		case r.code == http.StatusServiceUnavailable && strings.Contains(r.body, "MaxSessions"):
			refused++
		default:
			t.Errorf("flood request: %d %q", r.code, r.body)
		}
	}
	if created > maxSessions-1 || created+refused != flood {
		t.Fatalf("%d offers: %d answered, %d refused; want at most %d answered (MaxSessions %d, one viewer playing)",
			flood, created, refused, maxSessions-1, maxSessions)
	}
	checkConsecutive(t, "during the flood", pics)
	if s := st.Stats(); s.Sessions > maxSessions {
		t.Fatalf("%d sessions, cap %d", s.Sessions, maxSessions)
	}
	t.Logf("flood of %d offers: %d answered, %d refused with 503; the playing viewer decoded %d consecutive pictures",
		flood, created, refused, len(pics))
	// The flood's sessions end at their handshake timeout; then a new
	// viewer gets in.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := whepclient.Dial(ctx, st.WHEPURL(), whepclient.Options{})
		cancel()
		if err == nil {
			t.Cleanup(c.Close)
			decodeN(t, c, smallW, smallH, 5, 30*time.Second)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new viewer after the flood: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestWHEPRequestLimits: a body announced larger than an offer is refused
// at once (413), a request whose body never comes is closed within
// ReadTimeout, headers beyond the limit get 431, and the server still
// answers offers afterwards.
func TestWHEPRequestLimits(t *testing.T) {
	srv := newServer(t, webrtc.ServerConfig{ReadTimeout: time.Second})
	st, err := srv.AddStream("/cam", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sl := startSkyLine(t, smallW, smallH, smallFPS, nil, st) // the last offer needs a picture
	startFeeder(t, sl, smallW, smallH, smallFPS)
	addr := srv.Addr().String()
	raw := func(req string) (net.Conn, string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 256)
		n, _ := io.ReadAtLeast(c, b, 12)
		return c, string(b[:n])
	}
	c, res := raw("POST /cam/whep HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 100000000\r\n\r\n")
	c.Close()
	if !strings.HasPrefix(res, "HTTP/1.1 413") {
		t.Fatalf("a 100 MB offer announced: %q, want 413", res)
	}
	c, res = raw("POST /cam/whep HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 40<<10) + "\r\n\r\n")
	c.Close()
	if !strings.HasPrefix(res, "HTTP/1.1 431") {
		t.Fatalf("40 KiB of headers: %q, want 431", res)
	}
	// A body that never comes: the connection is closed within ReadTimeout.
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t0 := time.Now()
	if _, err := io.WriteString(c, "POST /cam/whep HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 5000\r\n\r\nv=0\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(6 * time.Second))
	_, err = io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("a request whose body never comes still open after %v", time.Since(t0))
	}
	t.Logf("request without its body closed after %v", time.Since(t0).Round(time.Millisecond))
	code, body, err := postOffer(st.WHEPURL(), makeOffer(t))
	if err != nil || code != http.StatusCreated {
		t.Fatalf("an offer afterwards: %d %q %v", code, body, err)
	}
}
