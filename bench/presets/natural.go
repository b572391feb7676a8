package main

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/skyline-go/skyline/internal/testpattern"
)

// The natural content: a camera panning over a generated scene.
const (
	panX      = 2.6  // px per frame, to the right
	swayY     = 24.0 // px, peak to peak, vertical sway
	swayFrms  = 90.0 // frames per sway period
	carSpeed  = 7    // px per frame, to the left
	sceneSeed = 20240611
)

// renderNatural renders n frames of w x h (BGR) of the panning scene, with
// fresh Gaussian noise of standard deviation sigma in each.
func renderNatural(w, h, n int, sigma float64) [][]byte {
	cw := w + int(math.Ceil(panX*float64(n))) + 4
	ch := h + int(swayY) + 4
	scene := drawScene(cw, ch)

	var gauss [1 << 16]int16
	nr := rand.New(rand.NewPCG(sceneSeed, 1))
	for i := range gauss {
		gauss[i] = int16(math.Round(nr.NormFloat64() * sigma))
	}

	frames := make([][]byte, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				frames[i] = renderFrame(scene, cw, w, h, i, &gauss)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return frames
}

// renderFrame crops the scene at the camera position of frame i (bilinear,
// sub-pixel), draws the car and adds noise.
func renderFrame(scene []byte, cw, w, h, i int, gauss *[1 << 16]int16) []byte {
	x := 1 + panX*float64(i)
	y := 1 + swayY/2*(1-math.Cos(2*math.Pi*float64(i)/swayFrms))
	ix, iy := int(x), int(y)
	fx, fy := int((x-float64(ix))*256), int((y-float64(iy))*256)
	w00, w01, w10, w11 := (256-fx)*(256-fy), fx*(256-fy), (256-fx)*fy, fx*fy
	out := make([]byte, w*h*3)
	for yy := 0; yy < h; yy++ {
		r0 := scene[((iy+yy)*cw+ix)*3:]
		r1 := scene[((iy+yy+1)*cw+ix)*3:]
		o := out[yy*w*3 : (yy+1)*w*3]
		for k := 0; k < w*3; k++ {
			v := int(r0[k])*w00 + int(r0[k+3])*w01 + int(r1[k])*w10 + int(r1[k+3])*w11
			o[k] = byte((v + 1<<15) >> 16)
		}
	}
	drawCar(out, w, h, i)
	rng := rand.New(rand.NewPCG(sceneSeed, uint64(i)+2))
	var bits uint64
	for k := range out {
		if k&3 == 0 {
			bits = rng.Uint64()
		}
		v := int(out[k]) + int(gauss[uint16(bits)])
		bits >>= 16
		out[k] = byte(min(max(v, 0), 255))
	}
	return out
}

// drawCar draws a car crossing the picture right to left, in front of the
// scene (independent motion for the encoder to find).
func drawCar(buf []byte, w, h, i int) {
	const cwid, chgt = 240, 86
	span := w + cwid
	x0 := w - (i*carSpeed)%span
	y0 := h - chgt - 40
	rect := func(x, y, rw, rh int, b, g, r byte) {
		for yy := max(y, 0); yy < min(y+rh, h); yy++ {
			for xx := max(x, 0); xx < min(x+rw, w); xx++ {
				k := (yy*w + xx) * 3
				buf[k], buf[k+1], buf[k+2] = b, g, r
			}
		}
	}
	disc := func(cx, cy, rad int, b, g, r byte) {
		for yy := max(cy-rad, 0); yy < min(cy+rad, h); yy++ {
			for xx := max(cx-rad, 0); xx < min(cx+rad, w); xx++ {
				if (xx-cx)*(xx-cx)+(yy-cy)*(yy-cy) <= rad*rad {
					k := (yy*w + xx) * 3
					buf[k], buf[k+1], buf[k+2] = b, g, r
				}
			}
		}
	}
	rect(x0+40, y0, 150, 34, 30, 30, 150)          // cabin
	rect(x0+52, y0+6, 56, 24, 90, 70, 50)          // windows
	rect(x0+118, y0+6, 60, 24, 90, 70, 50)         //
	rect(x0, y0+30, cwid, 40, 40, 40, 190)         // body
	rect(x0+4, y0+46, cwid-8, 3, 200, 200, 220)    // trim
	rect(x0+cwid-14, y0+36, 12, 10, 120, 230, 250) // headlight... (rear)
	disc(x0+52, y0+72, 16, 25, 25, 25)             // wheels
	disc(x0+cwid-52, y0+72, 16, 25, 25, 25)        //
	disc(x0+52, y0+72, 7, 170, 170, 170)           // hubs
	disc(x0+cwid-52, y0+72, 7, 170, 170, 170)      //
}

// drawScene draws the static landscape, cw x ch BGR, from a fixed seed.
func drawScene(cw, ch int) []byte {
	rng := rand.New(rand.NewPCG(sceneSeed, 0))
	img := make([]float32, cw*ch*3)
	set := func(x, y int, b, g, r float32) {
		if x >= 0 && x < cw && y >= 0 && y < ch {
			k := (y*cw + x) * 3
			img[k], img[k+1], img[k+2] = b, g, r
		}
	}
	horizon := make([]int, cw)
	for x := range cw {
		horizon[x] = int(float64(ch) * (0.36 + 0.10*fbm(float64(x)/400, 0.5, 4, 11)))
	}

	// Sky with clouds; ground with fractal soil and grass.
	var wg sync.WaitGroup
	rows := make(chan int, ch)
	for y := range ch {
		rows <- y
	}
	close(rows)
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for y := range rows {
				fy := float64(y) / float64(ch)
				for x := range cw {
					fx := float64(x)
					if y < horizon[x] {
						c := fbm(fx/180, float64(y)/90, 5, 21)
						c = math.Max(0, (c-0.45)*2.5) // cloud cover
						b := 235 - 80*fy + (250-235+80*fy)*c
						g := 170 - 30*fy + (245-170+30*fy)*c
						r := 110 + 40*fy + (245-110-40*fy)*c
						set(x, y, float32(b), float32(g), float32(r))
						continue
					}
					t := fbm(fx/120, float64(y)/60, 6, 31)
					m := fbm(fx/30, float64(y)/30, 3, 41)
					// grass: fine, strong near the bottom (close to the camera)
					near := (fy - 0.4) / 0.6
					gr := (hash2(x/2, y/3, 51) - 0.5) * 60 * near
					b := 40 + 40*t + 20*m + gr*0.5
					g := 80 + 70*t + 30*m + gr
					r := 70 + 80*t*m + 40*(1-t) + gr*0.6
					set(x, y, float32(b), float32(g), float32(r))
				}
			}
		}()
	}
	wg.Wait()

	// Buildings, far to near.
	nb := cw / 70
	for range nb {
		bw := 60 + rng.IntN(200)
		bh := 80 + rng.IntN(300)
		x0 := rng.IntN(cw) - bw/2
		base := horizon[min(max(x0+bw/2, 0), cw-1)] + rng.IntN(ch/12)
		cb, cg, cr := 70+rng.Float32()*120, 70+rng.Float32()*110, 70+rng.Float32()*120
		lit := rng.Float64()
		for y := base - bh; y < base; y++ {
			for x := x0; x < x0+bw; x++ {
				s := float32(0.85 + 0.3*fbm(float64(x)/25, float64(y)/25, 3, 61))
				b, g, r := cb*s, cg*s, cr*s
				wx, wy := (x-x0-6)%16, (y-(base-bh)-8)%20
				if x-x0 >= 6 && x < x0+bw-6 && y-(base-bh) >= 8 && y < base-14 && wx < 9 && wy < 11 {
					if hash2((x-x0)/16, (y-base)/20, int(cb)) < lit {
						b, g, r = 120, 215, 245 // lit window
					} else {
						b, g, r = 60, 45, 35
					}
				}
				set(x, y, b, g, r)
			}
		}
		// roof edge
		for x := x0 - 3; x < x0+bw+3; x++ {
			for y := base - bh - 4; y < base-bh; y++ {
				set(x, y, 45, 45, 50)
			}
		}
	}

	// Road with lane markings across the bottom.
	roadTop := ch - ch/6
	for y := roadTop; y < ch; y++ {
		for x := range cw {
			v := float32(85 + 25*fbm(float64(x)/8, float64(y)/8, 2, 71))
			if y >= roadTop+ch/12-3 && y < roadTop+ch/12+3 && (x/60)%2 == 0 {
				v = 235
			}
			if y < roadTop+3 {
				v = 200
			}
			set(x, y, v, v, v+4)
		}
	}

	// Poles and sagging wires.
	var poles []int
	for x := 50 + rng.IntN(100); x < cw; x += 280 + rng.IntN(120) {
		poles = append(poles, x)
		for y := roadTop - 330; y < roadTop; y++ {
			for dx := range 4 {
				set(x+dx, y, 30, 35, 45)
			}
		}
		for dx := -30; dx < 34; dx++ { // cross arm
			set(x+dx, roadTop-320, 30, 35, 45)
			set(x+dx, roadTop-319, 30, 35, 45)
		}
	}
	for i := 1; i < len(poles); i++ {
		a, b := poles[i-1], poles[i]
		for k, dy := range []int{-320, -305} {
			for x := a; x <= b; x++ {
				t := float64(x-a) / float64(b-a)
				sag := 40 * 4 * t * (1 - t)
				set(x, roadTop+dy+int(sag)+k, 20, 20, 20)
			}
		}
	}

	out := make([]byte, len(img))
	for k, v := range img {
		out[k] = byte(min(max(math.Round(float64(v)), 0), 255))
	}
	// Signs with text (sharp, high-contrast edges).
	for x := 120; x < cw-300; x += 500 + rng.IntN(300) {
		y := roadTop - 200 - rng.IntN(120)
		testpattern.DrawText(out, cw, ch, x, y, 3, "12:34 #"+string(rune('0'+rng.IntN(10)))+"-"+string(rune('0'+rng.IntN(10))))
	}
	return out
}

// hash2 is a value in [0, 1) for an integer lattice point.
func hash2(x, y, seed int) float64 {
	h := uint64(x)*0x9E3779B97F4A7C15 ^ uint64(y)*0xC2B2AE3D27D4EB4F ^ uint64(seed)*0x165667B19E3779F9
	h ^= h >> 31
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 29
	return float64(h>>11) / (1 << 53)
}

// valueNoise is smooth noise in [0, 1).
func valueNoise(x, y float64, seed int) float64 {
	x0, y0 := math.Floor(x), math.Floor(y)
	tx, ty := x-x0, y-y0
	tx, ty = tx*tx*(3-2*tx), ty*ty*(3-2*ty)
	ix, iy := int(x0), int(y0)
	a := hash2(ix, iy, seed) + (hash2(ix+1, iy, seed)-hash2(ix, iy, seed))*tx
	b := hash2(ix, iy+1, seed) + (hash2(ix+1, iy+1, seed)-hash2(ix, iy+1, seed))*tx
	return a + (b-a)*ty
}

// fbm sums octaves of value noise, in [0, 1).
func fbm(x, y float64, octaves, seed int) float64 {
	var sum, amp, norm float64 = 0, 1, 0
	for o := range octaves {
		sum += amp * valueNoise(x, y, seed+o*7)
		norm += amp
		amp *= 0.5
		x, y = x*2.03, y*2.03
	}
	return sum / norm
}
