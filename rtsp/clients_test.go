package rtsp_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/rtsp"
)

const smallW, smallH, smallFPS = 320, 240, 30

// probe runs ffprobe on a live URL, reading a few packets.
func probe(t *testing.T, url, transport string) mediatest.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := mediatest.Probe(ctx, url, "-rtsp_transport", transport, "-read_intervals", "%+#15")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func checkProbe(t *testing.T, st mediatest.Stream, w, h int) {
	t.Helper()
	if st.Codec != "h264" || st.PixFmt != "yuv420p" || st.Width != w || st.Height != h || st.Frames < 1 {
		t.Fatalf("ffprobe: %+v, want h264 yuv420p %dx%d with frames", st, w, h)
	}
}

// decodeFrames decodes n frames of a live URL with ffmpeg and checks that
// their numbers are consecutive and their pixels match (PSNR >= 30 dB).
// It returns the first frame number.
func decodeFrames(t *testing.T, url string, pre []string, fr *frames, n int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, prev := -1, -1
	minPSNR := 1000.0
	count := 0
	post := []string{"-frames:v", itoa(n), "-fps_mode", "passthrough"}
	err := mediatest.Decode(ctx, url, fr.w, fr.h, pre, post, func(i int, bgr []byte) error {
		num, ok := testpattern.ReadBGR(bgr, fr.w, fr.h)
		if !ok {
			t.Errorf("decoded frame %d: number unreadable", i)
		}
		if first < 0 {
			first = num
		} else if num != prev+1 {
			t.Errorf("decoded frame %d carries number %d after %d", i, num, prev)
		}
		prev = num
		minPSNR = min(minPSNR, mediatest.PSNR(bgr, fr.ref(num)))
		count++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Fatalf("decoded %d frames, want %d", count, n)
	}
	if minPSNR < 30 {
		t.Fatalf("PSNR %.1f dB, want >= 30", minPSNR)
	}
	t.Logf("%s: frames %d..%d, min PSNR %.1f dB", url, first, prev, minPSNR)
	return first
}

// TestRealClients: ffprobe over TCP and UDP, ffmpeg decoding consecutive
// numbered frames over TCP, GStreamer's rtspsrc playing.
func TestRealClients(t *testing.T) {
	srv := newServer(t, rtsp.ServerConfig{UDPPort: freeUDPPair(t)})
	sl := startSkyLine(t, srv, "/live", smallW, smallH, smallFPS, skyline.Encoder{})
	f := startFeeder(t, sl, smallW, smallH, smallFPS, 0)
	url := srv.Stream("/live").URL()
	waitReady(t, url)

	t.Run("ffprobe-tcp", func(t *testing.T) { checkProbe(t, probe(t, url, "tcp"), smallW, smallH) })
	t.Run("ffprobe-udp", func(t *testing.T) { checkProbe(t, probe(t, url, "udp"), smallW, smallH) })
	t.Run("ffmpeg-tcp-frames", func(t *testing.T) {
		decodeFrames(t, url, []string{"-rtsp_transport", "tcp"}, f.fr, 60)
	})
	t.Run("gstreamer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "gst-launch-1.0", "-q", "rtspsrc", "location="+url, "protocols=tcp", "latency=0",
			"!", "decodebin", "!", "video/x-raw", "!", "identity", "eos-after=30", "!", "fakesink")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gst-launch: %v\n%s", err, out)
		}
	})
	if st := srv.Stream("/live").Stats(); st.ViewersTotal < 4 || st.AccessUnits == 0 {
		t.Errorf("stats %+v", st)
	}
	f.Stop()
}

// TestTwoSkyLines: two SkyLines on one server deliver their own content;
// a removed path answers 404 and its viewers are disconnected.
func TestTwoSkyLinesAndRemove(t *testing.T) {
	srv := newServer(t, rtsp.ServerConfig{})
	slA := startSkyLine(t, srv, "/a", smallW, smallH, smallFPS, skyline.Encoder{})
	slB := startSkyLine(t, srv, "b", smallW, smallH, smallFPS, skyline.Encoder{})
	fa := startFeeder(t, slA, smallW, smallH, smallFPS, 0)
	fb := startFeeder(t, slB, smallW, smallH, smallFPS, 40000)
	urlA, urlB := srv.Stream("/a").URL(), srv.Stream("/b").URL()
	waitReady(t, urlA)
	waitReady(t, urlB)
	if a := decodeFrames(t, urlA, []string{"-rtsp_transport", "tcp"}, fa.fr, 10); a >= 40000 {
		t.Errorf("/a delivers frame %d of /b", a)
	}
	if b := decodeFrames(t, urlB, []string{"-rtsp_transport", "tcp"}, fb.fr, 10); b < 40000 {
		t.Errorf("/b delivers frame %d of /a", b)
	}

	v := play(t, urlB, viewerOpts{})
	waitFor(t, 10*time.Second, "the viewer of /b to receive", func() bool { return v.count.Load() > 0 })
	if err := srv.RemoveStream("/b"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- v.c.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the viewer of a removed stream stays connected")
	}
	if _, err := describe(urlB, nil); statusCode(err) != 404 {
		t.Fatalf("removed path: %v, want 404", err)
	}
	if _, err := describe(urlA, nil); err != nil {
		t.Fatalf("/a after removing /b: %v", err)
	}
	if !strings.HasSuffix(urlB, "/b") {
		t.Errorf("URL %s", urlB)
	}
}
