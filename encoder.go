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

// sizeLimit is the picture size range an encoder element encodes, where it
// is narrower than what Params allows (even 2..MaxDimension).
type sizeLimit struct {
	minW, minH, maxW, maxH int
	maxMBs                 int    // 16x16 macroblocks per picture; 0: no limit
	why                    string // the source of the limit, for the error
}

// encoderSizeLimits lists the encoders known to refuse sizes Params allows.
// Each entry is measured (GStreamer 1.22, see TestEncoderLimitsAreReal)
// and traced to its source. Encoders not listed encode every size Params
// allows, or their limits are not known:
//
//   - x264enc: none. x264enc encodes 2x2, 2x8192, 8192x2, 8190x8190 and
//     8192x8192 through SkyLine's pipeline, and ffmpeg decodes them at that
//     size. (8192x8192, 262144 macroblocks, is beyond the 139264 of H.264's
//     highest level, 6.2; x264 encodes it all the same, signalling 6.2.)
//   - the hardware encoders (nvv4l2h264enc, nvh264enc, vah264enc,
//     vaapih264enc, v4l2h264enc): not measured, no such hardware here. Their
//     limits depend on the device and driver; an entry belongs here once
//     measured on one.
var encoderSizeLimits = map[string]sizeLimit{
	// libopenh264 refuses pictures under 16 pixels wide or high
	// (CWelsH264SVCEncoder::EncodeFrameInternal in
	// codec/encoder/plus/src/welsEncoderExt.cpp: "Don't support width(%d)
	// or height(%d) which is less than 16!") and, at initialisation,
	// pictures whose size rounded up to whole macroblocks exceeds 9437184
	// pixels (ParamValidationExt in codec/encoder/core/src/encoder_ext.cpp:
	// "width * height <= 9437184"), i.e. 36864 macroblocks, H.264 level
	// 5.2's MaxFS: 4096x2304 encodes, 4096x2306 does not. Measured with
	// libopenh264 2.3.1; either way the stream failed at its first frame.
	"openh264enc": {minW: 16, minH: 16, maxW: MaxDimension, maxH: MaxDimension, maxMBs: 36864,
		why: "libopenh264: at least 16x16, at most 36864 16x16 macroblocks, e.g. 4096x2304"},
}

// checkSize reports, as an ErrInvalidParams error that names the limit,
// a stream size element cannot encode (which would otherwise fail the
// stream at its first frame). Dimensions not known yet (Auto, LastValue)
// are not checked: call it again with the size the warm-up picks.
func checkSize(element string, p Params) error {
	l, ok := encoderSizeLimits[element]
	if !ok {
		return nil
	}
	for _, d := range []struct {
		name      string
		v, lo, hi int
	}{{"width", p.Width, l.minW, l.maxW}, {"height", p.Height, l.minH, l.maxH}} {
		if d.v > 0 && (d.v < d.lo || d.v > d.hi) {
			return paramErr("%s %d: %s encodes %d..%d (%s)", d.name, d.v, element, d.lo, d.hi, l.why)
		}
	}
	if mbs := ((p.Width + 15) / 16) * ((p.Height + 15) / 16); l.maxMBs > 0 && p.Width > 0 && p.Height > 0 && mbs > l.maxMBs {
		return paramErr("%dx%d is %d macroblocks: %s encodes at most %d (%s)", p.Width, p.Height, mbs, element, l.maxMBs, l.why)
	}
	return nil
}
