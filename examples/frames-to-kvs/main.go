// Command frames-to-kvs streams frames to Kinesis Video Streams with the
// native PutMedia client. With no -endpoint it starts SkyLine's local
// KVS-compatible endpoint in-process, so it runs without an AWS account;
// the received media lands as Matroska files under -data.
//
//	go run ./examples/frames-to-kvs                     # local endpoint, 10 s
//	go run ./examples/frames-to-kvs -endpoint ""  -region eu-west-1 -stream cam1 -real
//	                                                    # real KVS, standard AWS credentials
package main

import (
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"log"
	"os"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/kvs"
	"github.com/skyline-go/skyline/kvs/kvslocal"
)

func main() {
	region := flag.String("region", "us-east-1", "AWS region")
	stream := flag.String("stream", "demo", "stream name")
	real := flag.Bool("real", false, "stream to the real KVS service (standard AWS credential chain)")
	data := flag.String("data", "kvs-data", "local endpoint: where received media is stored")
	seconds := flag.Int("seconds", 10, "how long to stream")
	flag.Parse()

	cfg := kvs.Config{Region: *region, Stream: *stream}
	if !*real {
		// A local endpoint that accepts one made-up key pair.
		const akid, secret = "AKIDEXAMPLELOCAL", "local-example-secret"
		if err := os.MkdirAll(*data, 0o755); err != nil {
			log.Fatal(err)
		}
		local, err := kvslocal.New(kvslocal.Config{Listen: "127.0.0.1:0", DataDir: *data, AccessKey: akid, SecretKey: secret})
		if err != nil {
			log.Fatal(err)
		}
		if err := local.Start(); err != nil {
			log.Fatal(err)
		}
		defer local.Close()
		cfg.Endpoint = local.URL()
		cfg.Credentials = credentials.NewStaticCredentialsProvider(akid, secret, "")
		fmt.Println("local KVS endpoint:", local.URL(), "media under", *data)
	}
	var acks atomic.Int64
	cfg.OnEvent = func(e kvs.Event) {
		if e.Type == kvs.EventAck && e.Ack.EventType == kvs.AckPersisted {
			acks.Add(1)
		}
	}
	dst, err := kvs.New(cfg)
	if err != nil {
		log.Fatal(err)
	}

	sl, err := skyline.New(skyline.Config{}, dst)
	if err != nil {
		log.Fatal(err)
	}
	defer sl.Close()
	const w, h, fps = 640, 480, 15
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		log.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	tick := time.NewTicker(time.Second / fps)
	defer tick.Stop()
	for i := 0; i < *seconds*fps; i++ {
		<-tick.C
		for y := 0; y < h; y++ { // a moving colour gradient
			for x := 0; x < w; x++ {
				img.Set(x, y, color.RGBA{uint8(x + i*4), uint8(y), uint8(i * 2), 255})
			}
		}
		if _, err := sl.PutImage(img); err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
			log.Fatal(err)
		}
	}
	if err := sl.Stop(); err != nil { // flushes the last fragment
		log.Print(err)
	}
	st := dst.Stats()
	fmt.Printf("sent %d frames in %d fragments; %d persisted (acks seen: %d)\n", st.Frames, st.Fragments, st.Persisted, acks.Load())
}
