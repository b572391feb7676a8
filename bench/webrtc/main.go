// Command webrtc benchmarks SkyLine's WebRTC destination on this machine
// (reported, not asserted; see issue 6 for the targets):
//
//   - glass-to-glass estimate: from Put to the decoded picture at a pion
//     WHEP client on loopback (H.264 decoded in-process by GStreamer's
//     avdec_h264, one thread), p50/p95/max, at 1280x720@30; the frame
//     number drawn in each picture is read back to match it with its Put;
//   - CPU of the SkyLine process (encoder, packetisation, fan-out, DTLS/SRTP)
//     with 1 and with 10 WebRTC viewers, the viewers running in a separate
//     process (this binary with -viewers N) so that only the server side
//     is measured; one encode either way.
//
// Run: go run ./bench/webrtc (about a minute).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/internal/whepclient"
	"github.com/skyline-go/skyline/webrtc"
)

const w, h, fps = 1280, 720, 30

var (
	latencyFor = flag.Duration("latency", 15*time.Second, "latency measurement window")
	cpuFor     = flag.Duration("cpu", 15*time.Second, "CPU measurement window (each run)")
	viewers    = flag.Int("viewers", 0, "internal: run N WHEP viewers of -url until stdin closes")
	url        = flag.String("url", "", "internal: the WHEP URL for -viewers")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *viewers > 0 {
		runViewers(*url, *viewers)
		return
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := webrtc.NewServer(webrtc.ServerConfig{Address: "127.0.0.1:0", Logger: quiet})
	check(err)
	check(srv.Start())
	defer srv.Close()
	st, err := srv.AddStream("/bench", webrtc.StreamOptions{})
	check(err)
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: quiet}, st)
	check(err)
	defer sl.Close()
	check(sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}))

	f := &feeder{sl: sl, frames: makeFrames(), putAt: map[int]time.Time{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.run(stop) }()
	defer func() { close(stop); wg.Wait() }()

	fmt.Printf("SkyLine WebRTC benchmark: %dx%d@%d, x264 defaults (superfast, zerolatency, 2 s GOP), %s, loopback\n",
		w, h, fps, st.WHEPURL())
	time.Sleep(time.Second)

	// 1. Put -> decoded picture at a pion client.
	lat, lost := measureLatency(st.WHEPURL(), f, *latencyFor)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("Put -> decoded picture at a pion WHEP client (%d frames, %d AUs lost): p50 %v  p95 %v  max %v   (target p50 <= 100 ms)\n",
		len(lat), lost, pct(lat, 0.5), pct(lat, 0.95), pct(lat, 1))

	// 2. CPU with 1 and 10 viewers in another process.
	for _, n := range []int{1, 10} {
		cpu, child, enc, aus, recv := measureCPU(sl, st, n, *cpuFor)
		fmt.Printf("CPU with %2d WebRTC viewer(s): SkyLine process %5.1f%% of a core (viewers' process %5.1f%%); encoded %d pictures, packetised %d, viewers received %d AUs (%.1f per picture per viewer)\n",
			n, cpu, child, enc, aus, recv, float64(recv)/float64(max(enc, 1))/float64(n))
	}
}

func measureLatency(url string, f *feeder, d time.Duration) ([]time.Duration, int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := whepclient.Dial(ctx, url, whepclient.Options{})
	check(err)
	defer c.Close()
	dec, err := whepclient.NewDecoder()
	check(err)
	defer dec.Close()
	<-c.Connected()
	warm := time.Now().Add(time.Second)
	end := time.Now().Add(d)
	var out []time.Duration
	for time.Now().Before(end) {
		select {
		case au := <-c.AUs():
			check(dec.Push(au.Data, au.Keyframe))
		case pic := <-dec.Pictures():
			n, ok := testpattern.ReadBGR(pic.BGR, pic.Width, pic.Height)
			if t, found := f.at(n); ok && found && pic.Decoded.After(warm) {
				out = append(out, pic.Decoded.Sub(t))
			}
		case <-time.After(5 * time.Second):
			log.Fatal("no picture for 5 s")
		}
	}
	return out, c.Lost()
}

// measureCPU runs n viewers in a child process and measures this process's
// CPU (and the child's) over d once they all receive.
func measureCPU(sl *skyline.SkyLine, st *webrtc.Stream, n int, d time.Duration) (self, child float64, enc, aus uint64, recv int64) {
	exe, err := os.Executable()
	check(err)
	cmd := exec.Command(exe, "-viewers", strconv.Itoa(n), "-url", st.WHEPURL())
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	check(err)
	out, err := cmd.StdoutPipe()
	check(err)
	check(cmd.Start())
	rd := bufio.NewReader(out)
	line, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		log.Fatalf("viewers: %q %v", line, err)
	}
	time.Sleep(2 * time.Second) // let the joins' keyframes pass
	mark := func() int64 {
		_, _ = fmt.Fprintln(in, "mark")
		line, err := rd.ReadString('\n')
		check(err)
		v, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "count ")), 10, 64)
		check(err)
		return v
	}
	r0 := mark()
	s0, c0, t0 := procCPU(os.Getpid()), procCPU(cmd.Process.Pid), time.Now()
	e0, a0 := uint64(sl.Stats().Encoded), st.Stats().AccessUnits
	time.Sleep(d)
	s1, c1, t1 := procCPU(os.Getpid()), procCPU(cmd.Process.Pid), time.Now()
	e1, a1 := uint64(sl.Stats().Encoded), st.Stats().AccessUnits
	r1 := mark()
	in.Close()
	_ = cmd.Wait()
	wall := t1.Sub(t0).Seconds()
	return 100 * (s1 - s0).Seconds() / wall, 100 * (c1 - c0).Seconds() / wall, e1 - e0, a1 - a0, r1 - r0
}

// runViewers is the child: n viewers that receive (no decoding); "mark" on
// stdin prints the access units received so far.
func runViewers(url string, n int) {
	signal.Ignore(os.Interrupt)
	var count atomic.Int64
	var cs []*whepclient.Client
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, err := whepclient.Dial(ctx, url, whepclient.Options{Queue: 4096})
		cancel()
		check(err)
		cs = append(cs, c)
		go func() {
			for range c.AUs() {
				count.Add(1)
			}
		}()
	}
	for _, c := range cs {
		<-c.Connected()
	}
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Printf("count %d\n", count.Load())
	}
	for _, c := range cs {
		c.Close()
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
		if _, err := f.sl.Put(skyline.FrameBGR(buf, w, h, 0)); err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
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

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
