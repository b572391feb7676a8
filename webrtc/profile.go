package webrtc

import (
	"encoding/hex"
	"fmt"
	pion "github.com/pion/webrtc/v4"
	"strings"
)

// H.264 profiles and which decoders play which streams (ITU-T H.264 Annex
// A; profile-level-id: RFC 6184 section 8.1, three bytes profile_idc,
// constraint flags, level_idc). A WHEP offer lists the H.264 variants the
// browser decodes; the stream must be one of them, or a subset.

// profileRank orders the profiles by what their decoders accept: a decoder
// of rank r plays every stream of rank <= r. Constrained Baseline (and
// x264's baseline output, which sets constraint_set1) is 1, Main 2, High
// and its extensions 3. Baseline without constraint_set1 (FMO/ASO allowed)
// is 1 for a Baseline decoder only: see decodes.
func profileRank(idc byte) int {
	switch idc {
	case 66: // Baseline, Constrained Baseline
		return 1
	case 77: // Main
		return 2
	case 100, 110, 122, 244: // High, High 10, High 4:2:2, High 4:4:4
		return 3
	}
	return 0
}

// profileName names a profile-level-id for people.
func profileName(pli string) string {
	b, err := hex.DecodeString(pli)
	if err != nil || len(b) != 3 {
		return "H.264 (" + pli + ")"
	}
	name := ""
	switch b[0] {
	case 66:
		name = "Baseline"
		if b[1]&0x40 != 0 {
			name = "Constrained Baseline"
		}
	case 77:
		name = "Main"
	case 100:
		name = "High"
		if b[1]&0x0c == 0x0c {
			name = "Constrained High"
		}
	case 110:
		name = "High 10"
	case 122:
		name = "High 4:2:2"
	case 244:
		name = "High 4:4:4"
	default:
		name = fmt.Sprintf("profile_idc %d", b[0])
	}
	return name + " (" + pli + ")"
}

// decodes tells whether a decoder announced with profile-level-id dec
// plays a stream whose SPS has profile-level-id stream (levels are not
// compared: browsers announce level 3.1 and decode higher levels).
func decodes(dec, stream string) bool {
	d, err1 := hex.DecodeString(dec)
	s, err2 := hex.DecodeString(stream)
	if err1 != nil || err2 != nil || len(d) != 3 || len(s) != 3 {
		return false
	}
	rd, rs := profileRank(d[0]), profileRank(s[0])
	if rd == 0 || rs == 0 {
		return d[0] == s[0]
	}
	if s[0] == 66 && s[1]&0x40 == 0 {
		// Baseline with FMO/ASO possible: Baseline decoders only.
		return d[0] == 66 && d[1]&0x40 == 0
	}
	return rd >= rs
}

// offeredH264 lists the profile-level-ids of the offer's H.264 formats
// with packetization-mode=1 (the only mode the server sends), in the
// offer's order of preference.
func offeredH264(offer string) []string {
	h264 := map[string]bool{}
	var pts []string
	fmtp := map[string]string{}
	for _, l := range strings.Split(offer, "\n") {
		l = strings.TrimSpace(l)
		if rest, ok := strings.CutPrefix(l, "a=rtpmap:"); ok {
			pt, enc, _ := strings.Cut(rest, " ")
			if strings.EqualFold(enc, "H264/90000") {
				if !h264[pt] {
					pts = append(pts, pt)
				}
				h264[pt] = true
			}
		} else if rest, ok := strings.CutPrefix(l, "a=fmtp:"); ok {
			pt, params, _ := strings.Cut(rest, " ")
			fmtp[pt] = params
		}
	}
	var out []string
	for _, pt := range pts {
		mode, pli := "0", "42001f" // RFC 6184 defaults
		for _, p := range strings.Split(fmtp[pt], ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			switch strings.ToLower(k) {
			case "packetization-mode":
				mode = v
			case "profile-level-id":
				pli = strings.ToLower(v)
			}
		}
		if mode == "1" {
			out = append(out, pli)
		}
	}
	return out
}

// registered tells whether the server's media engine has an H.264 format
// that matches pli (pion matches profile_idc and the constraint flags).
func registered(pli string) bool {
	for _, c := range h264Codecs {
		if len(pli) == 6 && c.profile[:4] == pli[:4] {
			return true
		}
	}
	return false
}

// chooseProfile picks the label to answer a stream of profile-level-id
// stream with: an offered profile whose decoders play it, the lowest rank
// first (the closest to the stream), preferring an exact profile match.
// When none does, the error (wrapping errProfile) says why, for the page.
func chooseProfile(offered []string, stream string) (string, error) {
	best, bestRank := "", 99
	for _, o := range offered {
		if !registered(o) || !decodes(o, stream) {
			continue
		}
		b, _ := hex.DecodeString(o)
		r := profileRank(b[0])
		if o[:4] == stream[:4] {
			r = 0 // the same profile and constraints
		}
		if r < bestRank {
			best, bestRank = o, r
		}
	}
	if best != "" {
		return best, nil
	}
	var names []string
	for _, o := range offered {
		names = append(names, profileName(o))
	}
	if len(names) == 0 {
		names = []string{"none with packetization-mode=1"}
	}
	return "", fmt.Errorf("%w: it is H.264 %s and the viewer decodes %s; "+
		"stream the baseline profile for it (skyline serve --profile baseline, Encoder.Profile \"baseline\")",
		errProfile, profileName(stream), strings.Join(names, ", "))
}

// answerCodec is the server's registered H.264 format matching label, the
// only one the answer may list (so that it never lists a profile that
// does not describe the stream). Its payload type is left 0: pion then
// takes the one the offer gave it.
func answerCodec(label string) (pion.RTPCodecParameters, bool) {
	for _, c := range h264Codecs {
		if len(label) == 6 && c.profile[:4] == label[:4] {
			return pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeH264,
				ClockRate: 90000, SDPFmtpLine: h264Fmtp(c.profile), RTCPFeedback: h264Feedback}}, true
		}
	}
	return pion.RTPCodecParameters{}, false
}
