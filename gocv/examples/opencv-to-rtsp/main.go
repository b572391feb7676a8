// Command opencv-to-rtsp streams a gocv (OpenCV) loop on SkyLine's built-in
// RTSP server: each Mat goes in with one call, skylinegocv.Put.
//
//	cd gocv && go run ./examples/opencv-to-rtsp              # a drawn test scene
//	cd gocv && go run ./examples/opencv-to-rtsp -device 0    # webcam 0 (or a video file)
//	ffplay -rtsp_transport tcp rtsp://127.0.0.1:8554/opencv  # in another terminal
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
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gocv.io/x/gocv"

	"github.com/skyline-go/skyline"
	skylinegocv "github.com/skyline-go/skyline/gocv"
	"github.com/skyline-go/skyline/rtsp"
)

func main() {
	listen := flag.String("listen", ":8554", "RTSP listen address")
	noUDP := flag.Bool("no-udp", false, "RTSP over TCP only (no UDP ports 8000-8003)")
	device := flag.String("device", "", "camera index or video file to read (default: draw a test scene)")
	flag.Parse()
	w, h, fps := 640, 360, 30.0

	var capture *gocv.VideoCapture
	if *device != "" {
		var err error
		if capture, err = gocv.OpenVideoCapture(*device); err != nil {
			log.Fatal(err)
		}
		defer capture.Close()
		w = int(capture.Get(gocv.VideoCaptureFrameWidth))
		h = int(capture.Get(gocv.VideoCaptureFrameHeight))
		if f := capture.Get(gocv.VideoCaptureFPS); f > 0 && f < 240 {
			fps = f
		}
	}

	srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: *listen, DisableUDP: *noUDP, DisableMulticast: *noUDP})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err) // e.g. the port is taken: try -listen :8555
	}
	defer srv.Close()
	sl, err := rtsp.NewSkyLine(srv, "/opencv", skyline.Config{})
	if err != nil {
		log.Fatal(err) // e.g. a missing GStreamer plugin, with how to install it
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("streaming at", srv.Stream("/opencv").URL())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	img := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3) // BGR, reused for every frame
	defer img.Close()
	tick := time.NewTicker(time.Duration(float64(time.Second) / fps))
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		if capture != nil {
			if !capture.Read(&img) || img.Empty() {
				fmt.Println("end of input")
				break
			}
		} else {
			drawScene(&img, i)
		}
		// Your vision code goes here: detect, then draw on img.
		gocv.PutText(&img, fmt.Sprintf("frame %d", i), image.Pt(20, h-20), gocv.FontHersheySimplex, 1,
			color.RGBA{R: 255, G: 255, B: 0}, 2)

		// One call per Mat, no copy beyond the one into the encoder's
		// buffer: img may be overwritten as soon as Put returns.
		if _, err := skylinegocv.Put(sl, img); err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
			log.Fatal(err)
		}
		if capture == nil { // a camera paces itself; the drawn scene needs a clock
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}
	if err := sl.Stop(); err != nil {
		log.Print(err)
	}
	fmt.Println("stopped")
}

// drawScene paints frame i of a test scene: a dark background and a white
// 80x80 square crossing the middle.
func drawScene(img *gocv.Mat, i int) {
	img.SetTo(gocv.NewScalar(60, 40, 20, 0))
	w, h := img.Cols(), img.Rows()
	x := i * 4 % (w - 80)
	gocv.Rectangle(img, image.Rect(x, h/2-40, x+80, h/2+40), color.RGBA{R: 255, G: 255, B: 255}, -1)
}
