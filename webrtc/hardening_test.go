package webrtc_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/testlog"
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

// TestWHEPHeldOffersCapped: offers that arrive before the stream's first
// picture take a MaxSessions slot before they are held: beyond the cap
// they are refused at once with 503 and the reason, while the held ones
// wait; once the stream starts, the held ones are answered and play.
// Before, every offer was held (a goroutine, a connection and its body
// each, without bound) and the cap applied only after the hold.
func TestWHEPHeldOffersCapped(t *testing.T) {
	const maxSessions, extra = 3, 4
	srv := newServer(t, webrtc.ServerConfig{MaxSessions: maxSessions, HoldTimeout: time.Minute})
	st, err := srv.AddStream("/cam", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		c   *whepclient.Client
		err error
	}
	results := make(chan result, maxSessions+extra)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i := 0; i < maxSessions+extra; i++ {
		go func() {
			c, err := whepclient.Dial(ctx, st.WHEPURL(), whepclient.Options{})
			results <- result{c, err}
		}()
	}
	var answered []*whepclient.Client
	defer func() {
		for _, c := range answered {
			c.Close()
		}
	}()
	// The extra offers are refused while the others are held (HoldTimeout
	// is a minute: a held offer cannot be answered meanwhile).
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for refused := 0; refused < extra; {
		select {
		case r := <-results:
			if r.err == nil {
				answered = append(answered, r.c)
				t.Fatal("an offer was answered 201 before the stream had a picture")
			}
			var he *whepclient.HTTPError
			if !errors.As(r.err, &he) || he.Status != http.StatusServiceUnavailable || !strings.Contains(he.Body, "MaxSessions") {
				t.Fatalf("an offer beyond MaxSessions: %v, want 503 naming MaxSessions", r.err)
			}
			refused++
		case <-deadline.C:
			t.Fatalf("%d offers beyond MaxSessions %d on a stream without a picture: none refused within 20 s (held with the others)",
				extra, maxSessions)
		}
	}
	for st.Stats().HeldOffers < maxSessions {
		select {
		case <-deadline.C:
			t.Fatalf("%d offers held, want %d", st.Stats().HeldOffers, maxSessions)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if n := st.Stats().HeldOffers; n != maxSessions {
		t.Fatalf("%d offers held, want %d (the refused ones are not held)", n, maxSessions)
	}
	select {
	case r := <-results:
		t.Fatalf("a held offer was answered before the stream started: %v", r.err)
	default:
	}
	// One more, now: refused at once too.
	code, body, err := postOffer(st.WHEPURL(), makeOffer(t))
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "MaxSessions") {
		t.Fatalf("an offer beyond the cap while %d are held: %d %q %v", maxSessions, code, body, err)
	}
	sl := startSkyLine(t, smallW, smallH, smallFPS, nil, st)
	startFeeder(t, sl, smallW, smallH, smallFPS)
	for i := 0; i < maxSessions; i++ {
		r := <-results
		if r.err != nil {
			t.Fatalf("held offer %d: %v", i, r.err)
		}
		answered = append(answered, r.c)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(answered))
	for i, c := range answered {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pics, err := tryDecodeN(c, smallW, smallH, 10, 30*time.Second)
			if err == nil {
				err = consecutive(pics)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("held viewer %d: %v", i, err)
		}
	}
	if s := st.Stats(); s.Sessions != maxSessions {
		t.Fatalf("%d sessions, want %d", s.Sessions, maxSessions)
	}
}

// TestWHEPMaxViewersCountsHeldOffers: MaxViewers also counts the offers
// held for the first picture.
func TestWHEPMaxViewersCountsHeldOffers(t *testing.T) {
	srv := newServer(t, webrtc.ServerConfig{MaxViewers: 1, HoldTimeout: time.Minute})
	st, err := srv.AddStream("/cam", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	offer := makeOffer(t)
	held := make(chan int, 1)
	go func() {
		code, _, _ := postOffer(st.WHEPURL(), offer)
		held <- code
	}()
	for deadline := time.Now().Add(20 * time.Second); st.Stats().HeldOffers == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first offer was not held")
		}
	}
	code, body, err := postOffer(st.WHEPURL(), makeOffer(t))
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "MaxViewers") {
		t.Fatalf("a second offer with MaxViewers 1 and one held: %d %q %v", code, body, err)
	}
	sl := startSkyLine(t, smallW, smallH, smallFPS, nil, st)
	startFeeder(t, sl, smallW, smallH, smallFPS)
	if code := <-held; code != http.StatusCreated {
		t.Fatalf("the held offer: %d", code)
	}
}

// closedWithin reads c until the server closes it; an error when that
// takes longer than d (c must send nothing more).
func closedWithin(c net.Conn, d time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("still open")
	}
	return nil
}

// TestWHEPConnectionCaps: connections beyond MaxConnectionsPerClient from
// one address (or beyond MaxConnections) are closed at once with a log
// line, and a real viewer gets a WHEP answer and decodes pictures: from
// another address while the stranger's connections are still open (per
// client), once they closed (server-wide). Before, the HTTP listener had
// no cap.
func TestWHEPConnectionCaps(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  webrtc.ServerConfig
		cap  string
	}{
		{"per-client", webrtc.ServerConfig{MaxConnectionsPerClient: 4}, "MaxConnectionsPerClient"},
		{"server-wide", webrtc.ServerConfig{MaxConnections: 4}, "MaxConnections"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs testlog.Buffer
			c.cfg.Logger = logs.Logger(slog.LevelWarn)
			srv := newServer(t, c.cfg)
			st, err := srv.AddStream("/cam", webrtc.StreamOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sl := startSkyLine(t, smallW, smallH, smallFPS, nil, st)
			startFeeder(t, sl, smallW, smallH, smallFPS)
			// The stranger dials from 127.0.0.2, the viewer from 127.0.0.1.
			stranger := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
			var held []net.Conn
			defer func() {
				for _, h := range held {
					h.Close()
				}
			}()
			for i := 0; i < 4; i++ {
				h, err := stranger.Dial("tcp", srv.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, h)
			}
			var extras []net.Conn
			for i := 0; i < 3; i++ {
				x, err := stranger.Dial("tcp", srv.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer x.Close()
				extras = append(extras, x)
			}
			for i, x := range extras {
				if err := closedWithin(x, 3*time.Second); err != nil {
					t.Fatalf("connection %d beyond %s (4): %v", 5+i, c.cap, err)
				}
			}
			for _, h := range held { // the admitted ones are open
				_ = h.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				var ne net.Error
				if _, err := h.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatalf("an admitted connection: %v, want still open", err)
				}
			}
			// The connection is closed first, then the line is logged.
			if !logs.WaitFor(5*time.Second, func(l string) bool {
				return strings.Contains(l, "refused a connection: too many connections ("+c.cap+")")
			}) {
				t.Fatalf("no log line naming %s:\n%s", c.cap, logs.String())
			}
			if c.cap == "MaxConnections" {
				for _, h := range held {
					h.Close()
				}
				held = nil
			}
			var v *whepclient.Client
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				v, err = whepclient.Dial(ctx, st.WHEPURL(), whepclient.Options{})
				cancel()
				// Server-wide, the freed places are counted free once
				// the server saw the stranger's connections close.
				if err == nil || c.cap != "MaxConnections" || time.Now().After(deadline) {
					break
				}
			}
			if err != nil {
				t.Fatalf("a viewer: %v", err)
			}
			t.Cleanup(v.Close)
			checkConsecutive(t, "viewer", decodeN(t, v, smallW, smallH, 10, 30*time.Second))
		})
	}
}

// TestWHEPSlowConnectionsClosed: a connection that sends nothing, and one
// that trickles its headers a byte every 200 ms (slowloris), are closed
// within ReadTimeout; a keep-alive connection that sends no new request
// is closed within IdleTimeout; the server still serves afterwards.
func TestWHEPSlowConnectionsClosed(t *testing.T) {
	const read, idle, slack = time.Second, time.Second, 2 * time.Second
	srv := newServer(t, webrtc.ServerConfig{ReadTimeout: read, IdleTimeout: idle})
	if _, err := srv.AddStream("/cam", webrtc.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	silent := dial()
	trickle := dial()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for _, b := range []byte("GET /cam/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 100)) {
			if _, err := trickle.Write([]byte{b}); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	keep := dial()
	if _, err := io.WriteString(keep, "GET /cam/ HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(keep)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Close {
		t.Fatalf("GET the page: %d close=%v, want 200 kept alive", res.StatusCode, res.Close)
	}
	answered := time.Now()
	t0 := time.Now()
	var wg sync.WaitGroup
	for _, c := range []struct {
		name  string
		conn  net.Conn
		start time.Time
		bound time.Duration
	}{
		{"a silent connection", silent, t0, read + slack},
		{"a slowloris connection (a header byte every 200 ms)", trickle, t0, read + slack},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := closedWithin(c.conn, c.bound-time.Since(c.start)); err != nil {
				t.Errorf("%s: %v %v after it was opened (ReadTimeout %v)", c.name, err, time.Since(c.start).Round(time.Millisecond), read)
				return
			}
			t.Logf("%s closed after %v", c.name, time.Since(c.start).Round(time.Millisecond))
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = keep.SetReadDeadline(time.Now().Add(idle + slack - time.Since(answered)))
		_, err := br.ReadByte()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("an idle keep-alive connection still open %v after its answer (IdleTimeout %v)",
				time.Since(answered).Round(time.Millisecond), idle)
			return
		}
		t.Logf("an idle keep-alive connection closed %v after its answer", time.Since(answered).Round(time.Millisecond))
	}()
	wg.Wait()
	code, body := 0, ""
	if res, err := http.Get("http://" + addr + "/cam/"); err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		code, body = res.StatusCode, string(b)
	}
	if code != http.StatusOK || !strings.Contains(body, "<video") {
		t.Fatalf("the page afterwards: %d", code)
	}
}
