package rtsp_test

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/testpattern"
)

// openCVScript reads n pictures from a URL with OpenCV's GStreamer backend,
// as a user's program does (cv2.VideoCapture(url, cv2.CAP_GSTREAMER)), and
// writes them to stdout as packed BGR.
const openCVScript = `
import sys, cv2
cap = cv2.VideoCapture(sys.argv[1], cv2.CAP_GSTREAMER)
if not cap.isOpened():
    sys.exit("OpenCV cannot open " + sys.argv[1])
out = sys.stdout.buffer
for i in range(int(sys.argv[2])):
    ok, f = cap.read()
    if not ok:
        sys.exit("OpenCV: read %d failed" % i)
    out.write(f.tobytes())
    out.flush()
cap.release()
`

// The players run with their defaults (ffmpeg is told TCP, which the
// servers of the tests offer alone: rtspsrc and OpenCV try UDP first and
// fall back). Servers with UDP are avoided here: two UDP sessions set up at
// once race inside gortsplib 5.6.5's readerAdd (seen by the race detector).

// player is a third-party RTSP client decoding a live URL into packed BGR
// pictures of a known size, read back as frame numbers.
type player struct {
	name string
	cmd  *exec.Cmd
	nums []int // frame numbers, -1 when unreadable
	err  error
	mu   sync.Mutex
	out  []byte // stderr
	done chan struct{}
}

// playerKinds are the clients of the acceptance tests: ffmpeg (what ffplay
// and most ffmpeg-based players do), GStreamer's rtspsrc and OpenCV with its
// GStreamer backend (Debian's python3-opencv).
var playerKinds = []string{"ffmpeg", "rtspsrc", "opencv"}

// startPlayer starts a client of kind on url that decodes n pictures of
// w x h.
func startPlayer(t *testing.T, kind, url string, w, h, n int) *player {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	var cmd *exec.Cmd
	switch kind {
	case "ffmpeg":
		cmd = exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-nostdin", "-rtsp_transport", "tcp", "-i", url,
			"-frames:v", strconv.Itoa(n), "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "bgr24", "-")
	case "rtspsrc":
		cmd = exec.CommandContext(ctx, "gst-launch-1.0", "-q", "rtspsrc", "location="+url, "latency=0",
			"!", "decodebin", "!", "videoconvert", "!", "video/x-raw,format=BGR",
			"!", "identity", "eos-after="+strconv.Itoa(n+1), "!", "fdsink", "fd=1")
	case "opencv":
		cmd = exec.CommandContext(ctx, "/usr/bin/python3", "-c", openCVScript, url, strconv.Itoa(n))
	default:
		t.Fatalf("unknown player %s", kind)
	}
	p := &player{name: kind, cmd: cmd, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.out) < 1<<16 {
			p.out = append(p.out, b...)
		}
		return len(b), nil
	})
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		defer cancel()
		buf := make([]byte, w*h*3)
		for len(p.nums) < n {
			if _, err := io.ReadFull(stdout, buf); err != nil {
				break
			}
			num, ok := testpattern.ReadBGR(buf, w, h)
			if !ok {
				num = -1
			}
			p.nums = append(p.nums, num)
		}
		_ = cmd.Process.Kill()
		_, _ = io.Copy(io.Discard, stdout)
		if werr := cmd.Wait(); len(p.nums) < n {
			p.mu.Lock()
			p.err = fmt.Errorf("%s: %d of %d pictures (%v): %s", kind, len(p.nums), n, werr, p.out)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// wait waits for the player to end and returns its frame numbers.
func (p *player) wait(t *testing.T) []int {
	t.Helper()
	<-p.done
	if p.err != nil {
		t.Fatal(p.err)
	}
	return p.nums
}

// checkFromStart checks that the numbers are consecutive and start within
// slack frames of first (the stream's first picture).
func checkFromStart(t *testing.T, name string, nums []int, first, slack int) {
	t.Helper()
	if len(nums) == 0 {
		t.Fatalf("%s: no picture", name)
	}
	if nums[0] < first || nums[0] > first+slack {
		t.Errorf("%s: first picture is frame %d, want %d..%d (the first live keyframe)", name, nums[0], first, first+slack)
	}
	for i := 1; i < len(nums); i++ {
		if nums[i] != nums[i-1]+1 {
			t.Errorf("%s: picture %d is frame %d after %d: %v", name, i, nums[i], nums[i-1], nums)
			return
		}
	}
	t.Logf("%s: frames %d..%d", name, nums[0], nums[len(nums)-1])
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
