// Command rtsp benchmarks SkyLine's RTSP destination on this machine
// (reported, not asserted; see issue 3 for the targets):
//
//   - end-to-end latency from Put to the decoded picture at a real RTSP
//     client (gortsplib over TCP, decoded by ffmpeg), p50/p95/max, at
//     1280x720@30;
//   - time from PLAY to the first decoded picture for late joiners;
//   - CPU % of one core of the SkyLine process at 1280x720@30 with one
//     viewer (an external ffmpeg), next to a bare gst-launch pipeline with
//     the same encoder settings fed the same frames, in the same run.
//
// Run: go run ./bench/rtsp (about a minute).
package main

import (
	"bufio"
	"context"
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
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/rtsp"
)

const w, h, fps = 1280, 720, 30

var (
	latencyFor = flag.Duration("latency", 15*time.Second, "latency measurement window")
	cpuFor     = flag.Duration("cpu", 15*time.Second, "CPU measurement window (each side)")
	joins      = flag.Int("joins", 5, "late joiners")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	frames := makeFrames()
	srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: "127.0.0.1:0", DisableUDP: true, DisableMulticast: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	check(err)
	check(srv.Start())
	defer srv.Close()
	sl, err := rtsp.NewSkyLine(srv, "/bench", skyline.Config{NoDotEnv: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	check(err)
	defer sl.Close()
	check(sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}))
	url := srv.Stream("/bench").URL()

	f := &feeder{sl: sl, frames: frames, putAt: map[int]time.Time{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.run(stop) }()

	fmt.Printf("SkyLine RTSP benchmark: %dx%d@%d, x264 defaults (superfast, zerolatency, 2 s GOP), %s\n", w, h, fps, url)
	time.Sleep(time.Second)

	// 1. Latency from Put to the decoded picture.
	lat := measureLatency(url, f, *latencyFor)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("Put -> decoded picture (%d frames): p50 %v  p95 %v  max %v   (target p50 <= 50 ms, p95 <= 100 ms)\n",
		len(lat), pct(lat, 0.5), pct(lat, 0.95), pct(lat, 1))

	// 2. Late joiners.
	var firsts, keys []time.Duration
	for i := 0; i < *joins; i++ {
		time.Sleep(1300 * time.Millisecond) // land at varied points of the GOP
		k, p := lateJoin(url)
		keys, firsts = append(keys, k), append(firsts, p)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	fmt.Printf("late joiner PLAY -> first keyframe received (%d joins): min %v  median %v  max %v\n",
		len(keys), keys[0], pct(keys, 0.5), keys[len(keys)-1])
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	fmt.Printf("late joiner PLAY -> first picture out of a streaming ffmpeg (%d joins; includes ffmpeg stream probing): min %v  median %v  max %v   (target <= 150 ms)\n",
		len(firsts), firsts[0], pct(firsts, 0.5), firsts[len(firsts)-1])

	// 3. CPU with one external viewer, then a bare pipeline.
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
	st := srv.Stream("/bench").Stats()
	fmt.Printf("stream: %d access units, %d packets, %d dropped, %d viewers in total\n", st.AccessUnits, st.Packets, st.PacketsDropped, st.ViewersTotal)
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

type feeder struct {
	sl     *skyline.SkyLine
	frames [][]byte
	mu     sync.Mutex
	putAt  map[int]time.Time
}

func (f *feeder) run(stop chan struct{}) {
	buf := make([]byte, w*h*3)
	tick := time.NewTicker(time.Second / fps)
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
		if _, err := f.sl.Put(skyline.FrameBGR(buf, w, h, 0)); err != nil {
			log.Fatal(err)
		}
	}
}

func (f *feeder) at(n int) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.putAt[n]
	return t, ok
}

// decoder is an ffmpeg process decoding Annex-B from stdin, with no
// buffering and one thread (frame threads add a frame of delay each).
type decoder struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// aud ends each access unit so that ffmpeg's parser emits it at once.
var aud = []byte{0, 0, 0, 1, 9, 0xf0}

func newDecoder() *decoder {
	cmd := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-threads", "1", "-fflags", "nobuffer", "-flags", "low_delay",
		"-probesize", "32", "-analyzeduration", "0", "-f", "h264", "-i", "pipe:0",
		"-fps_mode", "passthrough", "-flush_packets", "1", "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1")
	in, err := cmd.StdinPipe()
	check(err)
	out, err := cmd.StdoutPipe()
	check(err)
	check(cmd.Start())
	return &decoder{cmd: cmd, in: in, out: bufio.NewReaderSize(out, w*h*3)}
}

func (d *decoder) close() {
	d.in.Close()
	_, _ = io.Copy(io.Discard, d.out)
	_ = d.cmd.Wait()
}

// client plays url over TCP and hands each access unit from the first
// keyframe on to each; playAt is just before PLAY.
func client(url string, each func([][]byte)) (*gortsplib.Client, time.Time) {
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
	started := false
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		nalus, err := dec.Decode(pkt)
		if err != nil {
			return
		}
		if !started && !h264.IsRandomAccess(nalus) {
			return
		}
		started = true
		each(nalus)
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
	return append(b, aud...)
}

func measureLatency(url string, f *feeder, window time.Duration) []time.Duration {
	d := newDecoder()
	c, _ := client(url, func(nalus [][]byte) { _, _ = d.in.Write(annexB(nalus)) })
	var lat []time.Duration
	buf := make([]byte, w*h*3)
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		if _, err := io.ReadFull(d.out, buf); err != nil {
			log.Fatalf("decoder: %v", err)
		}
		now := time.Now()
		if n, ok := testpattern.ReadBGR(buf, w, h); ok {
			if t, ok := f.at(n); ok {
				lat = append(lat, now.Sub(t))
			}
		}
	}
	c.Close()
	d.close()
	return lat
}

func lateJoin(url string) (key, picture time.Duration) {
	d := newDecoder()
	var keyAt time.Time
	var once sync.Once
	c, playAt := client(url, func(nalus [][]byte) {
		once.Do(func() { keyAt = time.Now() })
		_, _ = d.in.Write(annexB(nalus))
	})
	buf := make([]byte, w*h*3)
	if _, err := io.ReadFull(d.out, buf); err != nil {
		log.Fatalf("decoder: %v", err)
	}
	first := time.Since(playAt)
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
		tick := time.NewTicker(time.Second / fps)
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
