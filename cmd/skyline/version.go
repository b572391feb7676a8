package main

import (
	"fmt"
	"runtime/debug"

	"github.com/skyline-go/skyline"
)

func version() int {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	fmt.Println("skyline", v)
	gv, err := skyline.GStreamerVersion()
	if err != nil {
		fmt.Println("GStreamer: not usable:", err)
		return 1
	}
	fmt.Println(gv)
	fmt.Print("H.264 encoders:")
	for _, e := range skyline.AvailableEncoders() {
		fmt.Print(" ", e)
	}
	fmt.Println()
	return 0
}
