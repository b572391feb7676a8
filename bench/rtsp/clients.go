package main

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
)

// Third-party players, each run as a process that plays the stream over
// TCP and writes every decoded picture to stdout as GRAY8 (w*h bytes).
// Measured per run: PLAY (the server's EventViewerJoined, sent as the PLAY
// response goes out) -> the first picture with a readable frame number
// (grey pictures a decoder shows before the keyframe do not count), then
// Put -> picture on stdout for the pictures of a window that starts settle
// after the first one (a player first catches up with what it buffered
// while starting).

// extClient is one player with its options.
type extClient struct {
	name string
	args func(url string) []string
}

// ffmpegClient is ffmpeg with input options opts. The output side adds no
// delay of its own: -threads 1 (the rawvideo encoder has frame threads, each
// holding a picture), -flush_packets 1, passthrough timing in the input's
// time base (pictures that arrive together are not dropped as duplicates).
func ffmpegClient(opts string) extClient {
	name := "ffmpeg " + opts
	if opts == "" {
		name = "ffmpeg (defaults)"
	}
	return extClient{name: name, args: func(url string) []string {
		a := append([]string{"ffmpeg", "-v", "info", "-nostdin"}, strings.Fields(opts)...)
		return append(a, "-rtsp_transport", "tcp", "-i", url, "-threads", "1", "-fps_mode", "passthrough", "-enc_time_base", "-1",
			"-flush_packets", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-")
	}}
}

// gstClient is GStreamer's rtspsrc with no jitter buffer latency.
func gstClient() extClient {
	return extClient{name: "gst-launch rtspsrc latency=0", args: func(url string) []string {
		return strings.Fields("gst-launch-1.0 -q rtspsrc location=" + url + " protocols=tcp latency=0 ! rtph264depay ! " +
			"h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=GRAY8 ! fdsink fd=1 sync=false")
	}}
}

// joinEvents hands on when each viewer's PLAY was answered.
type joinEvents struct{ ch chan time.Time }

func (j *joinEvents) onEvent(e skyline.Event) {
	if e.Kind == skyline.EventViewerJoined {
		select {
		case j.ch <- e.Time:
		default:
		}
	}
}

// settle is how long after its first picture a player is left to catch up
// before its steady-state latency is measured.
const settle = 2 * time.Second

// extRun is one run of a player.
type extRun struct {
	first      time.Duration   // PLAY -> first readable picture
	unreadable int             // pictures shown before it
	lat        []time.Duration // Put -> picture, steady state
	log        []string        // stderr lines and milestones, timed from the start
}

func runExt(c extClient, url string, f *feeder, joins *joinEvents, window time.Duration) extRun {
	for len(joins.ch) > 0 {
		<-joins.ch
	}
	args := c.args(url)
	cmd := exec.Command(args[0], args[1:]...)
	out, err := cmd.StdoutPipe()
	check(err)
	stderr, err := cmd.StderrPipe()
	check(err)
	start := time.Now()
	stamp := func(at time.Time, s string) string {
		return fmt.Sprintf("%7.1f ms %s", float64(at.Sub(start).Microseconds())/1000, s)
	}
	check(cmd.Start())
	logs := make(chan []string, 1)
	go func() {
		var l []string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			l = append(l, stamp(time.Now(), sc.Text()))
		}
		logs <- l
	}()
	var r extRun
	br := bufio.NewReaderSize(out, w*h)
	buf := make([]byte, w*h)
	gray := make([]byte, w*h*3)
	var playAt, firstAt time.Time
	for {
		if _, err := io.ReadFull(br, buf); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", c.name, err)
			break
		}
		at := time.Now()
		if playAt.IsZero() {
			select {
			case playAt = <-joins.ch:
			case <-time.After(time.Second):
				log.Printf("%s: no viewer-joined event", c.name)
				playAt = start
			}
		}
		// The number band in grey, for ReadBGR.
		for y := h * 3 / 100; y < h*17/100+1; y++ {
			row := buf[y*w : (y+1)*w]
			o := gray[y*w*3 : (y+1)*w*3]
			for x, v := range row {
				o[3*x], o[3*x+1], o[3*x+2] = v, v, v
			}
		}
		n, ok := testpattern.ReadBGR(gray, w, h)
		if !ok {
			if firstAt.IsZero() {
				r.unreadable++
			}
			continue
		}
		if firstAt.IsZero() {
			firstAt = at
			r.first = at.Sub(playAt)
			r.log = append(r.log, stamp(playAt, "PLAY answered"),
				stamp(at, fmt.Sprintf("first readable picture: frame %d, after %d unreadable", n, r.unreadable)))
		}
		if at.Sub(firstAt) >= settle {
			if put, _, ok := f.at(n); ok {
				r.lat = append(r.lat, at.Sub(put))
			}
		}
		if at.Sub(firstAt) >= settle+window {
			break
		}
	}
	_ = cmd.Process.Kill()
	_, _ = io.Copy(io.Discard, br)
	_ = cmd.Wait()
	r.log = append(<-logs, r.log...)
	sortD(r.lat)
	return r
}

// extResult is a player's figures over its runs.
type extResult struct {
	name               string
	firstMed, firstMax time.Duration
	p50, p95           time.Duration
	frames             int
}

// measureClients runs each player joins times, interleaved, and returns
// their figures.
func measureClients(url string, f *feeder, joins *joinEvents) []extResult {
	var clients []extClient
	for _, v := range strings.Split(*ffVariants, ";") {
		clients = append(clients, ffmpegClient(strings.TrimSpace(v)))
	}
	clients = append(clients, gstClient())
	runs := make([][]extRun, len(clients))
	for j := 0; j < *extJoins; j++ {
		for i, c := range clients {
			time.Sleep(700 * time.Millisecond) // land at varied points of the GOP
			r := runExt(c, url, f, joins, *extWindow)
			runs[i] = append(runs[i], r)
			if *verbose {
				fmt.Printf("--- %s, join %d: first picture %v after PLAY (%d unreadable before), Put->picture p50 %v\n",
					c.name, j+1, r.first.Round(100*time.Microsecond), r.unreadable, pct(r.lat, 0.5))
				for _, l := range r.log {
					if !strings.HasPrefix(strings.TrimSpace(l[10:]), "configuration:") {
						fmt.Println("   ", l)
					}
				}
			}
		}
	}
	var out []extResult
	for i, c := range clients {
		var firsts, lats []time.Duration
		for _, r := range runs[i] {
			firsts = append(firsts, r.first)
			lats = append(lats, r.lat...)
		}
		sortD(firsts)
		sortD(lats)
		out = append(out, extResult{name: c.name, firstMed: pct(firsts, 0.5), firstMax: pct(firsts, 1),
			p50: pct(lats, 0.5), p95: pct(lats, 0.95), frames: len(lats)})
	}
	return out
}

// ratio formats a/b.
func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fx", float64(a)/float64(b))
}
