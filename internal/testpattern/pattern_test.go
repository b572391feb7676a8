package testpattern

import "testing"

func TestDrawMatchesPixelAndReadsBack(t *testing.T) {
	for _, sz := range [][2]int{{64, 48}, {320, 240}, {1280, 720}} {
		w, h := sz[0], sz[1]
		for _, n := range []int{0, 1, 299, 40000, 65535} {
			buf := NewBGR(w, h, n)
			for y := 0; y < h; y += 7 {
				for x := 0; x < w; x += 5 {
					b, g, r := Pixel(x, y, w, h, n)
					i := (y*w + x) * 3
					if buf[i] != b || buf[i+1] != g || buf[i+2] != r {
						t.Fatalf("%dx%d n=%d (%d,%d): draw %v, pixel %v", w, h, n, x, y, buf[i:i+3], []byte{b, g, r})
					}
				}
			}
			if got, ok := ReadBGR(buf, w, h); !ok || got != n {
				t.Fatalf("%dx%d: read %d (ok %v), want %d", w, h, got, ok, n)
			}
		}
	}
}

func BenchmarkDraw720p(b *testing.B) {
	buf := make([]byte, 1280*720*3)
	for i := 0; i < b.N; i++ {
		DrawBGR(buf, 1280, 720, i)
	}
}
