package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricValue scrapes url and returns the value of the series that starts
// with prefix (name and labels).
func metricValue(t *testing.T, url, prefix string) float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, prefix+" ") {
			v, err := strconv.ParseFloat(strings.TrimPrefix(l, prefix+" "), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s in:\n%s", prefix, body)
	return 0
}

// TestServeMetrics: serve --metrics prints where the metrics are, and
// they move while the test pattern streams; Ctrl-C ends it cleanly.
func TestServeMetrics(t *testing.T) {
	c := startCLI(t, "serve", "--size", "320x240", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--no-udp", "--status", "never", "--metrics", "127.0.0.1:0")
	url := strings.TrimSpace(strings.TrimPrefix(c.line(t, "metrics: http://"), "metrics:"))
	const enc = `skyline_frames_encoded_total{skyline="skyline"}`
	first := metricValue(t, url, enc)
	// No event to wait on from outside the process: poll with a deadline.
	deadline := time.Now().Add(60 * time.Second)
	for metricValue(t, url, enc) < first+15 {
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed near %v", enc, first)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v := metricValue(t, url, `skyline_destination_up{destination="rtsp:/skyline",skyline="skyline"}`); v != 1 {
		t.Fatalf("rtsp destination up = %v", v)
	}
	if v := metricValue(t, url, `skyline_rtsp_viewers{path="/skyline",skyline="skyline"}`); v != 0 {
		t.Fatalf("viewers = %v", v)
	}
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
	}
}
