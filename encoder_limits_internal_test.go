package skyline

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/gst"
)

func TestCheckSize(t *testing.T) {
	for _, c := range []struct {
		enc  string
		p    Params
		want string // "" = accepted, else a part of the error
	}{
		{"x264enc", Params{FPS: 30, Width: 2, Height: 2}, ""},
		{"x264enc", Params{FPS: 30, Width: MaxDimension, Height: MaxDimension}, ""},
		{"nvh264enc", Params{FPS: 30, Width: 2, Height: 2}, ""}, // not measured: not refused
		{"openh264enc", Params{FPS: 30, Width: 16, Height: 16}, ""},
		{"openh264enc", Params{FPS: 30, Width: 4096, Height: 2304}, ""},
		{"openh264enc", Params{FPS: 30, Width: 16, Height: 8192}, ""},
		{"openh264enc", Params{FPS: 30, Width: 14, Height: 16}, "width 14: openh264enc encodes 16..8192 (libopenh264"},
		{"openh264enc", Params{FPS: 30, Width: 640, Height: 2}, "height 2: openh264enc encodes 16..8192"},
		{"openh264enc", Params{Height: 14}, "height 14"}, // the width is measured later
		{"openh264enc", Params{Width: LastValue, Height: Auto}, ""},
		{"openh264enc", Params{FPS: 30, Width: 4096, Height: 2306}, "4096x2306 is 37120 macroblocks: openh264enc encodes at most 36864"},
		{"openh264enc", Params{FPS: 30, Width: 4124, Height: 2288}, "4124x2288 is 36894 macroblocks"},
	} {
		err := checkSize(c.enc, c.p)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %+v: %v", c.enc, c.p, err)
		case c.want != "" && (!errors.Is(err, ErrInvalidParams) || !strings.Contains(fmt.Sprint(err), c.want)):
			t.Errorf("%s %+v: %v, want ErrInvalidParams with %q", c.enc, c.p, err, c.want)
		}
	}
	if _, listed := encoderSizeLimits["x264enc"]; listed {
		t.Error("x264enc encodes every size Params allows: it has no entry")
	}
}

// TestEncoderLimitsAreReal: each encoder in encoderSizeLimits (when
// installed) encodes a picture at its limits and fails just beyond them;
// x264enc encodes the smallest and the longest, thinnest sizes Params
// allows. A new version of an encoder that moves a limit fails here.
func TestEncoderLimitsAreReal(t *testing.T) {
	if err := gst.Init(); err != nil {
		t.Fatal(err)
	}
	type size struct{ w, h int }
	cases := map[string]struct{ ok, fail []size }{
		"x264enc": {ok: []size{{2, 2}, {2, 8192}, {8192, 2}}},
		// 36864 macroblocks: 4096x2304, 8192x1152, 4112x2288 (257x143);
		// 4124x2288 is 258x143 = 36894
		"openh264enc": {
			ok:   []size{{16, 16}, {16, 8192}, {8192, 16}, {4096, 2304}, {8192, 1152}, {4112, 2288}},
			fail: []size{{14, 16}, {16, 14}, {2, 2}, {4096, 2306}, {8192, 1154}, {4124, 2288}},
		},
	}
	for enc := range encoderSizeLimits {
		if _, ok := cases[enc]; !ok {
			t.Errorf("no measurement of %s's limits here", enc)
		}
	}
	for enc, c := range cases {
		if !gst.HasElement(enc) {
			t.Logf("%s not installed", enc)
			continue
		}
		for _, s := range c.ok {
			if err := encodeOne(enc, s.w, s.h); err != nil {
				t.Errorf("%s %dx%d: %v", enc, s.w, s.h, err)
			}
			if err := checkSize(enc, Params{FPS: 30, Width: s.w, Height: s.h}); err != nil {
				t.Errorf("%s %dx%d encodes, but checkSize: %v", enc, s.w, s.h, err)
			}
		}
		for _, s := range c.fail {
			if err := encodeOne(enc, s.w, s.h); err == nil {
				t.Errorf("%s %dx%d encodes: the limit moved", enc, s.w, s.h)
			}
			if err := checkSize(enc, Params{FPS: 30, Width: s.w, Height: s.h}); err == nil {
				t.Errorf("%s %dx%d fails, but checkSize accepts it", enc, s.w, s.h)
			}
		}
	}
}

// encodeOne encodes one I420 test picture of w x h with element.
func encodeOne(element string, w, h int) error {
	p, err := gst.ParseLaunch(fmt.Sprintf("videotestsrc num-buffers=1 ! video/x-raw,format=I420,width=%d,height=%d,framerate=30/1 ! %s ! fakesink", w, h, element))
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.SetState(gst.StatePlaying); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		m, ok := p.PopMessage(time.Second)
		if !ok {
			continue
		}
		switch m.Kind {
		case gst.MsgEOS:
			return nil
		case gst.MsgError:
			return errors.New(m.String())
		}
	}
	return errors.New("no end of stream in a minute")
}
