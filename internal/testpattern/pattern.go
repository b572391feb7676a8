// Package testpattern draws frames that carry their frame number in a form
// that survives lossy compression and scaling (16 large black/white
// blocks), over a smooth moving background, and reads the number back from
// decoded pictures. Tests, benchmarks and the CLI's test source use it.
package testpattern

import "math"

// Bits is the number of bits of the frame number drawn.
const Bits = 16

// band geometry, as fractions of the picture
const (
	bandTop, bandBottom = 0.04, 0.16
	bandLeft, bandRight = 0.04, 0.96
)

// DrawBGR draws frame n into a packed BGR buffer of w x h (stride w*3).
// It gives exactly Pixel's values, computing the trigonometry once per row
// and column so that live 720p/1080p drawing is cheap.
func DrawBGR(buf []byte, w, h, n int) {
	t := float64(n)
	fx, fy := make([]float64, w), make([]float64, h)
	colB, rowG := make([]byte, w), make([]byte, h)
	bits := make([]int, w) // -1 outside the band's columns
	for x := range w {
		fx[x] = (float64(x) + 0.5) / float64(w)
		colB[x] = byte(128 + 90*math.Sin(2*math.Pi*(fx[x]+t/120)))
		bits[x] = -1
		if fx[x] >= bandLeft && fx[x] < bandRight {
			bits[x] = int((fx[x] - bandLeft) / (bandRight - bandLeft) * Bits)
		}
	}
	for y := range h {
		fy[y] = (float64(y) + 0.5) / float64(h)
		rowG[y] = byte(128 + 90*math.Cos(2*math.Pi*(fy[y]+t/180)))
	}
	for y := 0; y < h; y++ {
		row := buf[y*w*3 : (y+1)*w*3]
		inBand := fy[y] >= bandTop && fy[y] < bandBottom
		for x := 0; x < w; x++ {
			var b, g, r byte
			if inBand && bits[x] >= 0 {
				v := byte(20)
				if n>>(Bits-1-bits[x])&1 == 1 {
					v = 235
				}
				b, g, r = v, v, v
			} else {
				b, g, r = colB[x], rowG[y], byte(40+170*(fx[x]+fy[y])/2)
			}
			row[x*3], row[x*3+1], row[x*3+2] = b, g, r
		}
	}
}

// NewBGR allocates and draws frame n.
func NewBGR(w, h, n int) []byte {
	buf := make([]byte, w*h*3)
	DrawBGR(buf, w, h, n)
	return buf
}

// Pixel is the B,G,R value of frame n at (x, y) in a w x h picture.
func Pixel(x, y, w, h, n int) (b, g, r byte) {
	fx, fy := (float64(x)+0.5)/float64(w), (float64(y)+0.5)/float64(h)
	if fy >= bandTop && fy < bandBottom && fx >= bandLeft && fx < bandRight {
		bit := int((fx - bandLeft) / (bandRight - bandLeft) * Bits)
		if n>>(Bits-1-bit)&1 == 1 {
			return 235, 235, 235
		}
		return 20, 20, 20
	}
	t := float64(n)
	b = byte(128 + 90*math.Sin(2*math.Pi*(fx+t/120)))
	g = byte(128 + 90*math.Cos(2*math.Pi*(fy+t/180)))
	r = byte(40 + 170*(fx+fy)/2)
	return b, g, r
}

// ReadBGR reads the frame number from a decoded BGR picture. ok is false
// when a block is too ambiguous to read.
func ReadBGR(buf []byte, w, h int) (n int, ok bool) {
	bw := (bandRight - bandLeft) / Bits
	y0, y1 := int((bandTop+0.25*(bandBottom-bandTop))*float64(h)), int((bandBottom-0.25*(bandBottom-bandTop))*float64(h))
	ok = true
	for bit := 0; bit < Bits; bit++ {
		x0 := int((bandLeft + (float64(bit)+0.25)*bw) * float64(w))
		x1 := int((bandLeft + (float64(bit)+0.75)*bw) * float64(w))
		sum, cnt := 0, 0
		for y := y0; y <= y1; y++ {
			for x := x0; x <= x1; x++ {
				i := (y*w + x) * 3
				sum += int(buf[i]) + int(buf[i+1]) + int(buf[i+2])
				cnt += 3
			}
		}
		avg := sum / max(cnt, 1)
		if avg > 90 && avg < 165 {
			ok = false
		}
		n <<= 1
		if avg >= 128 {
			n |= 1
		}
	}
	return n, ok
}
