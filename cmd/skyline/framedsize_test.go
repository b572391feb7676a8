package main

import (
	"context"
	le "encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/mediatest"
)

// TestServeFramedSizeKeepsCardViewers: with `--format framed --size WxH
// --keep-serving`, producers whose frames have another size are scaled to
// --size, the offline card's size, so an RTSP viewer opened on the card
// stays in its session through them. Each producer's first frame set the
// stream's size, so a viewer opened first was disconnected at the first
// producer ("picture size changed: ending viewer sessions").
func TestServeFramedSizeKeepsCardViewers(t *testing.T) {
	const w, h = 320, 240
	fifo := filepath.Join(t.TempDir(), "frames")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	c := startShell(t, fmt.Sprintf(`exec "$0" serve --input stdin --format framed --size %dx%d --keep-serving --fps 30 `+
		`--listen 127.0.0.1:%d --no-udp --path /f --status never < %s`, w, h, port, fifo))
	// The shell opens the pipe when a writer does; this one sends nothing
	// until the viewer is on the card.
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	url := strings.Fields(c.line(t, "SkyLine: streaming stdin"))[4]

	produce := func(pw, ph int) {
		frame := make([]byte, 28+pw*ph*3)
		copy(frame, "SKYF")
		le.LittleEndian.PutUint32(frame[12:], uint32(pw))
		le.LittleEndian.PutUint32(frame[16:], uint32(ph))
		copy(frame[20:], "bgr24")
		for i := 28; i < len(frame); i++ {
			frame[i] = 128
		}
		for i := 0; i < 300; i++ {
			if _, err := f.Write(frame); err != nil {
				return // the test ended
			}
			time.Sleep(30 * time.Millisecond) // a producer at about 30 fps
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	started, live := false, 0
	err = mediatest.Decode(ctx, url, w, h, []string{"-rtsp_transport", "tcp"}, nil, func(i int, bgr []byte) error {
		// A live picture is mid-grey everywhere; the card is dark blue.
		p := bgr[((h-10)*w+10)*3:]
		grey := p[0] > 110 && p[0] < 146 && p[1] > 110 && p[1] < 146 && p[2] > 110 && p[2] < 146
		switch {
		case !started:
			started = true
			go produce(2*w, 2*h) // the first producer, at another size
		case grey:
			if live++; live == 30 {
				return errDone
			}
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("the RTSP viewer opened on the card saw %d live pictures, then: %v; stderr: %s", live, err, c.stderr.String())
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	c.wait(t)
}
