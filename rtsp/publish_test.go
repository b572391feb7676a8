package rtsp_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/rtsp"
)

// listener is ffmpeg receiving a published RTSP stream into a file.
func listener(t *testing.T, port int, out string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-rtsp_flags", "listen", "-timeout", "30",
		"-i", fmt.Sprintf("rtsp://127.0.0.1:%d/live", port), "-c", "copy", "-flush_packets", "1", "-f", "matroska", out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// numbers decodes a file and returns the frame numbers it carries.
func numbers(t *testing.T, path string, w, h int) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ns []int
	err := mediatest.Decode(ctx, path, w, h, nil, nil, func(i int, b []byte) error {
		n, ok := testpattern.ReadBGR(b, w, h)
		if !ok {
			return fmt.Errorf("%s picture %d unreadable", filepath.Base(path), i)
		}
		ns = append(ns, n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func consecutive(ns []int) error {
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			return fmt.Errorf("frame %d follows %d", ns[i], ns[i-1])
		}
	}
	return nil
}

// TestPublishReconnects publishes to a real third-party receiver (ffmpeg
// listening for RECORD), kills it, starts another: the publisher reconnects
// with backoff, the frames after recovery arrive, and an RTSP viewer of the
// same SkyLine sees no gap throughout.
func TestPublishReconnects(t *testing.T) {
	const w, h = 320, 240
	dir := t.TempDir()
	port := freeTCPPort(t)
	out1, out2 := filepath.Join(dir, "out1.mkv"), filepath.Join(dir, "out2.mkv")
	l1 := listener(t, port, out1)

	srv := newServer(t, rtsp.ServerConfig{DisableUDP: true, DisableMulticast: true})
	view, err := srv.AddStream("/view", rtsp.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := rtsp.NewPublisher(rtsp.PublisherConfig{URL: fmt.Sprintf("rtsp://127.0.0.1:%d/live", port),
		Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []skyline.Event
	recovered := make(chan struct{}, 1)
	down := make(chan struct{}, 1)
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: testLogger,
		RetryMin: 200 * time.Millisecond, RetryMax: time.Second, OnEvent: func(e skyline.Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
			if e.Destination == pub.Name() {
				switch e.Kind {
				case skyline.EventDestinationDown:
					select {
					case down <- struct{}{}:
					default:
					}
				case skyline.EventDestinationRecovered:
					select {
					case recovered <- struct{}{}:
					default:
					}
				}
			}
		}}, view, pub)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	fd := startFeeder(t, sl, w, h, 30, 0)
	waitReady(t, view.URL())

	// The viewer decodes from the start to the end of the test.
	vctx, vcancel := context.WithCancel(context.Background())
	var seen []int
	viewerDone := make(chan error, 1)
	go func() {
		viewerDone <- mediatest.Decode(vctx, view.URL(), w, h, []string{"-rtsp_transport", "tcp"}, nil, func(i int, b []byte) error {
			n, ok := testpattern.ReadBGR(b, w, h)
			if !ok {
				return fmt.Errorf("viewer picture %d unreadable", i)
			}
			mu.Lock()
			seen = append(seen, n)
			mu.Unlock()
			return nil
		})
	}()

	waitFor(t, 20*time.Second, "publishing", func() bool { return pub.Stats().Connected })
	sent := pub.Stats().AccessUnitsSent
	waitFor(t, 20*time.Second, "60 frames published", func() bool { return pub.Stats().AccessUnitsSent >= sent+60 })

	// The receiver dies; the publisher notices, backs off, and reconnects
	// to a new receiver on the same port.
	_ = l1.Process.Signal(syscall.SIGKILL)
	_ = l1.Wait()
	select {
	case <-down:
	case <-time.After(20 * time.Second):
		t.Fatal("no destination-down event after the receiver died")
	}
	// Down is honest: not up, and what it misses is counted lost.
	waitFor(t, 20*time.Second, "lost access units counted while down", func() bool {
		d := sl.Stats().Destinations[1]
		return !d.Up && d.Lost > 0
	})
	l2 := listener(t, port, out2)
	select {
	case <-recovered:
	case <-time.After(30 * time.Second):
		t.Fatal("no destination-recovered event")
	}
	waitFor(t, 20*time.Second, "up again", func() bool { return sl.Stats().Destinations[1].Up })
	sent = pub.Stats().AccessUnitsSent
	waitFor(t, 20*time.Second, "60 frames after recovery", func() bool { return pub.Stats().AccessUnitsSent >= sent+60 })

	fd.Stop()
	vcancel()
	<-viewerDone
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	_ = l2.Process.Signal(syscall.SIGINT) // ffmpeg finalises its file
	_ = l2.Wait()

	first, second := numbers(t, out1, w, h), numbers(t, out2, w, h)
	if len(first) < 30 || len(second) < 30 {
		t.Fatalf("received %d frames before and %d after the restart", len(first), len(second))
	}
	if err := consecutive(first); err != nil {
		t.Errorf("first receiver: %v", err)
	}
	if err := consecutive(second); err != nil {
		t.Errorf("second receiver: %v", err)
	}
	if second[0] <= first[len(first)-1] {
		t.Errorf("second receiver starts at %d, before the first one's end %d", second[0], first[len(first)-1])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 90 {
		t.Fatalf("viewer saw %d frames", len(seen))
	}
	if err := consecutive(seen); err != nil {
		t.Errorf("viewer: %v", err)
	}
	if st := pub.Stats(); st.Reconnections < 1 {
		t.Errorf("stats %+v", st)
	}
	// Every access unit is either written or counted lost.
	st := sl.Stats()
	if d := st.Destinations[1]; d.Lost == 0 || d.Written+d.Lost != st.Encoded {
		t.Errorf("publisher written %d + lost %d, want a loss and a sum of %d encoded", d.Written, d.Lost, st.Encoded)
	}
	t.Logf("first receiver %d..%d, second %d..%d, viewer %d..%d", first[0], first[len(first)-1],
		second[0], second[len(second)-1], seen[0], seen[len(seen)-1])
}

// TestPublishToClosedPortIsDown: a publisher that cannot connect is shown
// down, with every access unit counted lost and a retry reported, while the
// other destination streams.
func TestPublishToClosedPortIsDown(t *testing.T) {
	const w, h = 160, 120
	pub, err := rtsp.NewPublisher(rtsp.PublisherConfig{URL: fmt.Sprintf("rtsp://127.0.0.1:%d/live", freeTCPPort(t)),
		Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, rtsp.ServerConfig{DisableUDP: true, DisableMulticast: true})
	view, err := srv.AddStream("/view", rtsp.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	retrying := make(chan skyline.Event, 16)
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: testLogger, RetryMin: 100 * time.Millisecond,
		RetryMax: 200 * time.Millisecond, OnEvent: func(e skyline.Event) {
			if e.Kind == skyline.EventDestinationRetrying && e.Destination == pub.Name() {
				select {
				case retrying <- e:
				default:
				}
			}
		}}, view, pub)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	fd := startFeeder(t, sl, w, h, 30, 0)
	defer fd.Stop()
	for i := 0; i < 2; i++ {
		select {
		case <-retrying:
		case <-time.After(20 * time.Second):
			t.Fatal("no retry reported for the closed port")
		}
	}
	waitFor(t, 20*time.Second, "30 access units encoded", func() bool { return sl.Stats().Encoded >= 30 })
	st := sl.Stats()
	view0, pub1 := st.Destinations[0], st.Destinations[1]
	if pub1.Up || pub1.Written != 0 || pub1.Lost == 0 {
		t.Errorf("publisher to a closed port: %+v, want down, nothing written, losses counted", pub1)
	}
	if !view0.Up || view0.Written == 0 {
		t.Errorf("the RTSP stream beside it: %+v, want up and written", view0)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
