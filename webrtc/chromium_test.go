package webrtc_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/webrtc"
)

// browser is a headless Chromium driven over the DevTools protocol.
type browser struct {
	cmd  *exec.Cmd
	ws   *websocket.Conn
	wmu  sync.Mutex
	mu   sync.Mutex
	id   int
	wait map[int]chan cdpReply
	done chan struct{}
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// startChromium starts Debian's chromium (installed by scripts/deps.sh).
func startChromium(t *testing.T) *browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (scripts/deps.sh installs it): %v", err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
		"--autoplay-policy=no-user-gesture-required", "--user-data-dir="+t.TempDir(),
		"--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
		"--window-size=800,600", "--force-device-scale-factor=1", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &browser{cmd: cmd, wait: map[int]chan cdpReply{}, done: make(chan struct{})}
	// Chromium prints its DevTools address on stderr when it listens.
	found := make(chan string, 1)
	var tail []string
	var tmu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, "DevTools listening on "); i >= 0 {
				found <- strings.TrimSpace(line[i+len("DevTools listening on "):])
			}
			tmu.Lock()
			tail = append(tail, line)
			if len(tail) > 30 {
				tail = tail[1:]
			}
			tmu.Unlock()
		}
	}()
	t.Cleanup(func() {
		b.close()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			tmu.Lock()
			t.Logf("chromium stderr (last lines):\n%s", strings.Join(tail, "\n"))
			tmu.Unlock()
		}
	})
	var wsURL string
	select {
	case wsURL = <-found:
	case <-time.After(60 * time.Second):
		t.Fatal("chromium did not start its DevTools server within 60 s")
	}
	ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.ws = ws
	go b.read()
	return b
}

func (b *browser) read() {
	defer close(b.done)
	for {
		_, msg, err := b.ws.ReadMessage()
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.wait {
				close(ch)
				delete(b.wait, id)
			}
			b.mu.Unlock()
			return
		}
		var m struct {
			ID int `json:"id"`
			cdpReply
		}
		if json.Unmarshal(msg, &m) != nil || m.ID == 0 {
			continue // an event
		}
		b.mu.Lock()
		ch := b.wait[m.ID]
		delete(b.wait, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m.cdpReply
		}
	}
}

func (b *browser) close() {
	if b.ws != nil {
		_ = b.ws.Close()
		<-b.done
	}
}

// call sends a DevTools command (to a page session when session is set)
// and decodes its result into out.
func (b *browser) call(t *testing.T, session, method string, params any, out any, d time.Duration) {
	t.Helper()
	b.mu.Lock()
	b.id++
	id := b.id
	ch := make(chan cdpReply, 1)
	b.wait[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b.wmu.Lock()
	err := b.ws.WriteJSON(msg)
	b.wmu.Unlock()
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatalf("%s: DevTools connection closed", method)
		}
		if r.Error != nil {
			t.Fatalf("%s: %s", method, r.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				t.Fatalf("%s: %v", method, err)
			}
		}
	case <-time.After(d):
		t.Fatalf("%s: no answer within %v", method, d)
	}
}

// open opens url in a new tab and returns its DevTools session.
func (b *browser) open(t *testing.T, url string) string {
	t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call(t, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target, 30*time.Second)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	b.call(t, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att, 30*time.Second)
	b.call(t, att.SessionID, "Page.navigate", map[string]any{"url": url}, nil, 30*time.Second)
	return att.SessionID
}

// eval evaluates a JavaScript expression (awaiting a promise) in the page
// and decodes its JSON value into out.
func (b *browser) eval(t *testing.T, session, expr string, out any, d time.Duration) {
	t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	b.call(t, session, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true,
		"returnByValue": true}, &r, d)
	if r.ExceptionDetails != nil {
		t.Fatalf("page: %s %s", r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			t.Fatalf("page value %s: %v", r.Result.Value, err)
		}
	}
}

// screenshot captures the page as an image.
func (b *browser) screenshot(t *testing.T, session string) image.Image {
	t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	b.call(t, session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot, 30*time.Second)
	raw, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pageState is what the test reads of the page (window.skyline and the
// video element).
type pageState struct {
	State     string   `json:"state"`
	Error     string   `json:"error"`
	Frames    int      `json:"frames"`
	LatencyMs *float64 `json:"latencyMs"`
	Shown     string   `json:"shown"`
	VideoW    int      `json:"videoWidth"`
	VideoH    int      `json:"videoHeight"`
	X, Y      float64
	W, H      float64
}

// waitPlaying resolves in the page when it has shown frames pictures and
// computed a latency, or with its state after timeoutMs.
const waitPlaying = `new Promise(resolve => {
  const t0 = performance.now();
  const check = () => {
    const s = window.skyline, v = document.getElementById("video");
    const done = s && s.frames >= %d && s.latencyMs !== null && document.getElementById("latency").dataset.ms !== undefined;
    if (done || performance.now() - t0 > %d) {
      const r = v ? v.getBoundingClientRect() : {x: 0, y: 0, width: 0, height: 0};
      resolve({state: s ? s.state : "no page", error: s ? s.error : null, frames: s ? s.frames : 0,
        latencyMs: s ? s.latencyMs : null, shown: document.getElementById("latency") ? document.getElementById("latency").textContent : "",
        videoWidth: v ? v.videoWidth : 0, videoHeight: v ? v.videoHeight : 0, X: r.x, Y: r.y, W: r.width, H: r.height});
      return;
    }
    setTimeout(check, 50);
  };
  check();
})`

// TestChromiumPage: a real headless Chromium opens the page, plays the
// stream (the screenshot shows the test pattern, whose frame number is read
// back from the pixels) and the page shows a latency figure.
func TestChromiumPage(t *testing.T) {
	const w, h = 320, 240
	srv := newServer(t, webrtc.ServerConfig{})
	st, err := srv.AddStream("/cam", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	sl := startSkyLine(t, w, h, smallFPS, ev.on, st)
	fr := startFeeder(t, sl, w, h, smallFPS)

	b := startChromium(t)
	sess := b.open(t, st.URL())
	var ps pageState
	b.eval(t, sess, fmt.Sprintf(waitPlaying, 30, 60000), &ps, 90*time.Second)
	t.Logf("page: %+v", ps)
	if ps.LatencyMs == nil || ps.Frames < 30 {
		t.Fatalf("the page did not play: state %q error %q, %d pictures shown", ps.State, ps.Error, ps.Frames)
	}
	ev.wait(t, "viewer-joined", 1, 10*time.Second)
	if ps.VideoW != w || ps.VideoH != h {
		t.Errorf("video %dx%d, want %dx%d", ps.VideoW, ps.VideoH, w, h)
	}
	lat := *ps.LatencyMs
	if lat <= 0 || lat > 2000 || !strings.HasSuffix(ps.Shown, " ms") {
		t.Errorf("latency %.1f ms shown as %q: want a figure in (0, 2000] ms", lat, ps.Shown)
	}

	img := b.screenshot(t, sess)
	bgr := crop(img, int(ps.X+0.5), int(ps.Y+0.5), int(ps.W+0.5), int(ps.H+0.5), w, h)
	n, ok := testpattern.ReadBGR(bgr, w, h)
	if !ok || n < 1 || int64(n) >= fr.next.Load() {
		t.Fatalf("screenshot: frame number %d (readable %v), want 1..%d", n, ok, fr.next.Load()-1)
	}
	psnr := mediatest.PSNR(bgr, fr.fr.ref(n))
	if psnr < 25 {
		t.Errorf("screenshot of frame %d: PSNR %.1f dB against the frame Put, want >= 25", n, psnr)
	}
	t.Logf("screenshot shows frame %d (PSNR %.1f dB); page latency %.0f ms (%q)", n, psnr, lat, ps.Shown)
}

// crop takes the w0 x h0 rectangle at (x0, y0) of img, scaled (nearest) to
// w x h, as packed BGR.
func crop(img image.Image, x0, y0, w0, h0, w, h int) []byte {
	out := make([]byte, w*h*3)
	if w0 <= 0 || h0 <= 0 {
		return out
	}
	bnd := img.Bounds()
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			sx, sy := bnd.Min.X+x0+x*w0/w, bnd.Min.Y+y0+y*h0/h
			r, g, bl, _ := img.At(sx, sy).RGBA()
			i := (y*w + x) * 3
			out[i], out[i+1], out[i+2] = byte(bl>>8), byte(g>>8), byte(r>>8)
		}
	}
	return out
}
