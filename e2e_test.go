package skyline_test

import (
	"context"
	"image"
	"image/color"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
)

// fakeClock advances by a fixed step on every Now, so timestamps and warm-up
// measurements are exact.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func newClock(fps float64) *fakeClock {
	return &fakeClock{t: time.Unix(1_700_000_000, 0), step: time.Duration(float64(time.Second) / fps)}
}

// record streams n numbered frames made by mk to a file and returns its path.
func record(t *testing.T, name string, p skyline.Params, n int, mk func(i int) skyline.Frame) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	dst, err := skyline.NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := skyline.New(skyline.Config{Clock: newClock(p.FPS), NoDotEnv: true, QueueSize: n}, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if err := sl.Start(p); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		ok, err := sl.Put(mk(i))
		if err != nil || !ok {
			t.Fatalf("Put %d: ok=%v err=%v (state %v)", i, ok, err, sl.State())
		}
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := sl.Stats()
	if st.Accepted != uint64(n) || st.Dropped != 0 || st.Encoded != uint64(n) || st.Written != uint64(n) {
		t.Fatalf("stats %+v, want %d accepted, encoded and written", st, n)
	}
	return path
}

// verify checks a recording with ffprobe and ffmpeg: codec, pixel format,
// size, frame count, the frame numbers in order and PSNR against ref(i).
func verify(t *testing.T, path string, w, h, n int, ref func(i int) []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := mediatest.Probe(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Codec != "h264" || st.PixFmt != "yuv420p" || st.Width != w || st.Height != h || st.Frames != n {
		t.Fatalf("ffprobe: %+v, want h264 yuv420p %dx%d %d frames", st, w, h, n)
	}
	minPSNR := 1000.0
	count := 0
	err = mediatest.Decode(ctx, path, w, h, nil, nil, func(i int, bgr []byte) error {
		num, ok := testpattern.ReadBGR(bgr, w, h)
		if !ok || num != i {
			t.Errorf("decoded frame %d carries number %d (readable %v)", i, num, ok)
		}
		minPSNR = min(minPSNR, mediatest.PSNR(bgr, ref(i)))
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
	t.Logf("%s: %d frames %dx%d, min PSNR %.1f dB", filepath.Base(path), n, w, h, minPSNR)
}

func TestRecordBGRToMP4(t *testing.T) {
	const w, h, n = 320, 240, 300
	path := record(t, "bgr.mp4", skyline.Params{FPS: 30, Width: w, Height: h}, n, func(i int) skyline.Frame {
		return skyline.FrameBGR(testpattern.NewBGR(w, h, i), w, h, 0)
	})
	verify(t, path, w, h, n, func(i int) []byte { return testpattern.NewBGR(w, h, i) })
}

func TestRecordScaledToMKV(t *testing.T) {
	// Frames twice the declared size are scaled down (SPEC A4).
	const w, h, n = 320, 240, 300
	path := record(t, "scaled.mkv", skyline.Params{FPS: 30, Width: w, Height: h}, n, func(i int) skyline.Frame {
		return skyline.FrameBGR(testpattern.NewBGR(2*w, 2*h, i), 2*w, 2*h, 0)
	})
	verify(t, path, w, h, n, func(i int) []byte { return halve(testpattern.NewBGR(2*w, 2*h, i), 2*w, 2*h) })
}

func TestRecordRGBAImage(t *testing.T) {
	const w, h, n = 320, 240, 300
	path := record(t, "rgba.mp4", skyline.Params{FPS: 25, Width: w, Height: h}, n, func(i int) skyline.Frame {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		bgr := testpattern.NewBGR(w, h, i)
		for p := 0; p < w*h; p++ {
			img.Pix[p*4], img.Pix[p*4+1], img.Pix[p*4+2], img.Pix[p*4+3] = bgr[p*3+2], bgr[p*3+1], bgr[p*3], 255
		}
		f, err := skyline.FrameFromImage(img)
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
	verify(t, path, w, h, n, func(i int) []byte { return testpattern.NewBGR(w, h, i) })
}

func TestRecordYCbCrImage(t *testing.T) {
	const w, h, n = 320, 240, 300
	path := record(t, "ycbcr.mp4", skyline.Params{FPS: 30, Width: w, Height: h}, n, func(i int) skyline.Frame {
		f, err := skyline.FrameFromImage(ycbcr(testpattern.NewBGR(w, h, i), w, h))
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
	verify(t, path, w, h, n, func(i int) []byte { return testpattern.NewBGR(w, h, i) })
}

// ycbcr converts a BGR picture into a 4:2:0 image.YCbCr the way Go's
// image/jpeg would hold it (full range).
func ycbcr(bgr []byte, w, h int) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := (y*w + x) * 3
			yy, _, _ := color.RGBToYCbCr(bgr[i+2], bgr[i+1], bgr[i])
			img.Y[img.YOffset(x, y)] = yy
		}
	}
	for y := 0; y < h; y += 2 {
		for x := 0; x < w; x += 2 {
			var cb, cr int
			for _, d := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
				i := ((y+d[1])*w + x + d[0]) * 3
				_, b, r := color.RGBToYCbCr(bgr[i+2], bgr[i+1], bgr[i])
				cb += int(b)
				cr += int(r)
			}
			img.Cb[img.COffset(x, y)] = byte((cb + 2) / 4)
			img.Cr[img.COffset(x, y)] = byte((cr + 2) / 4)
		}
	}
	return img
}

// halve downscales a BGR picture 2:1 by averaging 2x2 blocks.
func halve(bgr []byte, w, h int) []byte {
	out := make([]byte, (w/2)*(h/2)*3)
	for y := 0; y < h/2; y++ {
		for x := 0; x < w/2; x++ {
			for c := 0; c < 3; c++ {
				s := int(bgr[((2*y)*w+2*x)*3+c]) + int(bgr[((2*y)*w+2*x+1)*3+c]) +
					int(bgr[((2*y+1)*w+2*x)*3+c]) + int(bgr[((2*y+1)*w+2*x+1)*3+c])
				out[(y*(w/2)+x)*3+c] = byte((s + 2) / 4)
			}
		}
	}
	return out
}
