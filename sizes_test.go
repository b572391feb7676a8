package skyline_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
)

// Frame sizes that are not multiples of 8 (issue 10): GStreamer pads each
// I420 row to 4 bytes, so a tightly packed buffer is too short for
// videoconvert ("Internal data stream error" at the first frame) and, were
// it long enough, would be read sheared. Every size goes through the real
// pipeline into a Matroska file (mp4mux refuses pictures under 16 pixels)
// and is checked with ffprobe (size, every frame present) and ffmpeg
// (pixels close to the input, which a wrong stride would not be).

var (
	sizeWidths  = []int{2, 4, 6, 10, 14, 100, 426, 642, 854, 1366, 1918}
	sizeHeights = []int{2, 6, 100, 480}
)

const sizeFrames = 10

func TestSizesStream(t *testing.T) {
	start := time.Now()
	for _, w := range sizeWidths {
		for _, h := range sizeHeights {
			t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
				path := record(t, "sizes.mkv", skyline.Params{FPS: 30, Width: w, Height: h}, sizeFrames, func(i int) skyline.Frame {
					return skyline.FrameBGR(sizePicture(w, h, i), w, h, 0)
				})
				refs := make([][]byte, sizeFrames)
				for i := range refs {
					refs[i] = sizePicture(w, h, i)
				}
				checkSized(t, path, w, h, refs, 0)
			})
		}
	}
	t.Logf("%d sizes in %v", len(sizeWidths)*len(sizeHeights), time.Since(start).Round(time.Millisecond))
}

// TestSizesWarmup: a warm-up that ends on a frame of odd or
// non-multiple-of-8 size streams at that size (odd dimensions rounded down
// to even, at least 2), the frames scaled to it.
func TestSizesWarmup(t *testing.T) {
	for _, c := range []struct{ fw, fh, w, h int }{
		{854, 480, 854, 480},
		{853, 481, 852, 480},
		{1366, 768, 1366, 768},
		{427, 241, 426, 240},
		{101, 99, 100, 98},
		{7, 5, 6, 4},
		{3, 3, 2, 2},
		{1, 1, 2, 2},
	} {
		t.Run(fmt.Sprintf("%dx%d", c.fw, c.fh), func(t *testing.T) {
			warmupAt(t, c.fw, c.fh, c.w, c.h)
		})
	}
}

func warmupAt(t *testing.T, fw, fh, w, h int) {
	const warm = 3
	path := filepath.Join(t.TempDir(), "warmup.mkv")
	dst, err := skyline.NewFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{WarmupFrames: warm, QueueSize: 64}, dst)
	if err := sl.Start(skyline.Params{}); err != nil {
		t.Fatal(err)
	}
	var refs [][]byte // the pictures of the frames sent, at the stream size
	first := -1       // the number of the first frame sent
	put := func(i int) (bool, error) {
		pic := warmupPicture(fw, fh, i)
		ok, err := sl.Put(skyline.FrameBGR(pic, fw, fh, 0))
		if ok {
			refs = append(refs, resizeBGR(pic, fw, fh, w, h))
			if first < 0 {
				first = i
			}
		}
		return ok, err
	}
	for i := 0; i < warm; i++ {
		ok, err := put(i)
		if errors.Is(err, skyline.ErrInvalidFrame) {
			t.Fatalf("warm-up Put %d: %v", i, err)
		}
		// The Put that ends the warm-up may send its frame (or leave the
		// pipeline opening in the background); the others never do.
		if ok && i < warm-1 {
			t.Fatalf("warm-up Put %d returned true", i)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for sl.State() != skyline.StateStreaming {
		if sl.State() == skyline.StateError || time.Now().After(deadline) {
			t.Fatalf("state %v after the warm-up, want STREAMING within 10 s", sl.State())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := warm; i < warm+sizeFrames; i++ {
		if ok, err := put(i); !ok || err != nil {
			t.Fatalf("Put %d: ok=%v err=%v (state %v)", i, ok, err, sl.State())
		}
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := sl.Stats(); st.Accepted != uint64(len(refs)) || st.Encoded != uint64(len(refs)) || st.Written != uint64(len(refs)) {
		t.Fatalf("stats %+v, want %d accepted, encoded and written", st, len(refs))
	}
	checkSized(t, path, w, h, refs, first)
}

// checkSized checks a recording of len(refs) frames of w x h: ffprobe's
// size and decoded frame count, then every decoded picture against its
// reference by PSNR, and, where the picture is large enough to carry it
// legibly, the frame number (first for refs[0], then consecutive).
func checkSized(t *testing.T, path string, w, h int, refs [][]byte, first int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := mediatest.Probe(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Codec != "h264" || st.PixFmt != "yuv420p" || st.Width != w || st.Height != h || st.Frames != len(refs) {
		t.Fatalf("ffprobe: %+v, want h264 yuv420p %dx%d %d frames", st, w, h, len(refs))
	}
	minPSNR, n := 1000.0, 0
	err = mediatest.Decode(ctx, path, w, h, nil, nil, func(i int, pic []byte) error {
		if i >= len(refs) {
			return fmt.Errorf("more than %d pictures decoded", len(refs))
		}
		minPSNR = min(minPSNR, mediatest.PSNR(pic, refs[i]))
		if w >= 100 && h >= 100 {
			if num, ok := testpattern.ReadBGR(pic, w, h); !ok || num != first+i {
				t.Errorf("decoded picture %d carries number %d (readable %v), want %d", i, num, ok, first+i)
			}
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(refs) {
		t.Fatalf("decoded %d pictures, want %d", n, len(refs))
	}
	// A sheared picture (wrong stride) or misplaced chroma falls far below.
	if minPSNR < 28 {
		t.Fatalf("PSNR %.1f dB, want >= 28", minPSNR)
	}
	t.Logf("%dx%d: %d frames, min PSNR %.1f dB", w, h, n, minPSNR)
}

// sizePicture is frame i of w x h: the test pattern (smooth gradients
// that a wrong stride shears, and the frame number) when it is large
// enough to be legible, else blocks of colour. The blocks' edges are on
// even coordinates, so that 4:2:0 subsampling keeps their colours (it
// blurs the pattern's fine detail at tiny sizes to 14 dB), and the colours
// change from frame to frame, so that a lost or repeated frame shows too.
func sizePicture(w, h, i int) []byte {
	if w >= 100 && h >= 100 {
		return testpattern.NewBGR(w, h, i)
	}
	bw, bh := max(2, (w/4)&^1), max(2, (h/4)&^1)
	buf := make([]byte, w*h*3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			copy(buf[(y*w+x)*3:], colour(i, x/bw, y/bh))
		}
	}
	return buf
}

// warmupPicture is frame i of a warm-up test: the test pattern, or at
// small sizes one colour (the blocks of sizePicture would straddle
// pixels once scaled to the stream size).
func warmupPicture(w, h, i int) []byte {
	if w >= 100 && h >= 100 {
		return testpattern.NewBGR(w, h, i)
	}
	buf := make([]byte, w*h*3)
	for p := 0; p < w*h; p++ {
		copy(buf[p*3:], colour(i, 0, 0))
	}
	return buf
}

// colour is a B,G,R colour for block (bx, by) of frame i, each component
// in 40..215 (clear of video range clipping).
func colour(i, bx, by int) []byte {
	v := uint32(i*7919+bx*104729+by*1299709) * 2654435761
	return []byte{byte(40 + (v>>8)%176), byte(40 + (v>>16)%176), byte(40 + (v>>24)%176)}
}

// resizeBGR resamples a packed BGR picture bilinearly (pixel centres
// aligned, edges clamped), close to what the pipeline's scaling does.
func resizeBGR(src []byte, sw, sh, dw, dh int) []byte {
	if sw == dw && sh == dh {
		return src
	}
	out := make([]byte, dw*dh*3)
	for y := 0; y < dh; y++ {
		fy := min(max((float64(y)+0.5)*float64(sh)/float64(dh)-0.5, 0), float64(sh-1))
		y0 := int(fy)
		y1, ay := min(y0+1, sh-1), fy-float64(y0)
		for x := 0; x < dw; x++ {
			fx := min(max((float64(x)+0.5)*float64(sw)/float64(dw)-0.5, 0), float64(sw-1))
			x0 := int(fx)
			x1, ax := min(x0+1, sw-1), fx-float64(x0)
			for c := 0; c < 3; c++ {
				p := func(xx, yy int) float64 { return float64(src[(yy*sw+xx)*3+c]) }
				v := (p(x0, y0)*(1-ax)+p(x1, y0)*ax)*(1-ay) + (p(x0, y1)*(1-ax)+p(x1, y1)*ax)*ay
				out[(y*dw+x)*3+c] = byte(v + 0.5)
			}
		}
	}
	return out
}
