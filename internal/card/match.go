package card

import (
	"math"
	"time"
)

// PSNR compares a decoded picture (packed BGR, w x h) with the card of
// title showing any of states, over the rows of the title and state lines
// (the clock changes), and returns the best match in dB. Tests read a
// card's pixels back with it.
func PSNR(bgr []byte, w, h int, title string, states ...string) float64 {
	ref := make([]byte, w*h*3)
	t, s, _ := Layout(w, h)
	y0, y1 := max(t.Y, 0), min(s.Y+s.H, h)
	best := 0.0
	for _, st := range states {
		Draw(ref, w, h, title, st, time.Time{})
		var sum float64
		for i := y0 * w * 3; i < y1*w*3 && i < len(bgr); i++ {
			d := float64(bgr[i]) - float64(ref[i])
			sum += d * d
		}
		n := float64((y1 - y0) * w * 3)
		p := math.Inf(1)
		if sum > 0 {
			p = 10 * math.Log10(255*255/(sum/n))
		}
		best = max(best, p)
	}
	return best
}
