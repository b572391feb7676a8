package rtsp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"go.uber.org/goleak"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/rtsp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// newServer starts a server on a free local port (TCP only unless the
// caller's cfg says otherwise) and closes it at the end of the test.
func newServer(t *testing.T, cfg rtsp.ServerConfig) *rtsp.Server {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	if cfg.UDPPort == 0 {
		cfg.DisableUDP = true
	}
	if cfg.MulticastPort == 0 {
		cfg.DisableMulticast = true
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger
	}
	srv, err := rtsp.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// freeUDPPair finds an even port p such that p and p+1 are free on
// 127.0.0.1 (UDP).
func freeUDPPair(t *testing.T) int {
	t.Helper()
	for i := 0; i < 200; i++ {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if p%2 == 1 {
			p--
		}
		if p < 1024 || p > 65000 {
			continue
		}
		a, err1 := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		b, err2 := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+1))
		if a != nil {
			a.Close()
		}
		if b != nil {
			b.Close()
		}
		if err1 == nil && err2 == nil {
			return p
		}
	}
	t.Fatal("no free UDP port pair")
	return 0
}

// frames draws numbered test frames quickly: the moving background cycles
// through a few precomputed pictures, the number band is drawn per frame.
type frames struct {
	w, h int
	bg   [][]byte
	y0   int
	y1   int
}

func newFrames(w, h int) *frames {
	f := &frames{w: w, h: h}
	for i := 0; i < 8; i++ {
		f.bg = append(f.bg, testpattern.NewBGR(w, h, i*15))
	}
	f.y0, f.y1 = int(0.03*float64(h)), int(0.17*float64(h))+1
	return f
}

// draw writes frame n into buf (w*h*3 bytes).
func (f *frames) draw(buf []byte, n int) {
	copy(buf, f.bg[n%len(f.bg)])
	for y := f.y0; y < f.y1 && y < f.h; y++ {
		for x := 0; x < f.w; x++ {
			fx, fy := (float64(x)+0.5)/float64(f.w), (float64(y)+0.5)/float64(f.h)
			if fy >= 0.04 && fy < 0.16 && fx >= 0.04 && fx < 0.96 {
				b, g, r := testpattern.Pixel(x, y, f.w, f.h, n)
				i := (y*f.w + x) * 3
				buf[i], buf[i+1], buf[i+2] = b, g, r
			}
		}
	}
}

func (f *frames) ref(n int) []byte {
	buf := make([]byte, f.w*f.h*3)
	f.draw(buf, n)
	return buf
}

// feeder Puts numbered frames into a SkyLine in real time until stopped.
type feeder struct {
	sl     *skyline.SkyLine
	fr     *frames
	fps    float64
	first  int // number of the first frame
	put    atomic.Int64
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	lat    []time.Duration // Put durations
	record bool
}

func startFeeder(t *testing.T, sl *skyline.SkyLine, w, h int, fps float64, first int) *feeder {
	t.Helper()
	f := &feeder{sl: sl, fr: newFrames(w, h), fps: fps, first: first, stop: make(chan struct{}), done: make(chan struct{})}
	go f.run(t)
	t.Cleanup(f.Stop)
	return f
}

func (f *feeder) run(t *testing.T) {
	defer close(f.done)
	buf := make([]byte, f.fr.w*f.fr.h*3)
	tick := time.NewTicker(time.Duration(float64(time.Second) / f.fps))
	defer tick.Stop()
	for n := f.first; ; n++ {
		select {
		case <-f.stop:
			return
		case <-tick.C:
		}
		f.fr.draw(buf, n)
		t0 := time.Now()
		ok, err := f.sl.Put(skyline.FrameBGR(buf, f.fr.w, f.fr.h, 0))
		d := time.Since(t0)
		if err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
			t.Errorf("Put %d: %v", n, err)
			return
		}
		f.mu.Lock()
		if f.record {
			f.lat = append(f.lat, d)
		}
		f.mu.Unlock()
		if ok {
			f.put.Add(1)
		}
	}
}

// Stop stops feeding (idempotent); the SkyLine keeps its state.
func (f *feeder) Stop() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

// latencies returns the recorded Put durations and starts a new record.
func (f *feeder) latencies(record bool) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.lat
	f.lat, f.record = nil, record
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// startSkyLine creates a SkyLine on path and starts it at a fixed size.
func startSkyLine(t *testing.T, srv *rtsp.Server, path string, w, h int, fps float64, enc skyline.Encoder) *skyline.SkyLine {
	t.Helper()
	sl, err := rtsp.NewSkyLine(srv, path, skyline.Config{NoDotEnv: true, Logger: testLogger, Encoder: enc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sl.Close() })
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	return sl
}

// waitFor polls cond until it holds or the deadline passes (for states that
// have no event to wait on).
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReady waits until the stream answers DESCRIBE (its first keyframe).
func waitReady(t *testing.T, url string) {
	t.Helper()
	waitFor(t, 20*time.Second, "the stream to be described", func() bool {
		_, err := describe(url, nil)
		return err == nil
	})
}

// statusCode extracts the RTSP status of a client error (0 if none).
func statusCode(err error) base.StatusCode {
	var e liberrors.ErrClientBadStatusCode
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// describe runs one DESCRIBE with a gortsplib client.
func describe(url string, tlsConf any) (*description.Session, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return nil, err
	}
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, ReadTimeout: 5 * time.Second}
	if err := c.Start(); err != nil {
		return nil, err
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	return desc, err
}

// au is an access unit received by a viewer.
type au struct {
	at    time.Time
	ts    uint32
	nalus [][]byte
	key   bool
}

// viewer is a gortsplib client that plays a stream over TCP and assembles
// access units.
type viewer struct {
	c        *gortsplib.Client
	desc     *description.Session
	forma    *format.H264
	playAt   time.Time // just before PLAY was sent
	mu       sync.Mutex
	aus      []au
	keep     bool // keep NALUs
	count    atomic.Int64
	seqGaps  atomic.Int64
	tsBack   atomic.Int64
	lastSeq  uint16
	lastTS   uint32
	havePkt  bool
	onAU     func(au)
	block    chan struct{} // non-nil: the first packet blocks the reader until closed
	blockOne sync.Once
}

type viewerOpts struct {
	keep   bool
	onAU   func(au)
	stall  bool
	rcvBuf int
}

func play(t *testing.T, url string, o viewerOpts) *viewer {
	t.Helper()
	v, err := tryPlay(url, o)
	if err != nil {
		t.Fatalf("play %s: %v", url, err)
	}
	t.Cleanup(v.Close)
	return v
}

func tryPlay(url string, o viewerOpts) (*viewer, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return nil, err
	}
	tcp := gortsplib.ProtocolTCP
	v := &viewer{keep: o.keep, onAU: o.onAU}
	if o.stall {
		v.block = make(chan struct{})
	}
	v.c = &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp, ReadTimeout: 10 * time.Second}
	if o.rcvBuf > 0 {
		d := net.Dialer{}
		v.c.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, address)
			if err == nil {
				_ = c.(*net.TCPConn).SetReadBuffer(o.rcvBuf)
			}
			return c, err
		}
	}
	if err := v.c.Start(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			v.c.Close()
		}
	}()
	desc, _, err := v.c.Describe(u)
	if err != nil {
		return nil, err
	}
	v.desc = desc
	medi := desc.FindFormat(&v.forma)
	if medi == nil {
		return nil, fmt.Errorf("no H.264 in the SDP")
	}
	dec, err := v.forma.CreateDecoder()
	if err != nil {
		return nil, err
	}
	if _, err := v.c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return nil, err
	}
	v.c.OnPacketRTP(medi, v.forma, func(pkt *rtp.Packet) {
		if v.block != nil {
			<-v.block
			return
		}
		if v.havePkt {
			if pkt.SequenceNumber != v.lastSeq+1 {
				v.seqGaps.Add(1)
			}
			if int32(pkt.Timestamp-v.lastTS) < 0 {
				v.tsBack.Add(1)
			}
		}
		v.lastSeq, v.lastTS, v.havePkt = pkt.SequenceNumber, pkt.Timestamp, true
		nalus, err := dec.Decode(pkt)
		if err != nil {
			return
		}
		a := au{at: time.Now(), ts: pkt.Timestamp, key: h264.IsRandomAccess(nalus)}
		if v.keep {
			a.nalus = nalus
		}
		v.mu.Lock()
		v.aus = append(v.aus, a)
		v.mu.Unlock()
		v.count.Add(1)
		if v.onAU != nil {
			v.onAU(a)
		}
	})
	v.playAt = time.Now()
	if _, err := v.c.Play(nil); err != nil {
		return nil, err
	}
	ok = true
	return v, nil
}

// Close disconnects the viewer (idempotent).
func (v *viewer) Close() {
	if v.block != nil {
		v.blockOne.Do(func() { close(v.block) })
	}
	v.c.Close()
}

// annexB joins NAL units into an Annex-B byte stream.
func annexB(nalus [][]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = append(b, 0, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}

// spsSize reads the picture size from an SPS.
func spsSize(t *testing.T, sps []byte) (int, int) {
	t.Helper()
	var s h264.SPS
	if err := s.Unmarshal(sps); err != nil {
		t.Fatal(err)
	}
	return s.Width(), s.Height()
}
