package skyline

import "testing"

// TestWarmupSizeEveryFrameSize: whatever frame size ends the warm-up
// (Frame allows 1..MaxDimension), the stream size it picks is one Start
// would accept: even, 2..MaxDimension, the frame's size rounded down.
func TestWarmupSizeEveryFrameSize(t *testing.T) {
	for d := 1; d <= MaxDimension; d++ {
		p := warmup{n: 1}.result(Params{}, Frame{Width: d, Height: MaxDimension + 1 - d})
		if err := p.validate(); err != nil {
			t.Fatalf("frame %dx%d: %+v: %v", d, MaxDimension+1-d, p, err)
		}
		for _, c := range [][2]int{{d, p.Width}, {MaxDimension + 1 - d, p.Height}} {
			if c[1] < 2 || c[1]%2 != 0 || c[1] > max(c[0], 2) || c[1] < c[0]-1 {
				t.Fatalf("frame %dx%d: stream %dx%d", d, MaxDimension+1-d, p.Width, p.Height)
			}
		}
	}
}
