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

// newStamper returns the function that sets a frame's Frame.Time from the
// time it was read (and, for framed input in auto mode, from its capture
// time). started is when the stream started: capture times are kept
// relative to the first frame's, which is placed at started, so that the
// frames captured while the stream started are not squeezed onto its first
// instant, and a producer's clock need not be ours.
func (o *serveOptions) newStamper(started time.Time) func(f *skyline.Frame, readAt time.Time) {
	useCapture := o.format == "framed" && o.timestamps == "auto"
	var first time.Time // capture time of the first framed frame
	return func(f *skyline.Frame, readAt time.Time) {
		if !useCapture || f.Time.IsZero() {
			f.Time = readAt // ignored in fixed mode
			return
		}
		if first.IsZero() {
			first = f.Time
		}
		f.Time = started.Add(f.Time.Sub(first))
	}
}

// liveInput: inputs that produce frames in real time, never faster.
func liveInput(spec string) bool {
	return spec == "testsrc" || strings.HasPrefix(spec, "v4l2:")
}
