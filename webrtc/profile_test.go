package webrtc_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/whepclient"
	"github.com/skyline-go/skyline/webrtc"
)

var fmtpProfile = regexp.MustCompile(`a=fmtp:\d+ .*profile-level-id=([0-9a-fA-F]{6})`)

// answerProfiles lists the H.264 profile-level-ids an answer labels.
func answerProfiles(sdp string) []string {
	var out []string
	for _, m := range fmtpProfile.FindAllStringSubmatch(sdp, -1) {
		out = append(out, m[1])
	}
	return out
}

// startProfileStream starts a stream encoded with an H.264 profile ("" is
// the encoder's default, High for x264) and waits for its first pictures.
func startProfileStream(t *testing.T, profile string) *webrtc.Stream {
	t.Helper()
	srv := newServer(t, webrtc.ServerConfig{})
	st, err := srv.AddStream("/cam", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: testLogger, Encoder: skyline.Encoder{Profile: profile}}, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sl.Close() })
	if err := sl.Start(skyline.Params{FPS: smallFPS, Width: smallW, Height: smallH}); err != nil {
		t.Fatal(err)
	}
	startFeeder(t, sl, smallW, smallH, smallFPS)
	deadline := time.Now().Add(20 * time.Second)
	for st.Stats().AccessUnits == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no access unit")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return st
}

// TestWHEPProfiles: an offer is answered with a profile its decoder plays
// the stream with, or refused with 406 and a reason; never with a label
// that does not describe the stream (a Constrained-Baseline-only offer, as
// Firefox may send, answered "42e01f" for a High stream showed black
// video).
func TestWHEPProfiles(t *testing.T) {
	t.Run("high-stream", func(t *testing.T) {
		st := startProfileStream(t, "")
		code, body, err := postOffer(st.WHEPURL(), makeOffer(t, "42e01f", "42001f"))
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusNotAcceptable || !strings.Contains(body, "cannot decode the stream") ||
			!strings.Contains(body, "High (64") || !strings.Contains(body, "Constrained Baseline (42e01f)") ||
			!strings.Contains(body, "--profile baseline") {
			t.Fatalf("a Constrained-Baseline-only offer for a High stream: %d %q, want 406 with the reason", code, body)
		}
		t.Logf("refused: %d %s", code, body)
		// An offer that also has High is answered High, and plays.
		_, body, err = postOffer(st.WHEPURL(), makeOffer(t, "42e01f", "64001f"))
		if err != nil {
			t.Fatal(err)
		}
		if ps := answerProfiles(body); len(ps) != 1 || !strings.HasPrefix(ps[0], "6400") {
			t.Fatalf("an offer with Constrained Baseline and High for a High stream answered %q", ps)
		}
		c := dial(t, st.WHEPURL(), whepclient.Options{H264Profiles: []string{"42e01f", "64001f"}})
		checkConsecutive(t, "high", decodeN(t, c, smallW, smallH, 10, 30*time.Second))
	})
	t.Run("baseline-stream", func(t *testing.T) {
		st := startProfileStream(t, "baseline")
		code, body, err := postOffer(st.WHEPURL(), makeOffer(t, "42e01f"))
		if err != nil {
			t.Fatal(err)
		}
		if ps := answerProfiles(body); code != http.StatusCreated || len(ps) != 1 || !strings.HasPrefix(ps[0], "42e0") {
			t.Fatalf("a Constrained-Baseline-only offer for a baseline stream: %d, profiles %q", code, ps)
		}
		c := dial(t, st.WHEPURL(), whepclient.Options{H264Profiles: []string{"42e01f"}})
		checkConsecutive(t, "baseline", decodeN(t, c, smallW, smallH, 10, 30*time.Second))
	})
}
