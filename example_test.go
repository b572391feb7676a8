package skyline_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"time"

	"github.com/skyline-go/skyline"
)

// Record BGR frames (as OpenCV holds them) to an MP4 file.
func Example() {
	dir, _ := os.MkdirTemp("", "skyline-example")
	defer os.RemoveAll(dir)
	dst, err := skyline.NewFile(filepath.Join(dir, "out.mp4"))
	if err != nil {
		panic(err)
	}
	sl, err := skyline.New(skyline.Config{NoDotEnv: true}, dst)
	if err != nil {
		panic(err) // e.g. a missing GStreamer plugin, with how to install it
	}
	defer sl.Close()

	if err := sl.Start(skyline.Params{FPS: 30, Width: 320, Height: 240}); err != nil {
		panic(err)
	}
	frame := make([]byte, 320*240*3) // height x width x 3, BGR
	camera := time.NewTicker(time.Second / 30)
	defer camera.Stop()
	for i := 0; i < 30; i++ {
		<-camera.C // a frame from the camera, 30 times a second
		ok, err := sl.Put(skyline.FrameBGR(frame, 320, 240, 0))
		if err != nil || !ok {
			fmt.Println("not sent:", ok, err)
		}
	}
	if err := sl.Stop(); err != nil { // finalises the file
		panic(err)
	}
	fmt.Println("accepted", sl.Stats().Accepted)
	// Output: accepted 30
}

// Let SkyLine measure fps and size during a warm-up, like start_streaming()
// with None values in the original.
func ExampleSkyLine_Start_warmup() {
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, WarmupFrames: 5})
	if err != nil {
		panic(err)
	}
	defer sl.Close()
	_ = sl.Start(skyline.Params{}) // all Auto
	frame := make([]byte, 64*48*3)
	for i := 0; i < 5; i++ {
		ok, err := sl.Put(skyline.FrameBGR(frame, 64, 48, 0))
		fmt.Println(sl.State(), ok, errors.Is(err, skyline.ErrWarmingUp))
	}
	// The fifth frame ended the warm-up: it is kept and streamed first,
	// once the pipeline has opened in the background.
	st, _ := sl.WaitState(context.Background(), skyline.StateStreaming, skyline.StateError)
	fmt.Println(st, sl.Params().Width, sl.Params().Height)
	// Output:
	// WARMUP false true
	// WARMUP false true
	// WARMUP false true
	// WARMUP false true
	// WARMUP true false
	// STREAMING 64 48
}

// Put a Go image: *image.RGBA, *image.NRGBA, *image.Gray and 4:2:0
// *image.YCbCr go in directly; PutImage converts any other image.
func ExampleSkyLine_PutImage() {
	sl, err := skyline.New(skyline.Config{NoDotEnv: true})
	if err != nil {
		panic(err)
	}
	defer sl.Close()
	_ = sl.Start(skyline.Params{FPS: 25, Width: 64, Height: 48})
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	ok, err := sl.PutImage(img)
	fmt.Println(ok, err)
	// Output: true <nil>
}

// A Receiver gets the encoded access units in Go (this is how the RTSP
// server and the native KVS client are built).
func ExampleReceiver() {
	var keyframes int
	rec := &funcReceiver{write: func(au *skyline.AccessUnit) {
		if au.Keyframe {
			keyframes++
		}
	}}
	sl, err := skyline.New(skyline.Config{NoDotEnv: true}, rec)
	if err != nil {
		panic(err)
	}
	defer sl.Close()
	_ = sl.Start(skyline.Params{FPS: 30, Width: 64, Height: 48})
	frame := make([]byte, 64*48*3)
	for i := 0; i < 3; i++ {
		_, _ = sl.Put(skyline.FrameBGR(frame, 64, 48, 0))
	}
	_ = sl.Close() // Receiver.Close runs after the last access unit
	fmt.Println("keyframes:", keyframes)
	// Output: keyframes: 1
}

type funcReceiver struct{ write func(*skyline.AccessUnit) }

func (r *funcReceiver) Name() string                                 { return "func" }
func (r *funcReceiver) Open(skyline.StreamInfo) error                { return nil }
func (r *funcReceiver) WriteAccessUnit(au *skyline.AccessUnit) error { r.write(au); return nil }
func (r *funcReceiver) Close()                                       {}

// Record into 10-minute files, keeping the newest 24 (four hours).
func ExampleNewSegmentedFile() {
	rec, err := skyline.NewSegmentedFile("/tmp/rec-%05d.mp4", 10*time.Minute, 24)
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.Name())
	// Output: file:/tmp/rec-%05d.mp4
}

// Any GStreamer sink as text; bad text is an error naming the culprit.
func ExampleNewGstSink() {
	if _, err := skyline.NewGstSink("matroskamux ! filesink location=/tmp/out.mkv"); err != nil {
		panic(err)
	}
	_, err := skyline.NewGstSink("matroskamux ! nosuchsink")
	fmt.Println(errors.Is(err, skyline.ErrInvalidConfig))
	// Output: true
}

// Publish over RTMP or SRT; a stream key never appears in names or logs.
func ExampleNewPush() {
	yt, err := skyline.NewPush("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl")
	if err != nil {
		panic(err)
	}
	fmt.Println(yt.Name())
	// Output: push:rtmp://a.rtmp.youtube.com/live2/****
}

// Events arrive in order on a goroutine of their own.
func ExampleConfig_onEvent() {
	var kinds []skyline.EventKind
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, OnEvent: func(e skyline.Event) {
		kinds = append(kinds, e.Kind) // e.State, e.Destination, e.Err...
	}})
	if err != nil {
		panic(err)
	}
	_ = sl.Start(skyline.Params{FPS: 30, Width: 64, Height: 48})
	_ = sl.Close() // delivers what is queued, then stops the event goroutine
	fmt.Println(kinds)
	// Output: [state state]
}

// Describe a Go image without copying it.
func ExampleFrameFromImage() {
	img := image.NewYCbCr(image.Rect(0, 0, 640, 480), image.YCbCrSubsampleRatio420)
	f, err := skyline.FrameFromImage(img) // 4:2:0 goes in without conversion
	fmt.Println(f.Format, f.Width, f.Height, err)
	// Output: ycbcr420 640 480 <nil>
}

// Counters since New, per destination too.
func ExampleSkyLine_Stats() {
	rec := &funcReceiver{write: func(*skyline.AccessUnit) {}}
	sl, err := skyline.New(skyline.Config{NoDotEnv: true}, rec)
	if err != nil {
		panic(err)
	}
	defer sl.Close()
	_ = sl.Start(skyline.Params{FPS: 30, Width: 64, Height: 48})
	frame := make([]byte, 64*48*3)
	for i := 0; i < 3; i++ {
		_, _ = sl.Put(skyline.FrameBGR(frame, 64, 48, 0))
	}
	_ = sl.Stop()
	st := sl.Stats()
	fmt.Println(st.Accepted, st.Encoded, st.Destinations[0].Name, st.Destinations[0].Written)
	// Output: 3 3 func 3
}
