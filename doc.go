// Package skyline restreams the frames a program produces — a computer-vision
// loop drawing boxes on camera images, a simulator, a robot — live, with one
// call per frame. Frames go through one GStreamer pipeline that encodes them
// once (H.264, 4:2:0, low latency) and hands the result to any number of
// destinations: the built-in RTSP server (package rtsp), a file, any
// GStreamer branch, or Go code implementing Receiver.
//
// It is the Go rewrite of the Python module backpack.skyline.
//
//	dst, _ := skyline.NewFile("out.mp4")
//	sl, err := skyline.New(skyline.Config{}, dst)
//	if err != nil { ... }              // e.g. a missing GStreamer plugin, with how to install it
//	defer sl.Close()
//	sl.Start(skyline.Params{FPS: 30, Width: 1280, Height: 720})
//	for frame := range frames {        // BGR bytes, as OpenCV holds them
//		sl.Put(skyline.FrameBGR(frame, 1280, 720, 0))
//	}
//	sl.Stop()                          // finalises the file
//
// # From the Python original
//
//	backpack.skyline                         skyline (Go)
//	---------------------------------------  ---------------------------------------------------
//	SkyLine (abstract base class)            *SkyLine with destinations: New(cfg, dests...)
//	RTSPSkyLine / RTSPServer                 rtsp.NewSkyLine(srv, path, cfg) / rtsp.NewServer
//	KVSSkyLine                               package kvs (destination)
//	SkyLine(parent_logger=...)               Config.Logger (child logger: component=<Config.Name>)
//	SkyLine(gst_log_file=, gst_log_level=)   Config.GstLogFile, Config.GstLogLevel
//	SkyLine(dotenv_path=)                    Config.DotEnvPath (NoDotEnv to skip the search)
//	start_streaming(fps, width, height)      Start(Params{FPS, Width, Height})
//	start_streaming() (defaults)             Start(LastParams)
//	None (measure)                           Auto (0, the zero value)
//	USE_LAST_VALUE = -999                    LastValue = -999
//	FPS_METER_WARMUP_FRAMES = 100            Config.WarmupFrames (DefaultWarmupFrames = 100)
//	put(frame) -> bool                       Put(Frame) (bool, error); PutImage(image.Image)
//	stop_streaming()                         Stop() (Close() at the end)
//	State.STOPPED/START_WARMUP/WARMUP/       StateStopped, StateStartWarmup, StateWarmup,
//	  STREAMING/ERROR; .state                  StateStreaming, StateError; State()
//	video_fps, video_width, video_height     Params() (FPS, Width, Height)
//	logger                                   Logger()
//
// # Frames
//
// Put takes a Frame that points at the caller's pixels: BGR bytes with a row
// stride (FrameBGR, the reference format), RGB, BGRA, RGBA, gray, or planar
// 4:2:0; FrameFromImage describes *image.RGBA, *image.NRGBA, *image.Gray and
// *image.YCbCr (4:2:0, without conversion) the same way, and PutImage takes
// any image.Image. Put converts the picture to I420 while copying it into
// the pipeline's buffer (libyuv): that copy is the only one, and the caller
// may reuse its buffer as soon as Put returns. A frame whose size differs from
// the stream's is scaled (the stream's size never changes mid-session).
// Frames outside the limits Frame documents (sizes up to MaxDimension,
// strides up to MaxStride, buffers long enough for them) and images with
// empty, too large or infinite bounds are refused with ErrInvalidFrame
// before a byte is read.
//
// # States and parameters
//
// Start with every parameter known opens the pipeline at once
// (StateStreaming, or StateError when it cannot open). With any parameter
// Auto (or LastValue with no previous session) the SkyLine warms up: the
// first Put moves to StateWarmup, and the next ones are measured and
// discarded until Config.WarmupFrames frames have been seen; fps is the
// rounded mean rate of the Put calls, width and height those of the frame
// that ends the warm-up (rounded down to even), and that frame is the first
// one streamed once the pipeline has opened in the background (WaitState
// waits for StateStreaming). Start while warming up or streaming restarts;
// Start and Stop may alternate any number of times. In StateError Put
// returns false and logs a warning at most once a minute.
//
// # Lifecycle
//
// One goroutine per SkyLine owns the control plane: it opens sessions,
// falls back to the next encoder, drains and closes. Start, Stop and Close
// are requests to it with bounds: Stop and Close return within
// Config.DrainTimeout + 1 s, Start within DrainTimeout + StartTimeout
// (else ErrTimeout, and the work goes on). Put never waits for it: it
// reads the live session atomically, converts the frame into a pooled
// buffer and enqueues it; when it returns false the error says why
// (ErrStopped, ErrWarmingUp, ErrOpening, ErrQueueFull, ErrStreamFailed all
// wrap ErrNotAccepted). Each destination runs in its own goroutine behind a
// bounded queue (the outlet) that owns its failures, for every kind:
// errors and panics mark it down, are reported and retried with backoff,
// and what it misses is counted in Stats' Lost; at Stop one that is stuck
// past DrainTimeout is detached. No lock is held across GStreamer state
// changes, destinations or callbacks: Config.OnEvent may call any method,
// Close included.
//
// # Timestamps and flow
//
// By default nothing is lost: when the queue (Config.QueueSize, default 8)
// is full, Put waits for room (DropNone, at most Config.PutWait), as
// OpenCV's VideoWriter does; DropNewest refuses the new frame instead (Put
// returns false; a frame Put accepted is never lost) and DropOldest keeps
// the freshest picture. Timestamps depend on the destinations: when every
// one is a recording (File, NewSegmentedFile), frame n is stamped n/fps;
// with a live destination, frames are stamped with Frame.Time when set
// (read on the clock of time.Now; a capture time from another clock, more
// than 1 s ahead or 5 s behind the Put, is re-anchored once to the Put
// time with a warning), else the time of Put, so an irregular inference
// rate plays back in real time, and a producer faster than the declared
// rate is slowed to it (TimestampsPaced). Stats
// counts frames accepted, dropped, encoded and written per destination, the
// bytes encoded, and the encode latency (Put to encoder output); package
// metrics exports them to Prometheus.
//
// # Encoder
//
// The default encoder is x264enc tuned for latency: tune=zerolatency, no
// B-frames, a keyframe every 2 s, speed-preset superfast, and a bitrate of
// 0.09 bit per pixel per frame (about 2.5 Mbit/s at 1280x720@30), both
// chosen by measurement (go run ./bench/presets). Frames are
// always converted to I420 before the encoder: BGR straight into x264
// negotiates 4:4:4 (High 4:4:4 Predictive), which most players reject. SPS
// and PPS are repeated in-band before every keyframe, so a viewer can start
// at any keyframe. Config.Encoder overrides the element and its properties.
//
// # Environment
//
// New reads GST_PLUGIN_PATH, LD_LIBRARY_PATH and LD_PRELOAD from a .env file
// (Config.DotEnvPath, or the first .env in the current folder or a parent).
// Variables already set in the environment win, except LD_LIBRARY_PATH,
// whose .env entries are appended without duplicates. GST_PLUGIN_PATH takes
// effect even after GStreamer started (the folders are scanned). The dynamic
// loader reads LD_* only when a process starts: a program that needs them
// calls Reexec at the start of main (the skyline CLI does), or exports them
// before it runs.
//
// # Errors
//
// Every error wraps one of the sentinels in errors.go (ErrInvalidFrame,
// ErrInvalidParams, ErrInvalidConfig, ErrMissingElement, ErrPipeline,
// ErrDestination, ErrTimeout, ErrClosed, and Put's reasons, which wrap
// ErrNotAccepted): test them with errors.Is. A missing GStreamer element is a
// *MissingElementsError that says which package provides it.
//
// # Secrets
//
// Stream keys, passwords and passphrases never reach logs, errors, events,
// metrics or Stats. They are held as Secret (which prints as "****" however
// it is printed; Reveal where the value is used); a destination's Name is
// shown without them (RedactURL, RedactLaunch), and a destination that holds
// some (SecretHolder) has them masked in every error and event about it.
package skyline
