package skyline_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/kvs/kvslocal"
)

// readmeSnippet is how a test runs one Go block of README.md as written:
// the block is the body of main between pre and post (free variables such
// as the frames come from pre; post reports what happened); only fixed
// listening ports are replaced by free ones.
type readmeSnippet struct {
	name      string
	key       string // a line that identifies the block
	imports   []string
	pre, post string
	module    string                                  // the module folder to build in (default: this one)
	setup     func(t *testing.T, dir string) []string // prepares dir; extra environment
	check     func(t *testing.T, dir, out string)
}

// rtspPre makes the *rtsp.Stream the multi-destination and metrics blocks
// use as "stream".
const rtspPre = `srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: "127.0.0.1:0", DisableUDP: true, DisableMulticast: true})
if err != nil {
	log.Fatal(err)
}
if err := srv.Start(); err != nil {
	log.Fatal(err)
}
defer srv.Close()
stream, err := srv.AddStream("/cam", rtsp.StreamOptions{})
if err != nil {
	log.Fatal(err)
}
`

// put60 streams 60 numbered 160x120 frames (2 s at 30 fps) into sl.
const put60 = `if err := sl.Start(skyline.Params{FPS: 30, Width: 160, Height: 120}); err != nil {
	log.Fatal(err)
}
for i := 0; i < 60; i++ {
	if ok, err := sl.Put(skyline.FrameBGR(testpattern.NewBGR(160, 120, i), 160, 120, 0)); !ok {
		log.Fatal(err)
	}
}
sl.Stop()
`

// TestReadmeSnippets compiles and runs every Go block of README.md. The
// ten-line recording and RTSP examples get 300 frames from memory (as fast
// as a loop can hand them over): all 300 must be recorded and sent, and the
// recording must last 10.0 s at 30 fps.
func TestReadmeSnippets(t *testing.T) {
	snippets := []readmeSnippet{{
		name:    "record",
		key:     `dst, _ := skyline.NewFile("out.mp4")`,
		imports: []string{"log", "github.com/skyline-go/skyline", "github.com/skyline-go/skyline/internal/testpattern"},
		pre: `frames := make(chan []byte)
go func() {
	var mem [][]byte
	for i := 0; i < 10; i++ {
		mem = append(mem, testpattern.NewBGR(1280, 720, i))
	}
	for i := 0; i < 300; i++ {
		frames <- mem[i%len(mem)]
	}
	close(frames)
}()
`,
		post: `st := sl.Stats()
log.Printf("RESULT accepted=%d dropped=%d written=%d", st.Accepted, st.Dropped, st.Written)
`,
		check: func(t *testing.T, dir, out string) {
			if !strings.Contains(out, "RESULT accepted=300 dropped=0 written=300") {
				t.Errorf("recording example: want 300 frames accepted and written, none dropped:\n%s", out)
			}
			path := filepath.Join(dir, "out.mp4")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			st, err := mediatest.Probe(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			dur := probeDuration(t, path)
			t.Logf("out.mp4: %d frames, %.3f s", st.Frames, dur)
			if st.Frames != 300 || st.Width != 1280 || st.Height != 720 || dur < 9.99 || dur > 10.01 {
				t.Errorf("out.mp4: %d frames %dx%d lasting %.3f s, want 300 frames 1280x720 lasting 10.0 s", st.Frames, st.Width, st.Height, dur)
			}
		},
	}, {
		name:    "rtsp",
		key:     `srv, _ := rtsp.NewServer(rtsp.ServerConfig{Address: ":8554"})`,
		imports: []string{"fmt", "image", "log", "time", "github.com/skyline-go/skyline", "github.com/skyline-go/skyline/rtsp"},
		pre: `images := make(chan image.Image)
go func() {
	var mem []image.Image
	for i := 0; i < 10; i++ {
		img := image.NewRGBA(image.Rect(0, 0, 1280, 720))
		for p := range img.Pix {
			img.Pix[p] = byte(p*(i+1)) | 3
		}
		mem = append(mem, img)
	}
	for i := 0; i < 300; i++ {
		images <- mem[i%len(mem)]
	}
	close(images)
}()
start := time.Now()
`,
		post: `elapsed := time.Since(start)
sl.Stop()
st := sl.Stats()
log.Printf("RESULT accepted=%d dropped=%d written=%d seconds=%.2f", st.Accepted, st.Dropped, st.Written, elapsed.Seconds())
`,
		check: func(t *testing.T, dir, out string) {
			m := regexp.MustCompile(`RESULT accepted=(\d+) dropped=(\d+) written=(\d+) seconds=([\d.]+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("RTSP example: no result:\n%s", out)
			}
			secs, _ := strconv.ParseFloat(m[4], 64)
			t.Logf("RTSP example: accepted %s, dropped %s, sent %s in %.2f s", m[1], m[2], m[3], secs)
			if m[1] != "300" || m[2] != "0" || m[3] != "300" {
				t.Errorf("RTSP example: want all 300 frames accepted and sent:\n%s", out)
			}
			if secs < 9.8 { // 300 frames at the declared 30 fps
				t.Errorf("RTSP example: 300 frames sent in %.2f s, want them at 30 fps (10 s)", secs)
			}
		},
	}, {
		// Many destinations: the servers it names do not exist here; they
		// are reported and retried while the others record every frame.
		name:    "many",
		key:     `rec, _ := skyline.NewSegmentedFile("rec-%05d.mp4"`,
		imports: []string{"log", "time", "github.com/skyline-go/skyline", "github.com/skyline-go/skyline/rtsp", "github.com/skyline-go/skyline/internal/testpattern"},
		pre:     rtspPre,
		post: `if sl == nil {
	log.Fatal("New failed")
}
` + put60 + `for _, d := range sl.Stats().Destinations {
	log.Printf("DEST %s written=%d", d.Name, d.Written)
}
sl.Close()
`,
		check: func(t *testing.T, dir, out string) {
			for _, want := range []string{"DEST rtsp:/cam written=60", "DEST file:rec-%05d.mp4 written=60", "DEST gst:matroskamux ! filesink location=raw.mkv written=60"} {
				if !strings.Contains(out, want) {
					t.Errorf("many destinations: no %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "/live2/KEY") {
				t.Errorf("the stream key reached the output:\n%s", out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for _, f := range []string{"rec-00000.mp4", "raw.mkv"} {
				if st, err := mediatest.Probe(ctx, filepath.Join(dir, f)); err != nil || st.Frames != 60 {
					t.Errorf("%s: %+v, %v; want 60 frames", f, st, err)
				}
			}
		},
	}, {
		name:    "kvs",
		key:     `dst, _ := kvs.New(kvs.Config{Region: "eu-west-1", Stream: "cam1"})`,
		imports: []string{"log", "github.com/skyline-go/skyline", "github.com/skyline-go/skyline/kvs", "github.com/skyline-go/skyline/internal/testpattern"},
		post: `for i := 0; i < 45; i++ {
	if ok, err := sl.Put(skyline.FrameBGR(testpattern.NewBGR(640, 480, i), 640, 480, 0)); !ok {
		log.Fatal(err)
	}
}
sl.Stop()
sl.Close()
`,
		setup: func(t *testing.T, dir string) []string {
			kv, err := kvslocal.New(kvslocal.Config{DataDir: filepath.Join(dir, "kvs"), AccessKey: "AKIDREADME", SecretKey: "readme-secret"})
			if err != nil {
				t.Fatal(err)
			}
			if err := kv.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = kv.Close() })
			return []string{"AWS_ENDPOINT_URL_KINESIS_VIDEO=" + kv.URL(), "AWS_ACCESS_KEY_ID=AKIDREADME",
				"AWS_SECRET_ACCESS_KEY=readme-secret", "AWS_SESSION_TOKEN=", "AWS_PROFILE=", "AWS_CONFIG_FILE=/dev/null",
				"AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
		},
		check: func(t *testing.T, dir, out string) {
			frs, err := kvslocal.ReadFragments(filepath.Join(dir, "kvs", "cam1"))
			if err != nil {
				t.Fatal(err)
			}
			frames := 0
			for _, f := range frs {
				frames += len(f.FrameTimecodes)
			}
			if frames != 45 || !strings.Contains(out, "PERSISTED") {
				t.Errorf("KVS example: %d frames stored in %d fragments, want 45 and PERSISTED acks:\n%s", frames, len(frs), out)
			}
		},
	}, {
		name:    "metrics",
		key:     `c := metrics.New()`,
		imports: []string{"io", "log", "net/http", "github.com/skyline-go/skyline", "github.com/skyline-go/skyline/metrics", "github.com/skyline-go/skyline/rtsp", "github.com/skyline-go/skyline/internal/testpattern"},
		pre:     rtspPre,
		post: put60 + `resp, err := http.Get(ms.URL())
if err != nil {
	log.Fatal(err)
}
b, _ := io.ReadAll(resp.Body)
resp.Body.Close()
log.Printf("METRICS\n%s", b)
sl.Close()
`,
		check: func(t *testing.T, dir, out string) {
			if !regexp.MustCompile(`skyline_frames_accepted_total\{[^}]*cam1[^}]*\} 60`).MatchString(out) {
				t.Errorf("metrics example: no skyline_frames_accepted_total 60 for cam1:\n%s", out)
			}
		},
	}, {
		// The gocv block runs in the gocv module: a clip read with OpenCV,
		// boxes drawn, every frame recorded.
		name:    "gocv",
		key:     `skylinegocv.Put(sl, mat)`,
		module:  "gocv",
		imports: []string{"image", "image/color", "log", "gocv.io/x/gocv", "github.com/skyline-go/skyline"},
		pre: `cap, err := gocv.VideoCaptureFile("in.mkv")
if err != nil {
	log.Fatal(err)
}
defer cap.Close()
mat := gocv.NewMat()
defer mat.Close()
box := image.Rect(10, 10, 60, 40)
red := color.RGBA{255, 0, 0, 0}
dst, err := skyline.NewFile("out.mkv")
if err != nil {
	log.Fatal(err)
}
sl, err := skyline.New(skyline.Config{}, dst)
if err != nil {
	log.Fatal(err)
}
defer sl.Close()
if err := sl.Start(skyline.Params{FPS: 30, Width: 320, Height: 240}); err != nil {
	log.Fatal(err)
}
`,
		post: `sl.Stop()
st := sl.Stats()
log.Printf("RESULT accepted=%d written=%d", st.Accepted, st.Written)
`,
		setup: func(t *testing.T, dir string) []string {
			cmd := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-frames:v", "60",
				"-c:v", "ffv1", filepath.Join(dir, "in.mkv"))
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v: %s", err, b)
			}
			return nil
		},
		check: func(t *testing.T, dir, out string) {
			if !strings.Contains(out, "RESULT accepted=60 written=60") {
				t.Errorf("gocv example: want 60 frames accepted and written:\n%s", out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if st, err := mediatest.Probe(ctx, filepath.Join(dir, "out.mkv")); err != nil || st.Frames != 60 {
				t.Errorf("out.mkv: %+v, %v; want 60 frames", st, err)
			}
		},
	}}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	run := 0
	for _, sn := range snippets {
		var body string
		for _, b := range blocks {
			if strings.Contains(b[1], sn.key) {
				body = b[1]
			}
		}
		if body == "" {
			t.Errorf("README.md has no Go block with %q", sn.key)
			continue
		}
		run++
		t.Run(sn.name, func(t *testing.T) {
			dir, out := runSnippet(t, sn, body)
			sn.check(t, dir, out)
		})
	}
	if run != len(snippets) {
		t.Fatalf("%d of %d README examples found", run, len(snippets))
	}
	if len(blocks) != len(snippets) {
		t.Errorf("README.md has %d Go blocks, %d are run: add the new one here", len(blocks), len(snippets))
	}
}

// runSnippet builds main.go from the block (in a folder of this module, so
// that it builds against this tree) and runs it in a temporary folder.
func runSnippet(t *testing.T, sn readmeSnippet, body string) (dir, out string) {
	t.Helper()
	for _, addr := range []string{`":8554"`, `":9090"`} { // fixed ports -> free ones
		if strings.Contains(body, addr) {
			body = strings.ReplaceAll(body, addr, fmt.Sprintf(`"127.0.0.1:%d"`, freeTCP(t)))
		}
	}
	var src strings.Builder
	src.WriteString("package main\n\nimport (\n")
	for _, imp := range sn.imports {
		fmt.Fprintf(&src, "\t%q\n", imp)
	}
	var lines []string // an import line of the block goes to the file's imports
	for _, l := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(l, "import "); ok {
			src.WriteString("\t" + rest + "\n")
			continue
		}
		lines = append(lines, l)
	}
	body = strings.Join(lines, "\n")
	src.WriteString(")\n\nfunc main() {\n" + sn.pre + "\n// README.md:\n" + body + "\n// end of README.md\n" + sn.post + "}\n")
	module := sn.module
	if module == "" {
		module = "."
	}
	pkg, err := os.MkdirTemp(module, "_readme-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(pkg)
	if err := os.WriteFile(filepath.Join(pkg, "main.go"), []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	var env []string
	if sn.setup != nil {
		env = sn.setup(t, dir)
	}
	bin := filepath.Join(dir, "snippet")
	build := exec.Command("go", "build", "-o", bin, "./"+filepath.Base(pkg))
	build.Dir = module
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("README block does not build: %v\n%s\n%s", err, b, src.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README block failed: %v\n%s", err, b)
	}
	return dir, string(b)
}

// probeDuration is a file's duration by ffprobe, in seconds.
func probeDuration(t *testing.T, path string) float64 {
	t.Helper()
	b, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q: %v", b, err)
	}
	return d
}
