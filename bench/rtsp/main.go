// Command rtsp benchmarks SkyLine's RTSP destination on this machine
// (reported, not asserted; see issue 3 for the targets):
//
//   - end-to-end latency from Put to the decoded picture at a real RTSP
//     client, p50/p95/max, at 1280x720@30, with its breakdown: Put returned,
//     access unit out of the encoder (a skyline.Receiver next to the RTSP
//     stream), access unit received by the client (last RTP packet),
//     picture decoded;
//   - time from PLAY to the first decoded picture for late joiners;
//   - the same two figures at third-party players started as processes
//     (ffmpeg with its defaults and with the low-delay options the README
//     gives, GStreamer's rtspsrc latency=0), next to the in-process client,
//     as ratios (clients.go);
//   - CPU % of one core of the SkyLine process at 1280x720@30 with one
//     viewer (an external ffmpeg), next to a bare gst-launch pipeline with
//     the same encoder settings fed the same frames, in the same run.
//
// The client is in-process and adds as little as it can: gortsplib over
// TCP, RTP depacketised to access units, each pushed at once into
// "appsrc ! h264parse ! avdec_h264 thread-type=slice ! appsink" (slice
// threads: frame threads would hold a picture per thread), and the frame
// number drawn into each picture read back from its luma. -decoder ffmpeg
// decodes with a low-delay ffmpeg process instead (a cross-check).
//
// Run: go run ./bench/rtsp (about three minutes; -cpu 0 skips the CPU part,
// -ext-joins 0 the third-party players; -v prints each player's timed log).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/gst"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/rtsp"
)

const w, h = 1280, 720

// fps is the stream's frame rate (-fps).
var fps = 30

var (
	latencyFor = flag.Duration("latency", 15*time.Second, "latency measurement window")
	cpuFor     = flag.Duration("cpu", 15*time.Second, "CPU measurement window (each side); 0 skips")
	joins      = flag.Int("joins", 5, "late joiners")
	decoderArg = flag.String("decoder", "gst", "client decoder: gst (in-process avdec_h264) or ffmpeg (low-delay ffmpeg process)")
	variants   = flag.String("variants", "", "A/B mode: encoder property sets separated by \";\" (\"-\" for none), "+
		"e.g. \"-;threads=2\"; each is measured -rounds times, interleaved, for -latency each")
	rounds     = flag.Int("rounds", 3, "A/B mode: rounds")
	fpsFlag    = flag.Int("fps", 30, "frame rate (a low one shows a player's wait for the next picture plainly)")
	extJoins   = flag.Int("ext-joins", 3, "joins of each third-party player (0 skips them)")
	extWindow  = flag.Duration("ext-window", 4*time.Second, "steady-state window of each third-party player join")
	ffVariants = flag.String("ffmpeg", ";-probesize 32 -flags low_delay;-fflags nobuffer -probesize 32 -flags low_delay",
		"ffmpeg players: input options of each, separated by \";\" (empty: defaults)")
	verbose = flag.Bool("v", false, "print each third-party player join's log (stderr, PLAY, first picture), timed")
)

// abTest measures Put -> decoded for each encoder property set in turn,
// rounds times, and prints the medians of each set's p50, p95 and max.
func abTest(srv *rtsp.Server, frames [][]byte) {
	sets := strings.Split(*variants, ";")
	type res struct{ p50, p95, mx, enc []time.Duration }
	out := make([]res, len(sets))
	for r := 0; r < *rounds; r++ {
		for i, set := range sets {
			props := map[string]string{}
			for _, kv := range strings.Fields(strings.ReplaceAll(set, ",", " ")) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					props[k] = v
				}
			}
			path := fmt.Sprintf("/ab%d_%d", r, i)
			st, err := srv.AddStream(path, rtsp.StreamOptions{})
			check(err)
			tp := &tap{at: map[time.Duration]time.Time{}}
			sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Encoder: skyline.Encoder{Properties: props}}, st, tp)
			check(err)
			check(sl.Start(skyline.Params{FPS: float64(fps), Width: w, Height: h}))
			f := &feeder{sl: sl, tap: tp, frames: frames, putAt: map[int]time.Time{}, retAt: map[int]time.Time{}}
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { defer close(done); f.run(stop) }()
			time.Sleep(500 * time.Millisecond)
			recs := measureLatency(st.URL(), f, *latencyFor)
			close(stop)
			<-done
			check(sl.Stop())
			check(sl.Close())
			check(srv.RemoveStream(path))
			var tot, enc []time.Duration
			for _, x := range recs {
				tot = append(tot, x.dec.Sub(x.put))
				if !x.enc.IsZero() {
					enc = append(enc, x.enc.Sub(x.put))
				}
			}
			sortD(tot)
			sortD(enc)
			out[i].p50 = append(out[i].p50, pct(tot, 0.5))
			out[i].p95 = append(out[i].p95, pct(tot, 0.95))
			out[i].mx = append(out[i].mx, pct(tot, 1))
			out[i].enc = append(out[i].enc, pct(enc, 0.5))
			fmt.Printf("round %d %-30q Put->decoded p50 %v p95 %v max %v; Put->encoder out p50 %v (%d frames)\n",
				r+1, set, pct(tot, 0.5), pct(tot, 0.95), pct(tot, 1), pct(enc, 0.5), len(tot))
		}
	}
	for i, set := range sets {
		o := out[i]
		sortD(o.p50)
		sortD(o.p95)
		sortD(o.mx)
		sortD(o.enc)
		fmt.Printf("median of %d rounds %-30q Put->decoded p50 %v p95 %v max %v; Put->encoder out p50 %v\n",
			*rounds, set, pct(o.p50, 0.5), pct(o.p95, 0.5), pct(o.mx, 0.5), pct(o.enc, 0.5))
	}
}

func sortD(d []time.Duration) { sort.Slice(d, func(i, j int) bool { return d[i] < d[j] }) }

func main() {
	flag.Parse()
	log.SetFlags(0)
	fps = *fpsFlag
	check(gst.Init())
	frames := makeFrames()
	srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: "127.0.0.1:0", DisableUDP: true, DisableMulticast: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	check(err)
	check(srv.Start())
	defer srv.Close()
	if *variants != "" {
		abTest(srv, frames)
		return
	}
	st, err := srv.AddStream("/bench", rtsp.StreamOptions{})
	check(err)
	tp := &tap{at: map[time.Duration]time.Time{}}
	joinEv := &joinEvents{ch: make(chan time.Time, 8)}
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnEvent: joinEv.onEvent}, st, tp)
	check(err)
	defer sl.Close()
	check(sl.Start(skyline.Params{FPS: float64(fps), Width: w, Height: h}))
	url := st.URL()

	f := &feeder{sl: sl, tap: tp, frames: frames, putAt: map[int]time.Time{}, retAt: map[int]time.Time{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.run(stop) }()

	fmt.Printf("SkyLine RTSP benchmark: %dx%d@%d, x264 defaults (superfast, zerolatency, 2 s GOP), %s, client decoder %s\n",
		w, h, fps, url, *decoderArg)
	time.Sleep(time.Second)

	// 1. Latency from Put to the decoded picture, with its breakdown.
	recs := measureLatency(url, f, *latencyFor)
	report := func(name string, get func(r record) (time.Duration, bool), target string) {
		var d []time.Duration
		for _, r := range recs {
			if v, ok := get(r); ok {
				d = append(d, v)
			}
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		fmt.Printf("  %-36s p50 %7v  p95 %7v  max %7v  (%d frames)%s\n", name, pct(d, 0.5), pct(d, 0.95), pct(d, 1), len(d), target)
	}
	fmt.Println("latency per frame:")
	report("Put -> decoded picture", func(r record) (time.Duration, bool) { return r.dec.Sub(r.put), true },
		"   (target p50 <= 50 ms, p95 <= 100 ms)")
	report("  Put -> Put returned", func(r record) (time.Duration, bool) { return r.ret.Sub(r.put), !r.ret.IsZero() }, "")
	report("  Put -> access unit out of encoder", func(r record) (time.Duration, bool) { return r.enc.Sub(r.put), !r.enc.IsZero() }, "")
	report("  encoder out -> AU at client", func(r record) (time.Duration, bool) {
		return r.recv.Sub(r.enc), !r.enc.IsZero() && !r.recv.IsZero()
	}, "")
	report("  AU at client -> decoded", func(r record) (time.Duration, bool) { return r.dec.Sub(r.recv), !r.recv.IsZero() }, "")
	report("keyframes: Put -> decoded", func(r record) (time.Duration, bool) { return r.dec.Sub(r.put), r.key }, "")
	report("keyframes: Put -> encoder out", func(r record) (time.Duration, bool) { return r.enc.Sub(r.put), r.key && !r.enc.IsZero() }, "")

	// 2. Late joiners.
	var firsts, keys []time.Duration
	for i := 0; i < *joins; i++ {
		time.Sleep(1300 * time.Millisecond) // land at varied points of the GOP
		k, p := lateJoin(url)
		keys, firsts = append(keys, k), append(firsts, p)
	}
	if len(keys) > 0 {
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		fmt.Printf("late joiner PLAY -> first keyframe received (%d joins): min %v  median %v  max %v\n",
			len(keys), keys[0].Round(100*time.Microsecond), pct(keys, 0.5), keys[len(keys)-1].Round(100*time.Microsecond))
		sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
		fmt.Printf("late joiner PLAY -> first decoded picture (%d joins): min %v  median %v  max %v   (target <= 150 ms)\n",
			len(firsts), firsts[0].Round(100*time.Microsecond), pct(firsts, 0.5), firsts[len(firsts)-1].Round(100*time.Microsecond))
	}

	// 3. Third-party players, next to the in-process client.
	if *extJoins > 0 {
		var d []time.Duration
		for _, r := range recs {
			d = append(d, r.dec.Sub(r.put))
		}
		sortD(d)
		inP50, inP95 := pct(d, 0.5), pct(d, 0.95)
		inFirst := pct(firsts, 0.5)
		res := measureClients(url, f, joinEv)
		fmt.Printf("third-party players (%d joins each; PLAY -> first picture with a readable number; "+
			"Put -> picture on stdout, from %v after the first picture for %v):\n", *extJoins, settle, *extWindow)
		fmt.Printf("  %-52s first picture median %7v (max %7v)   Put->decoded p50 %7v p95 %7v\n",
			"in-process client (gortsplib + avdec_h264), above", inFirst, pct(firsts, 1), inP50, inP95)
		for _, r := range res {
			fmt.Printf("  %-52s first picture median %7v (max %7v) %5s   Put->decoded p50 %7v p95 %7v %5s  (%d pictures)\n",
				r.name, r.firstMed, r.firstMax, ratio(r.firstMed, inFirst), r.p50, r.p95, ratio(r.p50, inP50), r.frames)
		}
		fmt.Println("  (ratios: against the in-process client of this run; first-picture target <= 150 ms)")
	}

	// 4. CPU with one external viewer, then a bare pipeline.
	if *cpuFor > 0 {
		viewer := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-rtsp_transport", "tcp", "-i", url, "-f", "null", "-")
		check(viewer.Start())
		time.Sleep(2 * time.Second)
		ours := selfCPU(*cpuFor)
		_ = viewer.Process.Kill()
		_ = viewer.Wait()
		close(stop)
		wg.Wait()
		check(sl.Stop())
		bare := bareCPU(frames, *cpuFor)
		fmt.Printf("CPU (%% of one core): SkyLine+RTSP with 1 viewer %.1f%%, bare gst-launch (same frames, same x264 settings) %.1f%%, ratio %.2f   (target <= 1.15)\n",
			ours, bare, ours/bare)
	} else {
		close(stop)
		wg.Wait()
		check(sl.Stop())
	}
	s := st.Stats()
	fmt.Printf("stream: %d access units, %d packets, %d dropped, %d viewers in total\n", s.AccessUnits, s.Packets, s.PacketsDropped, s.ViewersTotal)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(float64(len(d))*p))].Round(100 * time.Microsecond)
}

// makeFrames draws 8 backgrounds; the number band is drawn per frame.
func makeFrames() [][]byte {
	var out [][]byte
	for i := 0; i < 8; i++ {
		out = append(out, testpattern.NewBGR(w, h, i*15))
	}
	return out
}

func drawBand(buf []byte, n int) {
	for y := h * 3 / 100; y < h*17/100+1; y++ {
		for x := 0; x < w; x++ {
			fx, fy := (float64(x)+0.5)/w, (float64(y)+0.5)/h
			if fy >= 0.04 && fy < 0.16 && fx >= 0.04 && fx < 0.96 {
				b, g, r := testpattern.Pixel(x, y, w, h, n)
				i := (y*w + x) * 3
				buf[i], buf[i+1], buf[i+2] = b, g, r
			}
		}
	}
}

// tap is a second destination next to the RTSP stream: it notes when each
// access unit leaves the encoder (reaches its outlet), by PTS.
type tap struct {
	mu    sync.Mutex
	start time.Time
	at    map[time.Duration]time.Time
}

func (t *tap) Name() string { return "tap" }
func (t *tap) Open(info skyline.StreamInfo) error {
	t.mu.Lock()
	t.start = info.Start
	t.mu.Unlock()
	return nil
}
func (t *tap) Close() {}
func (t *tap) WriteAccessUnit(au *skyline.AccessUnit) error {
	now := time.Now()
	t.mu.Lock()
	t.at[au.PTS.Round(time.Millisecond)] = now
	t.mu.Unlock()
	return nil
}

// outAt is when the access unit of the frame Put at put left the encoder
// (the frame's PTS is put - Start: Frame.Time is set to the Put time).
func (t *tap) outAt(put time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.at[put.Sub(t.start).Round(time.Millisecond)]
}

type feeder struct {
	sl     *skyline.SkyLine
	tap    *tap
	frames [][]byte
	mu     sync.Mutex
	putAt  map[int]time.Time
	retAt  map[int]time.Time
}

func (f *feeder) run(stop chan struct{}) {
	buf := make([]byte, w*h*3)
	tick := time.NewTicker(time.Second / time.Duration(fps))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		copy(buf, f.frames[n%len(f.frames)])
		drawBand(buf, n)
		t := time.Now()
		f.mu.Lock()
		f.putAt[n] = t
		f.mu.Unlock()
		fr := skyline.FrameBGR(buf, w, h, 0)
		fr.Time = t
		if _, err := f.sl.Put(fr); err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
			log.Fatal(err)
		}
		r := time.Now()
		f.mu.Lock()
		f.retAt[n] = r
		f.mu.Unlock()
	}
}

func (f *feeder) at(n int) (put, ret time.Time, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	put, ok = f.putAt[n]
	return put, f.retAt[n], ok
}

// record is one decoded frame's times.
type record struct {
	n                        int
	put, ret, enc, recv, dec time.Time
	key                      bool // an IDR access unit (known with the gst decoder)
}

// decoder decodes access units as they arrive; each picture comes back with
// the index of the access unit it was decoded from.
type decoder interface {
	push(idx int, nalus [][]byte, key bool)
	// next waits for the next picture: its frame number (ok false if
	// unreadable), the index of its access unit (-1 if unknown) and when it
	// was decoded.
	next() (n, idx int, ok bool, at time.Time)
	close()
}

func newDecoder() decoder {
	if *decoderArg == "ffmpeg" {
		return newFFmpeg()
	}
	return newGstDecoder()
}

// gstDecoder is "appsrc ! h264parse ! avdec_h264 ! appsink" in this
// process, through SkyLine's own binding.
type gstDecoder struct {
	pipe *gst.Pipeline
	src  *gst.AppSrc
	sink *gst.AppSink
	gray []byte
}

// auDur is the duration of one access unit.
func auDur() time.Duration { return time.Second / time.Duration(fps) }

func newGstDecoder() *gstDecoder {
	p, err := gst.ParseLaunch("appsrc name=src ! h264parse ! avdec_h264 thread-type=slice ! video/x-raw,format=I420 ! " +
		"appsink name=out sync=false")
	check(err)
	d := &gstDecoder{pipe: p, src: gst.AsAppSrc(p.ByName("src")), sink: gst.AsAppSink(p.ByName("out")), gray: make([]byte, w*h*3)}
	check(d.src.SetCaps("video/x-h264,stream-format=byte-stream,alignment=au", 0))
	check(p.SetState(gst.StatePlaying))
	return d
}

func (d *gstDecoder) push(idx int, nalus [][]byte, key bool) {
	t := time.Duration(idx+1) * auDur()
	if err := d.src.PushBytes(annexB(nalus), t, t, auDur(), key); err != nil {
		log.Fatalf("decoder: %v", err)
	}
}

func (d *gstDecoder) next() (n, idx int, ok bool, at time.Time) {
	for {
		smp, eos := d.sink.Pull(10 * time.Second)
		if eos || smp == nil {
			log.Fatalf("decoder: no picture (eos %v)", eos)
		}
		at = time.Now()
		if len(smp.Data) < w*h {
			continue
		}
		// The number band in grey from the luma plane, for ReadBGR.
		for y := h * 3 / 100; y < h*17/100+1; y++ {
			row := smp.Data[y*w : (y+1)*w]
			out := d.gray[y*w*3 : (y+1)*w*3]
			for x, v := range row {
				out[3*x], out[3*x+1], out[3*x+2] = v, v, v
			}
		}
		n, ok = testpattern.ReadBGR(d.gray, w, h)
		return n, int(smp.PTS/auDur()) - 1, ok, at
	}
}

func (d *gstDecoder) close() {
	d.src.Unref()
	d.sink.Unref()
	d.pipe.Close()
}

// ffmpegDecoder is an ffmpeg process decoding Annex-B from stdin, with no
// buffering and one thread (frame threads add a frame of delay each).
type ffmpegDecoder struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
	buf []byte
}

// aud ends each access unit so that ffmpeg's parser emits it at once.
var aud = []byte{0, 0, 0, 1, 9, 0xf0}

func newFFmpeg() *ffmpegDecoder {
	cmd := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-threads", "1", "-fflags", "nobuffer", "-flags", "low_delay",
		"-probesize", "32", "-f", "h264", "-i", "pipe:0",
		// The output side holds nothing back: one rawvideo encoder thread
		// (its frame threads each hold a picture), the input's time base.
		"-threads", "1", "-fps_mode", "passthrough", "-enc_time_base", "-1", "-flush_packets", "1",
		"-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1")
	in, err := cmd.StdinPipe()
	check(err)
	out, err := cmd.StdoutPipe()
	check(err)
	check(cmd.Start())
	return &ffmpegDecoder{cmd: cmd, in: in, out: bufio.NewReaderSize(out, w*h*3), buf: make([]byte, w*h*3)}
}

func (d *ffmpegDecoder) push(_ int, nalus [][]byte, _ bool) {
	_, _ = d.in.Write(append(annexB(nalus), aud...))
}

// next: ffmpeg passes every access unit through, so pictures come out in
// access-unit order.
func (d *ffmpegDecoder) next() (n, idx int, ok bool, at time.Time) {
	if _, err := io.ReadFull(d.out, d.buf); err != nil {
		log.Fatalf("decoder: %v", err)
	}
	at = time.Now()
	n, ok = testpattern.ReadBGR(d.buf, w, h)
	// ffmpeg swallows the first pictures it sees: which access unit a
	// picture came from is unknown.
	return n, -1, ok, at
}

func (d *ffmpegDecoder) close() {
	d.in.Close()
	_, _ = io.Copy(io.Discard, d.out)
	_ = d.cmd.Wait()
}

// client plays url over TCP and hands each access unit from the first
// keyframe on to each, with its index; playAt is just before PLAY.
func client(url string, each func(idx int, nalus [][]byte, key bool)) (*gortsplib.Client, time.Time) {
	u, err := base.ParseURL(url)
	check(err)
	tcp := gortsplib.ProtocolTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp}
	check(c.Start())
	desc, _, err := c.Describe(u)
	check(err)
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	dec, err := forma.CreateDecoder()
	check(err)
	_, err = c.Setup(desc.BaseURL, medi, 0, 0)
	check(err)
	idx := -1
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		nalus, err := dec.Decode(pkt)
		if err != nil {
			return
		}
		key := h264.IsRandomAccess(nalus)
		if idx < 0 && !key {
			return
		}
		idx++
		each(idx, nalus, key)
	})
	playAt := time.Now()
	_, err = c.Play(nil)
	check(err)
	return c, playAt
}

func annexB(nalus [][]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = append(b, 0, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}

// arrivals notes when each access unit reached the client.
type arrivals struct {
	mu  sync.Mutex
	at  []time.Time
	key []bool
}

func (a *arrivals) add(idx int, key bool) {
	now := time.Now()
	a.mu.Lock()
	for len(a.at) <= idx {
		a.at, a.key = append(a.at, time.Time{}), append(a.key, false)
	}
	a.at[idx], a.key[idx] = now, key
	a.mu.Unlock()
}

func (a *arrivals) get(idx int) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if idx < 0 || idx >= len(a.at) {
		return time.Time{}, false
	}
	return a.at[idx], a.key[idx]
}

func measureLatency(url string, f *feeder, window time.Duration) []record {
	d := newDecoder()
	var arr arrivals
	c, _ := client(url, func(idx int, nalus [][]byte, key bool) {
		arr.add(idx, key)
		d.push(idx, nalus, key)
	})
	var recs []record
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		n, idx, ok, at := d.next()
		if !ok {
			continue
		}
		put, ret, ok := f.at(n)
		if !ok {
			continue
		}
		recv, key := arr.get(idx)
		recs = append(recs, record{n: n, put: put, ret: ret, enc: f.tap.outAt(put), recv: recv, dec: at, key: key})
	}
	c.Close()
	d.close()
	return recs
}

func lateJoin(url string) (key, picture time.Duration) {
	d := newDecoder()
	var keyAt time.Time
	var once sync.Once
	c, playAt := client(url, func(idx int, nalus [][]byte, k bool) {
		once.Do(func() { keyAt = time.Now() })
		d.push(idx, nalus, k)
	})
	_, _, _, at := d.next()
	first := at.Sub(playAt)
	c.Close()
	d.close()
	return keyAt.Sub(playAt), first
}

// selfCPU is this process's CPU use over a window, in % of one core.
func selfCPU(window time.Duration) float64 {
	var a, b syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &a))
	t0 := time.Now()
	time.Sleep(window)
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &b))
	used := time.Duration(b.Utime.Nano()+b.Stime.Nano()-a.Utime.Nano()-a.Stime.Nano()) * time.Nanosecond
	return 100 * used.Seconds() / time.Since(t0).Seconds()
}

// bareCPU runs gst-launch with SkyLine's encoder settings, fed the same BGR
// frames at the same rate, and returns its CPU use in % of one core.
func bareCPU(frames [][]byte, window time.Duration) float64 {
	bitrate := w * h * fps * 7 / 100000 // SkyLine's default: 0.07 bit per pixel
	pipe := fmt.Sprintf("fdsrc fd=0 blocksize=%d ! rawvideoparse format=bgr width=%d height=%d framerate=%d/1 ! "+
		"videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=superfast bframes=0 key-int-max=%d bitrate=%d ! "+
		"h264parse ! fakesink", w*h*3, w, h, fps, 2*fps, bitrate)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "gst-launch-1.0", append([]string{"-q"}, strings.Fields(pipe)...)...)
	in, err := cmd.StdinPipe()
	check(err)
	check(cmd.Start())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, w*h*3)
		tick := time.NewTicker(time.Second / time.Duration(fps))
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			copy(buf, frames[n%len(frames)])
			drawBand(buf, n)
			if _, err := in.Write(buf); err != nil {
				return
			}
		}
	}()
	time.Sleep(2 * time.Second)
	a := procCPU(cmd.Process.Pid)
	t0 := time.Now()
	time.Sleep(window)
	b := procCPU(cmd.Process.Pid)
	el := time.Since(t0)
	close(stop)
	<-done
	in.Close()
	_ = cmd.Wait()
	return 100 * (b - a).Seconds() / el.Seconds()
}

// procCPU reads a process's user+system CPU time from /proc.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
