package skyline

import (
	"math"
	"time"
)

// warmup measures the stream parameters from the first frames (SPEC A2).
type warmup struct {
	first, last time.Time
	n           int // frames seen, including the one that started it
}

// result completes want with measured values: fps from the mean interval
// between Puts (rounded, at least 1), width and height from the frame that
// ends the warm-up (odd sizes rounded down to even: the stream is 4:2:0).
func (w warmup) result(want Params, f Frame) Params {
	p := want
	if p.FPS <= 0 {
		p.FPS = 30
		if w.n > 1 {
			mean := w.last.Sub(w.first).Seconds() / float64(w.n-1)
			if mean > 0 {
				p.FPS = math.Min(math.Max(math.Round(1/mean), 1), MaxFPS)
			}
		}
	}
	if p.Width <= 0 {
		p.Width = max(f.Width&^1, 2)
	}
	if p.Height <= 0 {
		p.Height = max(f.Height&^1, 2)
	}
	return p
}
