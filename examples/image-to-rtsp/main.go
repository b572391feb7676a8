// Command image-to-rtsp draws pictures with Go's standard image packages and
// streams them on SkyLine's built-in RTSP server.
//
//	go run ./examples/image-to-rtsp
//	ffplay -rtsp_transport tcp rtsp://127.0.0.1:8554/image   # in another terminal
//
// Ctrl-C stops it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
)

func main() {
	listen := flag.String("listen", ":8554", "RTSP listen address")
	noUDP := flag.Bool("no-udp", false, "RTSP over TCP only (no UDP ports 8000-8003)")
	flag.Parse()
	const w, h, fps = 640, 360, 30

	// The RTSP server, and a SkyLine whose destination is its path /image.
	srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: *listen, DisableUDP: *noUDP, DisableMulticast: *noUDP})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err) // e.g. the port is taken: try -listen :8555
	}
	defer srv.Close()
	sl, err := rtsp.NewSkyLine(srv, "/image", skyline.Config{})
	if err != nil {
		log.Fatal(err) // e.g. a missing GStreamer plugin, with how to install it
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("streaming at", srv.Stream("/image").URL())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	img := image.NewRGBA(image.Rect(0, 0, w, h)) // goes in without conversion
	tick := time.NewTicker(time.Second / fps)
	defer tick.Stop()
	for i := 0; ; i++ {
		// Draw: a background that slowly changes colour, a square crossing it.
		bg := color.RGBA{R: uint8(i), G: 80, B: 160, A: 255}
		draw.Draw(img, img.Bounds(), &image.Uniform{bg}, image.Point{}, draw.Src)
		x := i * 4 % (w - 80)
		draw.Draw(img, image.Rect(x, h/2-40, x+80, h/2+40), &image.Uniform{color.White}, image.Point{}, draw.Src)

		// One call per picture: it is copied into the pipeline, img may be
		// redrawn at once. false means not taken (e.g. the encoder is late).
		if _, err := sl.PutImage(img); err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
			log.Fatal(err)
		}
		select {
		case <-ctx.Done():
			fmt.Println("stopping")
			if err := sl.Stop(); err != nil {
				log.Print(err)
			}
			return
		case <-tick.C:
		}
	}
}
