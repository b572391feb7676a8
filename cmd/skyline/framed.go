package main

import (
	"bytes"
	"context"
	byteorder "encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/skyline-go/skyline"
)

// The framed format (--format framed) puts a 28-byte header before each
// raw frame, so that a producer can give each frame its capture time and
// change its size or pixel format mid-stream (frames of another size than
// the stream's are scaled to it). All integers little-endian:
//
//	offset size
//	     0    4  magic "SKYF"
//	     4    8  capture time, int64 nanoseconds since the Unix epoch (Python
//	             time.time_ns(), Go time.Now().UnixNano()); 0: stamp the frame
//	             when it is read
//	    12    4  width, uint32, pixels
//	    16    4  height, uint32, pixels
//	    20    8  pixel format, ASCII, NUL-padded: bgr24, rgb24, bgra, rgba,
//	             gray, i420 (the --pix-fmt names)
//	    28       the frame: width x height pixels, rows tightly packed
//	             (i420: the Y, U and V planes)
//
// In Python: struct.pack("<4sqII8s", b"SKYF", time.time_ns(), w, h, b"bgr24").
const (
	framedMagic  = "SKYF"
	framedHeader = 28
	// framedMaxBytes bounds one frame's payload (an 8192x8192 BGRA frame
	// is 256 MiB): a corrupt header cannot make us allocate more.
	framedMaxBytes = skyline.MaxDimension * skyline.MaxDimension * 4
)

// framedSource reads the framed format from r (stdin, or any byte stream).
type framedSource struct {
	r      io.Reader
	closer func()
	hdr    [framedHeader]byte
	buf    []byte
	n      int  // frames read
	early  bool // the last frame was already waiting when read
}

func newFramedSource(r io.Reader, closer func()) *framedSource {
	return &framedSource{r: r, closer: closer}
}

func (s *framedSource) Live() bool  { return false }
func (s *framedSource) Early() bool { return s.early }
func (s *framedSource) Close() {
	if s.closer != nil {
		s.closer()
	}
}

// Next reads one header and its frame. Frame.Time is the capture time of
// the header (zero when the header says 0).
func (s *framedSource) Next(ctx context.Context) (skyline.Frame, error) {
	fail := func(err error) (skyline.Frame, error) {
		if ctx.Err() != nil {
			return skyline.Frame{}, ctx.Err()
		}
		return skyline.Frame{}, err
	}
	s.early = pending(s.r)
	n, err := io.ReadFull(s.r, s.hdr[:])
	switch {
	case err == io.EOF:
		return skyline.Frame{}, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fail(fmt.Errorf("framed input: ended inside the header of frame %d (%d of %d bytes)", s.n, n, framedHeader))
	case err != nil:
		return fail(err)
	}
	f, size, err := parseFramedHeader(s.hdr[:])
	if err != nil {
		return skyline.Frame{}, fmt.Errorf("framed input: frame %d: %w", s.n, err)
	}
	if cap(s.buf) < size {
		s.buf = make([]byte, size)
	}
	s.buf = s.buf[:size]
	if n, err := io.ReadFull(s.r, s.buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fail(errPartial{n, size})
		}
		return fail(err)
	}
	s.n++
	f.Data = s.buf
	if f.Format == skyline.FormatI420 {
		ys, cs := f.Width*f.Height, (f.Width/2)*(f.Height/2)
		f.Data, f.U, f.V = s.buf[:ys], s.buf[ys:ys+cs], s.buf[ys+cs:]
	}
	return f, nil
}

// parseFramedHeader checks a header and returns the frame it announces
// (without pixels) and the payload size in bytes.
func parseFramedHeader(h []byte) (skyline.Frame, int, error) {
	if string(h[:4]) != framedMagic {
		return skyline.Frame{}, 0, fmt.Errorf("header starts with %q, want %q: not the framed format "+
			"(raw frames need no --format framed), or a frame's size does not match its header", h[:4], framedMagic)
	}
	ns := int64(byteorder.LittleEndian.Uint64(h[4:12]))
	w, ht := byteorder.LittleEndian.Uint32(h[12:16]), byteorder.LittleEndian.Uint32(h[16:20])
	name := string(bytes.TrimRight(h[20:28], "\x00 "))
	format, ok := pixFmts[name]
	if !ok {
		return skyline.Frame{}, 0, fmt.Errorf("pixel format %q: want bgr24, rgb24, bgra, rgba, gray or i420", name)
	}
	if w == 0 || ht == 0 || w > skyline.MaxDimension || ht > skyline.MaxDimension {
		return skyline.Frame{}, 0, fmt.Errorf("size %dx%d: want 1..%d pixels each way", w, ht, skyline.MaxDimension)
	}
	if format == skyline.FormatI420 && (w%2 != 0 || ht%2 != 0) {
		return skyline.Frame{}, 0, fmt.Errorf("size %dx%d: i420 needs even dimensions", w, ht)
	}
	f := skyline.Frame{Format: format, Width: int(w), Height: int(ht)}
	if ns != 0 {
		f.Time = time.Unix(0, ns)
	}
	size := frameBytes(format, f.Width, f.Height)
	if size > framedMaxBytes {
		return skyline.Frame{}, 0, fmt.Errorf("frame of %d bytes: more than %d", size, framedMaxBytes)
	}
	return f, size, nil
}
