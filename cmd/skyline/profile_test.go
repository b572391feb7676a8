package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/whepclient"
)

// TestServeProfile: --profile chooses the H.264 profile (ffprobe reads it
// over RTSP); a browser that decodes Constrained Baseline only (Firefox's
// offer) plays a --profile baseline stream, and is refused with 406 and
// the reason when the stream is High; a wrong --profile is a usage error.
func TestServeProfile(t *testing.T) {
	for _, c := range []struct {
		profile, ffprobe string
		cbPlays          bool
	}{
		{"baseline", "Constrained Baseline", true},
		{"main", "Main", false},
		{"", "High", false},
	} {
		t.Run("profile="+c.profile, func(t *testing.T) {
			port, web := freePort(t), fmt.Sprintf("127.0.0.1:%d", freePort(t))
			args := []string{"serve", "--size", "320x240", "--fps", "30", "--no-udp", "--status", "never",
				"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--web", web, "--path", "/cam"}
			if c.profile != "" {
				args = append(args, "--profile", c.profile)
			}
			cl := startCLI(t, args...)
			url := strings.Fields(cl.line(t, "SkyLine: streaming"))[4]
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := mediatest.Probe(ctx, url, "-rtsp_transport", "tcp", "-read_intervals", "%+#3")
			if err != nil || st.Profile != c.ffprobe {
				t.Fatalf("ffprobe: profile %q (%v), want %q", st.Profile, err, c.ffprobe)
			}
			wc, err := whepclient.Dial(ctx, "http://"+web+"/cam/whep", whepclient.Options{H264Profiles: []string{"42e01f"}})
			var he *whepclient.HTTPError
			switch {
			case c.cbPlays && err != nil:
				t.Fatalf("a Constrained-Baseline-only viewer of a %s stream: %v", c.ffprobe, err)
			case c.cbPlays:
				defer wc.Close()
				select {
				case <-wc.AUs():
				case <-ctx.Done():
					t.Fatal("no access unit")
				}
			case !errors.As(err, &he) || he.Status != http.StatusNotAcceptable || !strings.Contains(he.Body, "cannot decode"):
				if wc != nil {
					wc.Close()
				}
				t.Fatalf("a Constrained-Baseline-only viewer of a %s stream: %v, want 406 with the reason", c.ffprobe, err)
			}
		})
	}
	cl := startCLI(t, "serve", "--profile", "extended")
	if code := cl.wait(t); code != 2 || !strings.Contains(cl.stderr.String(), `--profile "extended"`) {
		t.Fatalf("--profile extended: exit %d, stderr %q", code, cl.stderr.String())
	}
}
