package kvs_test

import (
	"log"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/kvs"
)

// Stream to Kinesis Video Streams with the native PutMedia client:
// credentials from the standard AWS chain (environment, shared config,
// instance or container role), refreshed automatically.
func Example() {
	dst, err := kvs.New(kvs.Config{Region: "eu-west-1", Stream: "cam1", CreateStream: true})
	if err != nil {
		log.Fatal(err)
	}
	sl, err := skyline.New(skyline.Config{OnEvent: func(e skyline.Event) {
		if e.Kind == skyline.EventAck {
			log.Println(e.Detail) // "PERSISTED fragment ..."
		}
	}}, dst)
	if err != nil {
		log.Fatal(err)
	}
	defer sl.Close()
	_ = sl.Start(skyline.Params{FPS: 15, Width: 640, Height: 480})
	// ... sl.Put(frame) per frame ...
}

// The original's kvssink pipeline, with its credential file handler.
func Example_kvssink() {
	dst, err := kvs.New(kvs.Config{Region: "eu-west-1", Stream: "cam1", Backend: kvs.BackendKVSSink})
	if err != nil {
		log.Fatal(err) // without kvssink: how to build it, or use the native backend
	}
	_ = dst
}

// A kvs:// URL, as the CLI's --out takes it.
func ExampleParseURL() {
	cfg, err := kvs.ParseURL("kvs://us-east-1/demo?fragment=4s")
	if err != nil {
		log.Fatal(err)
	}
	log.Println(cfg.Region, cfg.Stream, cfg.FragmentDuration)
}
