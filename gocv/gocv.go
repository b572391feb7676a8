// Package skylinegocv streams gocv (OpenCV) Mats with SkyLine: one call per
// Mat, from a Go computer-vision loop.
//
//	import skylinegocv "github.com/skyline-go/skyline/gocv"
//
//	sl, _ := rtsp.NewSkyLine(srv, "/cam", skyline.Config{})
//	_ = sl.Start(skyline.Params{FPS: 30, Width: 1280, Height: 720})
//	for webcam.Read(&img) {
//		// ... detect, draw boxes on img ...
//		ok, err := skylinegocv.Put(sl, img)
//	}
//
// It is a module of its own (github.com/skyline-go/skyline/gocv) so that the
// core module never needs OpenCV; building it needs OpenCV 4 with its
// pkg-config file (Debian 12: libopencv-dev, see scripts/deps.sh) and gocv
// v0.32.0, the version that matches Debian's OpenCV 4.6.
//
// # Mats accepted
//
//	gocv.MatTypeCV8UC3   BGR, OpenCV's default (what VideoCapture.Read gives)
//	gocv.MatTypeCV8UC4   BGRA (alpha ignored)
//	gocv.MatTypeCV8UC1   gray
//
// Any other type, an empty Mat or a Mat of more than two dimensions is
// refused with an error wrapping skyline.ErrInvalidFrame.
//
// # No copy
//
// Frame describes the Mat's own memory (it aliases it, like
// Mat.DataPtrUint8) with the Mat's row step as the frame's stride, so a
// non-continuous Mat — a region of interest from Mat.Region or
// Mat.RowRange — goes in as it is, without being cloned. The only copy is
// the one skyline.(*SkyLine).Put makes into the pipeline's buffer while
// converting to I420; once Put has returned the Mat may be modified, reused
// or closed. A Frame from this package must not be used after its Mat is
// closed.
package skylinegocv

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"gocv.io/x/gocv"

	"github.com/skyline-go/skyline"
)

// Format is the skyline pixel format that holds Mats of type t, and false
// for types SkyLine does not take (anything but 8-bit 1, 3 or 4 channels).
func Format(t gocv.MatType) (skyline.PixelFormat, bool) {
	switch t {
	case gocv.MatTypeCV8UC3:
		return skyline.FormatBGR, true
	case gocv.MatTypeCV8UC4:
		return skyline.FormatBGRA, true
	case gocv.MatTypeCV8UC1:
		return skyline.FormatGray, true
	}
	return skyline.FormatUnknown, false
}

// Frame describes m as a skyline.Frame without copying its pixels: the
// frame's Data aliases the Mat's memory and its Stride is the Mat's step, so
// continuous and non-continuous Mats (regions of interest) are both taken
// as they are. The frame is valid while m is open and unchanged; Put it
// before closing or rewriting m. Errors wrap skyline.ErrInvalidFrame.
func Frame(m gocv.Mat) (skyline.Frame, error) {
	defer runtime.KeepAlive(&m)
	if m.Ptr() == nil {
		return skyline.Frame{}, frameErr("nil Mat (closed, or never created)")
	}
	if m.Empty() {
		return skyline.Frame{}, frameErr("empty Mat")
	}
	rows, cols := m.Rows(), m.Cols()
	if rows <= 0 || cols <= 0 {
		return skyline.Frame{}, frameErr("Mat of %d dimensions (rows %d, cols %d): want a 2-D picture", len(m.Size()), rows, cols)
	}
	t := m.Type()
	format, ok := Format(t)
	if !ok {
		return skyline.Frame{}, frameErr("Mat type %s: want CV_8UC3 (BGR), CV_8UC4 (BGRA) or CV_8UC1 (gray); convert it first, e.g. with gocv.CvtColor or Mat.ConvertTo", typeName(t))
	}
	rowBytes := cols * format.BytesPerPixel()
	step := m.Step()
	if step < rowBytes {
		return skyline.Frame{}, frameErr("Mat step %d is less than %d columns x %d bytes", step, cols, format.BytesPerPixel())
	}
	data, err := pixels(m, rows, rowBytes, step)
	if err != nil {
		return skyline.Frame{}, err
	}
	return skyline.Frame{Format: format, Width: cols, Height: rows, Data: data, Stride: step}, nil
}

// pixels returns the Mat's memory from the first pixel of its first row to
// the last pixel of its last row, without copying.
func pixels(m gocv.Mat, rows, rowBytes, step int) ([]byte, error) {
	if m.IsContinuous() {
		b, err := m.DataPtrUint8()
		if err != nil {
			return nil, frameErr("Mat data: %v", err)
		}
		if len(b) < step*(rows-1)+rowBytes {
			return nil, frameErr("Mat data of %d bytes is short for %d rows of step %d", len(b), rows, step)
		}
		return b, nil
	}
	// A region of interest: its rows lie step bytes apart inside the parent
	// Mat's buffer. Any single row is continuous, so DataPtrUint8 of the
	// first and last rows gives where the region's memory starts and ends.
	first, err := rowPtr(m, 0, rowBytes)
	if err != nil {
		return nil, err
	}
	last, err := rowPtr(m, rows-1, rowBytes)
	if err != nil {
		return nil, err
	}
	if uintptr(last)-uintptr(first) != uintptr(step*(rows-1)) {
		return nil, frameErr("non-continuous Mat whose rows are not %d bytes apart", step)
	}
	return unsafe.Slice((*byte)(first), step*(rows-1)+rowBytes), nil
}

func rowPtr(m gocv.Mat, y, rowBytes int) (unsafe.Pointer, error) {
	r := m.RowRange(y, y+1)
	defer r.Close()
	b, err := r.DataPtrUint8()
	if err != nil {
		return nil, frameErr("row %d of the Mat: %v", y, err)
	}
	if len(b) < rowBytes {
		return nil, frameErr("row %d of the Mat has %d bytes, want %d", y, len(b), rowBytes)
	}
	return unsafe.Pointer(&b[0]), nil
}

// Put streams m: Frame(m) handed to sl.Put, which copies (converts) it into
// the pipeline's buffer before returning, so m may be reused at once. The
// bool and error are sl.Put's: false when the frame was not taken (warming
// up, queue full, stopped), an error wrapping skyline.ErrInvalidFrame when m
// cannot be streamed.
func Put(sl *skyline.SkyLine, m gocv.Mat) (bool, error) {
	return PutAt(sl, m, time.Time{})
}

// PutAt is Put with the frame's capture time (see skyline.Frame.Time); the
// zero time means the moment of the call.
func PutAt(sl *skyline.SkyLine, m gocv.Mat, at time.Time) (bool, error) {
	if sl == nil {
		return false, fmt.Errorf("%w: nil *skyline.SkyLine", skyline.ErrInvalidConfig)
	}
	f, err := Frame(m)
	if err != nil {
		return false, err
	}
	f.Time = at
	ok, err := sl.Put(f)
	runtime.KeepAlive(&m) // the Mat's memory is read until Put returns
	return ok, err
}

// typeName spells a Mat type the way OpenCV does, e.g. CV_16UC1.
func typeName(t gocv.MatType) string {
	depths := [...]string{"CV_8U", "CV_8S", "CV_16U", "CV_16S", "CV_32S", "CV_32F", "CV_64F", "CV_16F"}
	return fmt.Sprintf("%sC%d", depths[t&7], int(t>>3)+1)
}

func frameErr(format string, a ...any) error {
	return fmt.Errorf("%w: skylinegocv: "+format, append([]any{skyline.ErrInvalidFrame}, a...)...)
}
