package kvslocal_test

import (
	"fmt"
	"log"

	"github.com/skyline-go/skyline/kvs/kvslocal"
)

// A local KVS-compatible endpoint: point the Go SDK at URL() (or set
// AWS_ENDPOINT_URL_KINESIS_VIDEO), or kvssink with CONTROL_PLANE_URI.
func Example() {
	srv, err := kvslocal.New(kvslocal.Config{Listen: "127.0.0.1:0", DataDir: "/tmp/kvs-data",
		AccessKey: "AKIDEXAMPLE", SecretKey: "example-secret"})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	fmt.Println(srv.URL() != "")
	// Output: true
}
