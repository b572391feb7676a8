package rtsp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/rtsp"
)

// TestMulticastViewers: ffmpeg and GStreamer's rtspsrc over UDP multicast,
// playing together next to a TCP viewer, decode consecutive numbered
// frames. gortsplib sends to a multicast group only from ServerStream
// writes, and the stream wrote to each session: multicast viewers were
// answered 200 and got nothing (ffmpeg: "Could not find codec parameters",
// rtspsrc: "Could not read from resource").
func TestMulticastViewers(t *testing.T) {
	srv := newServer(t, rtsp.ServerConfig{MulticastPort: freeUDPPair(t), MulticastIPRange: "239.77.0.0/16"})
	sl := startSkyLine(t, srv, "/mc", smallW, smallH, smallFPS, skyline.Encoder{})
	st := srv.Stream("/mc")
	f := startFeeder(t, sl, smallW, smallH, smallFPS, 0)
	waitReady(t, st.URL())
	tcp := play(t, st.URL(), viewerOpts{})

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		decodeFrames(t, st.URL(), []string{"-rtsp_transport", "udp_multicast"}, f.fr, 30)
	}()
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		prev := -1
		err := mediatest.DecodeRTSPSrc(ctx, st.URL(), smallW, smallH, 30, []string{"protocols=udp-mcast"}, func(i int, bgr []byte) error {
			num, ok := testpattern.ReadBGR(bgr, smallW, smallH)
			if !ok {
				t.Errorf("rtspsrc multicast picture %d: number unreadable", i)
			} else if prev >= 0 && num != prev+1 {
				t.Errorf("rtspsrc multicast picture %d carries number %d after %d", i, num, prev)
			}
			prev = num
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}()
	wg.Wait()
	if tcp.count.Load() == 0 {
		t.Error("the TCP viewer received nothing")
	}
}
