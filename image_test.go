package skyline_test

import (
	"context"
	"image"
	"image/color"
	"math"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
)

// TestPutImageConcurrent: PutImage from several goroutines at once, with
// image types that go through the RGBA scratch conversion. Each goroutine
// puts its own uniform colour, so a frame drawn into a scratch image
// another call was using (issue 10, observation 9) decodes as a mix of two
// colours. Run it with -race: the race detector checks the scratch images
// are never shared.
func TestPutImageConcurrent(t *testing.T) {
	const w, h, perG = 64, 48, 25
	colours := []color.RGBA{{230, 20, 20, 255}, {20, 230, 20, 255}, {20, 20, 230, 255}, {235, 235, 235, 255}}
	path := filepath.Join(t.TempDir(), "concurrent.mkv")
	dst, err := skyline.NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{QueueSize: 10 * len(colours) * perG,
		Encoder: skyline.Encoder{Preset: "ultrafast"}}, dst)
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, len(colours)*perG)
	for g, c := range colours {
		// Neither type goes in directly: both are drawn into a scratch
		// RGBA image first.
		var img image.Image
		if g%2 == 0 {
			m := image.NewNRGBA64(image.Rect(0, 0, w, h))
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					m.Set(x, y, c)
				}
			}
			img = m
		} else {
			img = image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{c})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < perG; i++ {
				if ok, err := sl.PutImage(img); !ok {
					errs <- err
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("PutImage refused a frame: %v", err)
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}

	// Every decoded frame is one of the colours, uniform; each colour
	// appears perG times.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seen := make([]int, len(colours))
	n := 0
	err = mediatest.Decode(ctx, path, w, h, nil, nil, func(i int, bgr []byte) error {
		n++
		var mean, sq [3]float64
		for p := 0; p < w*h; p++ {
			for ch := 0; ch < 3; ch++ {
				v := float64(bgr[p*3+ch])
				mean[ch] += v
				sq[ch] += v * v
			}
		}
		worst := 0.0
		for ch := range mean {
			mean[ch] /= w * h
			worst = max(worst, math.Sqrt(max(sq[ch]/(w*h)-mean[ch]*mean[ch], 0)))
		}
		match := -1
		for k, c := range colours {
			want := [3]float64{float64(c.B), float64(c.G), float64(c.R)}
			if math.Abs(mean[0]-want[0]) < 12 && math.Abs(mean[1]-want[1]) < 12 && math.Abs(mean[2]-want[2]) < 12 {
				match = k
			}
		}
		if match < 0 || worst > 6 {
			t.Errorf("frame %d: mean BGR %.1f, standard deviation up to %.1f: not one uniform input colour (torn frame)", i, mean, worst)
			return nil
		}
		seen[match]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(colours)*perG {
		t.Fatalf("decoded %d frames, want %d", n, len(colours)*perG)
	}
	for k, c := range seen {
		if c != perG {
			t.Errorf("colour %v: %d frames, want %d", colours[k], c, perG)
		}
	}
}

// raceEnabled is set by race_test.go when built with -race.
var raceEnabled bool

// TestPutImageAllocs: converting a steady stream of images of one size
// reuses the pooled scratch images instead of allocating one per call. It
// counts the bytes allocated (by the whole process: the session's own
// goroutines allocate a little per access unit), never time. Under the race
// detector, which makes sync.Pool drop a quarter of what it is given, it
// only checks that not every call allocates a scratch image.
func TestPutImageAllocs(t *testing.T) {
	const w, h, runs = 320, 240, 200
	scratch := uint64(w * h * 4)
	limit := scratch / 8 // a scratch image every 8 calls
	if raceEnabled {
		limit = scratch / 2
	}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{Logger: quiet, QueueSize: 1000,
		Encoder: skyline.Encoder{Preset: "ultrafast"}})
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	for _, img := range []image.Image{
		image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.White}),
		image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio444),
	} {
		for i := 0; i < 10; i++ {
			if ok, err := sl.PutImage(img); !ok {
				t.Fatalf("PutImage(%T): %v", img, err)
			}
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := 0; i < runs; i++ {
			if ok, err := sl.PutImage(img); !ok {
				t.Fatalf("PutImage(%T): %v", img, err)
			}
		}
		runtime.ReadMemStats(&after)
		perCall := (after.TotalAlloc - before.TotalAlloc) / runs
		t.Logf("PutImage(%T): %d bytes allocated per call (a scratch image is %d)", img, perCall, scratch)
		if perCall > limit {
			t.Errorf("PutImage(%T) allocates %d bytes per call in steady state, want at most %d (a scratch image is %d)",
				img, perCall, limit, scratch)
		}
	}
}
