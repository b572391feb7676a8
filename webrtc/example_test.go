package webrtc_test

import (
	"fmt"
	"strings"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
	"github.com/skyline-go/skyline/webrtc"
)

// Watch in a browser: the page at stream.URL() plays over WebRTC (WHEP at
// stream.WHEPURL()), next to RTSP, from one encode.
func Example() {
	web, err := webrtc.NewServer(webrtc.ServerConfig{Address: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	if err := web.Start(); err != nil {
		panic(err)
	}
	defer web.Close()
	page, err := web.AddStream("/cam", webrtc.StreamOptions{})
	if err != nil {
		panic(err)
	}
	srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: "127.0.0.1:0", DisableUDP: true, DisableMulticast: true})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()
	viewers, err := srv.AddStream("/cam", rtsp.StreamOptions{})
	if err != nil {
		panic(err)
	}
	sl, err := skyline.New(skyline.Config{NoDotEnv: true}, page, viewers)
	if err != nil {
		panic(err)
	}
	defer sl.Close()
	_ = sl.Start(skyline.Params{FPS: 30, Width: 640, Height: 480})
	fmt.Println(strings.HasSuffix(page.URL(), "/cam/"), strings.HasSuffix(page.WHEPURL(), "/cam/whep"))
	// Output: true true
}
