package skyline

import (
	"fmt"
	"math"
)

// registry is the view of the GStreamer registry encoder selection needs
// (substituted in tests).
type registry interface{ HasElement(name string) bool }

// encoderChoices lists the encoders to try, in order: the one named in
// Encoder.Element, or every EncoderCandidates entry the registry has
// (x264enc last, as the fallback that always works).
func encoderChoices(reg registry, e Encoder) []string {
	if e.Element != "" {
		return []string{e.Element}
	}
	names := EncoderCandidates
	if len(e.Candidates) > 0 {
		names = e.Candidates
	}
	var out []string
	for _, name := range names {
		if reg.HasElement(name) {
			out = append(out, name)
		}
	}
	return out
}

// encoderProps maps the common knobs (bitrate, keyframe interval, low
// latency, no B-frames) onto each encoder's own properties, then applies
// Encoder.Properties, which win.
func encoderProps(element string, p Params, e Encoder) [][2]string {
	kbps := e.bitrate(p)
	gop := max(1, int(math.Round(e.KeyframeInterval.Seconds()*p.FPS)))
	var props [][2]string
	add := func(k string, v any) { props = append(props, [2]string{k, fmt.Sprint(v)}) }
	switch element {
	case "x264enc":
		add("tune", "zerolatency")
		add("speed-preset", e.preset())
		add("bframes", 0)
		add("key-int-max", gop)
		add("bitrate", kbps)
	case "nvv4l2h264enc": // Jetson: bit/s
		add("bitrate", kbps*1000)
		add("iframeinterval", gop)
		add("idrinterval", gop)
		add("insert-sps-pps", true)
		add("maxperf-enable", true)
	case "nvh264enc": // NVIDIA desktop (nvcodec)
		add("bitrate", kbps)
		add("gop-size", gop)
		add("bframes", 0)
		add("zerolatency", true)
		add("rc-lookahead", 0)
	case "vah264enc": // VA-API (va plugin)
		add("bitrate", kbps)
		add("key-int-max", gop)
		add("b-frames", 0)
		add("target-usage", 7)
	case "vaapih264enc": // VA-API (gstreamer-vaapi)
		add("bitrate", kbps)
		add("keyframe-period", gop)
		add("max-bframes", 0)
	case "v4l2h264enc": // V4L2 memory-to-memory (Raspberry Pi and others): bit/s
		add("extra-controls", fmt.Sprintf("controls,video_bitrate=%d,h264_i_frame_period=%d,repeat_sequence_header=1", kbps*1000, gop))
	}
	for k, v := range e.Properties {
		props = append(props, [2]string{k, v})
	}
	return props
}

func (e Encoder) preset() string {
	if e.Preset == "" {
		return DefaultPreset
	}
	return e.Preset
}
