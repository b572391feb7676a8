// Package yuv converts packed RGB/BGR/gray pixels and scales I420 pictures
// with libyuv (SIMD), writing straight into the destination buffer so that
// the conversion is the only copy a frame makes on its way to the encoder.
package yuv

/*
#cgo LDFLAGS: -lyuv
#include <stdint.h>
#include <libyuv/convert.h>
#include <libyuv/scale.h>
#include <libyuv/planar_functions.h>

// full-range (JFIF) to video-range plane copy through a lookup table
static void sk_plane_lut(const uint8_t *src, int ss, uint8_t *dst, int ds, int w, int h, const uint8_t *lut) {
  for (int y = 0; y < h; y++) {
    const uint8_t *s = src + (long)y * ss; uint8_t *d = dst + (long)y * ds;
    for (int x = 0; x < w; x++) d[x] = lut[s[x]];
  }
}
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"
)

// MaxStride is the largest stride, width or height the functions take:
// libyuv takes them as C ints. Larger values are errors, never truncated.
const MaxStride = math.MaxInt32

// checkPlane checks that b holds rows rows of rowBytes bytes, stride bytes
// apart, and that every value fits in a C int, so that C never reads or
// writes outside b. The arithmetic cannot overflow: every factor is at most
// MaxStride.
func checkPlane(pic, plane string, b []byte, stride, rowBytes, rows int) error {
	if rowBytes <= 0 || rows <= 0 || rows > MaxStride {
		return fmt.Errorf("yuv: %s %s plane of %d rows of %d bytes", pic, plane, rows, rowBytes)
	}
	if stride < rowBytes || stride > MaxStride {
		return fmt.Errorf("yuv: %s %s stride %d: want %d..%d", pic, plane, stride, rowBytes, MaxStride)
	}
	if need := uint64(stride)*uint64(rows-1) + uint64(rowBytes); uint64(len(b)) < need {
		return fmt.Errorf("yuv: %s %s plane of %d bytes is short: needs %d", pic, plane, len(b), need)
	}
	return nil
}

// check checks the three planes of an I420 picture of p's size.
func (p Planes) check(name string) error {
	if p.Width <= 0 || p.Height <= 0 || p.Width > MaxStride || p.Height > MaxStride {
		return fmt.Errorf("yuv: %s picture of size %dx%d", name, p.Width, p.Height)
	}
	cw, ch := (p.Width+1)/2, (p.Height+1)/2
	if err := checkPlane(name, "Y", p.Y, p.StrideY, p.Width, p.Height); err != nil {
		return err
	}
	if err := checkPlane(name, "U", p.U, p.StrideU, cw, ch); err != nil {
		return err
	}
	return checkPlane(name, "V", p.V, p.StrideV, cw, ch)
}

// Format is a source pixel layout.
type Format int

// Source formats. Names give the byte order in memory.
const (
	BGR  Format = iota + 1 // 3 bytes B,G,R (OpenCV's default)
	RGB                    // 3 bytes R,G,B
	BGRA                   // 4 bytes B,G,R,A (OpenCV CV_8UC4)
	RGBA                   // 4 bytes R,G,B,A (Go's image.RGBA)
	Gray                   // 1 byte full-range luma (BGR g,g,g)
)

// Planes is an I420 picture: three planes with their strides.
type Planes struct {
	Y, U, V                   []byte
	StrideY, StrideU, StrideV int
	Width, Height             int
}

// Layout splits a buffer of Size(w, h) bytes into the planes of a w x h
// I420 picture laid out the way GStreamer lays out I420 by default
// (gst_video_info_set_format, video-info.c fill_planes): every row padded
// to a multiple of 4 bytes, the chroma planes after GST_ROUND_UP_2(h) luma
// rows. It is the layout videoconvert and the encoders assume for a buffer
// that carries no GstVideoMeta, as the buffers SkyLine pushes to appsrc:
// a tightly packed buffer is too short for them (or, were it long enough,
// read sheared) unless w is a multiple of 8.
func Layout(buf []byte, w, h int) Planes {
	off, stride, size := layout(w, h)
	return Planes{
		Y: buf[off[0]:off[1]], U: buf[off[1]:off[2]], V: buf[off[2]:size],
		StrideY: stride[0], StrideU: stride[1], StrideV: stride[2], Width: w, Height: h,
	}
}

// Size is the byte size of a w x h I420 picture in GStreamer's layout (see
// Layout).
func Size(w, h int) int {
	_, _, size := layout(w, h)
	return size
}

// layout is fill_planes' I420 case of gst-plugins-base 1.22
// (gst-libs/gst/video/video-info.c), progressive:
//
//	stride[0] = GST_ROUND_UP_4 (width);
//	stride[1] = GST_ROUND_UP_4 (GST_ROUND_UP_2 (width) / 2);
//	stride[2] = stride[1];
//	offset[1] = stride[0] * GST_ROUND_UP_2 (height);
//	cr_h = GST_ROUND_UP_2 (height) / 2;
//	offset[2] = offset[1] + stride[1] * cr_h;
//	size = offset[2] + stride[2] * cr_h;
//
// TestLayoutIsGStreamers checks it against gst_video_info_set_format.
func layout(w, h int) (off, stride [3]int, size int) {
	up2 := func(n int) int { return (n + 1) &^ 1 }
	up4 := func(n int) int { return (n + 3) &^ 3 }
	stride[0] = up4(w)
	stride[1] = up4(up2(w) / 2)
	stride[2] = stride[1]
	ch := up2(h) / 2
	off[1] = stride[0] * up2(h)
	off[2] = off[1] + stride[1]*ch
	return off, stride, off[2] + stride[2]*ch
}

// PackedLayout splits a tightly packed I420 buffer of PackedSize(w, h)
// bytes (no row padding, as ffmpeg's rawvideo yuv420p) into planes.
func PackedLayout(buf []byte, w, h int) Planes {
	cw, ch := (w+1)/2, (h+1)/2
	ys, cs := w*h, cw*ch
	return Planes{
		Y: buf[:ys], U: buf[ys : ys+cs], V: buf[ys+cs : ys+2*cs],
		StrideY: w, StrideU: cw, StrideV: cw, Width: w, Height: h,
	}
}

// PackedSize is the byte size of a tightly packed I420 picture.
func PackedSize(w, h int) int { return w*h + 2*((w+1)/2)*((h+1)/2) }

func p(b []byte) *C.uint8_t { return (*C.uint8_t)(unsafe.Pointer(&b[0])) }

// ToI420 converts a packed picture of dst's size into dst.
func ToI420(f Format, src []byte, stride int, dst Planes) error {
	if err := dst.check("destination"); err != nil {
		return err
	}
	bpp := f.bytesPerPixel()
	if bpp == 0 {
		return fmt.Errorf("yuv: unknown format %d", f)
	}
	if err := checkPlane("source", "packed", src, stride, dst.Width*bpp, dst.Height); err != nil {
		return err
	}
	w, h := C.int(dst.Width), C.int(dst.Height)
	s := C.int(stride)
	var r C.int
	switch f {
	case BGR:
		r = C.RGB24ToI420(p(src), s, p(dst.Y), C.int(dst.StrideY), p(dst.U), C.int(dst.StrideU), p(dst.V), C.int(dst.StrideV), w, h)
	case RGB:
		r = C.RAWToI420(p(src), s, p(dst.Y), C.int(dst.StrideY), p(dst.U), C.int(dst.StrideU), p(dst.V), C.int(dst.StrideV), w, h)
	case BGRA:
		r = C.ARGBToI420(p(src), s, p(dst.Y), C.int(dst.StrideY), p(dst.U), C.int(dst.StrideU), p(dst.V), C.int(dst.StrideV), w, h)
	case RGBA:
		r = C.ABGRToI420(p(src), s, p(dst.Y), C.int(dst.StrideY), p(dst.U), C.int(dst.StrideU), p(dst.V), C.int(dst.StrideV), w, h)
	case Gray:
		// Gray pixels are full-range luma (image.Gray, OpenCV's CV_8UC1,
		// what BGR (g,g,g) means): remap to video range like the RGB
		// conversions do, neutral chroma.
		C.sk_plane_lut(p(src), s, p(dst.Y), C.int(dst.StrideY), w, h, p(lutY[:]))
		C.SetPlane(p(dst.U), C.int(dst.StrideU), (w+1)/2, (h+1)/2, 128)
		C.SetPlane(p(dst.V), C.int(dst.StrideV), (w+1)/2, (h+1)/2, 128)
	default:
		return fmt.Errorf("yuv: unknown format %d", f)
	}
	if r != 0 {
		return fmt.Errorf("yuv: conversion failed (%d)", int(r))
	}
	return nil
}

// CopyI420 copies an I420 picture of dst's size into dst.
func CopyI420(src, dst Planes) error {
	if err := checkSameSize(src, dst); err != nil {
		return err
	}
	r := C.I420Copy(p(src.Y), C.int(src.StrideY), p(src.U), C.int(src.StrideU), p(src.V), C.int(src.StrideV),
		p(dst.Y), C.int(dst.StrideY), p(dst.U), C.int(dst.StrideU), p(dst.V), C.int(dst.StrideV),
		C.int(dst.Width), C.int(dst.Height))
	if r != 0 {
		return fmt.Errorf("yuv: copy failed (%d)", int(r))
	}
	return nil
}

// Scale resizes an I420 picture into dst with a box/bilinear filter.
func Scale(src, dst Planes) error {
	if err := src.check("source"); err != nil {
		return err
	}
	if err := dst.check("destination"); err != nil {
		return err
	}
	r := C.I420Scale(p(src.Y), C.int(src.StrideY), p(src.U), C.int(src.StrideU), p(src.V), C.int(src.StrideV),
		C.int(src.Width), C.int(src.Height),
		p(dst.Y), C.int(dst.StrideY), p(dst.U), C.int(dst.StrideU), p(dst.V), C.int(dst.StrideV),
		C.int(dst.Width), C.int(dst.Height), C.kFilterBox)
	if r != 0 {
		return fmt.Errorf("yuv: scale failed (%d)", int(r))
	}
	return nil
}

var lutY, lutC [256]byte

func init() {
	for i := range 256 {
		lutY[i] = byte((i*219+127)/255 + 16)
		c := (i - 128) * 224
		if c >= 0 {
			c += 127
		} else {
			c -= 127
		}
		lutC[i] = byte(c/255 + 128)
	}
}

// CopyFullRangeI420 copies a full-range (JFIF, as Go's image.YCbCr holds)
// 4:2:0 picture into dst, remapping to video range in the same pass.
func CopyFullRangeI420(src, dst Planes) error {
	if err := checkSameSize(src, dst); err != nil {
		return err
	}
	cw, ch := (dst.Width+1)/2, (dst.Height+1)/2
	C.sk_plane_lut(p(src.Y), C.int(src.StrideY), p(dst.Y), C.int(dst.StrideY), C.int(dst.Width), C.int(dst.Height), p(lutY[:]))
	C.sk_plane_lut(p(src.U), C.int(src.StrideU), p(dst.U), C.int(dst.StrideU), C.int(cw), C.int(ch), p(lutC[:]))
	C.sk_plane_lut(p(src.V), C.int(src.StrideV), p(dst.V), C.int(dst.StrideV), C.int(cw), C.int(ch), p(lutC[:]))
	return nil
}

// checkSameSize checks the planes of a copy from src to dst, which is read
// at dst's size.
func checkSameSize(src, dst Planes) error {
	if err := dst.check("destination"); err != nil {
		return err
	}
	src.Width, src.Height = dst.Width, dst.Height
	return src.check("source")
}

func (f Format) bytesPerPixel() int {
	switch f {
	case BGR, RGB:
		return 3
	case BGRA, RGBA:
		return 4
	case Gray:
		return 1
	}
	return 0
}
