package skyline_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
)

// TestPushPortRefused: a push URL whose port can never connect is refused
// when the destination is made (it used to be accepted and retried
// forever), for every push kind, without printing the rest of the URL.
func TestPushPortRefused(t *testing.T) {
	for _, u := range []string{"srt://127.0.0.1:99999", "srt://127.0.0.1", "srt://127.0.0.1:0?passphrase=SECRET",
		"rtmp://127.0.0.1:70000/app/SECRET", "rtmps://127.0.0.1:/app/SECRET"} {
		_, err := skyline.NewPush(u)
		if !errors.Is(err, skyline.ErrInvalidConfig) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("NewPush(%s): %v", u, err)
		}
	}
	for _, u := range []string{"rtsp://127.0.0.1:99999/x", "rtsps://u:SECRET@127.0.0.1:0/x"} {
		_, err := rtsp.NewPublisher(rtsp.PublisherConfig{URL: u})
		if !errors.Is(err, rtsp.ErrInvalidConfig) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("NewPublisher(%s): %v", u, err)
		}
	}
	for _, u := range []string{"srt://127.0.0.1:9000", "rtmp://127.0.0.1/app/key", "rtmp://127.0.0.1:1935/app/key"} {
		if _, err := skyline.NewPush(u); err != nil {
			t.Errorf("NewPush(%s): %v", u, err)
		}
	}
}

// TestSameFileRefused: two destinations naming one file (d.mkv and
// ./d.mkv, or the same segment pattern) are refused by New; they used to
// write over each other.
func TestSameFileRefused(t *testing.T) {
	dir := t.TempDir()
	pairs := [][2]func() (skyline.Destination, error){
		{func() (skyline.Destination, error) { return skyline.NewFile(dir + "/d.mkv") },
			func() (skyline.Destination, error) { return skyline.NewFile(dir + "/./sub/../d.mkv") }},
		{func() (skyline.Destination, error) {
			return skyline.NewSegmentedFile(dir+"/s-%03d.mp4", time.Second, 0)
		},
			func() (skyline.Destination, error) {
				return skyline.NewSegmentedFile(dir+"//s-%03d.mp4", time.Second, 0)
			}},
	}
	for i, p := range pairs {
		a, err := p[0]()
		if err != nil {
			t.Fatal(err)
		}
		b, err := p[1]()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := skyline.New(skyline.Config{NoDotEnv: true}, a, b); !errors.Is(err, skyline.ErrInvalidConfig) {
			t.Errorf("pair %d (%s, %s): New: %v", i, a.Name(), b.Name(), err)
		}
	}
}
