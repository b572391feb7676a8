package main

import (
	"strings"
	"time"

	"github.com/skyline-go/skyline"
)

// --timestamps: how the frames of an input are timestamped.
//
//   - auto (the default) stamps each frame with the time it was read, but at
//     least one frame period (1/--fps) after the previous one
//     (skyline.TimestampsSteady). A producer faster than real time, such as
//     a clip decoded by ffmpeg as fast as it can, is recorded at n/fps: its
//     real length. A live producer at or below --fps plays in real time,
//     pauses included, and the burst of frames that waited in the pipe while
//     the stream started is spaced out instead of squeezed. Framed input
//     (--format framed) keeps the capture times of its headers instead.
//     Live inputs (a camera, the test pattern) run in real time by nature
//     and are stamped on arrival: a camera faster than --fps must not be
//     slowed down by a floor of 1/fps, which would add delay without bound.
//   - fixed stamps frame n at n/fps from the first frame (OpenCV's
//     VideoWriter): right for offline work, wrong for a producer whose rate
//     varies.
//   - arrival stamps each frame with the wall clock when it is read: a
//     producer faster than real time is squeezed into the time it took.
func (o *serveOptions) timestampMode() skyline.Timestamps {
	switch {
	case o.timestamps == "fixed":
		return skyline.TimestampsFixedRate
	case o.timestamps == "arrival", o.format == "framed", liveInput(o.input):
		return skyline.TimestampsCapture
	}
	return skyline.TimestampsSteady
}

// stamper sets each frame's Frame.Time before it is Put.
type stamper struct {
	steady  bool // auto for a pipe or file: skyline.TimestampsSteady
	capture bool // auto for framed input: the capture times of the headers
	period  time.Duration
	started time.Time
	last    time.Time // steady: the previous frame's time
	first   time.Time // capture: the first framed frame's capture time
}

// newStamper: started is when the stream started (the first frame counts
// as read then).
func (o *serveOptions) newStamper(started time.Time) *stamper {
	auto := o.timestamps == "auto"
	return &stamper{
		steady:  auto && o.format == "raw" && !liveInput(o.input),
		capture: auto && o.format == "framed",
		period:  time.Duration(float64(time.Second) / o.fps),
		started: started,
	}
}

// stamp sets f.Time. readAt is when the frame was read; early tells that
// it was already waiting then (it arrived earlier, by an unknown time).
//
//   - steady: the read time, at least one period after the previous frame;
//     a frame that was waiting comes one period after the previous one: a
//     producer ahead of SkyLine (a file piped as fast as it goes, frames
//     that piled up while the stream started or the machine was busy) is
//     stamped n/fps, never at SkyLine's own pace.
//   - capture: the header's capture time, kept relative to the first
//     frame's, which is placed at started (so the frames captured while the
//     stream started are not squeezed onto its first instant, and any clock
//     will do); a header without one is stamped on arrival.
//   - otherwise the read time (ignored in fixed mode).
func (s *stamper) stamp(f *skyline.Frame, readAt time.Time, early bool) {
	switch {
	case s.steady:
		t := readAt
		if !s.last.IsZero() {
			if next := s.last.Add(s.period); early || next.After(t) {
				t = next
			}
		}
		f.Time, s.last = t, t
	case s.capture && !f.Time.IsZero():
		if s.first.IsZero() {
			s.first = f.Time
		}
		f.Time = s.started.Add(f.Time.Sub(s.first))
	default:
		f.Time = readAt
	}
}

// liveInput: inputs that produce frames in real time, never faster.
func liveInput(spec string) bool {
	return spec == "testsrc" || strings.HasPrefix(spec, "v4l2:")
}
