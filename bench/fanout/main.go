// Command fanout measures what each extra destination costs next to the
// single encode: process CPU at 1280x720@30 (real time) with 1, 3 and 5
// destinations (Matroska files and Go receivers), in one run so the ratios
// share the machine's conditions. Target: each extra destination adds less
// than 10% of the single-destination CPU.
//
//	go run ./bench/fanout [-seconds 8] [-width 1280 -height 720]
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sink is a Go receiver that only counts (like an RTSP stream without
// viewers, or a network client).
type sink struct {
	name string
	n    int
}

func (s *sink) Name() string                                 { return s.name }
func (s *sink) Open(skyline.StreamInfo) error                { return nil }
func (s *sink) WriteAccessUnit(au *skyline.AccessUnit) error { s.n++; return nil }
func (s *sink) Close()                                       {}

func run(n int, dir string, frames [][]byte, w, h int, seconds float64) (cpuPct float64, written uint64) {
	var dests []skyline.Destination
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			f, err := skyline.NewFile(filepath.Join(dir, fmt.Sprintf("d%d-%d.mkv", n, i)))
			if err != nil {
				log.Fatal(err)
			}
			dests = append(dests, f)
		} else {
			dests = append(dests, &sink{name: fmt.Sprintf("go%d", i)})
		}
	}
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: slog.New(slog.DiscardHandler)}, dests...)
	if err != nil {
		log.Fatal(err)
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		log.Fatal(err)
	}
	total := int(seconds * 30)
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	c0, t0 := cpuTime(), time.Now()
	for i := 0; i < total; i++ {
		<-tick.C
		if _, err := sl.Put(skyline.FrameBGR(frames[i%len(frames)], w, h, 0)); err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
			log.Fatal(err)
		}
	}
	if err := sl.Stop(); err != nil {
		log.Fatal(err)
	}
	c1, t1 := cpuTime(), time.Now()
	st := sl.Stats()
	return 100 * float64(c1-c0) / float64(t1.Sub(t0)), st.Written
}

func main() {
	seconds := flag.Float64("seconds", 8, "seconds of real-time streaming per configuration")
	w := flag.Int("width", 1280, "width")
	h := flag.Int("height", 720, "height")
	flag.Parse()
	dir, err := os.MkdirTemp("", "fanout")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	frames := make([][]byte, 30)
	for i := range frames {
		frames[i] = testpattern.NewBGR(*w, *h, i*4)
	}
	counts := []int{1, 3, 5}
	cpu := map[int]float64{}
	// Interleave two rounds so that drifting machine load hits all alike.
	for round := 0; round < 2; round++ {
		for _, n := range counts {
			pct, written := run(n, dir, frames, *w, *h, *seconds)
			cpu[n] += pct / 2
			fmt.Fprintf(os.Stderr, "round %d: %d destination(s): %.1f%% CPU, %d access units to all\n", round+1, n, pct, written)
		}
	}
	fmt.Printf("%dx%d@30, %.0f s per run, mean of 2 rounds (machine: %d-core shared VM)\n", *w, *h, *seconds, 2)
	fmt.Printf("%-14s %8s %12s %22s\n", "destinations", "CPU %", "x single", "per extra destination")
	for _, n := range counts {
		extra := ""
		if n > 1 {
			extra = fmt.Sprintf("%+.1f%% of single", 100*(cpu[n]-cpu[1])/cpu[1]/float64(n-1))
		}
		fmt.Printf("%-14d %8.1f %12.2f %22s\n", n, cpu[n], cpu[n]/cpu[1], extra)
	}
}
