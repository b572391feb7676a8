package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/internal/whepclient"
)

// TestServeWeb: `skyline serve --web ADDR` prints the page's URL; the page
// answers, a WHEP viewer decodes the test source's numbered frames (in
// order), and
// Ctrl-C ends the program cleanly.
func TestServeWeb(t *testing.T) {
	web := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c := startCLI(t, "serve", "--input", "testsrc", "--size", "320x240", "--fps", "30", "--no-rtsp",
		"--web", web, "--path", "/cam", "--status", "never", "--log-level", "warn")
	line := c.line(t, "browser:")
	page := "http://" + web + "/cam/"
	if !strings.Contains(line, page) {
		t.Fatalf("printed %q, want the page %s", line, page)
	}
	code, body := get(t, page)
	if code != 200 || !strings.Contains(body, "<video") {
		t.Fatalf("GET %s: %d", page, code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wc, err := whepclient.Dial(ctx, page+"whep", whepclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	dec, err := whepclient.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	prev, got := -1, 0
	for got < 20 {
		select {
		case au := <-wc.AUs():
			if err := dec.Push(au.Data, au.Keyframe); err != nil {
				t.Fatal(err)
			}
		case pic := <-dec.Pictures():
			n, ok := testpattern.ReadBGR(pic.BGR, pic.Width, pic.Height)
			// testsrc is live: a frame the encoder has no room for is
			// skipped at the source, so numbers only increase.
			if !ok || n <= prev {
				t.Fatalf("picture %d: number %d (readable %v) after %d", got, n, ok, prev)
			}
			prev = n
			got++
		case <-ctx.Done():
			t.Fatalf("decoded %d pictures; stderr: %s", got, c.stderr.String())
		}
	}
	wc.Close()
	_ = c.cmd.Process.Signal(os.Interrupt)
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, c.stderr.String())
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
