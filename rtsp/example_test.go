package rtsp_test

import (
	"fmt"
	"strings"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
)

// One server, one SkyLine per path (the original's RTSPServer and
// RTSPSkyLine).
func Example() {
	srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: "127.0.0.1:0", DisableUDP: true, DisableMulticast: true})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err) // e.g. the port is in use
	}
	defer srv.Close()
	sl, err := rtsp.NewSkyLine(srv, "cam", skyline.Config{NoDotEnv: true}) // "/cam"
	if err != nil {
		panic(err)
	}
	defer sl.Close()
	_ = sl.Start(skyline.Params{FPS: 30, Width: 640, Height: 480})
	_, _ = sl.Put(skyline.FrameBGR(make([]byte, 640*480*3), 640, 480, 0))
	url := srv.URLs()[0]
	fmt.Println(strings.HasPrefix(url, "rtsp://127.0.0.1:"), strings.HasSuffix(url, "/cam"))
	// Output: true true
}

// Publish to another RTSP server (ANNOUNCE/RECORD), reconnecting with
// backoff when it goes away.
func ExampleNewPublisher() {
	pub, err := rtsp.NewPublisher(rtsp.PublisherConfig{URL: "rtsp://user:secret@media.example:8554/cam"})
	if err != nil {
		panic(err)
	}
	fmt.Println(pub.Name())
	// Output: push:rtsp://user:****@media.example:8554/cam
}
