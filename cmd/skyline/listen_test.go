package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/card"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/internal/whepclient"
)

var cardStates = []string{card.Waiting, card.Starting, card.Stopped}

// producer writes numbered raw BGR frames at 30 fps to w from number from
// until stopped, then closes w.
type producer struct {
	stop chan struct{}
	hang chan struct{} // closed: write half a frame, then nothing until stopped
	hung chan struct{} // closed once that half frame is written
	done chan struct{}
}

func produce(w io.WriteCloser, width, height, from int) *producer {
	return producePaced(w, width, height, from, time.Second/30)
}

// producePaced is produce with a frame every period.
func producePaced(w io.WriteCloser, width, height, from int, period time.Duration) *producer {
	p := &producer{stop: make(chan struct{}), hang: make(chan struct{}), hung: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer w.Close()
		buf := make([]byte, width*height*3)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for n := from; ; n++ {
			testpattern.DrawBGR(buf, width, height, n)
			if _, err := w.Write(buf); err != nil {
				return
			}
			select {
			case <-p.stop:
				return
			case <-p.hang: // a frozen producer: its connection stays open
				_, _ = w.Write(buf[:len(buf)/2])
				close(p.hung)
				<-p.stop
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// end stops the producer (it closes its end: EOF for serve).
func (p *producer) end() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// classify says whether a decoded picture is the card of path ("card"),
// a live frame (its number, read back; its pixels checked against the test
// pattern unless numberOnly) or neither.
func classify(bgr []byte, w, h int, path string, numberOnly bool) (isCard bool, num int, ok bool) {
	if card.PSNR(bgr, w, h, path, cardStates...) >= 25 {
		return true, 0, true
	}
	num, ok = testpattern.ReadBGR(bgr, w, h)
	return false, num, ok && (numberOnly || mediatest.PSNR(bgr, testpattern.NewBGR(w, h, num)) >= 28)
}

// phases follows a viewer through card -> live from 0 -> card -> live from
// 1000, checking live numbers are consecutive; it calls next(p) when phase
// p begins (1: connect the first producer, 2: end it, 3: connect the
// second) and reports done after live frames of phase 3.
type phases struct {
	mu    sync.Mutex
	phase int
	cards [4]int
	lives [4]int
	prev  int
	live  int
	next  func(p int)
	// numberOnly: the producer's frames carry a number but are not the
	// test pattern (Python's).
	numberOnly bool
}

// see takes one picture; it returns errDone at the end.
func (ph *phases) see(bgr []byte, w, h int, path string) error {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	p := ph.phase
	isCard, num, ok := classify(bgr, w, h, path, ph.numberOnly)
	switch {
	case !ok:
		return fmt.Errorf("phase %d: neither the card nor a live frame (cards %v, live %v)", p, ph.cards, ph.lives)
	case isCard:
		if (p == 1 || p == 3) && ph.lives[p] > 0 {
			return fmt.Errorf("phase %d: the card between live frames", p)
		}
		ph.cards[p]++
	default:
		if p == 0 || (p == 1 || p == 2) != (num < 1000) {
			return fmt.Errorf("phase %d: live frame %d out of place (cards %v, live %v)", p, num, ph.cards, ph.lives)
		}
		if ph.lives[p] > 0 && num != ph.prev+1 {
			return fmt.Errorf("phase %d: frame %d after %d", p, num, ph.prev)
		}
		ph.prev = num
		ph.lives[p]++
	}
	advance := func() {
		ph.phase++
		if ph.next != nil {
			go ph.next(ph.phase)
		}
	}
	switch {
	case p == 0 && ph.cards[0] == 2, p == 1 && ph.lives[1] == ph.live, p == 2 && ph.cards[2] == 2:
		advance()
	case p == 3 && ph.lives[3] == ph.live:
		return errDone
	}
	return nil
}

var errDone = errors.New("done")

// TestServeProducersComeAndGo (issue 13, item 3): `serve --input
// unix:SOCK` streams each producer that connects; between producers the
// offline card plays. One ffmpeg RTSP session and one WHEP session, both
// opened before the first producer, see the card, the first producer's
// frames, the card, then the second producer's frames, without
// reconnecting. A second producer connecting while one streams is refused.
func TestServeProducersComeAndGo(t *testing.T) {
	const w, h = 320, 240
	sock := filepath.Join(t.TempDir(), "in.sock")
	web := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c := startCLI(t, "serve", "--input", "unix:"+sock, "--size", "320x240", "--fps", "30",
		"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--no-udp", "--path", "/x", "--status", "never",
		"--web", web)
	url := strings.Fields(c.line(t, "SkyLine: streaming unix:"))[4]
	c.line(t, "browser:")

	var prod atomic.Pointer[producer]
	connect := func(from int) {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Errorf("producer: %v", err)
			return
		}
		prod.Store(produce(conn, w, h, from))
	}
	refused := make(chan error, 1)
	next := func(p int) {
		switch p {
		case 1:
			connect(0)
			// A second producer while the first streams: refused.
			conn, err := net.Dial("unix", sock)
			if err != nil {
				refused <- err
				return
			}
			defer conn.Close()
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			refused <- err
		case 2:
			prod.Load().end()
		case 3:
			connect(1000)
		}
	}
	t.Cleanup(func() {
		if p := prod.Load(); p != nil {
			p.end()
		}
	})

	// The browser-side viewer: a WHEP session opened now, recording what
	// it shows until the second producer's frames arrive.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	wc, err := whepclient.Dial(ctx, "http://"+web+"/x/whep", whepclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	webDone := make(chan error, 1)
	go func() { webDone <- followWHEP(ctx, wc, w, h, "/x") }()

	rtspPh := &phases{live: 20, next: next}
	err = mediatest.Decode(ctx, url, w, h, []string{"-rtsp_transport", "tcp"}, nil, func(i int, bgr []byte) error {
		return rtspPh.see(bgr, w, h, "/x")
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("RTSP viewer: %v; stderr: %s", err, c.stderr.String())
	}
	t.Logf("RTSP viewer: cards %v, live frames %v", rtspPh.cards, rtspPh.lives)
	if err := <-webDone; err != nil {
		t.Fatalf("WHEP viewer: %v", err)
	}
	if err := <-refused; err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a second producer was not refused: %v", err)
	}
	if !strings.Contains(c.stderr.String(), "refused a second producer") {
		t.Errorf("no log line for the refused producer; stderr: %s", c.stderr.String())
	}
	prod.Load().end()
	_ = c.cmd.Process.Signal(os.Interrupt)
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket file is left behind: %v", err)
	}
}

// followWHEP records what a WHEP viewer shows until 10 frames of the
// second producer came, and checks it is card, first producer's frames
// (consecutive), card, second producer's frames (consecutive).
func followWHEP(ctx context.Context, wc *whepclient.Client, w, h int, path string) error {
	dec, err := whepclient.NewDecoder()
	if err != nil {
		return err
	}
	defer dec.Close()
	var runs []string // "card", "live<1000", "live>=1000"
	prev, second := -1, 0
	for second < 10 {
		select {
		case au := <-wc.AUs():
			if err := dec.Push(au.Data, au.Keyframe); err != nil {
				return err
			}
			continue
		case <-ctx.Done():
			return fmt.Errorf("%v after %v", ctx.Err(), runs)
		case pic := <-dec.Pictures():
			isCard, num, ok := classify(pic.BGR, w, h, path, false)
			kind := "card"
			switch {
			case !ok:
				return fmt.Errorf("a picture neither the card nor a live frame, after %v", runs)
			case !isCard && num < 1000:
				kind = "live<1000"
			case !isCard:
				kind = "live>=1000"
				second++
			}
			if len(runs) == 0 || runs[len(runs)-1] != kind {
				runs = append(runs, kind)
			} else if !isCard && num != prev+1 {
				return fmt.Errorf("frame %d after %d", num, prev)
			}
			prev = num
		}
	}
	if strings.Join(runs, " ") != "card live<1000 card live>=1000" {
		return fmt.Errorf("the WHEP viewer saw %v, want card, first producer, card, second producer", runs)
	}
	return nil
}

// TestServeStdinKeepServing (issue 13, item 3): `serve --input stdin
// --keep-serving` reading a named pipe stays up when its producer exits
// (the card plays) and streams the next producer that opens the pipe; one
// ffmpeg RTSP session sees card, first producer, card, second producer.
func TestServeStdinKeepServing(t *testing.T) {
	const w, h = 320, 240
	fifo := filepath.Join(t.TempDir(), "frames")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	c := startShell(t, fmt.Sprintf(`exec "$0" serve --input stdin --keep-serving --size 320x240 --fps 30 `+
		`--listen 127.0.0.1:%d --no-udp --path /x --status never < %s`, port, fifo))
	var prod atomic.Pointer[producer]
	connect := func(from int) {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Errorf("producer: %v", err)
			return
		}
		prod.Store(produce(f, w, h, from))
	}
	t.Cleanup(func() {
		if p := prod.Load(); p != nil {
			p.end()
		}
	})
	// The shell opens the pipe when its first writer does: the first
	// producer starts the program's input; the viewer joins before it
	// sends anything, so it is connected and blocked on its first frame.
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	url := strings.Fields(c.line(t, "SkyLine: streaming stdin"))[4]
	ph := &phases{live: 20, next: func(p int) {
		switch p {
		case 1:
			prod.Store(produce(f, w, h, 0))
		case 2:
			prod.Load().end()
		case 3:
			connect(1000)
		}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	err = mediatest.Decode(ctx, url, w, h, []string{"-rtsp_transport", "tcp"}, nil, func(i int, bgr []byte) error {
		return ph.see(bgr, w, h, "/x")
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("RTSP viewer: %v; stderr: %s", err, c.stderr.String())
	}
	t.Logf("RTSP viewer: cards %v, live frames %v", ph.cards, ph.lives)
	prod.Load().end()
	_ = c.cmd.Process.Signal(os.Interrupt)
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
	}
}

// startShell runs script with sh, the skyline binary as $0 (for
// redirections the test cannot make itself).
func startShell(t *testing.T, script string) *cli {
	t.Helper()
	c := &cli{cmd: exec.Command("sh", "-c", script, binary), lines: make(chan string, 100), done: make(chan error, 1)}
	c.cmd.Stderr = &c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.done <- c.cmd.Wait()
	}()
	t.Cleanup(func() { _ = c.cmd.Process.Kill() })
	return c
}

// TestServePythonProducerTCP (issue 13, item 3): the documented Python side
// (examples/python-pipe/send.py --connect, Debian's python3-opencv) streams
// through `serve --input tcp:ADDR`; the Python program is killed (a crash)
// and started again, and the same ffmpeg RTSP session sees card, its
// frames, card, the new run's frames.
func TestServePythonProducerTCP(t *testing.T) {
	const w, h = 320, 240
	in := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c := startCLI(t, "serve", "--input", "tcp:"+in, "--size", "320x240", "--fps", "30",
		"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--no-udp", "--path", "/py", "--status", "never")
	url := strings.Fields(c.line(t, "SkyLine: streaming tcp:"))[4]
	var py atomic.Pointer[exec.Cmd]
	run := func(from int) {
		cmd := exec.Command("/usr/bin/python3", "../../examples/python-pipe/send.py", "--size", "320x240", "--fps", "30",
			"--start", fmt.Sprint(from), "--connect", "tcp:"+in)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Error(err)
			return
		}
		py.Store(cmd)
	}
	kill := func() {
		if cmd := py.Load(); cmd != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(kill)
	ph := &phases{live: 20, numberOnly: true, next: func(p int) {
		switch p {
		case 1:
			run(0)
		case 2:
			kill()
		case 3:
			run(1000)
		}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	err := mediatest.Decode(ctx, url, w, h, []string{"-rtsp_transport", "tcp"}, nil, func(i int, bgr []byte) error {
		return ph.see(bgr, w, h, "/py")
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("RTSP viewer: %v; stderr: %s", err, c.stderr.String())
	}
	t.Logf("RTSP viewer: cards %v, live frames %v", ph.cards, ph.lives)
	kill()
	_ = c.cmd.Process.Signal(os.Interrupt)
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
	}
}

// TestServeListenBadInput: a listening input without --size, without an
// address, or on a file that is not a socket is a clear error (no panic,
// the file untouched).
func TestServeListenBadInput(t *testing.T) {
	notSock := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notSock, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--input", "unix:/tmp/x.sock"}, "needs --size"},
		{[]string{"--input", "tcp:", "--size", "64x48"}, "want unix:/path/to.sock or tcp:HOST:PORT"},
		{[]string{"--input", "unix:" + notSock, "--size", "64x48"}, "is not a socket"},
		{[]string{"--input", "tcp:256.0.0.1:1", "--size", "64x48"}, "--input tcp:256.0.0.1:1"},
		{[]string{"--input", "unix:/tmp/" + strings.Repeat("d", 100) + "/s.sock", "--size", "64x48"}, "longer than a Unix socket's path can be"},
	} {
		args := append([]string{"serve", "--no-rtsp", "--out", "file:" + filepath.Join(t.TempDir(), "x.mp4")}, c.args...)
		out, err := exec.Command(binary, args...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "panic") {
			t.Errorf("%v: %v, output %q, want an error with %q", c.args, err, out, c.want)
		}
	}
	if b, err := os.ReadFile(notSock); err != nil || string(b) != "keep me" {
		t.Errorf("the file that is not a socket was touched: %q %v", b, err)
	}
}
