package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/skyline-go/skyline"
)

// moduleVersion is the skyline module's version as built ("(devel)" from a
// checkout), with the VCS revision when the build recorded one.
func moduleVersion() string {
	v := "(devel)"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}

func version() int {
	fmt.Printf("skyline %s (%s, %s/%s)\n", moduleVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	gv, err := skyline.GStreamerVersion()
	if err != nil {
		fmt.Println("GStreamer: not usable:", err)
		return 1
	}
	fmt.Println(gv)
	enc := skyline.AvailableEncoders()
	if len(enc) == 0 {
		fmt.Printf("H.264 encoders: none; fix: %s\n", skyline.InstallHint(skyline.DefaultEncoder))
		return 1
	}
	fmt.Println("H.264 encoders: " + strings.Join(enc, " "))
	return 0
}
