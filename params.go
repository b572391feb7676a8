package skyline

import (
	"math"
)

// Values for the fields of Params.
const (
	// Auto (the zero value) measures the value during a warm-up: fps from the
	// interval between Put calls, width and height from the frames.
	Auto = 0
	// LastValue reuses the value of the previous streaming session, or
	// measures it (Auto) when there was none. Same number as the original's
	// USE_LAST_VALUE.
	LastValue = -999
)

// MaxDimension is the largest width or height accepted (H.264 level 6.2).
const MaxDimension = 8192

// MaxFPS is the highest frame rate accepted.
const MaxFPS = 1000

// Params are the declared stream parameters (the original's video_fps,
// video_width, video_height). Each field is a value, Auto or LastValue.
// Width and height must be even: the stream is 4:2:0.
type Params struct {
	FPS    float64
	Width  int
	Height int
}

// LastParams is the original's default for start_streaming(): reuse every
// value of the previous session, measuring what is unknown.
var LastParams = Params{FPS: LastValue, Width: LastValue, Height: LastValue}

func (p Params) complete() bool { return p.FPS > 0 && p.Width > 0 && p.Height > 0 }

func (p Params) validate() error {
	if math.IsNaN(p.FPS) || math.IsInf(p.FPS, 0) || (p.FPS < 0 && p.FPS != LastValue) || p.FPS > MaxFPS {
		return paramErr("fps %v: want a value in (0, %d], Auto (0) or LastValue (-999)", p.FPS, MaxFPS)
	}
	for _, d := range []struct {
		name string
		v    int
	}{{"width", p.Width}, {"height", p.Height}} {
		switch {
		case d.v == Auto || d.v == LastValue:
		case d.v < 0 || d.v > MaxDimension:
			return paramErr("%s %d: want 2..%d, Auto (0) or LastValue (-999)", d.name, d.v, MaxDimension)
		case d.v%2 != 0:
			return paramErr("%s %d is odd: a 4:2:0 stream needs even dimensions", d.name, d.v)
		}
	}
	return nil
}

// resolve replaces LastValue by the last session's value (or Auto when
// there is none). Each field is resolved on its own.
func (p Params) resolve(last Params) Params {
	if p.FPS == LastValue {
		p.FPS = last.FPS
	}
	if p.Width == LastValue {
		p.Width = last.Width
	}
	if p.Height == LastValue {
		p.Height = last.Height
	}
	return p
}
