package skylinegocv_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/mediatest"
)

// TestExampleOpenCVToRTSP builds every example of the gocv module (go build
// -o DIR ./examples/...) and runs opencv-to-rtsp as documented: its URL
// plays the scene it draws with gocv (a white 80-pixel square crossing the
// middle), and Ctrl-C ends it cleanly.
func TestExampleOpenCVToRTSP(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./examples/...").CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/...: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	cmd := exec.Command(filepath.Join(dir, "opencv-to-rtsp"), "-listen", addr, "-no-udp")
	var stderr syncBuf
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			for range lines {
			}
			_ = cmd.Wait()
		}
	}()
	line := func(substr string) string {
		t.Helper()
		timeout := time.After(90 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("exited before printing %q; stderr: %s", substr, stderr.String())
				}
				if strings.Contains(l, substr) {
					return l
				}
			case <-timeout:
				t.Fatalf("no line with %q", substr)
			}
		}
	}
	url := strings.Fields(line("streaming at"))[2]
	if url != "rtsp://"+addr+"/opencv" {
		t.Fatalf("URL %q", url)
	}

	const w, h, n = 640, 360, 20
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	got := 0
	err = mediatest.Decode(ctx, url, w, h, []string{"-rtsp_transport", "tcp"}, []string{"-frames:v", fmt.Sprint(n)},
		func(i int, bgr []byte) error {
			best, run := 0, 0
			for x := 0; x < w; x++ {
				p := bgr[(h/2*w+x)*3:]
				if p[0] > 200 && p[1] > 200 && p[2] > 200 {
					run++
					best = max(best, run)
				} else {
					run = 0
				}
			}
			if best < 70 || best > 90 {
				return fmt.Errorf("picture %d: white run of %d pixels in the middle row, want the 80-pixel square", i, best)
			}
			got++
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("decoded %d pictures, want %d", got, n)
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	line("stopped")
	for range lines {
	}
	exited = true
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after Ctrl-C: %v; stderr: %s", err, stderr.String())
	}
}

// syncBuf collects a child's stderr (written by exec's goroutine).
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
