package skyline_test

import (
	"errors"
	"strings"
	"testing"

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
