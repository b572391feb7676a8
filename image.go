package skyline

import (
	"image"
	"image/draw"
	"sync"
)

// scratchPool holds the *image.RGBA scratch images PutImage draws the
// images FrameFromImage cannot take into. Each call takes one for itself,
// so concurrent calls never share one; one of the right size is reused, so
// a steady stream of images of one size allocates none.
var scratchPool sync.Pool

// PutImage puts any image.Image. The types FrameFromImage supports go in
// without conversion; others are drawn into an RGBA scratch image first.
// Like every method it is safe for concurrent use.
//
// An image whose bounds are empty, larger than MaxDimension in either
// dimension, or infinite (image.Uniform) returns an error wrapping
// ErrInvalidFrame, as does an image whose pixels cannot be read in its
// bounds (for example an image.NRGBA64 whose Pix is shorter than its Rect
// says). Otherwise it returns what Put returns.
func (s *SkyLine) PutImage(img image.Image) (bool, error) {
	if img == nil || isNilImage(img) {
		return false, frameErr("nil image")
	}
	if isDirectImage(img) {
		f, err := FrameFromImage(img)
		if err != nil {
			return false, err
		}
		return s.Put(f)
	}
	scratch, err := drawScratch(img)
	if err != nil {
		return false, err
	}
	defer scratchPool.Put(scratch) // Put has copied the frame when it returns
	return s.Put(Frame{Format: FormatRGBA, Width: scratch.Rect.Dx(), Height: scratch.Rect.Dy(),
		Data: scratch.Pix, Stride: scratch.Stride})
}

// drawScratch draws img into a scratch RGBA image of its size, with its
// top-left corner at (0, 0). The caller owns the result and hands it back
// to scratchPool.
func drawScratch(img image.Image) (scratch *image.RGBA, err error) {
	b := img.Bounds()
	if err := checkBounds(b); err != nil {
		return nil, err
	}
	scratch, _ = scratchPool.Get().(*image.RGBA)
	if scratch == nil || scratch.Rect.Size() != b.Size() {
		scratch = image.NewRGBA(image.Rectangle{Max: b.Size()})
	}
	defer func() {
		// An image whose pixel slice disagrees with its bounds panics in
		// At (an index out of range): a malformed frame, not a crash.
		if r := recover(); r != nil {
			scratchPool.Put(scratch) // draw.Src overwrites it all next time
			scratch, err = nil, frameErr("cannot read the pixels of %T with bounds %v: %v", img, b, r)
		}
	}()
	draw.Draw(scratch, scratch.Rect, img, b.Min, draw.Src)
	return scratch, nil
}

// checkBounds: an image's bounds must hold 1..MaxDimension pixels in each
// dimension. It also refuses the infinite bounds of image.Uniform and
// bounds whose size overflows int.
func checkBounds(r image.Rectangle) error {
	if r.Empty() {
		return frameErr("empty image: bounds %v", r)
	}
	// Not empty, so Min < Max: a size that is not positive overflowed int.
	if dx, dy := r.Dx(), r.Dy(); dx <= 0 || dy <= 0 || dx > MaxDimension || dy > MaxDimension {
		return frameErr("image bounds %v are too large: want 1..%d pixels in each dimension (MaxDimension); infinite images such as image.Uniform cannot be put",
			r, MaxDimension)
	}
	return nil
}

// isDirectImage: the image types FrameFromImage takes without conversion
// (their errors are real errors, not a reason to convert). A 4:2:0
// image.YCbCr of odd size or at an odd origin is converted instead.
func isDirectImage(img image.Image) bool {
	switch m := img.(type) {
	case *image.RGBA, *image.NRGBA, *image.Gray:
		return true
	case *image.YCbCr:
		return m.SubsampleRatio == image.YCbCrSubsampleRatio420 && m.Rect.Min.X%2 == 0 && m.Rect.Min.Y%2 == 0 &&
			m.Rect.Max.X%2 == 0 && m.Rect.Max.Y%2 == 0
	}
	return false
}
