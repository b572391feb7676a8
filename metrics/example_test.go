package metrics_test

import (
	"log"
	"net/http"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/metrics"
	"github.com/skyline-go/skyline/rtsp"
)

// A SkyLine serving RTSP, with its metrics at http://:9090/metrics.
func Example() {
	srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: ":8554"})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	stream, err := srv.AddStream("/cam1", rtsp.StreamOptions{})
	if err != nil {
		log.Fatal(err)
	}
	c := metrics.New()
	sl, err := skyline.New(skyline.Config{OnEvent: c.OnEvent("cam1", nil)}, stream)
	if err != nil {
		log.Fatal(err)
	}
	defer sl.Close()
	if err := c.Add("cam1", sl, stream); err != nil {
		log.Fatal(err)
	}
	ms, err := metrics.Serve(":9090", c)
	if err != nil {
		log.Fatal(err)
	}
	defer ms.Close()
	// ... Start and Put frames ...
}

// The metrics on a server of your own.
func ExampleHandler() {
	c := metrics.New()
	http.Handle("/metrics", metrics.Handler(c))
}
