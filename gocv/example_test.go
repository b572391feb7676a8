package skylinegocv_test

import (
	"fmt"
	"image"
	"image/color"

	"gocv.io/x/gocv"

	"github.com/skyline-go/skyline"
	skylinegocv "github.com/skyline-go/skyline/gocv"
	"github.com/skyline-go/skyline/rtsp"
)

// Stream an OpenCV loop's Mats on the built-in RTSP server.
func Example() {
	// Any free port, TCP only, so that the example runs next to other servers;
	// the defaults are ":8554" and UDP on ports 8000-8003.
	srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: "127.0.0.1:0", DisableUDP: true, DisableMulticast: true})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	sl, err := rtsp.NewSkyLine(srv, "/cam", skyline.Config{NoDotEnv: true})
	if err != nil {
		panic(err) // e.g. a missing GStreamer plugin, with how to install it
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: 30, Width: 320, Height: 240}); err != nil {
		panic(err)
	}

	img := gocv.NewMatWithSize(240, 320, gocv.MatTypeCV8UC3) // from webcam.Read(&img)
	defer img.Close()
	for i := 0; i < 3; i++ {
		gocv.Rectangle(&img, image.Rect(40+i, 40, 120+i, 100), color.RGBA{G: 255}, 2) // a detection
		ok, err := skylinegocv.Put(sl, img)                                           // copied into the pipeline: img may change at once
		fmt.Println(ok, err)
	}
	// Output:
	// true <nil>
	// true <nil>
	// true <nil>
}

// A region of interest is streamed without a copy: the frame points into
// its parent Mat, with the parent's row step as stride.
func ExampleFrame() {
	full := gocv.NewMatWithSize(480, 640, gocv.MatTypeCV8UC3)
	defer full.Close()
	roi := full.Region(image.Rect(100, 50, 420, 290))
	defer roi.Close()
	f, err := skylinegocv.Frame(roi)
	fmt.Println(f.Format, f.Width, f.Height, f.Stride, roi.IsContinuous(), err)

	bad := gocv.NewMatWithSize(4, 4, gocv.MatTypeCV32FC1)
	defer bad.Close()
	_, err = skylinegocv.Frame(bad)
	fmt.Println(err)
	// Output:
	// bgr 320 240 1920 false <nil>
	// skyline: invalid frame: skylinegocv: Mat type CV_32FC1: want CV_8UC3 (BGR), CV_8UC4 (BGRA) or CV_8UC1 (gray); convert it first, e.g. with gocv.CvtColor or Mat.ConvertTo
}
