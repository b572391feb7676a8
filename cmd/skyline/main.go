// Command skyline restreams video frames without writing Go: from a test
// pattern, raw frames on stdin (e.g. piped from a Python OpenCV loop), a
// video file or a camera, to its built-in RTSP server.
//
//	skyline serve                       # test pattern at rtsp://127.0.0.1:8554/skyline
//	python3 app.py | skyline serve --input stdin --pix-fmt bgr24 --size 1280x720 --fps 30
//	skyline version                     # versions and the encoders found
//	skyline doctor --out file:rec.mp4   # what is installed, what is missing and how to fix it
package main

import (
	"fmt"
	"os"

	"github.com/skyline-go/skyline"
)

func main() {
	// LD_LIBRARY_PATH / LD_PRELOAD from .env only take effect in a new
	// process: re-execute ourselves with them when they change anything.
	if err := skyline.Reexec(""); err != nil {
		fmt.Fprintln(os.Stderr, "skyline:", err)
	}
	keepRunningWithoutReaders()
	os.Exit(run(os.Args[1:]))
}

const usage = `usage: skyline <command> [flags]

commands:
  serve     stream frames to the built-in RTSP server (default: a test pattern)
            and to --out destinations (files, RTSP/RTMP/SRT push, KVS, GStreamer)
  kvs-local a local Kinesis Video Streams endpoint (for tests and demos)
  version   print versions and the H.264 encoders found
  engine    serve a program in another language (the Python package) over stdin/stdout
            and shared memory (protocol: cmd/skyline/engine.go)
  doctor    check GStreamer, elements, encoders and .env; say how to fix what is missing
  help      this text; "skyline serve -h" lists serve's flags
`

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:])
	case "version":
		if len(args) > 1 {
			fmt.Fprintf(os.Stderr, "skyline version: unexpected argument %q\n", args[1])
			return 2
		}
		return version()
	case "kvs-local":
		return kvsLocal(args[1:])
	case "doctor":
		return doctor(args[1:], os.Stdout)
	case "engine":
		return engineMain(args[1:])
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "skyline: unknown command %q\n\n%s", args[0], usage)
	return 2
}
