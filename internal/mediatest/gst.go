package mediatest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
)

// DecodeRTSPSrc plays an RTSP URL with GStreamer's rtspsrc (over TCP,
// latency 0) and decodes it into BGR pictures of w x h, calling each for
// every picture (the slice is reused) until n pictures were decoded or each
// returns an error (H.264 only). extra are rtspsrc properties ("user-id=u").
func DecodeRTSPSrc(ctx context.Context, url string, w, h, n int, extra []string, each func(i int, bgr []byte) error) error {
	args := []string{"-q", "rtspsrc", "location=" + url, "protocols=tcp", "latency=0"}
	args = append(args, extra...)
	// output-corrupt=false: pictures decoded from before the first
	// keyframe are dropped, not shown concealed.
	args = append(args, "!", "rtph264depay", "!", "h264parse", "!", "avdec_h264", "output-corrupt=false", "!", "videoconvert", "!",
		"video/x-raw,format=BGR,width="+strconv.Itoa(w)+",height="+strconv.Itoa(h), "!",
		"fdsink", "fd=1", "sync=false")
	cmd := exec.CommandContext(ctx, "gst-launch-1.0", args...)
	i, stderr, err := readPictures(cmd, w, h, n, each)
	if err != nil {
		return err
	}
	if i < n {
		return fmt.Errorf("gst-launch rtspsrc %s: %d of %d pictures: %s", url, i, n, stderr)
	}
	return nil
}
