// Package mediatest drives real third-party clients (ffprobe, ffmpeg) for
// tests and benchmarks: probe a stream, decode it to BGR pictures, compare
// pictures by PSNR.
package mediatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os/exec"
	"strconv"
)

// Stream is what ffprobe reports of a video stream.
type Stream struct {
	Codec, PixFmt, Profile string
	Width, Height          int
	Frames                 int // decoded frames (count_frames)
}

// Probe runs ffprobe on input (a file or URL); pre are options placed before
// -i (for example "-rtsp_transport", "tcp").
func Probe(ctx context.Context, input string, pre ...string) (Stream, error) {
	args := append([]string{"-v", "error"}, pre...)
	args = append(args, "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,pix_fmt,width,height,nb_read_frames,profile", "-of", "json", input)
	out, err := exec.CommandContext(ctx, "ffprobe", args...).CombinedOutput()
	if err != nil {
		return Stream{}, fmt.Errorf("ffprobe %s: %v: %s", input, err, out)
	}
	var r struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			PixFmt       string `json:"pix_fmt"`
			Profile      string `json:"profile"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			NbReadFrames string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Streams) == 0 {
		return Stream{}, fmt.Errorf("ffprobe %s: no video stream in %s", input, out)
	}
	s := r.Streams[0]
	n, _ := strconv.Atoi(s.NbReadFrames)
	return Stream{Codec: s.CodecName, PixFmt: s.PixFmt, Profile: s.Profile, Width: s.Width, Height: s.Height, Frames: n}, nil
}

// Decode runs ffmpeg to decode input into BGR pictures of w x h, calling
// each for every picture (the slice is reused). pre are options before -i,
// post options after it (for example "-frames:v", "10").
func Decode(ctx context.Context, input string, w, h int, pre, post []string, each func(i int, bgr []byte) error) error {
	args := append([]string{"-v", "error", "-nostdin"}, pre...)
	args = append(args, "-i", input)
	args = append(args, post...)
	// passthrough: one picture per decoded frame, never duplicated or
	// dropped to fit a constant frame rate.
	args = append(args, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "bgr24", "-")
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	buf := make([]byte, w*h*3)
	i := 0
	var cbErr error
	for {
		if _, err := io.ReadFull(out, buf); err != nil {
			break
		}
		if cbErr = each(i, buf); cbErr != nil {
			_ = cmd.Process.Kill()
			break
		}
		i++
	}
	_, _ = io.Copy(io.Discard, out)
	werr := cmd.Wait()
	if cbErr != nil {
		return cbErr
	}
	if werr != nil && ctx.Err() == nil {
		return fmt.Errorf("ffmpeg %s: %v: %s", input, werr, stderr.String())
	}
	return nil
}

// PSNR of two pictures of equal size, in dB (+Inf when identical).
func PSNR(a, b []byte) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 0
	}
	var se float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		se += d * d
	}
	if se == 0 {
		return math.Inf(1)
	}
	mse := se / float64(len(a))
	return 10 * math.Log10(255*255/mse)
}
