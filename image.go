package skyline

import (
	"image"
	"image/draw"
)

// PutImage puts any image.Image. The types FrameFromImage supports go in
// without conversion; others are drawn into an RGBA scratch image first.
func (s *SkyLine) PutImage(img image.Image) (bool, error) {
	f, err := FrameFromImage(img)
	if err != nil && img != nil && !isNilImage(img) && !isDirectImage(img) {
		b := img.Bounds()
		if b.Empty() {
			return false, frameErr("empty image")
		}
		scratch := image.NewRGBA(image.Rectangle{Max: b.Size()})
		draw.Draw(scratch, scratch.Bounds(), img, b.Min, draw.Src)
		f, err = FrameFromImage(scratch)
	}
	if err != nil {
		return false, err
	}
	return s.Put(f)
}

// isDirectImage: the image types FrameFromImage takes without conversion
// (their errors are real errors, not a reason to convert).
func isDirectImage(img image.Image) bool {
	switch m := img.(type) {
	case *image.RGBA, *image.NRGBA, *image.Gray:
		return true
	case *image.YCbCr:
		return m.SubsampleRatio == image.YCbCrSubsampleRatio420 && m.Rect.Min.X%2 == 0 && m.Rect.Min.Y%2 == 0
	}
	return false
}
