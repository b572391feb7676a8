package rtsp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/rtsp"
)

// withCreds puts user:pass into an rtsp:// URL.
func withCreds(url, user, pass string) string {
	i := strings.Index(url, "://") + 3
	return url[:i] + user + ":" + pass + "@" + url[i:]
}

// TestAuth: no credentials -> 401, wrong -> 401, right -> ffprobe plays; for
// basic and digest, server-wide and per path.
func TestAuth(t *testing.T) {
	for _, m := range []rtsp.AuthMethod{rtsp.AuthBasic, rtsp.AuthDigest} {
		t.Run(m.String(), func(t *testing.T) {
			srv := newServer(t, rtsp.ServerConfig{User: "alice", Pass: "s3cret!", AuthMethods: []rtsp.AuthMethod{m},
				HoldTimeout: 100 * time.Millisecond})
			sl := startSkyLine(t, srv, "/cam", smallW, smallH, smallFPS, skyline.Encoder{})
			f := startFeeder(t, sl, smallW, smallH, smallFPS, 0)
			own, err := srv.AddStream("/own", rtsp.StreamOptions{User: "bob", Pass: "other"})
			if err != nil {
				t.Fatal(err)
			}
			pub, err := srv.AddStream("/pub", rtsp.StreamOptions{Public: true})
			if err != nil {
				t.Fatal(err)
			}
			url := srv.Stream("/cam").URL()
			waitFor(t, 20*time.Second, "the stream to be ready", func() bool {
				_, err := describe(withCreds(url, "alice", "s3cret!"), nil)
				return err == nil
			})
			for _, c := range []struct{ name, url string }{
				{"none", url},
				{"wrong password", withCreds(url, "alice", "wrong")},
				{"wrong user", withCreds(url, "mallory", "s3cret!")},
				{"server creds on a path with its own", withCreds(own.URL(), "alice", "s3cret!")},
				{"unknown path", strings.Replace(url, "/cam", "/nope", 1)},
			} {
				_, err := describe(c.url, nil)
				if statusCode(err) != 401 {
					t.Errorf("%s: %v, want 401", c.name, err)
				} else if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("%s: the password shows in %v", c.name, err)
				}
			}
			// Per-path credentials and public paths answer without the
			// server's (503 after the hold: nothing streams there yet).
			if _, err := describe(withCreds(own.URL(), "bob", "other"), nil); statusCode(err) != 503 {
				t.Errorf("own credentials: %v, want 503", err)
			}
			if _, err := describe(pub.URL(), nil); statusCode(err) != 503 {
				t.Errorf("public path: %v, want 503", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := mediatest.Probe(ctx, withCreds(url, "alice", "s3cret!"), "-rtsp_transport", "tcp", "-read_intervals", "%+#10")
			if err != nil {
				t.Fatal(err)
			}
			checkProbe(t, st, smallW, smallH)
			f.Stop()
		})
	}
}
