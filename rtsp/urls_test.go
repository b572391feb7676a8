package rtsp_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/rtsp"
)

// checkNumbered returns a per-picture check for mediatest's decoders: the
// picture numbers are consecutive and the pixels match (PSNR >= 30 dB).
func checkNumbered(t *testing.T, fr *frames) (func(i int, bgr []byte) error, func() string) {
	first, prev, count := -1, -1, 0
	minPSNR := 1000.0
	each := func(i int, bgr []byte) error {
		num, ok := testpattern.ReadBGR(bgr, fr.w, fr.h)
		if !ok {
			return fmt.Errorf("picture %d: number unreadable", i)
		}
		if first >= 0 && num != prev+1 {
			return fmt.Errorf("picture %d carries number %d after %d", i, num, prev)
		}
		if first < 0 {
			first = num
		}
		prev = num
		if p := mediatest.PSNR(bgr, fr.ref(num)); p < 30 {
			return fmt.Errorf("picture %d (number %d): PSNR %.1f dB, want >= 30", i, num, p)
		}
		minPSNR = min(minPSNR, mediatest.PSNR(bgr, fr.ref(num)))
		count++
		return nil
	}
	summary := func() string {
		return fmt.Sprintf("%d pictures, numbers %d..%d, min PSNR %.1f dB", count, first, prev, minPSNR)
	}
	return each, summary
}

// TestURLForms: the URL forms players are given (a trailing slash, a query
// string, a percent-encoded path, credentials in the URL) all play in
// ffmpeg, GStreamer's rtspsrc and OpenCV (its GStreamer and FFmpeg
// backends), with consecutive numbered pictures; the
// Content-Base the server answers never doubles a slash.
func TestURLForms(t *testing.T) {
	const user, pass = "viewer", "p@ss:w/rd"
	srv := newServer(t, rtsp.ServerConfig{})
	sl := startSkyLine(t, srv, "/sky/line", smallW, smallH, smallFPS, skyline.Encoder{})
	f := startFeeder(t, sl, smallW, smallH, smallFPS, 0)
	slE := startSkyLine(t, srv, "/caméra", smallW, smallH, smallFPS, skyline.Encoder{})
	fE := startFeeder(t, slE, smallW, smallH, smallFPS, 0)
	if _, err := srv.AddStream("/private", rtsp.StreamOptions{User: user, Pass: pass}); err != nil {
		t.Fatal(err)
	}
	slP, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: testLogger}, srv.Stream("/private"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slP.Close() })
	if err := slP.Start(skyline.Params{FPS: smallFPS, Width: smallW, Height: smallH}); err != nil {
		t.Fatal(err)
	}
	fP := startFeeder(t, slP, smallW, smallH, smallFPS, 0)
	base := strings.TrimSuffix(srv.Stream("/sky/line").URL(), "/sky/line")
	waitReady(t, base+"/sky/line")
	waitReady(t, srv.Stream("/caméra").URL())
	withCreds := strings.Replace(base, "rtsp://", "rtsp://"+url.UserPassword(user, pass).String()+"@", 1)

	cases := []struct {
		name string
		url  string
		fr   *frames
	}{
		{"plain", base + "/sky/line", f.fr},
		{"trailing-slash", base + "/sky/line/", f.fr},
		{"query", base + "/sky/line?token=abc&x=1", f.fr},
		{"slash-and-query", base + "/sky/line/?token=abc", f.fr},
		{"percent-encoded", base + "/sky/l%69ne", f.fr},
		{"percent-encoded-utf8", base + "/cam%C3%A9ra", fE.fr},
		{"credentials", withCreds + "/private", fP.fr},
		{"credentials-slash-query", withCreds + "/private/?a=b", fP.fr},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(c.url, "@") {
				checkContentBase(t, c.url)
			}
			// The four clients play at once (each is light at 320x240).
			t.Run("ffmpeg", func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				each, summary := checkNumbered(t, c.fr)
				n := 0
				err := mediatest.Decode(ctx, c.url, smallW, smallH, []string{"-rtsp_transport", "tcp"},
					[]string{"-frames:v", "20"}, func(i int, bgr []byte) error { n++; return each(i, bgr) })
				if err != nil || n != 20 {
					t.Fatalf("%d pictures, %v", n, err)
				}
				t.Log(summary())
			})
			t.Run("rtspsrc", func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				each, summary := checkNumbered(t, c.fr)
				if err := mediatest.DecodeRTSPSrc(ctx, c.url, smallW, smallH, 20, nil, each); err != nil {
					t.Fatal(err)
				}
				t.Log(summary())
			})
			for _, backend := range []string{"gstreamer", "ffmpeg"} {
				t.Run("opencv-"+backend, func(t *testing.T) {
					t.Parallel()
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					defer cancel()
					// OpenCV's backends decode with their own settings
					// (concealed pictures before the first keyframe or
					// after a lost packet are shown, on a loaded machine
					// too): the URL must open and play, most pictures
					// right and in order; ffmpeg and rtspsrc above
					// check every picture.
					good, prev := 0, -1
					err := mediatest.DecodeOpenCV(ctx, c.url, backend, smallW, smallH, 30, func(i int, bgr []byte) error {
						num, ok := testpattern.ReadBGR(bgr, smallW, smallH)
						if ok && num > prev && mediatest.PSNR(bgr, c.fr.ref(num)) >= 30 {
							good, prev = good+1, num
						}
						return nil
					})
					if err != nil || good < 20 {
						t.Fatalf("%d of 30 pictures right and in order, %v", good, err)
					}
					t.Logf("%d of 30 pictures right and in order, up to number %d", good, prev)
				})
			}
		})
	}
}

// checkContentBase sends a DESCRIBE by hand and checks the Content-Base
// the server answers: the request URL (query kept) with one trailing
// slash, never two.
func checkContentBase(t *testing.T, u string) {
	t.Helper()
	res := rawRequest(t, u, "DESCRIBE "+u+" RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n")
	if !strings.HasPrefix(res, "RTSP/1.0 200") {
		t.Fatalf("DESCRIBE %s: %q", u, res)
	}
	var cb string
	for _, l := range strings.Split(res, "\r\n") {
		if v, ok := strings.CutPrefix(l, "Content-Base: "); ok {
			cb = v
		}
	}
	p, err := url.Parse(cb)
	if err != nil || strings.Contains(p.Path, "//") || strings.Contains(p.RawQuery, "//") || !strings.HasSuffix(cb, "/") {
		t.Fatalf("DESCRIBE %s: Content-Base %q doubles a slash or has none at the end", u, cb)
	}
}

// rawRequest sends one request on a new TCP connection to the host of u
// and returns the response head.
func rawRequest(t *testing.T, u, req string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", p.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var head strings.Builder
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the response to %q: %v (got %q)", req, err, head.String())
		}
		if l == "\r\n" {
			return head.String()
		}
		head.WriteString(l)
	}
}
