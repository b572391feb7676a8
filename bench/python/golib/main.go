// Command golib is the Go side of bench/python: the Go library fed the same
// 1280x720 BGR frames as fast as Put accepts them (retrying a refused frame),
// into an RTSP stream. It prints one JSON line: accepted Put duration p50/p95 (ms) and
// process CPU per frame (ms), counted until every frame is encoded.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	file := flag.String("frames", "", "raw BGR frames, back to back")
	w := flag.Int("width", 1280, "")
	h := flag.Int("height", 720, "")
	n := flag.Int("n", 300, "frames to put")
	flag.Parse()
	raw, err := os.ReadFile(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	size := *w * *h * 3
	k := len(raw) / size
	srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: "127.0.0.1:0", DisableUDP: true, DisableMulticast: true})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer srv.Close()
	sl, err := rtsp.NewSkyLine(srv, "/bench", skyline.Config{NoDotEnv: true})
	if err == nil {
		err = sl.Start(skyline.Params{FPS: 30, Width: *w, Height: *h})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer sl.Close()
	durs := make([]time.Duration, 0, *n)
	c0, t0 := cpu(), time.Now()
	for i := 0; i < *n; i++ {
		f := skyline.FrameBGR(raw[(i%k)*size:(i%k+1)*size], *w, *h, 0)
		for {
			s := time.Now()
			ok, err := sl.Put(f)
			if ok {
				durs = append(durs, time.Since(s)) // accepted calls: the copy
				break
			}
			if !errors.Is(err, skyline.ErrQueueFull) {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for sl.Stats().Encoded < uint64(*n) {
		time.Sleep(time.Millisecond)
	}
	c1, t1 := cpu(), time.Now()
	slices.Sort(durs)
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
		"name": "go library", "p50_ms": ms(durs[len(durs)/2]), "p95_ms": ms(durs[len(durs)*95/100]),
		"cpu_ms_per_frame": ms(c1-c0) / float64(*n), "fps": float64(*n) / t1.Sub(t0).Seconds()})
}
