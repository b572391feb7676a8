package rtsp_test

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testlog"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/rtsp"
)

// auTap is a second destination next to an RTSP stream: it hands each
// access unit's keyframe flag to a channel, in order.
type auTap struct {
	ch chan bool
}

func (a *auTap) Name() string                  { return "tap" }
func (a *auTap) Open(skyline.StreamInfo) error { return nil }
func (a *auTap) Close()                        {}
func (a *auTap) WriteAccessUnit(au *skyline.AccessUnit) error {
	select {
	case a.ch <- au.Keyframe:
	default: // not read while the stream is fed in real time
	}
	return nil
}

// firstPictureClients are the third-party players of the first-picture
// test, each with the options the README gives for a low-latency start, as
// a command that plays url and writes BGR pictures to stdout.
var firstPictureClients = []struct {
	name string
	cmd  func(url string) []string
}{
	{"ffmpeg", func(url string) []string {
		// -probesize 32: no 20-picture frame-rate probe (libavformat/demux.c,
		// fps_analyze_framecount: H.264 time bases count as unreliable);
		// -flags low_delay: no frame threads (each holds a picture). After
		// -i, for the test's output to a pipe: -threads 1 (the rawvideo
		// encoder has frame threads too), -flush_packets 1 (no picture
		// left in the output buffer), timing in the input's time base (no
		// picture dropped as a duplicate of the one before).
		return []string{"ffmpeg", "-v", "error", "-nostdin", "-probesize", "32", "-flags", "low_delay",
			"-rtsp_transport", "tcp", "-i", url, "-threads", "1", "-fps_mode", "passthrough", "-enc_time_base", "-1",
			"-flush_packets", "1", "-f", "rawvideo", "-pix_fmt", "bgr24", "-"}
	}},
	{"rtspsrc", func(url string) []string {
		return append([]string{"gst-launch-1.0", "-q"}, strings.Fields("rtspsrc location="+url+
			" protocols=tcp latency=0 ! rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=BGR ! fdsink fd=1 sync=false")...)
	}},
}

// TestFirstPictureWithoutNextAccessUnit (issue 13, observation 7): a player
// joining a running stream shows the keyframe it gets after PLAY without
// waiting for the access unit after it. The producer stops after that
// keyframe, so a player that waits for the next access unit (FFmpeg's H.264
// parser ends a picture only when the next one starts) never shows it; nor
// the three pictures put one by one after it. The
// time from PLAY to the picture is logged; the benchmark (bench/rtsp)
// reports it under a real frame rate.
func TestFirstPictureWithoutNextAccessUnit(t *testing.T) {
	for _, c := range firstPictureClients {
		t.Run(c.name, func(t *testing.T) {
			srv := newServer(t, rtsp.ServerConfig{})
			st, err := srv.AddStream("/first", rtsp.StreamOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tap := &auTap{ch: make(chan bool, 1024)}
			joined := make(chan time.Time, 4)
			sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: testLogger, OnEvent: func(e skyline.Event) {
				if e.Kind == skyline.EventViewerJoined {
					joined <- e.Time
				}
			}}, st, tap)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sl.Close() })
			if err := sl.Start(skyline.Params{FPS: smallFPS, Width: smallW, Height: smallH}); err != nil {
				t.Fatal(err)
			}
			// A running stream: the viewer joins late, then the producer
			// puts one frame at a time until the viewer's keyframe is out.
			f := startFeeder(t, sl, smallW, smallH, smallFPS, 0)
			waitFor(t, 20*time.Second, "30 frames", func() bool { return st.Stats().AccessUnits >= 30 })
			f.Stop()
			next := f.first + int(f.put.Load()) + 1000 // clear of the numbers fed so far

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := c.cmd(st.URL())
			cmd := exec.CommandContext(ctx, args[0], args[1:]...)
			var stderr testlog.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}()
			var playAt time.Time
			select {
			case playAt = <-joined:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not start playing within 10 s: %s", c.name, stderr.String())
			}

			for len(tap.ch) > 0 { // access units of the frames fed before PLAY
				<-tap.ch
			}
			// putOne puts frame next at the stream's frame rate (a real
			// producer's pace: players time pictures by their PTS) and
			// waits for its access unit to leave the encoder.
			buf := make([]byte, smallW*smallH*3)
			tick := time.NewTicker(time.Second / smallFPS)
			defer tick.Stop()
			putOne := func() (n int, keyframe bool) {
				t.Helper()
				<-tick.C
				n = next
				next++
				f.fr.draw(buf, n)
				if _, err := sl.Put(skyline.FrameBGR(buf, smallW, smallH, 0)); err != nil {
					t.Fatalf("Put %d: %v", n, err)
				}
				select {
				case keyframe = <-tap.ch:
				case <-time.After(10 * time.Second):
					t.Fatalf("frame %d did not leave the encoder within 10 s", n)
				}
				return n, keyframe
			}
			key := -1
			for i := 0; i < 3*smallFPS && key < 0; i++ { // a 2 s keyframe interval bounds this
				if n, k := putOne(); k {
					key = n
				}
			}
			if key < 0 {
				t.Fatal("no keyframe within 3 s of frames after PLAY")
			}

			// The first readable picture (a decoder may show grey ones
			// before the keyframe) must be the keyframe, the last access
			// unit sent; then each further picture must show before the
			// access unit after it is sent.
			type picture struct {
				num int
				at  time.Time
				err error
			}
			pics := make(chan picture, 1)
			go func() {
				r := bufio.NewReaderSize(out, len(buf))
				pic := make([]byte, len(buf))
				for {
					if _, err := io.ReadFull(r, pic); err != nil {
						pics <- picture{err: err}
						return
					}
					if n, ok := testpattern.ReadBGR(pic, smallW, smallH); ok {
						select {
						case pics <- picture{num: n, at: time.Now()}:
						case <-ctx.Done():
							return
						}
					}
				}
			}()
			shows := func(want int, what string) time.Time {
				t.Helper()
				select {
				case p := <-pics:
					if p.err != nil {
						t.Fatalf("%s ended without showing %s %d: %v: %s", c.name, what, want, p.err, stderr.String())
					}
					if p.num != want {
						t.Fatalf("%s shows frame %d, want %s %d", c.name, p.num, what, want)
					}
					return p.at
				case <-time.After(10 * time.Second):
					t.Fatalf("%s does not show %s %d, the last access unit sent, within 10 s: "+
						"it waits for the next access unit\n%s", c.name, what, want, stderr.String())
				}
				return time.Time{}
			}
			at := shows(key, "the keyframe")
			t.Logf("%s: PLAY -> keyframe %d shown in %v, with no access unit after it", c.name, key, at.Sub(playAt))
			for i := 0; i < 3; i++ {
				n, _ := putOne()
				shows(n, "the picture")
			}
		})
	}
}
