package webrtc_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/internal/whepclient"
	"github.com/skyline-go/skyline/rtsp"
	"github.com/skyline-go/skyline/webrtc"
)

// freeUDPPort is a UDP port free on every interface.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// freeTCPPort is a TCP port free on every interface.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestTenViewersAndRTSP: ten WHEP viewers (on one fixed UDP port) and an
// RTSP viewer (ffmpeg) on the same SkyLine all decode consecutive frames,
// and the WHEP viewers receive the very same access units (one encode).
func TestTenViewersAndRTSP(t *testing.T) {
	const viewers = 10
	srv := newServer(t, webrtc.ServerConfig{UDPPort: freeUDPPort(t)})
	st, err := srv.AddStream("/multi", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rsrv, err := rtsp.NewServer(rtsp.ServerConfig{Address: "127.0.0.1:0", DisableUDP: true, DisableMulticast: true, Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	if err := rsrv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rsrv.Close)
	rst, err := rsrv.AddStream("/multi", rtsp.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	sl := startSkyLine(t, smallW, smallH, smallFPS, ev.on, st, rst)
	startFeeder(t, sl, smallW, smallH, smallFPS)

	clients := make([]*whepclient.Client, viewers)
	for i := range clients {
		clients[i] = dial(t, st.WHEPURL(), whepclient.Options{Queue: 1024})
	}
	ev.wait(t, skyline.EventViewerJoined, viewers, 30*time.Second)

	// The RTSP viewer decodes while the WHEP viewers do.
	var wg sync.WaitGroup
	var rtspErr error
	var rtspFirst, rtspLast int
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		prev := -1
		rtspErr = mediatest.Decode(ctx, rst.URL(), smallW, smallH, []string{"-rtsp_transport", "tcp"},
			[]string{"-frames:v", "45", "-fps_mode", "passthrough"}, func(i int, bgr []byte) error {
				n, ok := testpattern.ReadBGR(bgr, smallW, smallH)
				if !ok {
					return fmt.Errorf("RTSP picture %d: number unreadable", i)
				}
				if prev >= 0 && n != prev+1 {
					return fmt.Errorf("RTSP picture %d carries number %d after %d", i, n, prev)
				}
				if prev < 0 {
					rtspFirst = n
				}
				prev, rtspLast = n, n
				return nil
			})
	}()

	// Each WHEP viewer records its access units (hash by RTP time) and
	// decodes them.
	type result struct {
		pics []decoded
		err  error
	}
	results := make([]result, viewers)
	hashes := make([]map[uint32][32]byte, viewers)
	for i, c := range clients {
		wg.Add(1)
		hashes[i] = map[uint32][32]byte{}
		go func() {
			defer wg.Done()
			tee := &teeClient{c: c, hashes: hashes[i]}
			results[i].pics, results[i].err = tee.decode(45, 60*time.Second)
		}()
	}
	wg.Wait()
	if rtspErr != nil {
		t.Errorf("RTSP viewer: %v", rtspErr)
	} else {
		t.Logf("RTSP viewer: frames %d..%d", rtspFirst, rtspLast)
	}
	for i, r := range results {
		if r.err == nil {
			r.err = consecutive(r.pics)
		}
		if r.err != nil {
			t.Errorf("WHEP viewer %d: %v", i, r.err)
			continue
		}
		t.Logf("WHEP viewer %d: frames %d..%d", i, r.pics[0].n, r.pics[len(r.pics)-1].n)
	}
	// One encode: the access units with the same RTP time are the same
	// bytes for every viewer.
	same, compared := 0, 0
	for ts, h := range hashes[0] {
		for i := 1; i < viewers; i++ {
			if h2, ok := hashes[i][ts]; ok {
				compared++
				if h2 == h {
					same++
				}
			}
		}
	}
	if compared == 0 || same != compared {
		t.Errorf("identical access units: %d of %d compared", same, compared)
	}
	s := st.Stats()
	t.Logf("webrtc stats %+v, skyline encoded %d", s, sl.Stats().Encoded)
	if s.Viewers != viewers || s.AccessUnits > uint64(sl.Stats().Encoded) {
		t.Errorf("stats %+v: want %d viewers and at most one packetisation per encoded picture (%d)", s, viewers, sl.Stats().Encoded)
	}
}

// teeClient hashes the access units it decodes.
type teeClient struct {
	c      *whepclient.Client
	hashes map[uint32][32]byte
}

func (tc *teeClient) decode(n int, d time.Duration) ([]decoded, error) {
	dec, err := whepclient.NewDecoder()
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	var out []decoded
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for len(out) < n {
		select {
		case au := <-tc.c.AUs():
			tc.hashes[au.RTPTime] = sha256.Sum256(au.Data)
			if err := dec.Push(au.Data, au.Keyframe); err != nil {
				return out, err
			}
		case pic := <-dec.Pictures():
			num, ok := testpattern.ReadBGR(pic.BGR, pic.Width, pic.Height)
			if !ok || pic.Width != smallW {
				return out, fmt.Errorf("picture %d (%dx%d): number unreadable", len(out), pic.Width, pic.Height)
			}
			out = append(out, decoded{n: num, at: pic.Decoded})
		case <-deadline.C:
			return out, fmt.Errorf("timeout: %d pictures of %d (lost %d AUs)", len(out), n, tc.c.Lost())
		}
	}
	return out, nil
}

// TestICETCP: with TCPPort set, a viewer that gathers only TCP candidates
// plays over ICE-TCP.
func TestICETCP(t *testing.T) {
	srv := newServer(t, webrtc.ServerConfig{TCPPort: freeTCPPort(t)})
	st, err := srv.AddStream("/tcp", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sl := startSkyLine(t, smallW, smallH, smallFPS, nil, st)
	startFeeder(t, sl, smallW, smallH, smallFPS)
	c := dial(t, st.WHEPURL(), whepclient.Options{TCP: true})
	pics := decodeN(t, c, smallW, smallH, 30, 30*time.Second)
	if err := consecutive(pics); err != nil {
		t.Error(err)
	}
	if !strings.Contains(c.SelectedPair(), "tcp") {
		t.Errorf("selected candidate pair %q: want TCP", c.SelectedPair())
	}
}
