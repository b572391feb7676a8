package webrtc

import (
	"errors"
	"testing"
)

func TestDecodes(t *testing.T) {
	for _, c := range []struct {
		dec, stream string
		want        bool
	}{
		{"42e01f", "42c01e", true},  // x264 baseline (constraint_set0+1) in a CB decoder
		{"42e01f", "42e01f", true},  // CB in CB
		{"42e01f", "4d001f", false}, // Main in CB
		{"42e01f", "640020", false}, // High in CB
		{"42001f", "420028", true},  // Baseline (FMO possible) in Baseline
		{"4d001f", "420028", false}, // ... not in Main
		{"4d001f", "42c01f", true},  // CB in Main
		{"4d001f", "4d0029", true},  // Main in Main, another level
		{"4d001f", "640020", false}, // High in Main
		{"64001f", "640020", true},  // High in High
		{"640c1f", "640020", true},  // High in a Constrained High decoder (browsers decode High)
		{"64001f", "4d0029", true},  // Main in High
		{"f4001f", "640020", true},  // High in High 4:4:4
		{"zz", "640020", false},
	} {
		if got := decodes(c.dec, c.stream); got != c.want {
			t.Errorf("decodes(%s, %s) = %v, want %v", c.dec, c.stream, got, c.want)
		}
	}
}

func TestOfferedAndChosen(t *testing.T) {
	offer := "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100\r\n" +
		"a=rtpmap:96 VP8/90000\r\n" +
		"a=rtpmap:97 H264/90000\r\na=fmtp:97 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1\r\n" +
		"a=rtpmap:98 H264/90000\r\na=fmtp:98 profile-level-id=42e01f;level-asymmetry-allowed=1\r\n" + // mode 0
		"a=rtpmap:99 h264/90000\r\na=fmtp:99 packetization-mode=1;profile-level-id=4D001F\r\n" +
		"a=rtpmap:100 H264/90000\r\na=fmtp:100 packetization-mode=1;profile-level-id=64001f\r\n"
	got := offeredH264(offer)
	if want := []string{"42e01f", "4d001f", "64001f"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("offeredH264 = %q, want %q", got, want)
	}
	for _, c := range []struct {
		offered []string
		stream  string
		want    string
	}{
		{[]string{"42e01f", "4d001f", "64001f"}, "640020", "64001f"},
		{[]string{"42e01f", "4d001f", "64001f"}, "4d0029", "4d001f"},
		{[]string{"42e01f", "4d001f", "64001f"}, "42c01e", "42e01f"},
		{[]string{"64001f", "42e01f"}, "42c01e", "42e01f"},
		{[]string{"640c1f"}, "640020", "640c1f"},
		{[]string{"42001f", "42e01f", "4d001f", "f4001f"}, "64000d", "f4001f"}, // headless Chromium
		{[]string{"42001f", "42e01f", "4d001f", "f4001f"}, "4d0029", "4d001f"},
		{[]string{"42e01f"}, "640020", ""},
		{[]string{"42c01f"}, "42c01f", ""}, // not a format the server registers
		{nil, "640020", ""},
	} {
		got, err := chooseProfile(c.offered, c.stream)
		if got != c.want || (c.want == "") != errors.Is(err, errProfile) {
			t.Errorf("chooseProfile(%q, %s) = %q, %v; want %q", c.offered, c.stream, got, err, c.want)
		}
	}
}
