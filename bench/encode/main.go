// Command encode compares the CPU cost per frame of SkyLine's encode with
// the same x264 encoder run alone by gst-launch-1.0 and by ffmpeg, all fed
// the same pre-rendered BGR frames as fast as they are accepted, with the
// same x264 settings (ultrafast, zerolatency, 500 kbit/s, keyframe every 45
// frames, no B-frames, 4:2:0).
//
//	go run ./bench/encode [-width 1280 -height 720 -frames 600]
//
// Machines running this are usually shared and noisy: compare the ratios,
// which come from runs in the same process a few seconds apart, rather than
// the absolute figures.
//
// How CPU is counted:
//
//   - ours: getrusage(RUSAGE_SELF) over Start .. the last Put .. Stop (which
//     drains the pipeline), so it covers the BGR->I420 conversion into the
//     pooled buffer, every GStreamer thread and the Go runtime. When Put
//     returns false (queue full) the program sleeps 250 µs and retries the
//     same frame: a blocking wait, so idle spinning is not counted as ours.
//   - gst-launch / ffmpeg: the child's own rusage (wait4), plus, reported
//     separately, the CPU this program spends writing the frames into the
//     child's stdin pipe ("feeder").
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
)

type result struct {
	name    string
	frames  int
	wall    time.Duration
	cpu     time.Duration // the encoder's CPU (ours: whole process)
	feeder  time.Duration // our CPU while feeding a child (0 for ours)
	dropped uint64
	note    string
}

func (r result) fps() float64 { return float64(r.frames) / r.wall.Seconds() }
func (r result) msPerFrame(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond) / float64(r.frames)
}

func main() {
	width := flag.Int("width", 1280, "frame width")
	height := flag.Int("height", 720, "frame height")
	frames := flag.Int("frames", 600, "frames per run")
	ring := flag.Int("ring", 16, "distinct pre-rendered frames cycled through")
	runs := flag.Int("runs", 3, "repetitions of each measurement, interleaved (the median CPU is reported)")
	only := flag.String("only", "ours,gst,ffmpeg,ffmpeg-vbv", "comma-separated subset of ours,gst,ffmpeg,ffmpeg-vbv")
	props := flag.String("props", "", "extra x264enc properties for ours, e.g. threads=2,sliced-threads=true")
	gstExtra := flag.String("gst-props", "", "extra x264enc properties for gst-launch (space separated, gst-launch syntax)")
	queue := flag.Int("queue", skyline.DefaultQueueSize, "ours: Config.QueueSize")
	verbose := flag.Bool("v", false, "log SkyLine at debug level (prints the pipeline)")
	flag.Parse()
	if *width%2 != 0 || *height%2 != 0 || *frames < 1 || *ring < 1 {
		fmt.Fprintln(os.Stderr, "want even width and height, frames >= 1, ring >= 1")
		os.Exit(2)
	}
	w, h := *width, *height

	// Pre-render the frames so drawing them is not measured.
	fr := make([][]byte, *ring)
	for i := range fr {
		fr[i] = testpattern.NewBGR(w, h, i)
	}
	extra := map[string]string{}
	for _, kv := range strings.Split(*props, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			extra[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	lvl := slog.LevelWarn
	if *verbose {
		lvl = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	fmt.Printf("encode benchmark: %dx%d BGR, %d frames per run, %d run(s), GOMAXPROCS %d, %d CPUs\n",
		w, h, *frames, *runs, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Println("x264: ultrafast, zerolatency, 500 kbit/s, keyint 45, no B-frames, 4:2:0")
	fmt.Println("ours: whole-process CPU (conversion, GStreamer, Go); others: the child's CPU, our pipe-writing CPU as feeder")

	gstDesc := fmt.Sprintf("fdsrc fd=0 blocksize=%d ! rawvideoparse width=%d height=%d format=bgr framerate=30/1 ! "+
		"videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=ultrafast tune=zerolatency bitrate=500 "+
		"key-int-max=45 bframes=0 %s ! fakesink", w*h*3, w, h, *gstExtra)
	ffArgs := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "bgr24",
		"-s", fmt.Sprintf("%dx%d", w, h), "-r", "30", "-i", "-", "-c:v", "libx264", "-preset", "ultrafast",
		"-tune", "zerolatency", "-b:v", "500k", "-g", "45", "-bf", "0", "-pix_fmt", "yuv420p", "-f", "null", "-"}

	// x264enc's default pass=cbr adds a VBV (maxrate = bitrate, buffer 600
	// ms) to the 500 kbit/s ABR that the plain ffmpeg command uses. With
	// these two options ffmpeg's x264 settings string (the SEI x264 writes
	// into the stream) is byte for byte the one of x264enc above.
	ffVBVArgs := append([]string{}, ffArgs[:len(ffArgs)-3]...)
	ffVBVArgs = append(ffVBVArgs, "-maxrate", "500k", "-bufsize", "300k", "-f", "null", "-")

	type bench struct {
		key string
		run func() (result, error)
	}
	all := []bench{
		{"ours", func() (result, error) { return runOurs(log, fr, w, h, *frames, *queue, extra) }},
		{"gst", func() (result, error) {
			args := append([]string{"-q"}, strings.Fields(gstDesc)...)
			return runChild("gst-launch", "gst-launch-1.0", args, fr, *frames)
		}},
		{"ffmpeg", func() (result, error) { return runChild("ffmpeg", "ffmpeg", ffArgs, fr, *frames) }},
		{"ffmpeg-vbv", func() (result, error) { return runChild("ffmpeg-vbv", "ffmpeg", ffVBVArgs, fr, *frames) }},
	}
	want := map[string]bool{}
	for _, k := range strings.Split(*only, ",") {
		want[strings.TrimSpace(k)] = true
	}
	res := map[string]result{}
	// Interleave the runs (ours, gst, ffmpeg, ours, ...) so that a noisy
	// neighbour hurts all of them alike.
	samples := map[string][]result{}
	for i := 0; i < *runs; i++ {
		for _, b := range all {
			if !want[b.key] {
				continue
			}
			r, err := b.run()
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", b.key, err)
				os.Exit(1)
			}
			samples[b.key] = append(samples[b.key], r)
		}
	}
	for k, s := range samples {
		sort.Slice(s, func(i, j int) bool { return s[i].cpu < s[j].cpu })
		res[k] = s[len(s)/2]
	}

	fmt.Println()
	fmt.Printf("%-12s %8s %10s %14s %16s  %s\n", "", "frames/s", "CPU ms/fr", "feeder ms/fr", "CPU+feeder ms/fr", "")
	for _, b := range all {
		r, ok := res[b.key]
		if !ok {
			continue
		}
		feed := "-"
		sum := "-"
		if r.name != "ours" {
			feed = fmt.Sprintf("%.2f", r.msPerFrame(r.feeder))
			sum = fmt.Sprintf("%.2f", r.msPerFrame(r.cpu+r.feeder))
		}
		fmt.Printf("%-12s %8.1f %10.2f %14s %16s  %s\n", r.name, r.fps(), r.msPerFrame(r.cpu), feed, sum, r.note)
	}
	ours, ok := res["ours"]
	if !ok {
		return
	}
	fmt.Println()
	for _, k := range []string{"gst", "ffmpeg", "ffmpeg-vbv"} {
		r, ok := res[k]
		if !ok {
			continue
		}
		fmt.Printf("ours/%-11s CPU per frame %.2fx (%.2fx counting its feeder), frames/s %.2fx\n", r.name,
			ours.msPerFrame(ours.cpu)/r.msPerFrame(r.cpu),
			ours.msPerFrame(ours.cpu)/r.msPerFrame(r.cpu+r.feeder),
			ours.fps()/r.fps())
	}
}

// runOurs streams the frames through SkyLine with no destination.
func runOurs(log *slog.Logger, fr [][]byte, w, h, n, queue int, extra map[string]string) (result, error) {
	props := map[string]string{}
	for k, v := range extra {
		props[k] = v
	}
	sl, err := skyline.New(skyline.Config{
		Logger: log, NoDotEnv: true, QueueSize: queue,
		Timestamps: skyline.TimestampsFixedRate,
		Encoder: skyline.Encoder{
			Preset: "ultrafast", Bitrate: 500,
			KeyframeInterval: 1500 * time.Millisecond, // 45 frames at 30 fps
			Properties:       props,
		},
	})
	if err != nil {
		return result{}, err
	}
	defer sl.Close()
	r := result{name: "ours", frames: n}
	c0, t0 := selfCPU(), time.Now()
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		return r, err
	}
	waits := 0
	for i := 0; i < n; i++ {
		f := skyline.FrameBGR(fr[i%len(fr)], w, h, 0)
		for {
			ok, err := sl.Put(f)
			if err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
				return r, err
			}
			if ok {
				break
			}
			if sl.State() != skyline.StateStreaming {
				return r, fmt.Errorf("state %v: %v", sl.State(), sl.Err())
			}
			waits++
			time.Sleep(250 * time.Microsecond)
		}
	}
	if err := sl.Stop(); err != nil {
		return r, err
	}
	r.wall, r.cpu = time.Since(t0), selfCPU()-c0
	st := sl.Stats()
	if st.Encoded != uint64(n) {
		return r, fmt.Errorf("encoded %d of %d frames", st.Encoded, n)
	}
	r.dropped = st.Dropped
	r.note = fmt.Sprintf("(queue-full retries: %d)", waits)
	return r, nil
}

// runChild feeds the frames to a child process's stdin.
func runChild(name, bin string, args []string, fr [][]byte, n int) (result, error) {
	r := result{name: name, frames: n}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	in, err := cmd.StdinPipe()
	if err != nil {
		return r, err
	}
	c0, t0 := selfCPU(), time.Now()
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("%s: %v", bin, err)
	}
	var werr error
	for i := 0; i < n && werr == nil; i++ {
		_, werr = in.Write(fr[i%len(fr)]) // straight into the pipe, no extra copy
	}
	in.Close()
	r.feeder = selfCPU() - c0 // the child's exit wait below costs us nothing
	err = cmd.Wait()
	r.wall = time.Since(t0)
	if err != nil || werr != nil {
		return r, fmt.Errorf("%s: %v %v: %s", bin, err, werr, strings.TrimSpace(stderr.String()))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	r.cpu = tv(ru.Utime) + tv(ru.Stime)
	return r, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return tv(ru.Utime) + tv(ru.Stime)
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}
