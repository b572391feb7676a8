package skyline

import (
	"image"
	"reflect"
	"time"

	"github.com/skyline-go/skyline/internal/yuv"
)

// PixelFormat is the memory layout of a Frame.
type PixelFormat int

// Pixel formats. Names give the byte order in memory.
const (
	FormatUnknown PixelFormat = iota
	// FormatBGR: 3 bytes per pixel, B,G,R. OpenCV's default and the
	// original's only format: the reference format.
	FormatBGR
	// FormatRGB: 3 bytes per pixel, R,G,B.
	FormatRGB
	// FormatBGRA: 4 bytes per pixel, B,G,R,A (OpenCV CV_8UC4); alpha ignored.
	FormatBGRA
	// FormatRGBA: 4 bytes per pixel, R,G,B,A (image.RGBA, image.NRGBA);
	// alpha ignored.
	FormatRGBA
	// FormatGray: 1 byte per pixel (image.Gray, OpenCV CV_8UC1).
	FormatGray
	// FormatI420: planar 4:2:0 video-range YUV (Data holds Y, U and V hold
	// chroma). Width and height must be even.
	FormatI420
	// FormatYCbCr420: like FormatI420 but full range (JFIF), as Go's
	// image.YCbCr holds it; remapped to video range while copied.
	FormatYCbCr420
)

func (f PixelFormat) String() string {
	switch f {
	case FormatBGR:
		return "bgr"
	case FormatRGB:
		return "rgb"
	case FormatBGRA:
		return "bgra"
	case FormatRGBA:
		return "rgba"
	case FormatGray:
		return "gray"
	case FormatI420:
		return "i420"
	case FormatYCbCr420:
		return "ycbcr420"
	}
	return "unknown"
}

// BytesPerPixel of the packed formats (of the Y plane for planar ones).
func (f PixelFormat) BytesPerPixel() int {
	switch f {
	case FormatBGR, FormatRGB:
		return 3
	case FormatBGRA, FormatRGBA:
		return 4
	case FormatGray, FormatI420, FormatYCbCr420:
		return 1
	}
	return 0
}

func (f PixelFormat) planar() bool { return f == FormatI420 || f == FormatYCbCr420 }

// MaxStride is the largest row stride a Frame may have, in bytes: libyuv,
// which converts the frames, takes strides as 32-bit C ints.
const MaxStride = yuv.MaxStride

// Frame is one picture handed to Put. It only points at the caller's
// memory: Put copies what it needs before returning, so the caller may reuse
// the buffers at once.
//
// Limits, checked by Put before it reads a byte (a frame outside them makes
// Put return false and an error wrapping ErrInvalidFrame that names the
// field and the limit):
//   - Width and Height, in pixels: 1..MaxDimension each; even for the
//     planar formats (FormatI420, FormatYCbCr420).
//   - Stride, in bytes: 0 (tightly packed: Width x BytesPerPixel), or
//     Width x BytesPerPixel..MaxStride. Negative strides (bottom-up
//     pictures) are refused.
//   - Data: at least Stride x (Height-1) + Width x BytesPerPixel bytes
//     (computed without overflow).
//   - For the planar formats, StrideU and StrideV, in bytes: 0 (Width/2) or
//     Width/2..MaxStride; U and V at least StrideU x (Height/2-1) + Width/2
//     bytes (StrideV for V). U, V, StrideU and StrideV are ignored for the
//     packed formats.
type Frame struct {
	Format        PixelFormat
	Width, Height int
	// Data holds the pixels of packed formats, or the Y plane of planar ones:
	// Height rows of Stride bytes (the last row may be just Width pixels).
	Data []byte
	// Stride is the number of bytes per row of Data; 0 means tightly packed.
	Stride int
	// U and V are the chroma planes of planar formats, with their strides
	// in bytes (0 means (Width+1)/2).
	U, V             []byte
	StrideU, StrideV int
	// Time is the capture time. The zero value means "the moment Put is
	// called". It sets the frame's timestamp (see Timestamps).
	Time time.Time
}

// FrameBGR describes an OpenCV-style BGR picture (the original's numpy
// array of shape (height, width, 3)). stride 0 means width*3.
func FrameBGR(data []byte, width, height, stride int) Frame {
	return Frame{Format: FormatBGR, Width: width, Height: height, Data: data, Stride: stride}
}

// FrameFromImage describes a Go image without copying it. Supported:
// *image.RGBA, *image.NRGBA, *image.Gray and *image.YCbCr with 4:2:0
// subsampling. Other images: use (*SkyLine).PutImage, which converts them.
func FrameFromImage(img image.Image) (Frame, error) {
	if img == nil || isNilImage(img) {
		return Frame{}, frameErr("nil image")
	}
	r := img.Bounds()
	if err := checkBounds(r); err != nil {
		return Frame{}, err
	}
	switch m := img.(type) {
	case *image.RGBA:
		return packedImage(FormatRGBA, m.Pix, m.Stride, m.PixOffset(r.Min.X, r.Min.Y), r), nil
	case *image.NRGBA:
		return packedImage(FormatRGBA, m.Pix, m.Stride, m.PixOffset(r.Min.X, r.Min.Y), r), nil
	case *image.Gray:
		return packedImage(FormatGray, m.Pix, m.Stride, m.PixOffset(r.Min.X, r.Min.Y), r), nil
	case *image.YCbCr:
		if m.SubsampleRatio != image.YCbCrSubsampleRatio420 {
			return Frame{}, frameErr("image.YCbCr with subsampling %v: only 4:2:0 goes in directly; use PutImage to convert", m.SubsampleRatio)
		}
		if r.Min.X%2 != 0 || r.Min.Y%2 != 0 {
			return Frame{}, frameErr("image.YCbCr sub-image at odd origin %v: chroma would be misaligned", r.Min)
		}
		yo, co := m.YOffset(r.Min.X, r.Min.Y), m.COffset(r.Min.X, r.Min.Y)
		if yo < 0 || co < 0 || yo > len(m.Y) || co > len(m.Cb) || co > len(m.Cr) {
			return Frame{}, frameErr("image.YCbCr planes shorter than its bounds")
		}
		return Frame{Format: FormatYCbCr420, Width: r.Dx(), Height: r.Dy(),
			Data: m.Y[yo:], Stride: m.YStride, U: m.Cb[co:], V: m.Cr[co:], StrideU: m.CStride, StrideV: m.CStride}, nil
	}
	return Frame{}, frameErr("unsupported image type %T: use PutImage, or *image.RGBA, *image.NRGBA, *image.Gray, *image.YCbCr (4:2:0)", img)
}

func packedImage(f PixelFormat, pix []byte, stride, off int, r image.Rectangle) Frame {
	if off < 0 || off > len(pix) {
		off = len(pix) // validate reports the short buffer
	}
	return Frame{Format: f, Width: r.Dx(), Height: r.Dy(), Data: pix[off:], Stride: stride}
}

// validate checks that the frame describes a complete picture within the
// limits Frame documents. Every product is computed without overflow, and
// every stride fits in a C int, so the conversion never reads outside the
// buffers.
func (f *Frame) validate() error {
	bpp := f.Format.BytesPerPixel()
	if bpp == 0 {
		return frameErr("unsupported pixel format %d", int(f.Format))
	}
	if f.Width <= 0 || f.Height <= 0 || f.Width > MaxDimension || f.Height > MaxDimension {
		return frameErr("size %dx%d (Width x Height): want 1..%d pixels in each dimension (MaxDimension)",
			f.Width, f.Height, MaxDimension)
	}
	// From here Width and Height are at most MaxDimension: Width*bpp cannot
	// overflow, and checkStride bounds the strides.
	if err := checkStride("Stride", f.Stride, f.Width*bpp, "Width x bytes per pixel"); err != nil {
		return err
	}
	stride := f.stride()
	if need := planeSize(stride, f.Height, f.Width*bpp); uint64(len(f.Data)) < need {
		if f.Data == nil {
			return frameErr("nil pixel buffer for a %dx%d %v frame", f.Width, f.Height, f.Format)
		}
		return frameErr("pixel buffer of %d bytes is short: a %dx%d %v frame with stride %d needs %d",
			len(f.Data), f.Width, f.Height, f.Format, stride, need)
	}
	if !f.Format.planar() {
		return nil
	}
	if f.Width%2 != 0 || f.Height%2 != 0 {
		return frameErr("%v frame of odd size %dx%d: 4:2:0 needs even dimensions", f.Format, f.Width, f.Height)
	}
	if err := f.checkChroma("U", "StrideU", f.U, f.StrideU, f.strideU()); err != nil {
		return err
	}
	return f.checkChroma("V", "StrideV", f.V, f.StrideV, f.strideV())
}

// checkStride checks a stride field: 0 (the default), or minRow..MaxStride
// bytes; what says what minRow is.
func checkStride(field string, v, minRow int, what string) error {
	switch {
	case v < 0:
		return frameErr("Frame.%s = %d: a row stride cannot be negative (bottom-up pictures are not supported; 0 means tightly packed)", field, v)
	case v > MaxStride:
		return frameErr("Frame.%s = %d: a row stride must be at most %d bytes (MaxStride: libyuv takes 32-bit int strides)", field, v, MaxStride)
	case v != 0 && v < minRow:
		return frameErr("Frame.%s = %d: a row stride must be at least %d bytes (%s)", field, v, minRow, what)
	}
	return nil
}

// checkChroma checks a chroma plane of a planar frame of even size.
func (f *Frame) checkChroma(plane, field string, b []byte, v, stride int) error {
	cw, ch := f.Width/2, f.Height/2
	if err := checkStride(field, v, cw, "the chroma width, Width/2"); err != nil {
		return err
	}
	if need := planeSize(stride, ch, cw); uint64(len(b)) < need {
		return frameErr("%s plane of %d bytes is short: a %dx%d %v frame with %s %d needs %d",
			plane, len(b), f.Width, f.Height, f.Format, field, stride, need)
	}
	return nil
}

// planeSize is the least byte length of rows rows of rowBytes bytes, stride
// bytes apart. With stride <= MaxStride and rows <= MaxDimension it cannot
// overflow.
func planeSize(stride, rows, rowBytes int) uint64 {
	return uint64(stride)*uint64(rows-1) + uint64(rowBytes)
}

func (f *Frame) stride() int {
	if f.Stride == 0 {
		return f.Width * f.Format.BytesPerPixel()
	}
	return f.Stride
}

func (f *Frame) strideU() int {
	if f.StrideU == 0 {
		return (f.Width + 1) / 2
	}
	return f.StrideU
}

func (f *Frame) strideV() int {
	if f.StrideV == 0 {
		return (f.Width + 1) / 2
	}
	return f.StrideV
}

func (f *Frame) planes() yuv.Planes {
	return yuv.Planes{Y: f.Data, U: f.U, V: f.V, StrideY: f.stride(), StrideU: f.strideU(), StrideV: f.strideV(),
		Width: f.Width, Height: f.Height}
}

// toI420 converts (or copies) the frame into dst, which has the frame's size.
func (f *Frame) toI420(dst yuv.Planes) error {
	switch f.Format {
	case FormatI420:
		return yuv.CopyI420(f.planes(), dst)
	case FormatYCbCr420:
		return yuv.CopyFullRangeI420(f.planes(), dst)
	case FormatBGR:
		return yuv.ToI420(yuv.BGR, f.Data, f.stride(), dst)
	case FormatRGB:
		return yuv.ToI420(yuv.RGB, f.Data, f.stride(), dst)
	case FormatBGRA:
		return yuv.ToI420(yuv.BGRA, f.Data, f.stride(), dst)
	case FormatRGBA:
		return yuv.ToI420(yuv.RGBA, f.Data, f.stride(), dst)
	case FormatGray:
		return yuv.ToI420(yuv.Gray, f.Data, f.stride(), dst)
	}
	return frameErr("unsupported pixel format %v", f.Format)
}

// isNilImage reports a typed nil pointer in an image.Image (calling Bounds
// on it would panic).
func isNilImage(img image.Image) bool {
	v := reflect.ValueOf(img)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// clone copies the frame's pixels (the warm-up keeps the frame that ends
// it). Time is kept.
func (f *Frame) clone() Frame {
	c := *f
	c.Data = append([]byte(nil), f.Data...)
	if f.U != nil {
		c.U = append([]byte(nil), f.U...)
	}
	if f.V != nil {
		c.V = append([]byte(nil), f.V...)
	}
	return c
}
