package urlport

import (
	"net/url"
	"testing"
)

func TestCheck(t *testing.T) {
	for raw, ok := range map[string]bool{
		"srt://h:1": true, "srt://h:65535": true, "rtmp://h/app/key": true, "rtsp://[::1]:8554/x": true,
		"srt://h:0": false, "srt://h:65536": false, "srt://h:99999": false, "rtmp://h:/app": false,
		"rtsp://[::1]:70000/x": false, "srt://h": false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(u, u.Scheme == "srt"); (err == nil) != ok {
			t.Errorf("%s: %v, want ok=%v", raw, err, ok)
		}
	}
}
