package skyline_test

import (
	"errors"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
)

func TestBadFrames(t *testing.T) {
	sl := newTestSkyLine(t, newClock(30), skyline.Config{QueueSize: 64})
	if err := sl.Start(skyline.Params{FPS: 30, Width: 64, Height: 48}); err != nil {
		t.Fatal(err)
	}
	good := make([]byte, 64*48*3)
	cases := []struct {
		name string
		f    skyline.Frame
		msg  string
	}{
		{"nil buffer", skyline.FrameBGR(nil, 64, 48, 0), "nil pixel buffer"},
		{"short buffer", skyline.FrameBGR(good[:100], 64, 48, 0), "short"},
		{"one byte short", skyline.FrameBGR(good[:len(good)-1], 64, 48, 0), "short"},
		{"stride too small", skyline.FrameBGR(good, 64, 48, 100), "stride"},
		{"stride too large for buffer", skyline.FrameBGR(good, 64, 48, 64*3+1), "short"},
		{"zero width", skyline.FrameBGR(good, 0, 48, 0), "size"},
		{"negative height", skyline.FrameBGR(good, 64, -1, 0), "size"},
		{"huge", skyline.FrameBGR(good, 100000, 48, 0), "size"},
		{"unknown format", skyline.Frame{Format: 99, Width: 64, Height: 48, Data: good}, "pixel format"},
		{"zero format", skyline.Frame{Width: 64, Height: 48, Data: good}, "pixel format"},
		{"odd i420", skyline.Frame{Format: skyline.FormatI420, Width: 63, Height: 48, Data: good, U: good, V: good}, "odd"},
		{"i420 short U", skyline.Frame{Format: skyline.FormatI420, Width: 64, Height: 48, Data: good, U: good[:10], V: good}, "U plane"},
		{"i420 nil V", skyline.Frame{Format: skyline.FormatI420, Width: 64, Height: 48, Data: good, U: good}, "V plane"},
		{"i420 bad chroma stride", skyline.Frame{Format: skyline.FormatI420, Width: 64, Height: 48, Data: good, U: good, V: good, StrideU: 3}, "stride"},
		// Strides that overflow int arithmetic or C's 32-bit int (issue 10,
		// observation 8): each must be refused before the conversion, which
		// would read far outside the buffer.
		{"stride MaxInt", skyline.FrameBGR(good, 64, 48, math.MaxInt), "Stride = 9223372036854775807: a row stride must be at most 2147483647"},
		{"stride MaxInt/2", skyline.FrameBGR(good, 64, 48, math.MaxInt/2), "at most 2147483647"},
		{"stride 1<<31", skyline.FrameBGR(good, 64, 48, 1<<31), "at most 2147483647"},
		{"stride 1<<40 small data", skyline.FrameBGR(good[:300], 64, 48, 1<<40), "at most 2147483647"},
		{"stride MaxInt32 short buffer", skyline.FrameBGR(good, 64, 48, math.MaxInt32), "short"},
		{"negative stride", skyline.FrameBGR(good, 64, 48, -64*3), "negative"},
		{"stride MinInt", skyline.FrameBGR(good, 64, 48, math.MinInt), "negative"},
		{"Height*Stride wraps to a small size", skyline.FrameBGR(good, 64, 48, wrappingStride(48, 64*3, len(good))), "at most 2147483647"},
		{"rgba Height*Stride wraps", skyline.Frame{Format: skyline.FormatRGBA, Width: 64, Height: 48, Data: good, Stride: wrappingStride(48, 64*4, len(good))}, "at most 2147483647"},
		{"i420 negative Y stride", skyline.Frame{Format: skyline.FormatI420, Width: 64, Height: 48, Data: good, U: good, V: good, Stride: -64}, "negative"},
		{"i420 huge Y stride", skyline.Frame{Format: skyline.FormatI420, Width: 64, Height: 48, Data: good, U: good, V: good, Stride: math.MaxInt}, "at most 2147483647"},
		{"i420 StrideU MaxInt", skyline.Frame{Format: skyline.FormatI420, Width: 64, Height: 48, Data: good, U: good, V: good, StrideU: math.MaxInt}, "StrideU = 9223372036854775807: a row stride must be at most 2147483647"},
		{"i420 StrideV MaxInt", skyline.Frame{Format: skyline.FormatI420, Width: 64, Height: 48, Data: good, U: good, V: good, StrideV: math.MaxInt}, "StrideV"},
		{"i420 StrideU 1<<40", skyline.Frame{Format: skyline.FormatI420, Width: 64, Height: 48, Data: good, U: good, V: good, StrideU: 1 << 40}, "at most 2147483647"},
		{"i420 StrideV 1<<31", skyline.Frame{Format: skyline.FormatI420, Width: 64, Height: 48, Data: good, U: good, V: good, StrideV: 1 << 31}, "at most 2147483647"},
		{"i420 negative StrideV", skyline.Frame{Format: skyline.FormatI420, Width: 64, Height: 48, Data: good, U: good, V: good, StrideV: -32}, "negative"},
		{"i420 StrideU wraps", skyline.Frame{Format: skyline.FormatI420, Width: 64, Height: 48, Data: good, U: good, V: good, StrideU: wrappingStride(24, 32, len(good))}, "StrideU"},
		{"i420 StrideV wraps", skyline.Frame{Format: skyline.FormatI420, Width: 64, Height: 48, Data: good, U: good, V: good, StrideV: wrappingStride(24, 32, len(good))}, "StrideV"},
		{"ycbcr StrideV MaxInt/2", skyline.Frame{Format: skyline.FormatYCbCr420, Width: 64, Height: 48, Data: good, U: good, V: good, StrideV: math.MaxInt / 2}, "StrideV"},
		{"width MaxInt", skyline.FrameBGR(good, math.MaxInt, 48, 0), "size"},
		{"height MinInt", skyline.FrameBGR(good, 64, math.MinInt, 0), "size"},
		{"MaxInt square", skyline.FrameBGR(good, math.MaxInt, math.MaxInt, math.MaxInt), "size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok, err := sl.Put(c.f)
			if ok || !errors.Is(err, skyline.ErrInvalidFrame) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Put = %v, %v; want ErrInvalidFrame mentioning %q", ok, err, c.msg)
			}
		})
	}
	// A good frame still goes through after all that.
	mustPut(t, sl, skyline.FrameBGR(good, 64, 48, 0), true)
	if st := sl.Stats(); st.Accepted != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// wrappingStride returns a positive stride s such that s*(h-1)+rowBytes,
// computed in int, wraps around to at most limit bytes (h-1 must be odd):
// an unchecked product passes the buffer length check. Its low 32 bits,
// what a C int keeps, are a large positive stride, so the old code read far
// outside the buffer.
func wrappingStride(h, rowBytes, limit int) int {
	r := uint64(h - 1)
	inv := r // Newton's iteration for the inverse of an odd r modulo 2^64
	for i := 0; i < 5; i++ {
		inv *= 2 - r*inv
	}
	for c := uint64(0); c <= uint64(limit-rowBytes); c++ {
		s := c * inv
		if int(s) >= rowBytes && int32(s) >= 1<<24 {
			return int(s)
		}
	}
	panic("no wrapping stride")
}

func TestBadImages(t *testing.T) {
	var nilRGBA *image.RGBA
	cases := []struct {
		name string
		img  image.Image
	}{
		{"nil", nil},
		{"nil RGBA", nilRGBA},
		{"YCbCr 4:2:2", image.NewYCbCr(image.Rect(0, 0, 64, 48), image.YCbCrSubsampleRatio422)},
		{"YCbCr odd origin", image.NewYCbCr(image.Rect(0, 0, 64, 48), image.YCbCrSubsampleRatio420).SubImage(image.Rect(1, 1, 33, 33))},
		{"paletted", image.NewPaletted(image.Rect(0, 0, 8, 8), nil)},
		{"empty RGBA", image.NewRGBA(image.Rect(0, 0, 0, 0))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := skyline.FrameFromImage(c.img); !errors.Is(err, skyline.ErrInvalidFrame) {
				if err == nil {
					f, _ := skyline.FrameFromImage(c.img)
					sl := newTestSkyLine(t, newClock(30), skyline.Config{})
					if _, err := sl.Put(f); errors.Is(err, skyline.ErrInvalidFrame) {
						return
					}
				}
				t.Fatalf("FrameFromImage: %v, want ErrInvalidFrame", err)
			}
		})
	}
	// PutImage converts what FrameFromImage cannot take directly.
	sl := newTestSkyLine(t, newClock(30), skyline.Config{QueueSize: 64}) // every good image is accepted, however busy the machine
	if err := sl.Start(skyline.Params{FPS: 30, Width: 8, Height: 8}); err != nil {
		t.Fatal(err)
	}
	for _, img := range []image.Image{
		image.NewPaletted(image.Rect(0, 0, 8, 8), color.Palette{color.Black}),
		image.NewYCbCr(image.Rect(0, 0, 8, 8), image.YCbCrSubsampleRatio444),
		image.NewGray16(image.Rect(0, 0, 8, 8)),
		image.NewGray(image.Rect(0, 0, 8, 8)),
		image.NewNRGBA(image.Rect(2, 2, 10, 10)),
	} {
		if ok, err := sl.PutImage(img); !ok || err != nil {
			t.Fatalf("PutImage(%T) = %v, %v", img, ok, err)
		}
	}
	if ok, err := sl.PutImage(nil); ok || !errors.Is(err, skyline.ErrInvalidFrame) {
		t.Fatalf("PutImage(nil) = %v, %v", ok, err)
	}

	// Images PutImage and FrameFromImage must refuse with ErrInvalidFrame,
	// never a panic (issue 10, observation 8): infinite, huge or empty
	// bounds, and pixel slices or strides that disagree with the bounds.
	huge := image.Rectangle{Min: image.Pt(math.MinInt, math.MinInt), Max: image.Pt(math.MaxInt, math.MaxInt)}
	for _, c := range []struct {
		name string
		img  image.Image
	}{
		{"uniform", image.NewUniform(color.White)},
		{"uniform transparent", image.Transparent},
		{"infinite paletted", &image.Paletted{Rect: huge, Palette: color.Palette{color.White}}},
		{"infinite RGBA", &image.RGBA{Rect: huge}},
		{"infinite YCbCr", &image.YCbCr{Rect: huge, SubsampleRatio: image.YCbCrSubsampleRatio420}},
		{"2e9 square NRGBA64", &image.NRGBA64{Rect: image.Rect(-1e9, -1e9, 1e9, 1e9)}},
		{"too wide NRGBA64", &image.NRGBA64{Rect: image.Rect(0, 0, skyline.MaxDimension+2, 8), Stride: (skyline.MaxDimension + 2) * 8}},
		{"too tall Gray16", &image.Gray16{Rect: image.Rect(0, 0, 8, skyline.MaxDimension+2), Stride: 16}},
		{"too wide RGBA", &image.RGBA{Rect: image.Rect(0, 0, skyline.MaxDimension+2, 8), Stride: (skyline.MaxDimension + 2) * 4}},
		{"too tall Gray", &image.Gray{Rect: image.Rect(0, 0, 8, 1<<40), Stride: 8}},
		{"empty NRGBA64", image.NewNRGBA64(image.Rect(5, 5, 5, 9))},
		{"inverted paletted", &image.Paletted{Rect: image.Rectangle{Min: image.Pt(8, 8)}, Palette: color.Palette{color.White}}},
		{"empty sub-image", image.NewRGBA(image.Rect(0, 0, 8, 8)).SubImage(image.Rect(20, 20, 30, 30))},
		{"empty YCbCr 4:4:4", image.NewYCbCr(image.Rectangle{}, image.YCbCrSubsampleRatio444)},
		{"RGBA with short Pix", &image.RGBA{Rect: image.Rect(0, 0, 8, 8), Stride: 32, Pix: make([]byte, 100)}},
		{"RGBA with nil Pix", &image.RGBA{Rect: image.Rect(0, 0, 8, 8), Stride: 32}},
		{"RGBA with MaxInt stride", &image.RGBA{Rect: image.Rect(0, 0, 8, 8), Stride: math.MaxInt, Pix: make([]byte, 256)}},
		{"RGBA with wrapping stride", &image.RGBA{Rect: image.Rect(0, 0, 64, 48), Stride: wrappingStride(48, 256, 64*48*4), Pix: make([]byte, 64*48*4)}},
		{"NRGBA with negative stride", &image.NRGBA{Rect: image.Rect(0, 0, 8, 8), Stride: -32, Pix: make([]byte, 256)}},
		{"negative-origin Gray with short Pix", &image.Gray{Rect: image.Rect(-8, -8, 8, 8), Stride: 16, Pix: make([]byte, 16)}},
		{"YCbCr with short planes", &image.YCbCr{Rect: image.Rect(0, 0, 8, 8), SubsampleRatio: image.YCbCrSubsampleRatio420, YStride: 8, CStride: 4, Y: make([]byte, 10)}},
		{"YCbCr with MaxInt CStride", &image.YCbCr{Rect: image.Rect(0, 0, 8, 8), SubsampleRatio: image.YCbCrSubsampleRatio420, YStride: 8, CStride: math.MaxInt, Y: make([]byte, 64), Cb: make([]byte, 16), Cr: make([]byte, 16)}},
		{"NRGBA64 with short Pix", &image.NRGBA64{Rect: image.Rect(0, 0, 8, 8), Stride: 64, Pix: make([]byte, 10)}},
		{"Paletted with short Pix", &image.Paletted{Rect: image.Rect(0, 0, 8, 8), Stride: 8, Pix: make([]byte, 3), Palette: color.Palette{color.White}}},
		{"YCbCr 4:2:2 with nil planes", &image.YCbCr{Rect: image.Rect(0, 0, 8, 8), SubsampleRatio: image.YCbCrSubsampleRatio422, YStride: 8, CStride: 4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if f, err := skyline.FrameFromImage(c.img); err == nil {
				if ok, err := sl.Put(f); ok || !errors.Is(err, skyline.ErrInvalidFrame) {
					t.Errorf("Put(FrameFromImage) = %v, %v; want ErrInvalidFrame", ok, err)
				}
			} else if !errors.Is(err, skyline.ErrInvalidFrame) {
				t.Errorf("FrameFromImage: %v, want ErrInvalidFrame", err)
			}
			if ok, err := sl.PutImage(c.img); ok || !errors.Is(err, skyline.ErrInvalidFrame) {
				t.Errorf("PutImage = %v, %v; want ErrInvalidFrame", ok, err)
			}
		})
	}

	// Sub-images, negative origins and odd sizes are fine.
	for _, img := range []image.Image{
		image.NewRGBA(image.Rect(-20, -20, 60, 40)).SubImage(image.Rect(-8, -6, 56, 42)),
		image.NewNRGBA(image.Rect(-7, -3, 10, 12)),
		image.NewGray(image.Rect(0, 0, 40, 30)).SubImage(image.Rect(3, 5, 20, 18)),
		image.NewYCbCr(image.Rect(-16, -16, 16, 16), image.YCbCrSubsampleRatio420).SubImage(image.Rect(-8, -4, 8, 12)),
		image.NewYCbCr(image.Rect(-16, -16, 16, 16), image.YCbCrSubsampleRatio420).SubImage(image.Rect(-7, -5, 8, 12)),
		image.NewPaletted(image.Rect(-5, -5, 5, 5), color.Palette{color.White}).SubImage(image.Rect(-3, -3, 2, 4)),
		image.NewNRGBA64(image.Rect(0, 0, 1, 1)),
		image.NewYCbCr(image.Rect(0, 0, 33, 17), image.YCbCrSubsampleRatio420), // odd size: converted
		image.NewRGBA(image.Rect(0, 0, skyline.MaxDimension, 2)),
	} {
		if ok, err := sl.PutImage(img); !ok {
			t.Errorf("PutImage(%T %v) = %v, %v", img, img.Bounds(), ok, err)
		}
	}
}

func TestBadParams(t *testing.T) {
	sl := newTestSkyLine(t, newClock(30), skyline.Config{})
	for _, p := range []skyline.Params{
		{FPS: -1, Width: 64, Height: 48},
		{FPS: math.NaN(), Width: 64, Height: 48},
		{FPS: math.Inf(1), Width: 64, Height: 48},
		{FPS: 5000, Width: 64, Height: 48},
		{FPS: 30, Width: -2, Height: 48},
		{FPS: 30, Width: 63, Height: 48},
		{FPS: 30, Width: 64, Height: 47},
		{FPS: 30, Width: 64, Height: 1 << 20},
	} {
		if err := sl.Start(p); !errors.Is(err, skyline.ErrInvalidParams) {
			t.Errorf("Start(%+v) = %v, want ErrInvalidParams", p, err)
		}
		if sl.State() != skyline.StateStopped {
			t.Errorf("Start(%+v) left state %v", p, sl.State())
		}
	}
}

func TestBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  skyline.Config
		want error
		msg  string
	}{
		{"unknown encoder property", skyline.Config{Encoder: skyline.Encoder{Properties: map[string]string{"no-such-prop": "1"}}}, skyline.ErrInvalidConfig, "no-such-prop"},
		{"bad encoder value", skyline.Config{Encoder: skyline.Encoder{Properties: map[string]string{"bitrate": "fast"}}}, skyline.ErrInvalidConfig, "bitrate"},
		{"out of range encoder value", skyline.Config{Encoder: skyline.Encoder{Properties: map[string]string{"bframes": "99"}}}, skyline.ErrInvalidConfig, "bframes"},
		{"bad preset", skyline.Config{Encoder: skyline.Encoder{Preset: "warp-speed"}}, skyline.ErrInvalidConfig, "speed-preset"},
		{"injection in element", skyline.Config{Encoder: skyline.Encoder{Element: "x264enc ! fakesink"}}, skyline.ErrInvalidConfig, "element name"},
		{"missing encoder", skyline.Config{Encoder: skyline.Encoder{Element: "nosuchenc"}}, skyline.ErrMissingElement, "nosuchenc"},
		{"bad profile", skyline.Config{Encoder: skyline.Encoder{Profile: "ultra"}}, skyline.ErrInvalidConfig, "Profile"},
		{"negative queue", skyline.Config{QueueSize: -1}, skyline.ErrInvalidConfig, "QueueSize"},
		{"warm-up of one frame", skyline.Config{WarmupFrames: 1}, skyline.ErrInvalidConfig, "WarmupFrames"},
		{"bad drop policy", skyline.Config{Drop: 7}, skyline.ErrInvalidConfig, "Drop"},
		{"negative bitrate", skyline.Config{Encoder: skyline.Encoder{Bitrate: -5}}, skyline.ErrInvalidConfig, "Bitrate"},
		{"missing dotenv", skyline.Config{DotEnvPath: "/nonexistent/.env"}, skyline.ErrInvalidConfig, ".env"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.NoDotEnv = c.cfg.DotEnvPath == ""
			sl, err := skyline.New(c.cfg)
			if sl != nil || !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("New = %v, %v; want %v mentioning %q", sl, err, c.want, c.msg)
			}
		})
	}
	if _, err := skyline.New(skyline.Config{NoDotEnv: true}, nil); !errors.Is(err, skyline.ErrInvalidConfig) {
		t.Errorf("nil destination: %v", err)
	}
	a, _ := skyline.NewFile(filepath.Join(t.TempDir(), "a.mp4"))
	if _, err := skyline.New(skyline.Config{NoDotEnv: true}, a, a); !errors.Is(err, skyline.ErrInvalidConfig) {
		t.Errorf("duplicate destination: %v", err)
	}
}

func TestMissingElementSaysHowToInstall(t *testing.T) {
	_, err := skyline.New(skyline.Config{NoDotEnv: true, Encoder: skyline.Encoder{Element: "nvv4l2h264enc"}})
	var me *skyline.MissingElementsError
	if !errors.As(err, &me) || len(me.Missing) != 1 || me.Missing[0] != "nvv4l2h264enc" {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(err.Error(), "JetPack") {
		t.Fatalf("no install hint: %v", err)
	}
	if h := skyline.InstallHint("kvssink"); !strings.Contains(h, "GST_PLUGIN_PATH") || !strings.Contains(h, "native") {
		t.Fatalf("kvssink hint: %s", h)
	}
}

func TestBadFileDestinations(t *testing.T) {
	for _, p := range []string{"", "out.avi", "out", "/nonexistent-dir/out.mp4"} {
		if _, err := skyline.NewFile(p); !errors.Is(err, skyline.ErrInvalidConfig) {
			t.Errorf("NewFile(%q) = %v, want ErrInvalidConfig", p, err)
		}
	}
}

// TestBadSegmentPatterns: a segment pattern takes exactly one integer verb
// (%d with flags and a width). Any other verb made names such as
// "cam-%!s(int=0).mp4" (%s in a folder whose name has a d in it), a NUL
// byte (%c, which filesink cuts the name at) or quotes (%q).
func TestBadSegmentPatterns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "recordings") // a 'd' in the folder's name
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"cam-%s.mp4", "cam-%c-d.mp4", "cam-%q-d.mp4", "cam-%v.mp4", "cam-%x.mp4", "cam-%*d.mp4",
		"cam-%[1]d.mp4", "cam-%.mp4", "cam-%5.2f.mp4", "cam-%d-%.mp4", "cam-d%.mp4"} {
		if _, err := skyline.NewSegmentedFile(filepath.Join(dir, p), time.Second, 0); !errors.Is(err, skyline.ErrInvalidConfig) {
			t.Errorf("NewSegmentedFile(%q) = %v, want ErrInvalidConfig", p, err)
		}
	}
	for _, p := range []string{"cam-%d.mp4", "cam-%05d.mp4", "cam-%-3d.mkv", "%d.ts", "cam-%02d-x.mov"} {
		if _, err := skyline.NewSegmentedFile(filepath.Join(dir, p), time.Second, 0); err != nil {
			t.Errorf("NewSegmentedFile(%q): %v", p, err)
		}
	}
}
