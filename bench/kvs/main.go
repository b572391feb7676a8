// Command kvs-bench measures the CPU and memory the native KVS backend
// costs per stream: the same SkyLine pipeline (1280x720@30, x264 at
// 2 Mbit/s) streams for a while to a Matroska file, then to the native KVS
// client (PutMedia to a local KVS-compatible endpoint running in a child
// process, so its work is not counted), and the process's CPU time and
// resident memory are compared. Results are reported, not asserted.
//
//	go run ./bench/kvs [-duration 12s -rounds 2] [-width 1280 -height 720 -fps 30 -kbps 2000]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/kvs"
	"github.com/skyline-go/skyline/kvs/kvslocal"
)

const ak, sk = "AKIDBENCH00000000001", "bench/secret/0123456789abcdef"

func main() {
	endpoint := flag.String("endpoint", "", "internal: run the local endpoint with this data folder")
	dur := flag.Duration("duration", 12*time.Second, "streaming time per destination and round")
	rounds := flag.Int("rounds", 2, "rounds (each streams to the file, then to KVS)")
	w := flag.Int("width", 1280, "width")
	h := flag.Int("height", 720, "height")
	fps := flag.Int("fps", 30, "frames per second")
	kbps := flag.Int("kbps", 2000, "bitrate in kbit/s")
	flag.Parse()
	if *endpoint != "" {
		runEndpoint(*endpoint)
		return
	}
	if err := run(*dur, *rounds, *w, *h, *fps, *kbps); err != nil {
		fmt.Fprintln(os.Stderr, "kvs-bench:", err)
		os.Exit(1)
	}
}

// runEndpoint serves until stdin closes, printing its URL first.
func runEndpoint(dir string) {
	srv, err := kvslocal.New(kvslocal.Config{DataDir: dir, AccessKey: ak, SecretKey: sk,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(srv.URL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() { _, _ = bufio.NewReader(os.Stdin).ReadString('\n'); sig <- syscall.SIGTERM }()
	<-sig
	_ = srv.Close()
}

type result struct {
	name      string
	cpu, wall time.Duration
	rssMax    int64 // kB
	frames    uint64
}

func (r result) cpuPct() float64 { return 100 * r.cpu.Seconds() / r.wall.Seconds() }

func (r result) perFrame() float64 { return 1000 * r.cpu.Seconds() / float64(max(r.frames, 1)) }

func run(dur time.Duration, rounds, w, h, fps, kbps int) error {
	tmp, err := os.MkdirTemp("", "kvs-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, "-endpoint", filepath.Join(tmp, "endpoint"))
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { _ = stdin.Close(); _ = child.Wait() }()
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("endpoint: %v", err)
	}
	url = strings.TrimSpace(url)

	// Frames are drawn once: the benchmark measures streaming, not drawing.
	frames := make([][]byte, 10)
	for i := range frames {
		frames[i] = testpattern.NewBGR(w, h, i)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fmt.Printf("SkyLine KVS benchmark: %dx%d@%d, x264 %d kbit/s, %d rounds of %v per destination, %d CPUs\n", w, h, fps, kbps, rounds, dur, numCPU())

	file, err := skyline.NewFile(filepath.Join(tmp, "out.mkv"))
	if err != nil {
		return err
	}
	native, err := kvs.NewNative(kvs.Config{Region: "us-east-1", Stream: "bench", Endpoint: url, Logger: log,
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, "")})
	if err != nil {
		return err
	}
	// Alternate the destinations so that load from other processes on the
	// machine affects both alike; sum the rounds.
	rFile, rKVS := result{name: "file (.mkv)"}, result{name: "kvs native"}
	for i := 0; i < rounds; i++ {
		for _, m := range []struct {
			acc *result
			dst skyline.Destination
		}{{&rFile, file}, {&rKVS, native}} {
			r, err := measure(m.acc.name, m.dst, frames, w, h, fps, kbps, dur, log)
			if err != nil {
				return err
			}
			m.acc.cpu += r.cpu
			m.acc.wall += r.wall
			m.acc.frames += r.frames
			m.acc.rssMax = max(m.acc.rssMax, r.rssMax)
		}
	}
	acked := native.Stats()

	fmt.Printf("\n%-14s %8s %10s %12s %14s %8s\n", "destination", "frames", "CPU", "CPU time", "CPU per frame", "RSS max")
	for _, r := range []result{rFile, rKVS} {
		fmt.Printf("%-14s %8d %9.1f%% %11.2fs %11.2f ms %6d MB\n", r.name, r.frames, r.cpuPct(), r.cpu.Seconds(), r.perFrame(), r.rssMax/1024)
	}
	fmt.Printf("\nratios kvs/file: CPU %.2f, CPU per frame %.2f, RSS %.2f\n", rKVS.cpuPct()/rFile.cpuPct(), rKVS.perFrame()/rFile.perFrame(), float64(rKVS.rssMax)/float64(rFile.rssMax))
	fmt.Printf("native KVS cost per stream: %+.1f%% of a CPU, %+d MB RSS\n", rKVS.cpuPct()-rFile.cpuPct(), (rKVS.rssMax-rFile.rssMax)/1024)
	fmt.Printf("kvs: %d fragments, %d persisted, %d dropped, %d connections\n", acked.Fragments, acked.Persisted, acked.FragmentsDropped, acked.Connections)
	return nil
}

func measure(name string, dst skyline.Destination, frames [][]byte, w, h, fps, kbps int, dur time.Duration, log *slog.Logger) (result, error) {
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, Logger: log, Encoder: skyline.Encoder{Bitrate: kbps}}, dst)
	if err != nil {
		return result{}, err
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: float64(fps), Width: w, Height: h}); err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	tick := time.NewTicker(time.Second / time.Duration(fps))
	defer tick.Stop()
	cpu0, wall0 := cpuTime(), time.Now()
	var rssMax int64
	i := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		if _, err := sl.Put(skyline.FrameBGR(frames[i%len(frames)], w, h, 0)); err != nil && !errors.Is(err, skyline.ErrNotAccepted) {
			return result{}, err
		}
		if i%fps == 0 {
			rssMax = max(rssMax, rssKB())
		}
		i++
	}
	if err := sl.Stop(); err != nil {
		return result{}, err
	}
	rssMax = max(rssMax, rssKB())
	r := result{name: name, cpu: cpuTime() - cpu0, wall: time.Since(wall0), rssMax: rssMax, frames: sl.Stats().Accepted}
	fmt.Printf("  %s: done (%d frames)\n", name, r.frames)
	return r, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
