package card

import (
	"image"
	"image/color"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Colours of the card, packed BGR.
var (
	// Background is the card's background.
	Background = [3]byte{64, 40, 24}
	// Ink is the colour of its text.
	Ink = [3]byte{240, 240, 240}
)

// Line is one line of text of the card: its top row and height in pixels,
// for tests that compare regions.
type Line struct{ Y, H int }

// Layout gives the rows of the title, state and clock lines of a w x h
// card.
func Layout(w, h int) (title, state, clock Line) {
	lh := h / 8
	return Line{h/2 - 2*lh, lh}, Line{h/2 - lh/2, lh / 2}, Line{h/2 + lh/2, lh / 2}
}

// Draw renders the card into buf, a packed BGR picture of w x h: the title
// (the stream's path), its state and the clock, centred on a plain
// background.
func Draw(buf []byte, w, h int, title, state string, now time.Time) {
	for i := 0; i+2 < len(buf) && i < w*h*3; i += 3 {
		buf[i], buf[i+1], buf[i+2] = Background[0], Background[1], Background[2]
	}
	t, s, c := Layout(w, h)
	text(buf, w, h, t, title)
	text(buf, w, h, s, state)
	text(buf, w, h, c, now.UTC().Format("2006-01-02 15:04:05 UTC"))
}

// text draws s with basicfont's 7x13 face scaled to fit the line's height
// (and the picture's width), centred.
func text(buf []byte, w, h int, l Line, s string) {
	if s == "" || l.H < 1 {
		return
	}
	face := basicfont.Face7x13
	tw := font.MeasureString(face, s).Ceil()
	mask := image.NewAlpha(image.Rect(0, 0, tw, face.Height))
	d := font.Drawer{Dst: mask, Src: image.NewUniform(color.Alpha{A: 255}), Face: face,
		Dot: fixed.P(0, face.Ascent)}
	d.DrawString(s)
	scale := max(1, min(l.H/face.Height, w*9/10/max(tw, 1)))
	x0 := (w - tw*scale) / 2
	y0 := l.Y + (l.H-face.Height*scale)/2
	for my := 0; my < face.Height; my++ {
		for mx := 0; mx < tw; mx++ {
			if mask.AlphaAt(mx, my).A < 128 {
				continue
			}
			for dy := 0; dy < scale; dy++ {
				y := y0 + my*scale + dy
				if y < 0 || y >= h {
					continue
				}
				for dx := 0; dx < scale; dx++ {
					x := x0 + mx*scale + dx
					if x < 0 || x >= w {
						continue
					}
					i := (y*w + x) * 3
					buf[i], buf[i+1], buf[i+2] = Ink[0], Ink[1], Ink[2]
				}
			}
		}
	}
}
