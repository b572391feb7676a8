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
	check     func(t *testing.T, dir, out string)
}

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
	src.WriteString(")\n\nfunc main() {\n" + sn.pre + "\n// README.md:\n" + body + "\n// end of README.md\n" + sn.post + "}\n")
	pkg, err := os.MkdirTemp(".", "_readme-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(pkg)
	if err := os.WriteFile(filepath.Join(pkg, "main.go"), []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	bin := filepath.Join(dir, "snippet")
	if b, err := exec.Command("go", "build", "-o", bin, "./"+filepath.Base(pkg)).CombinedOutput(); err != nil {
		t.Fatalf("README block does not build: %v\n%s\n%s", err, b, src.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = dir
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
