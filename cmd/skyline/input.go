package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/gst"
	"github.com/skyline-go/skyline/internal/testpattern"
)

// input produces frames. Next blocks until the next frame, returns io.EOF
// at the end, and is interrupted by ctx.
type input interface {
	Next(ctx context.Context) (skyline.Frame, error)
	// Live inputs drop frames when the encoder is behind; the others wait
	// (a pipe or file must not lose frames).
	Live() bool
	Close()
}

// errPartial is a stream that ended inside a frame.
type errPartial struct{ got, want int }

func (e errPartial) Error() string {
	return fmt.Sprintf("input ended inside a frame (%d of %d bytes); that partial frame was discarded: "+
		"check --size and --pix-fmt against what the producer writes", e.got, e.want)
}

func parseSize(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	if ok {
		w, err = strconv.Atoi(a)
		if err == nil {
			h, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || w <= 0 || h <= 0 || w > skyline.MaxDimension || h > skyline.MaxDimension {
		return 0, 0, fmt.Errorf("--size %q: want WIDTHxHEIGHT, e.g. 1280x720", s)
	}
	return w, h, nil
}

var pixFmts = map[string]skyline.PixelFormat{
	"bgr24": skyline.FormatBGR, "rgb24": skyline.FormatRGB, "bgra": skyline.FormatBGRA,
	"rgba": skyline.FormatRGBA, "gray": skyline.FormatGray, "i420": skyline.FormatI420,
}

// frameBytes is the size of one raw frame.
func frameBytes(f skyline.PixelFormat, w, h int) int {
	if f == skyline.FormatI420 {
		return w*h + 2*((w+1)/2)*((h+1)/2)
	}
	return w * h * f.BytesPerPixel()
}

// --- testsrc ---

type testSource struct {
	w, h   int
	period time.Duration
	next   time.Time
	n      int
	buf    []byte
}

func newTestSource(w, h int, fps float64) *testSource {
	return &testSource{w: w, h: h, period: time.Duration(float64(time.Second) / fps), buf: make([]byte, w*h*3)}
}

func (t *testSource) Live() bool { return true }
func (t *testSource) Close()     {}

func (t *testSource) Next(ctx context.Context) (skyline.Frame, error) {
	now := time.Now()
	if t.next.IsZero() {
		t.next = now
	}
	if d := t.next.Sub(now); d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return skyline.Frame{}, ctx.Err()
		case <-timer.C:
		}
	} else if -d > t.period { // late (start-up, a pause): resync, never burst
		t.next = now
	}
	t.next = t.next.Add(t.period)
	testpattern.DrawBGR(t.buf, t.w, t.h, t.n&0xFFFF)
	scale := max(t.h/120, 2)
	stamp := time.Now().Format("15:04:05.000") + fmt.Sprintf("  #%06d", t.n)
	testpattern.DrawText(t.buf, t.w, t.h, t.w/25, t.h/5, scale, stamp)
	t.n++
	return skyline.FrameBGR(t.buf, t.w, t.h, 0), nil
}

// --- raw frames from a reader (stdin) ---

type rawSource struct {
	r      io.Reader
	closer func()
	format skyline.PixelFormat
	w, h   int
	buf    []byte
	early  bool // the last frame was already waiting when read
}

func newRawSource(r io.Reader, closer func(), format skyline.PixelFormat, w, h int) (*rawSource, error) {
	if format.BytesPerPixel() == 0 {
		return nil, errors.New("unknown pixel format")
	}
	if format == skyline.FormatI420 && (w%2 != 0 || h%2 != 0) {
		return nil, fmt.Errorf("--size %dx%d: i420 needs even dimensions", w, h)
	}
	return &rawSource{r: r, closer: closer, format: format, w: w, h: h, buf: make([]byte, frameBytes(format, w, h))}, nil
}

func (s *rawSource) Live() bool  { return false }
func (s *rawSource) Early() bool { return s.early }
func (s *rawSource) Close() {
	if s.closer != nil {
		s.closer()
	}
}

func (s *rawSource) Next(ctx context.Context) (skyline.Frame, error) {
	s.early = pending(s.r)
	n, err := io.ReadFull(s.r, s.buf)
	switch {
	case err == io.EOF:
		return skyline.Frame{}, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return skyline.Frame{}, errPartial{n, len(s.buf)}
	case err != nil:
		if ctx.Err() != nil {
			return skyline.Frame{}, ctx.Err()
		}
		return skyline.Frame{}, err
	}
	f := skyline.Frame{Format: s.format, Width: s.w, Height: s.h, Data: s.buf}
	if s.format == skyline.FormatI420 {
		ys, cs := s.w*s.h, (s.w/2)*(s.h/2)
		f.Data, f.U, f.V = s.buf[:ys], s.buf[ys:ys+cs], s.buf[ys+cs:]
	}
	return f, nil
}

// --- a GStreamer source: video file or camera, decoded to BGR ---

type gstSource struct {
	pipe *gst.Pipeline
	sink *gst.AppSink
	live bool
	what string
}

func newGstSource(desc, what string, live bool) (*gstSource, error) {
	if err := gst.Init(); err != nil {
		return nil, err
	}
	p, err := gst.ParseLaunch(desc + " ! videoconvert ! video/x-raw,format=BGR ! appsink name=frames sync=" +
		strconv.FormatBool(!live) + " max-buffers=2 drop=" + strconv.FormatBool(live))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	s := &gstSource{pipe: p, sink: gst.AsAppSink(p.ByName("frames")), live: live, what: what}
	if err := p.SetState(gst.StatePlaying); err != nil {
		reason := s.busError(err) // the bus goes with the pipeline: read it first
		s.Close()
		return nil, fmt.Errorf("%s: cannot start: %s", what, reason)
	}
	return s, nil
}

func (s *gstSource) busError(fallback error) string {
	for {
		m, ok := s.pipe.PopMessage(500 * time.Millisecond)
		if !ok {
			return fallback.Error()
		}
		if m.Kind == gst.MsgError {
			return m.String()
		}
	}
}

func (s *gstSource) Live() bool { return s.live }

func (s *gstSource) Close() {
	if s.sink != nil {
		s.sink.Unref()
		s.sink = nil
	}
	s.pipe.Close()
}

func (s *gstSource) Next(ctx context.Context) (skyline.Frame, error) {
	for {
		if err := ctx.Err(); err != nil {
			return skyline.Frame{}, err
		}
		smp, eos := s.sink.Pull(100 * time.Millisecond)
		if eos {
			return skyline.Frame{}, io.EOF
		}
		if smp == nil {
			if m, ok := s.pipe.PopMessage(0); ok && m.Kind == gst.MsgError {
				return skyline.Frame{}, fmt.Errorf("%s: %s", s.what, m.String())
			}
			continue
		}
		stride := (smp.Width*3 + 3) &^ 3 // GStreamer rounds BGR rows up to 4 bytes
		return skyline.Frame{Format: skyline.FormatBGR, Width: smp.Width, Height: smp.Height, Data: smp.Data, Stride: stride}, nil
	}
}

// openReader reads a producer's frames from r (stdin, or a connection of a
// listening input) in the --format the options name: raw frames of --size
// and --pix-fmt, or the framed format; closer interrupts a read.
func openReader(r io.Reader, closer func(), o *serveOptions) (input, error) {
	if o.format == "framed" {
		return newFramedSource(r, closer), nil
	}
	f, ok := pixFmts[o.pixFmt]
	if !ok {
		return nil, refuse(fmt.Errorf("--pix-fmt %q: want bgr24, rgb24, bgra, rgba, gray or i420", o.pixFmt))
	}
	src, err := newRawSource(r, closer, f, o.w, o.h)
	if err != nil {
		return nil, refuse(err)
	}
	return src, nil
}

// openInput builds the input named by --input.
func openInput(spec string, o *serveOptions) (input, error) {
	switch {
	case spec == "testsrc":
		return newTestSource(o.w, o.h, o.fps), nil
	case spec == "stdin" || spec == "-":
		return openReader(os.Stdin, func() { _ = os.Stdin.Close() }, o)
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		if _, err := os.Stat(path); err != nil {
			return nil, refuse(fmt.Errorf("--input %s: %v", spec, err))
		}
		return newGstSource("filesrc location="+quote(path)+" ! decodebin", spec, false)
	case strings.HasPrefix(spec, "v4l2:"):
		dev := strings.TrimPrefix(spec, "v4l2:")
		if dev == "" {
			dev = "/dev/video0"
		}
		return newGstSource("v4l2src device="+quote(dev), spec, true)
	}
	return nil, refuse(fmt.Errorf("--input %q: want testsrc, stdin, file:PATH or v4l2:DEVICE", spec))
}

func quote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}
