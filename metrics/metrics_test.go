package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/metrics"
	"github.com/skyline-go/skyline/rtsp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// sample is one scraped series: its name and labels, and its value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape GETs url and parses the text exposition format.
func scrape(t *testing.T, url string) []sample {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	var out []sample
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		s := sample{labels: map[string]string{}, value: v}
		series := line[:sp]
		name, lbls, ok := strings.Cut(series, "{")
		s.name = name
		if ok {
			for _, kv := range strings.Split(strings.TrimSuffix(lbls, "}"), ",") {
				k, v, _ := strings.Cut(kv, "=")
				s.labels[k] = strings.Trim(v, `"`)
			}
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// value finds the series name with labels (a subset of its labels); it
// fails the test when there is none.
func value(t *testing.T, ss []sample, name string, labels ...string) float64 {
	t.Helper()
next:
	for _, s := range ss {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return s.value
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// acker is a Receiver that reports an acknowledgement for every keyframe
// and one error, as the KVS destination does.
type acker struct {
	emit  func(skyline.Event)
	erred bool
}

func (a *acker) Name() string { return "acker" }
func (a *acker) Open(info skyline.StreamInfo) error {
	a.emit = info.Emit
	return nil
}
func (a *acker) WriteAccessUnit(au *skyline.AccessUnit) error {
	if au.Keyframe {
		a.emit(skyline.Event{Kind: skyline.EventAck, Detail: "fragment persisted"})
	}
	if !a.erred {
		a.erred = true
		a.emit(skyline.Event{Kind: skyline.EventError, Err: io.ErrUnexpectedEOF})
	}
	return nil
}
func (a *acker) Close() {}

// closedPort is a local TCP port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// TestMetricsWhileStreaming scrapes the endpoint while frames flow: the
// frame, byte and latency counters move, destination states and acks and
// errors are reported, and the viewer gauge follows a real RTSP client
// (ffmpeg) connecting and disconnecting.
func TestMetricsWhileStreaming(t *testing.T) {
	const w, h, fps = 320, 240, 30
	srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: "127.0.0.1:0", DisableUDP: true, DisableMulticast: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st, err := srv.AddStream("/cam", rtsp.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	broken, err := skyline.NewGstSink(fmt.Sprintf("mpegtsmux ! tcpclientsink host=127.0.0.1 port=%d", closedPort(t)))
	if err != nil {
		t.Fatal(err)
	}

	c := metrics.New()
	events := make(chan skyline.Event, 1024)
	sl, err := skyline.New(skyline.Config{Logger: quiet, NoDotEnv: true,
		Encoder:  skyline.Encoder{Preset: "ultrafast", KeyframeInterval: time.Second},
		RetryMin: time.Hour, RetryMax: time.Hour, // the broken destination stays down
		OnEvent: c.OnEvent("cam", func(e skyline.Event) {
			select {
			case events <- e:
			default:
			}
		})}, st, &acker{}, broken)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if err := c.Add("cam", sl, st); err != nil {
		t.Fatal(err)
	}
	if err := c.Add("cam", sl); err == nil {
		t.Fatal("a second SkyLine named cam was accepted")
	}
	ms, err := metrics.Serve("127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ms.Close(); err != nil {
			t.Error(err)
		}
	}()

	s0 := scrape(t, ms.URL())
	if v := value(t, s0, "skyline_state", "skyline", "cam", "state", "STOPPED"); v != 1 {
		t.Fatalf("state STOPPED = %v before Start", v)
	}
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the vision loop: 30 fps
		defer wg.Done()
		tick := time.NewTicker(time.Second / fps)
		defer tick.Stop()
		buf := testpattern.NewBGR(w, h, 0)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			testpattern.DrawBGR(buf, w, h, n)
			_, _ = sl.Put(skyline.FrameBGR(buf, w, h, 0))
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	var history []skyline.Event
	// waitEvent waits until an event matching match has happened (since
	// the start: events may come in any order across destinations).
	waitEvent := func(what string, match func(skyline.Event) bool) {
		t.Helper()
		for _, e := range history {
			if match(e) {
				return
			}
		}
		timeout := time.After(60 * time.Second)
		for {
			select {
			case e := <-events:
				history = append(history, e)
				if match(e) {
					return
				}
			case <-timeout:
				t.Fatalf("timeout waiting for %s", what)
			}
		}
	}
	// The first acknowledgement comes with the first keyframe written.
	waitEvent("an ack", func(e skyline.Event) bool { return e.Kind == skyline.EventAck })
	waitEvent("the broken destination down", func(e skyline.Event) bool {
		return e.Kind == skyline.EventDestinationDown && e.Destination == broken.Name()
	})
	s1 := scrape(t, ms.URL())
	// No event marks "n more frames encoded": poll the endpoint with a deadline.
	var s2 []sample
	deadline := time.Now().Add(60 * time.Second)
	for {
		s2 = scrape(t, ms.URL())
		if value(t, s2, "skyline_frames_encoded_total", "skyline", "cam") >= value(t, s1, "skyline_frames_encoded_total", "skyline", "cam")+30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the encoded counter did not move by 30 in 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, name := range []string{"skyline_frames_accepted_total", "skyline_frames_encoded_total",
		"skyline_encoded_bytes_total", "skyline_encode_latency_seconds_count", "skyline_encode_latency_seconds_sum"} {
		a, b := value(t, s1, name, "skyline", "cam"), value(t, s2, name, "skyline", "cam")
		if !(b > a) {
			t.Errorf("%s did not move: %v then %v", name, a, b)
		}
	}
	if n, sum := value(t, s2, "skyline_encode_latency_seconds_count", "skyline", "cam"),
		value(t, s2, "skyline_encode_latency_seconds_sum", "skyline", "cam"); sum/n <= 0 || sum/n > 2 {
		t.Errorf("mean encode latency %v s", sum/n)
	}
	if inf, n := value(t, s2, "skyline_encode_latency_seconds_bucket", "skyline", "cam", "le", "+Inf"),
		value(t, s2, "skyline_encode_latency_seconds_count", "skyline", "cam"); inf != n {
		t.Errorf("latency +Inf bucket %v, count %v", inf, n)
	}
	for name, want := range map[string]float64{
		"skyline_state|STREAMING": 1, "skyline_state|STOPPED": 0,
	} {
		n, state, _ := strings.Cut(name, "|")
		if v := value(t, s2, n, "skyline", "cam", "state", state); v != want {
			t.Errorf("%s{state=%s} = %v, want %v", n, state, v, want)
		}
	}
	if v := value(t, s2, "skyline_destination_up", "destination", st.Name()); v != 1 {
		t.Errorf("rtsp destination up = %v", v)
	}
	if v := value(t, s2, "skyline_destination_up", "destination", broken.Name()); v != 0 {
		t.Errorf("broken destination up = %v", v)
	}
	if v := value(t, s2, "skyline_destination_errors_total", "destination", broken.Name(), "kind", "down"); v < 1 {
		t.Errorf("broken destination failures = %v", v)
	}
	if v := value(t, s2, "skyline_destination_acks_total", "destination", "acker"); v < 1 {
		t.Errorf("acks = %v", v)
	}
	if v := value(t, s2, "skyline_destination_errors_total", "destination", "acker", "kind", "error"); v != 1 {
		t.Errorf("acker errors = %v, want 1", v)
	}
	if v := value(t, s2, "skyline_destination_written_total", "destination", "acker"); v < 30 {
		t.Errorf("acker written = %v", v)
	}
	if v := value(t, s2, "skyline_rtsp_viewers", "skyline", "cam", "path", "/cam"); v != 0 {
		t.Fatalf("viewers = %v before any client", v)
	}

	// A real client connects: the gauge follows.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ff := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp",
		"-i", st.URL(), "-f", "null", "-")
	ff.Stderr = os.Stderr
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ff.Wait() }()
	waitEvent("the viewer to join", func(e skyline.Event) bool { return e.Kind == skyline.EventViewerJoined })
	if v := value(t, scrape(t, ms.URL()), "skyline_rtsp_viewers", "path", "/cam"); v != 1 {
		t.Fatalf("viewers = %v with ffmpeg playing", v)
	}
	cancel() // kills ffmpeg: the connection closes
	waitEvent("the viewer to leave", func(e skyline.Event) bool { return e.Kind == skyline.EventViewerLeft })
	if v := value(t, scrape(t, ms.URL()), "skyline_rtsp_viewers", "path", "/cam"); v != 0 {
		t.Fatalf("viewers = %v after ffmpeg left", v)
	}

	// The bitrate gauge: over at least a second between scrapes.
	time.Sleep(1100 * time.Millisecond) // the gauge's window, not a synchronisation
	s3 := scrape(t, ms.URL())
	if v := value(t, s3, "skyline_output_bitrate_bits_per_second", "skyline", "cam"); v < 10_000 || v > 20_000_000 {
		t.Errorf("output bitrate %v bit/s", v)
	}
	// Go and process metrics come with the handler.
	value(t, s3, "go_goroutines")
}

// TestServeMethods: the endpoint answers GET and HEAD, and 405 with an
// Allow header to every other method (it used to answer 200 to any).
func TestServeMethods(t *testing.T) {
	ms, err := metrics.Serve("127.0.0.1:0", metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ms.Close(); err != nil {
			t.Error(err)
		}
	}()
	root := strings.TrimSuffix(ms.URL(), "metrics")
	for _, tc := range []struct {
		method, url string
		want        int
	}{
		{http.MethodGet, ms.URL(), 200}, {http.MethodHead, ms.URL(), 200}, {http.MethodGet, root, 200},
		{http.MethodPost, ms.URL(), 405}, {http.MethodPut, ms.URL(), 405}, {http.MethodDelete, ms.URL(), 405},
		{http.MethodPatch, ms.URL(), 405}, {http.MethodOptions, ms.URL(), 405}, {http.MethodPost, root, 405},
		{http.MethodGet, root + "other", 404},
	} {
		req, err := http.NewRequest(tc.method, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.url, res.StatusCode, tc.want)
		}
		if tc.want == 405 && !strings.Contains(res.Header.Get("Allow"), "GET") {
			t.Errorf("%s %s: Allow %q", tc.method, tc.url, res.Header.Get("Allow"))
		}
	}
}
