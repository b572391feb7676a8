// Command multi-destination encodes one stream once and sends it to three
// destinations: the built-in RTSP server, a recording cut into segments,
// and a GStreamer branch (here a Matroska file of the whole session). Every
// event (destinations up or failing, viewers joining, drops) is printed.
//
//	go run ./examples/multi-destination
//	ffplay -rtsp_transport tcp rtsp://127.0.0.1:8554/live   # in another terminal
//
// Ctrl-C stops it and finalises the files in ./recordings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
)

func main() {
	listen := flag.String("listen", ":8554", "RTSP listen address")
	noUDP := flag.Bool("no-udp", false, "RTSP over TCP only (no UDP ports 8000-8003)")
	dir := flag.String("dir", "recordings", "folder for the recordings")
	segment := flag.Duration("segment", 10*time.Second, "length of each recorded segment")
	flag.Parse()
	const w, h, fps = 640, 360, 30
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}

	// Destination 1: a path on the built-in RTSP server.
	srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: *listen, DisableUDP: *noUDP, DisableMulticast: *noUDP})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	live, err := srv.AddStream("/live", rtsp.StreamOptions{})
	if err != nil {
		log.Fatal(err)
	}
	// Destination 2: MP4 segments, each playable on its own; keep the last 6.
	segments, err := skyline.NewSegmentedFile(filepath.Join(*dir, "rec-%05d.mp4"), *segment, 6)
	if err != nil {
		log.Fatal(err)
	}
	// Destination 3: any GStreamer branch that takes parsed H.264.
	mkv, err := skyline.NewGstSink("matroskamux ! filesink location=" + filepath.Join(*dir, "all.mkv"))
	if err != nil {
		log.Fatal(err)
	}

	cfg := skyline.Config{
		// Events arrive in order, from a goroutine of their own.
		OnEvent: func(e skyline.Event) {
			switch e.Kind {
			case skyline.EventState:
				fmt.Printf("event: state %v -> %v\n", e.From, e.State)
			case skyline.EventViewerJoined, skyline.EventViewerLeft:
				fmt.Printf("event: %s %s %s\n", e.Kind, e.Destination, e.Viewer)
			default:
				fmt.Printf("event: %s %s %v %s\n", e.Kind, e.Destination, e.Err, e.Detail)
			}
		},
	}
	sl, err := skyline.New(cfg, live, segments, mkv) // one encode, three outputs
	if err != nil {
		log.Fatal(err) // e.g. a missing GStreamer plugin, with how to install it
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("streaming at", live.URL(), "and recording in", *dir)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	frame := make([]byte, w*h*3) // BGR, height x width x 3, as OpenCV holds it
	tick := time.NewTicker(time.Second / fps)
	defer tick.Stop()
	for i := 0; ; i++ {
		draw(frame, w, h, i)
		if _, err := sl.Put(skyline.FrameBGR(frame, w, h, 0)); err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
			log.Fatal(err)
		}
		select {
		case <-ctx.Done():
			if err := sl.Stop(); err != nil { // finalises the files
				log.Print(err)
			}
			st := sl.Stats()
			fmt.Printf("stopped after %d frames (%d encoded)\n", st.Accepted, st.Encoded)
			return
		case <-tick.C:
		}
	}
}

// draw paints frame i: a gradient scrolling sideways, a bar moving down.
func draw(buf []byte, w, h, i int) {
	bar := i * 3 % h
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := buf[(y*w+x)*3:]
			p[0], p[1], p[2] = byte(x+i), byte(y), 128 // B, G, R
			if y >= bar && y < bar+20 {
				p[0], p[1], p[2] = 255, 255, 255
			}
		}
	}
}
