package skylinegocv_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
	"gocv.io/x/gocv"

	"github.com/skyline-go/skyline"
	skylinegocv "github.com/skyline-go/skyline/gocv"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/rtsp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// patternMat is frame n of the test pattern as a w x h CV_8UC3 Mat.
func patternMat(t *testing.T, w, h, n int) gocv.Mat {
	t.Helper()
	m, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, testpattern.NewBGR(w, h, n))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func dataPtr(t *testing.T, m gocv.Mat) uintptr {
	t.Helper()
	b, err := m.DataPtrUint8()
	if err != nil {
		t.Fatal(err)
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

// TestFrame: each accepted type gives the right format, size and stride,
// and the frame aliases the Mat's memory (no copy).
func TestFrame(t *testing.T) {
	const w, h = 64, 48
	bgr := patternMat(t, w, h, 7)
	defer bgr.Close()
	bgra, gray := gocv.NewMat(), gocv.NewMat()
	defer bgra.Close()
	defer gray.Close()
	gocv.CvtColor(bgr, &bgra, gocv.ColorBGRToBGRA)
	gocv.CvtColor(bgr, &gray, gocv.ColorBGRToGray)

	for _, c := range []struct {
		name   string
		m      gocv.Mat
		format skyline.PixelFormat
		bpp    int
	}{
		{"CV_8UC3", bgr, skyline.FormatBGR, 3},
		{"CV_8UC4", bgra, skyline.FormatBGRA, 4},
		{"CV_8UC1", gray, skyline.FormatGray, 1},
	} {
		f, err := skylinegocv.Frame(c.m)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if f.Format != c.format || f.Width != w || f.Height != h || f.Stride != w*c.bpp || len(f.Data) != w*h*c.bpp {
			t.Errorf("%s: frame %v %dx%d stride %d, %d bytes", c.name, f.Format, f.Width, f.Height, f.Stride, len(f.Data))
		}
		if p := uintptr(unsafe.Pointer(&f.Data[0])); p != dataPtr(t, c.m) {
			t.Errorf("%s: frame data at %#x, Mat data at %#x: copied", c.name, p, dataPtr(t, c.m))
		}
		if got, ok := skylinegocv.Format(c.m.Type()); !ok || got != c.format {
			t.Errorf("%s: Format %v %v", c.name, got, ok)
		}
	}
	// Writing the Mat shows through the frame: it is the same memory.
	f, _ := skylinegocv.Frame(bgr)
	bgr.SetUCharAt(3, 5*3+1, 201)
	if f.Data[3*w*3+5*3+1] != 201 {
		t.Error("frame does not alias the Mat")
	}
}

// TestFrameRegion: a region of interest (non-continuous) goes in with the
// parent's step as stride, pointing into the parent's memory.
func TestFrameRegion(t *testing.T) {
	parent := patternMat(t, 100, 80, 3)
	defer parent.Close()
	roi := parent.Region(image.Rect(10, 6, 74, 54)) // 64x48 at (10,6)
	defer roi.Close()
	if roi.IsContinuous() {
		t.Fatal("region is continuous: the test needs a non-continuous Mat")
	}
	f, err := skylinegocv.Frame(roi)
	if err != nil {
		t.Fatal(err)
	}
	if f.Format != skyline.FormatBGR || f.Width != 64 || f.Height != 48 || f.Stride != 300 {
		t.Fatalf("frame %v %dx%d stride %d", f.Format, f.Width, f.Height, f.Stride)
	}
	if want := 300*47 + 64*3; len(f.Data) != want {
		t.Fatalf("%d bytes, want %d", len(f.Data), want)
	}
	if p, want := uintptr(unsafe.Pointer(&f.Data[0])), dataPtr(t, parent)+6*300+10*3; p != want {
		t.Fatalf("frame data at %#x, want %#x inside the parent", p, want)
	}
	for _, xy := range [][2]int{{0, 0}, {63, 0}, {0, 47}, {63, 47}, {20, 30}} {
		x, y := xy[0], xy[1]
		for c := 0; c < 3; c++ {
			if got, want := f.Data[y*f.Stride+x*3+c], roi.GetVecbAt(y, x)[c]; got != want {
				t.Fatalf("(%d,%d) channel %d: frame %d, Mat %d", x, y, c, got, want)
			}
		}
	}
	// A column range of a gray Mat too.
	g := gocv.NewMatWithSize(10, 20, gocv.MatTypeCV8UC1)
	defer g.Close()
	col := g.ColRange(3, 9)
	defer col.Close()
	if f, err := skylinegocv.Frame(col); err != nil || f.Width != 6 || f.Height != 10 || f.Stride != 20 || len(f.Data) != 20*9+6 {
		t.Fatalf("gray columns: %+v, %v", f, err)
	}
}

// TestFrameRejects: other types, empty, closed and 3-D Mats are refused
// with errors wrapping skyline.ErrInvalidFrame.
func TestFrameRejects(t *testing.T) {
	closed := gocv.NewMatWithSize(4, 4, gocv.MatTypeCV8UC3)
	closed.Close()
	for _, c := range []struct {
		name string
		m    gocv.Mat
		msg  string
	}{
		{"empty", gocv.NewMat(), "empty Mat"},
		{"closed", closed, "nil Mat"},
		{"zero value", gocv.Mat{}, "nil Mat"},
		{"CV_32FC3", gocv.NewMatWithSize(4, 4, gocv.MatTypeCV32FC3), "CV_32FC3"},
		{"CV_8UC2", gocv.NewMatWithSize(4, 4, gocv.MatTypeCV8UC2), "CV_8UC2"},
		{"CV_16UC1", gocv.NewMatWithSize(4, 4, gocv.MatTypeCV16UC1), "CV_16UC1"},
		{"3-D", gocv.NewMatWithSizes([]int{2, 3, 4}, gocv.MatTypeCV8UC1), "dimensions"},
	} {
		f, err := skylinegocv.Frame(c.m)
		if !errors.Is(err, skyline.ErrInvalidFrame) || !contains(err.Error(), c.msg) {
			t.Errorf("%s: frame %+v, error %v; want ErrInvalidFrame mentioning %q", c.name, f, err, c.msg)
		}
		if c.name != "closed" && c.name != "zero value" {
			c.m.Close()
		}
	}
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	m := gocv.NewMatWithSize(4, 4, gocv.MatTypeCV64FC1)
	defer m.Close()
	if ok, err := skylinegocv.Put(sl, m); ok || !errors.Is(err, skyline.ErrInvalidFrame) {
		t.Errorf("Put of a CV_64FC1 Mat: %v, %v", ok, err)
	}
	if ok, err := skylinegocv.Put(nil, m); ok || err == nil {
		t.Errorf("Put to a nil SkyLine: %v, %v", ok, err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// source makes the Mat of each type for frame n, the way a vision loop
// would hold it, and the BGR picture a viewer should see for it.
type source struct {
	name string
	// mat returns the Mat to Put for a BGR picture (reused between calls).
	mat func(bgr gocv.Mat) gocv.Mat
	// ref converts the expected BGR picture into what the stream carries.
	ref   func(bgr []byte, w, h int) []byte
	close func()
}

func sources(t *testing.T, w, h int) []source {
	grayRef := func(bgr []byte, w, h int) []byte {
		src, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, bgr)
		if err != nil {
			t.Error(err)
			return bgr
		}
		defer src.Close()
		g, back := gocv.NewMat(), gocv.NewMat()
		defer g.Close()
		defer back.Close()
		gocv.CvtColor(src, &g, gocv.ColorBGRToGray)
		gocv.CvtColor(g, &back, gocv.ColorGrayToBGR)
		return back.ToBytes()
	}
	same := func(bgr []byte, _, _ int) []byte { return bgr }
	bgra, gray := gocv.NewMat(), gocv.NewMat()
	// the parent of a region of interest, bigger than the stream, with a
	// border that must not show
	parent := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(0, 0, 255, 0), h+30, w+50, gocv.MatTypeCV8UC3)
	roi := parent.Region(image.Rect(18, 12, 18+w, 12+h))
	return []source{
		{name: "CV_8UC3", mat: func(bgr gocv.Mat) gocv.Mat { return bgr }, ref: same, close: func() {}},
		{name: "CV_8UC4", mat: func(bgr gocv.Mat) gocv.Mat {
			gocv.CvtColor(bgr, &bgra, gocv.ColorBGRToBGRA)
			return bgra
		}, ref: same, close: func() { bgra.Close() }},
		{name: "CV_8UC1", mat: func(bgr gocv.Mat) gocv.Mat {
			gocv.CvtColor(bgr, &gray, gocv.ColorBGRToGray)
			return gray
		}, ref: grayRef, close: func() { gray.Close() }},
		{name: "CV_8UC3-region", mat: func(bgr gocv.Mat) gocv.Mat {
			bgr.CopyTo(&roi)
			return roi
		}, ref: same, close: func() { roi.Close(); parent.Close() }},
	}
}

// feed Puts frames first, first+1, ... of src in real time until stop is
// closed.
func feed(t *testing.T, sl *skyline.SkyLine, src source, w, h, fps, first int, stop <-chan struct{}) {
	buf := make([]byte, w*h*3)
	bgr, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, buf) // aliases buf
	if err != nil {
		t.Error(err)
		return
	}
	defer bgr.Close()
	tick := time.NewTicker(time.Second / time.Duration(fps))
	defer tick.Stop()
	for n := first; ; n++ {
		testpattern.DrawBGR(buf, w, h, n)
		if _, err := skylinegocv.Put(sl, src.mat(bgr)); err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
			t.Errorf("%s: Put %d: %v", src.name, n, err)
			return
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// TestRTSPMats streams Mats of each type through the RTSP server; ffmpeg
// reads them back over RTSP with consecutive frame numbers and pixels
// within 30 dB PSNR of what was drawn.
func TestRTSPMats(t *testing.T) {
	const w, h, fps, watch = 320, 240, 30, 30
	srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: "127.0.0.1:0", DisableUDP: true, DisableMulticast: true, Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	for i, src := range sources(t, w, h) {
		t.Run(src.name, func(t *testing.T) {
			defer src.close()
			path := fmt.Sprintf("/mat%d", i)
			sl, err := rtsp.NewSkyLine(srv, path, skyline.Config{NoDotEnv: true, Logger: testLogger})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sl.Close() }()
			if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
				t.Fatal(err)
			}
			first := 1000 * (i + 1)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); feed(t, sl, src, w, h, fps, first, stop) }()
			defer func() { close(stop); wg.Wait() }()

			st := srv.Stream(path)
			waitFor(t, 30*time.Second, "the first keyframe on "+path, func() bool { return st.Stats().AccessUnits > 0 })

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			prev, got, minPSNR := -1, 0, 1000.0
			err = mediatest.Decode(ctx, st.URL(), w, h, []string{"-rtsp_transport", "tcp"},
				[]string{"-frames:v", fmt.Sprint(watch)}, func(k int, pic []byte) error {
					n, ok := testpattern.ReadBGR(pic, w, h)
					if !ok || n < first {
						return fmt.Errorf("picture %d: frame number unreadable (%d, %v)", k, n, ok)
					}
					if prev >= 0 && n != prev+1 {
						return fmt.Errorf("picture %d: frame %d after %d", k, n, prev)
					}
					p := mediatest.PSNR(pic, src.ref(testpattern.NewBGR(w, h, n), w, h))
					if p < 30 {
						return fmt.Errorf("frame %d: PSNR %.1f dB, want >= 30", n, p)
					}
					prev, got, minPSNR = n, got+1, min(minPSNR, p)
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if got != watch {
				t.Fatalf("decoded %d pictures, want %d", got, watch)
			}
			t.Logf("%s: frames %d..%d, min PSNR %.1f dB", src.name, prev-got+1, prev, minPSNR)
		})
	}
}

// waitFor polls cond (a state with no event to wait on) until it holds.
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
