// Command presets measures what the x264 speed preset and the bitrate cost
// and buy, to choose SkyLine's defaults (Encoder.Preset and the automatic
// bitrate of defaultBitsPerPixel bit per pixel per frame, config.go).
//
//	go run ./bench/presets [-width 1280 -height 720 -frames 150]
//
// For each content, bitrate and preset it streams the same pre-rendered BGR
// frames through skyline.New + skyline.NewFile(".mkv") with SkyLine's
// encoder settings (tune=zerolatency, no B-frames, keyframe every 2 s, CBR),
// then decodes the file with ffmpeg and compares it with the source frames.
//
// Contents:
//
//   - pattern: internal/testpattern (smooth moving gradients and the block
//     code): easy for the encoder.
//   - natural: a camera-like pan (sub-pixel, about 2.6 px per frame, with a
//     slow vertical sway) over a procedurally generated scene (fixed seed):
//     fractal terrain and clouds, buildings with window grids, poles and
//     wires, grass texture, text; a car crossing the other way; fresh sensor
//     noise in every frame (-noise, standard deviation in 8-bit levels).
//
// Columns:
//
//   - CPU ms/fr: getrusage(RUSAGE_SELF) over Start .. the last Put .. Stop
//     (which drains the pipeline), divided by the frames: the BGR->I420
//     conversion, every GStreamer thread (x264, muxer, file) and the Go
//     runtime. Frames are rendered before Start. When Put returns false
//     (queue full) the program sleeps 250 µs and retries the same frame, so
//     no frame is dropped and the waiting costs no CPU.
//   - x ultra: CPU per frame relative to ultrafast at the same bitrate and
//     content (adjacent runs in this process: trust the ratios more than
//     the absolute figures on a shared machine).
//   - kbit/s: the bitrate the file actually has.
//   - Y mean/min: PSNR of the luma plane of each decoded picture against the
//     I420 picture the encoder was given: the encoder's loss alone, the usual
//     codec metric.
//   - BGR mean/min: PSNR of the decoded picture converted to BGR by ffmpeg
//     (internal/mediatest.Decode) against the source BGR frame: what a
//     viewer gets, including the 4:2:0 conversion. Its ceiling (the source
//     converted to I420 and back without encoding) is printed per content.
//
// Timestamps come from a fake Config.Clock that advances 1/fps for each
// frame accepted, so they are regular however fast the frames are Put.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/internal/yuv"
)

type result struct {
	content, preset string
	bpp             float64
	kbps            int // requested
	frames          int
	cpu, wall       time.Duration
	fileBytes       int64
	retries         int
	yMean, yMin     float64
	bgrMean, bgrMin float64
}

func (r result) cpuMs() float64 {
	return float64(r.cpu) / float64(time.Millisecond) / float64(r.frames)
}
func (r result) actualKbps(fps float64) float64 {
	return float64(r.fileBytes) * 8 / 1000 / (float64(r.frames) / fps)
}

func main() {
	width := flag.Int("width", 1280, "frame width")
	height := flag.Int("height", 720, "frame height")
	fps := flag.Float64("fps", 30, "frame rate")
	frames := flag.Int("frames", 150, "frames per run")
	presetList := flag.String("presets", "ultrafast,superfast,veryfast,faster", "comma-separated x264 speed presets (the first is the reference of the ratio column)")
	bppList := flag.String("bpp", "0.04,0.07,0.10", "comma-separated bitrates in bit per pixel per frame")
	contentList := flag.String("content", "pattern,natural", "comma-separated contents: pattern, natural")
	noise := flag.Float64("noise", 2, "natural: sensor noise standard deviation, in 8-bit levels")
	queue := flag.Int("queue", 32, "Config.QueueSize")
	dir := flag.String("dir", "", "folder for the .mkv files (default: a temporary folder, removed at the end)")
	verbose := flag.Bool("v", false, "log SkyLine at debug level")
	pngPath := flag.String("png", "", "write the middle source frame of each content to this path (content-<path>) and exit")
	flag.Parse()
	w, h, n := *width, *height, *frames
	if w%2 != 0 || h%2 != 0 || w < 64 || h < 64 || n < 2 || *fps <= 0 {
		fmt.Fprintln(os.Stderr, "want even width and height >= 64, frames >= 2, fps > 0")
		os.Exit(2)
	}
	presets := splitList(*presetList)
	var bpps []float64
	for _, s := range splitList(*bppList) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "bad -bpp value %q\n", s)
			os.Exit(2)
		}
		bpps = append(bpps, v)
	}
	contents := splitList(*contentList)
	for _, c := range contents {
		if c != "pattern" && c != "natural" {
			fmt.Fprintf(os.Stderr, "unknown content %q\n", c)
			os.Exit(2)
		}
	}
	out := *dir
	if out == "" {
		d, err := os.MkdirTemp("", "skyline-presets-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(d)
		out = d
	}
	lvl := slog.LevelWarn
	if *verbose {
		lvl = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	fmt.Printf("presets benchmark: %dx%d@%g, %d frames per run, GOMAXPROCS %d, %d CPUs\n",
		w, h, *fps, n, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("x264enc: tune=zerolatency, bframes=0, keyframe every %v, CBR; file: matroska\n", skyline.DefaultKeyframeInterval)

	t0 := time.Now()
	var all []result
	ceilings := map[string]float64{}
	for _, content := range contents {
		tr := time.Now()
		src := render(content, w, h, n, *noise)
		if *pngPath != "" {
			p := filepath.Join(filepath.Dir(*pngPath), content+"-"+filepath.Base(*pngPath))
			if err := writePNG(p, src[n/2], w, h); err != nil {
				fatal(err)
			}
			fmt.Println("wrote", p)
			continue
		}
		i420 := make([][]byte, n)
		for i, f := range src {
			i420[i] = make([]byte, yuv.PackedSize(w, h))
			if err := yuv.ToI420(yuv.BGR, f, w*3, yuv.PackedLayout(i420[i], w, h)); err != nil {
				fatal(err)
			}
		}
		c, err := conversionCeiling(src, i420, w, h)
		if err != nil {
			fatal(err)
		}
		ceilings[content] = c
		fmt.Fprintf(os.Stderr, "%s: rendered %d frames in %v; BGR->I420->BGR ceiling %.2f dB\n",
			content, n, time.Since(tr).Round(time.Millisecond), c)
		for _, bpp := range bpps {
			kbps := int(math.Round(float64(w*h) * *fps * bpp / 1000))
			for _, preset := range presets {
				path := filepath.Join(out, fmt.Sprintf("%s-%s-%.3f.mkv", content, preset, bpp))
				r, err := encode(log, src, w, h, *fps, *queue, preset, kbps, path)
				if err != nil {
					fatal(fmt.Errorf("%s %s %g bpp: %v", content, preset, bpp, err))
				}
				r.content, r.bpp = content, bpp
				if err := measure(&r, path, src, i420, w, h, content == "pattern"); err != nil {
					fatal(fmt.Errorf("%s %s %g bpp: %v", content, preset, bpp, err))
				}
				fmt.Fprintf(os.Stderr, "  %-9s %.3f bpp %5d kbit/s: %6.2f ms/frame, Y %.2f/%.2f dB, BGR %.2f/%.2f dB (%d retries)\n",
					preset, bpp, kbps, r.cpuMs(), r.yMean, r.yMin, r.bgrMean, r.bgrMin, r.retries)
				all = append(all, r)
			}
		}
		src, i420 = nil, nil
		runtime.GC()
	}

	fmt.Println()
	fmt.Printf("%-8s %-10s %5s %7s %7s %10s %8s %7s %7s %8s %7s\n",
		"content", "preset", "bpp", "kbit/s", "actual", "CPU ms/fr", "x "+presets[0][:min(5, len(presets[0]))],
		"Y mean", "Y min", "BGR mean", "BGR min")
	ref := map[string]result{}
	for _, r := range all {
		key := fmt.Sprintf("%s/%g", r.content, r.bpp)
		if r.preset == presets[0] {
			ref[key] = r
		}
		ratio := "-"
		if rr, ok := ref[key]; ok && rr.cpu > 0 {
			ratio = fmt.Sprintf("%.2f", float64(r.cpu)/float64(rr.cpu))
		}
		fmt.Printf("%-8s %-10s %5.3f %7d %7.0f %10.2f %8s %7.2f %7.2f %8.2f %7.2f\n",
			r.content, r.preset, r.bpp, r.kbps, r.actualKbps(*fps), r.cpuMs(), ratio, r.yMean, r.yMin, r.bgrMean, r.bgrMin)
	}
	fmt.Println()
	for _, c := range contents {
		fmt.Printf("%s: BGR ceiling (I420 round trip, no encoding) %.2f dB\n", c, ceilings[c])
	}
	fmt.Printf("total %v\n", time.Since(t0).Round(time.Second))
}

// stepClock is a fake Config.Clock: Now is start + frames/fps, frames being
// the frames accepted so far, so capture timestamps are exactly regular.
type stepClock struct {
	mu     sync.Mutex
	start  time.Time
	step   time.Duration
	frames int
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start.Add(time.Duration(c.frames) * c.step)
}

func (c *stepClock) advance() {
	c.mu.Lock()
	c.frames++
	c.mu.Unlock()
}

// encode streams the frames into an .mkv file and measures the process's CPU.
func encode(log *slog.Logger, src [][]byte, w, h int, fps float64, queue int, preset string, kbps int, path string) (result, error) {
	r := result{preset: preset, kbps: kbps, frames: len(src)}
	file, err := skyline.NewFile(path)
	if err != nil {
		return r, err
	}
	clock := &stepClock{start: time.Unix(1_700_000_000, 0), step: time.Duration(float64(time.Second) / fps)}
	sl, err := skyline.New(skyline.Config{
		Logger: log, NoDotEnv: true, QueueSize: queue, Clock: clock,
		Encoder: skyline.Encoder{Preset: preset, Bitrate: kbps},
	}, file)
	if err != nil {
		return r, err
	}
	defer sl.Close()
	runtime.GC() // not inside the measurement
	c0, t0 := selfCPU(), time.Now()
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		return r, err
	}
	for _, buf := range src {
		f := skyline.FrameBGR(buf, w, h, 0)
		for {
			ok, err := sl.Put(f)
			if err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
				return r, err
			}
			if ok {
				clock.advance()
				break
			}
			if sl.State() != skyline.StateStreaming {
				return r, fmt.Errorf("state %v: %v", sl.State(), sl.Err())
			}
			r.retries++
			time.Sleep(250 * time.Microsecond)
		}
	}
	if err := sl.Stop(); err != nil {
		return r, err
	}
	r.wall, r.cpu = time.Since(t0), selfCPU()-c0
	st := sl.Stats()
	if st.Encoded != uint64(len(src)) || st.Written != uint64(len(src)) {
		return r, fmt.Errorf("encoded %d, written %d of %d frames", st.Encoded, st.Written, len(src))
	}
	fi, err := os.Stat(path)
	if err != nil {
		return r, err
	}
	r.fileBytes = fi.Size()
	return r, nil
}

// measure decodes the file twice (I420 for the luma PSNR, BGR through
// mediatest.Decode for the BGR PSNR) and fills in the PSNRs.
func measure(r *result, path string, src, i420 [][]byte, w, h int, checkNumbers bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ySize := w * h
	var ys []float64
	err := decodeRaw(ctx, path, "yuv420p", yuv.PackedSize(w, h), func(i int, pic []byte) error {
		if i >= len(i420) {
			return fmt.Errorf("more than %d pictures decoded", len(i420))
		}
		ys = append(ys, psnrCapped(mediatest.PSNR(pic[:ySize], i420[i][:ySize])))
		return nil
	})
	if err != nil {
		return err
	}
	var bgr []float64
	err = mediatest.Decode(ctx, path, w, h, nil, nil, func(i int, pic []byte) error {
		if i >= len(src) {
			return fmt.Errorf("more than %d pictures decoded", len(src))
		}
		if checkNumbers {
			if got, ok := testpattern.ReadBGR(pic, w, h); !ok || got != i {
				return fmt.Errorf("decoded picture %d carries frame number %d (readable %v)", i, got, ok)
			}
		}
		bgr = append(bgr, psnrCapped(mediatest.PSNR(pic, src[i])))
		return nil
	})
	if err != nil {
		return err
	}
	if len(ys) != len(src) || len(bgr) != len(src) {
		return fmt.Errorf("decoded %d (I420) and %d (BGR) pictures of %d", len(ys), len(bgr), len(src))
	}
	r.yMean, r.yMin = meanMin(ys)
	r.bgrMean, r.bgrMin = meanMin(bgr)
	return nil
}

// psnrCapped keeps identical pictures (+Inf) from dominating a mean.
func psnrCapped(v float64) float64 { return math.Min(v, 99) }

func meanMin(v []float64) (mean, lo float64) {
	lo = math.Inf(1)
	for _, x := range v {
		mean += x
		lo = math.Min(lo, x)
	}
	return mean / float64(len(v)), lo
}

// decodeRaw decodes input with ffmpeg into raw pictures of pixFmt, size
// bytes each.
func decodeRaw(ctx context.Context, input, pixFmt string, size int, each func(i int, pic []byte) error) error {
	cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-nostdin", "-i", input,
		"-f", "rawvideo", "-pix_fmt", pixFmt, "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	buf := make([]byte, size)
	var cbErr error
	for i := 0; ; i++ {
		if _, err := io.ReadFull(out, buf); err != nil {
			break
		}
		if cbErr = each(i, buf); cbErr != nil {
			_ = cmd.Process.Kill()
			break
		}
	}
	_, _ = io.Copy(io.Discard, out)
	werr := cmd.Wait()
	if cbErr != nil {
		return cbErr
	}
	if werr != nil {
		return fmt.Errorf("ffmpeg %s: %v: %s", input, werr, stderr.String())
	}
	return nil
}

// conversionCeiling is the mean BGR PSNR of the source against its I420
// pictures converted back to BGR by ffmpeg (as the decoded pictures are):
// the best the BGR column can show.
func conversionCeiling(src, i420 [][]byte, w, h int) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-nostdin",
		"-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", fmt.Sprintf("%dx%d", w, h), "-r", "30", "-i", "-",
		"-f", "rawvideo", "-pix_fmt", "bgr24", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() {
		for _, p := range i420 {
			if _, err := in.Write(p); err != nil {
				break
			}
		}
		in.Close()
	}()
	buf := make([]byte, w*h*3)
	var v []float64
	for i := 0; i < len(src); i++ {
		if _, err := io.ReadFull(out, buf); err != nil {
			break
		}
		v = append(v, psnrCapped(mediatest.PSNR(buf, src[i])))
	}
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("ffmpeg: %v: %s", err, stderr.String())
	}
	if len(v) != len(src) {
		return 0, fmt.Errorf("ffmpeg converted %d of %d pictures", len(v), len(src))
	}
	m, _ := meanMin(v)
	return m, nil
}

func render(content string, w, h, n int, noise float64) [][]byte {
	if content == "pattern" {
		fr := make([][]byte, n)
		for i := range fr {
			fr[i] = testpattern.NewBGR(w, h, i)
		}
		return fr
	}
	return renderNatural(w, h, n, noise)
}

func writePNG(path string, bgr []byte, w, h int) error {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		img.Pix[i*4], img.Pix[i*4+1], img.Pix[i*4+2], img.Pix[i*4+3] = bgr[i*3+2], bgr[i*3+1], bgr[i*3], 255
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		fmt.Fprintf(os.Stderr, "empty list %q\n", s)
		os.Exit(2)
	}
	return out
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

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "presets:", err)
	os.Exit(1)
}
