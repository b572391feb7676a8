package webrtc_test

import (
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/whepclient"
	"github.com/skyline-go/skyline/webrtc"
)

const (
	smallW, smallH = 320, 240
	smallFPS       = 30
)

// TestWHEPPionClient: a pion client negotiates through WHEP, receives
// H.264, and the pictures decoded in-process carry consecutive numbers;
// joined and left events reach the program.
func TestWHEPPionClient(t *testing.T) {
	srv := newServer(t, webrtc.ServerConfig{})
	st, err := srv.AddStream("live", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	sl := startSkyLine(t, smallW, smallH, smallFPS, ev.on, st)
	fr := startFeeder(t, sl, smallW, smallH, smallFPS)

	c := dial(t, st.WHEPURL(), whepclient.Options{})
	joined := ev.wait(t, skyline.EventViewerJoined, 1, 20*time.Second)
	if joined[0].Destination != st.Name() || joined[0].Viewer == "" {
		t.Errorf("joined event %+v", joined[0])
	}
	t0 := time.Now()
	pics := decodeN(t, c, smallW, smallH, 60, 30*time.Second)
	checkConsecutive(t, "pion", pics)
	minPSNR := 1000.0
	for _, p := range pics {
		minPSNR = min(minPSNR, mediatest.PSNR(p.bgr, fr.fr.ref(p.n)))
	}
	if minPSNR < 30 {
		t.Errorf("PSNR %.1f dB, want >= 30", minPSNR)
	}
	t.Logf("decoded frames %d..%d, min PSNR %.1f dB, first picture %v after joining", pics[0].n, pics[len(pics)-1].n,
		minPSNR, pics[0].at.Sub(t0))
	if s := st.Stats(); s.Viewers != 1 || s.ViewersTotal != 1 || s.AccessUnits == 0 {
		t.Errorf("stats %+v", s)
	}
	c.Close()
	left := ev.wait(t, skyline.EventViewerLeft, 1, 20*time.Second)
	if left[0].Viewer != joined[0].Viewer {
		t.Errorf("left %q, joined %q", left[0].Viewer, joined[0].Viewer)
	}
}
