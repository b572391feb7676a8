package yuv

import (
	"testing"

	"github.com/skyline-go/skyline/internal/gst"
)

// TestLayoutIsGStreamers: Layout and Size give exactly GStreamer's default
// I420 layout (gst_video_info_set_format), the one videoconvert reads a
// buffer without GstVideoMeta with. Issue 10: the tightly packed layout
// killed every stream whose width was not a multiple of 8.
func TestLayoutIsGStreamers(t *testing.T) {
	if err := gst.Init(); err != nil {
		t.Fatal(err)
	}
	var sizes [][2]int
	for w := 1; w <= 40; w++ {
		for h := 1; h <= 40; h++ {
			sizes = append(sizes, [2]int{w, h})
		}
	}
	for _, w := range []int{100, 101, 426, 427, 640, 642, 853, 854, 1280, 1366, 1918, 1920, 3840, 8191, 8192} {
		for _, h := range []int{1, 2, 3, 98, 99, 240, 241, 480, 481, 768, 1080, 8191, 8192} {
			sizes = append(sizes, [2]int{w, h})
		}
	}
	for _, s := range sizes {
		w, h := s[0], s[1]
		off, stride, size, ok := gst.I420Layout(w, h)
		if !ok {
			t.Fatalf("%dx%d: GStreamer refuses the size", w, h)
		}
		if got := Size(w, h); got != size {
			t.Fatalf("%dx%d: Size %d, GStreamer %d", w, h, got, size)
		}
		buf := make([]byte, size)
		p := Layout(buf, w, h)
		base := func(b []byte) int { return cap(buf) - cap(b) }
		gotOff := [3]int{base(p.Y), base(p.U), base(p.V)}
		gotStride := [3]int{p.StrideY, p.StrideU, p.StrideV}
		if gotOff != off || gotStride != stride {
			t.Fatalf("%dx%d: offsets %v strides %v, GStreamer %v %v", w, h, gotOff, gotStride, off, stride)
		}
		// every plane holds its rows (libyuv writes through these slices)
		cw, ch := (w+1)/2, (h+1)/2
		if len(p.Y) < p.StrideY*(h-1)+w || len(p.U) < p.StrideU*(ch-1)+cw || len(p.V) < p.StrideV*(ch-1)+cw ||
			base(p.V)+len(p.V) > size || p.Width != w || p.Height != h {
			t.Fatalf("%dx%d: planes of %d, %d, %d bytes (strides %v) in %d", w, h, len(p.Y), len(p.U), len(p.V), gotStride, size)
		}
	}
}

// TestConvertIntoLayout: a picture converted into Layout's planes at
// sizes that are not multiples of 8 has its rows where the strides say,
// the padding untouched.
func TestConvertIntoLayout(t *testing.T) {
	for _, s := range [][2]int{{2, 2}, {6, 6}, {10, 3}, {853, 481}, {854, 480}} {
		w, h := s[0], s[1]
		bgr := make([]byte, w*h*3)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := byte(16 + (x*7+y*13)%200)
				bgr[(y*w+x)*3], bgr[(y*w+x)*3+1], bgr[(y*w+x)*3+2] = v, v, v
			}
		}
		packed := PackedLayout(make([]byte, PackedSize(w, h)), w, h)
		if err := ToI420(BGR, bgr, w*3, packed); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, Size(w, h))
		for i := range buf {
			buf[i] = 0xEE
		}
		p := Layout(buf, w, h)
		if err := ToI420(BGR, bgr, w*3, p); err != nil {
			t.Fatal(err)
		}
		cw, ch := (w+1)/2, (h+1)/2
		for _, pl := range []struct {
			name       string
			got, want  []byte
			gs, ws     int
			rows, cols int
		}{
			{"Y", p.Y, packed.Y, p.StrideY, packed.StrideY, h, w},
			{"U", p.U, packed.U, p.StrideU, packed.StrideU, ch, cw},
			{"V", p.V, packed.V, p.StrideV, packed.StrideV, ch, cw},
		} {
			for y := 0; y < pl.rows; y++ {
				for x := 0; x < pl.gs; x++ {
					g := pl.got[y*pl.gs+x]
					if x < pl.cols && g != pl.want[y*pl.ws+x] {
						t.Fatalf("%dx%d %s(%d,%d) = %d, want %d", w, h, pl.name, x, y, g, pl.want[y*pl.ws+x])
					}
					if x >= pl.cols && g != 0xEE {
						t.Fatalf("%dx%d %s padding (%d,%d) written", w, h, pl.name, x, y)
					}
				}
			}
		}
	}
}
