package skyline

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

type fakeRegistry map[string]bool

func (r fakeRegistry) HasElement(n string) bool { return r[n] }

func TestEncoderChoicesOrder(t *testing.T) {
	all := fakeRegistry{"x264enc": true, "v4l2h264enc": true, "vaapih264enc": true, "vah264enc": true, "nvh264enc": true, "nvv4l2h264enc": true}
	cases := []struct {
		reg  fakeRegistry
		enc  Encoder
		want []string
	}{
		{all, Encoder{}, []string{"nvv4l2h264enc", "nvh264enc", "vah264enc", "vaapih264enc", "v4l2h264enc", "x264enc"}},
		{fakeRegistry{"x264enc": true, "vaapih264enc": true}, Encoder{}, []string{"vaapih264enc", "x264enc"}},
		{fakeRegistry{"x264enc": true}, Encoder{}, []string{"x264enc"}},
		{fakeRegistry{}, Encoder{}, nil},
		{all, Encoder{Element: "openh264enc"}, []string{"openh264enc"}}, // the user's choice, only
	}
	for _, c := range cases {
		if got := encoderChoices(c.reg, c.enc); !reflect.DeepEqual(got, c.want) {
			t.Errorf("encoderChoices(%v, %q) = %v, want %v", c.reg, c.enc.Element, got, c.want)
		}
	}
}

func TestEncoderKnobsMapped(t *testing.T) {
	p := Params{FPS: 30, Width: 1280, Height: 720}
	e := Encoder{Bitrate: 2000, KeyframeInterval: DefaultKeyframeInterval}
	want := map[string]map[string]string{
		"x264enc":       {"bitrate": "2000", "key-int-max": "60", "bframes": "0", "tune": "zerolatency"},
		"nvv4l2h264enc": {"bitrate": "2000000", "iframeinterval": "60"},
		"nvh264enc":     {"bitrate": "2000", "gop-size": "60", "bframes": "0"},
		"vah264enc":     {"bitrate": "2000", "key-int-max": "60", "b-frames": "0"},
		"vaapih264enc":  {"bitrate": "2000", "keyframe-period": "60", "max-bframes": "0"},
		"v4l2h264enc":   {"extra-controls": "controls,video_bitrate=2000000,h264_i_frame_period=60,repeat_sequence_header=1"},
	}
	for enc, kv := range want {
		got := map[string]string{}
		for _, p := range encoderProps(enc, p, e) {
			got[p[0]] = p[1]
		}
		for k, v := range kv {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", enc, k, got[k], v)
			}
		}
	}
	// User properties come last and win.
	props := encoderProps("x264enc", p, Encoder{Properties: map[string]string{"bitrate": "999"}})
	if last := props[len(props)-1]; last != [2]string{"bitrate", "999"} {
		t.Errorf("last property %v", last)
	}
}

// TestEncoderFallback: when the preferred encoder cannot start, the next
// one is used and the reason is logged.
func TestEncoderFallback(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := Config{NoDotEnv: true}.withDefaults()
	if err := setupEnvironment(cfg, log, false); err != nil {
		t.Fatal(err)
	}
	p := Params{FPS: 30, Width: 64, Height: 48}
	// "identity" exists but cannot encode; "nosuchenc" does not exist.
	s, err := openSession(p, cfg, []string{"nosuchenc", "identity", "x264enc"}, nil, nil, log, func(Event) {}, nil, newEncodeStats())
	if err != nil {
		t.Fatal(err)
	}
	if s.encoder != "x264enc" {
		t.Fatalf("encoder %s", s.encoder)
	}
	if err := s.close(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	s.encoded.Free()
	for _, want := range []string{"encoder cannot start", "nosuchenc", "identity", "using fallback encoder"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if _, err := openSession(p, cfg, []string{"nosuchenc"}, nil, nil, log, func(Event) {}, nil, newEncodeStats()); err == nil {
		t.Fatal("no encoder could start, but no error")
	}
}
