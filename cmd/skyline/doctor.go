package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/skyline-go/skyline"
)

// destinationKinds are the destinations the CLI offers and the elements
// each needs beyond the core ones, for the doctor's overview.
var destinationKinds = []struct {
	name, out string
	elements  []string
}{
	{"RTSP server (built in)", "", nil},
	{"RTSP publish", "--out rtsp://HOST:PORT/PATH", nil},
	{"MP4 file", "--out file:rec.mp4", []string{"mp4mux", "filesink"}},
	{"Matroska file", "--out file:rec.mkv", []string{"matroskamux", "filesink"}},
	{"MPEG-TS file", "--out file:rec.ts", []string{"mpegtsmux", "filesink"}},
	{"Segmented recording", "--out file:rec-%05d.mp4?segment=2s", []string{"mp4mux", "filesink"}},
	{"RTMP publish", "--out rtmp://HOST/APP/KEY", []string{"flvmux", "rtmp2sink"}},
	{"SRT publish", "--out srt://HOST:PORT", []string{"mpegtsmux", "srtsink"}},
	{"Kinesis Video Streams (native)", "--out kvs://REGION/STREAM", nil},
	{"Kinesis Video Streams (kvssink)", "--out kvs://REGION/STREAM?backend=kvssink", []string{"kvssink"}},
}

// doctor checks what streaming needs on this machine and says how to fix
// what is missing. Exit status 1 when something requested cannot work.
func doctor(args []string, stdout io.Writer) int {
	var outs, needs outFlags
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.Var(&outs, "out", "a destination you need, as for serve (repeatable): "+outHelp)
	fs.Var(&needs, "need", "a GStreamer element you need, e.g. kvssink (repeatable)")
	encoder := fs.String("encoder", "", "the H.264 encoder element you need (default: any that SkyLine knows)")
	envPath := fs.String("env", "", "the .env file to check (default: the first .env in this folder or a parent)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "skyline doctor: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	d := &doctorReport{w: stdout}
	d.run(outs, needs, *encoder, *envPath)
	return d.exit()
}

type doctorReport struct {
	w        io.Writer
	problems []string // what cannot work, with its fix
}

func (d *doctorReport) printf(format string, a ...any) { fmt.Fprintf(d.w, format, a...) }

// problem records something requested that cannot work.
func (d *doctorReport) problem(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	d.problems = append(d.problems, msg)
}

// element prints one element's line; a missing required one is a problem.
func (d *doctorReport) element(name, why string, required bool) bool {
	if skyline.HasElement(name) {
		d.printf("  ok       %-16s %s\n", name, why)
		return true
	}
	if required {
		d.printf("  MISSING  %-16s %s\n           fix: %s\n", name, why, skyline.InstallHint(name))
		d.problem("%s (%s) is missing; fix: %s", name, why, skyline.InstallHint(name))
	} else {
		d.printf("  -        %-16s %s (not installed; optional)\n", name, why)
	}
	return false
}

func (d *doctorReport) run(outs, needs []string, encoder, envPath string) {
	d.printf("skyline %s\n\n", moduleVersion())

	// GStreamer first: initialising it applies .env (GST_PLUGIN_PATH), as
	// New does.
	d.printf("GStreamer\n")
	gv, gerr := skyline.GStreamerVersion()
	if gerr != nil {
		d.printf("  NOT USABLE: %v\n           fix: apt-get install libgstreamer1.0-0 gstreamer1.0-plugins-base\n", gerr)
		d.problem("GStreamer cannot be initialised: %v; fix: apt-get install libgstreamer1.0-0 gstreamer1.0-plugins-base", gerr)
	} else {
		d.printf("  ok       %s\n", gv)
	}

	d.printf("\nEnvironment\n")
	rep, err := skyline.Environment(envPath)
	switch {
	case err != nil:
		d.printf("  .env             %v\n", err)
		d.problem(".env: %v", err)
	case rep.DotEnv == "":
		wd, _ := os.Getwd()
		d.printf("  .env             none found (searched %s and its parents)\n", wd)
	default:
		var read []string
		for _, v := range rep.Vars {
			if v.DotEnv != "" {
				read = append(read, v.Name)
			}
		}
		d.printf("  .env             %s (read: %s)\n", rep.DotEnv, listOrNone(read))
	}
	for _, v := range rep.Vars {
		d.envVar(v, rep.Reexecuted)
	}
	if gerr != nil {
		return
	}

	d.printf("\nCore elements\n")
	for _, e := range skyline.CoreElements {
		d.element(e, "every stream", true)
	}

	d.printf("\nH.264 encoders (in order of preference)\n")
	found := 0
	for _, e := range skyline.EncoderCandidates {
		why := "hardware"
		if e == skyline.DefaultEncoder {
			why = "software, the fallback"
		}
		if d.element(e, why, e == encoder) {
			found++
		}
	}
	if encoder != "" && !contains(skyline.EncoderCandidates, encoder) {
		d.element(encoder, "requested with --encoder", true)
	} else if encoder == "" && found == 0 {
		d.problem("no H.264 encoder; fix: %s", skyline.InstallHint(skyline.DefaultEncoder))
		d.printf("  no encoder: install %s (%s)\n", skyline.DefaultEncoder, skyline.InstallHint(skyline.DefaultEncoder))
	}
	if enc := skyline.AvailableEncoders(); encoder == "" && len(enc) > 0 {
		d.printf("  SkyLine will use %s\n", enc[0])
	} else if encoder != "" && skyline.HasElement(encoder) {
		d.printf("  SkyLine will use %s (--encoder)\n", encoder)
	}

	d.printf("\nDestinations (what each needs besides the core)\n")
	for _, k := range destinationKinds {
		var missing []string
		for _, e := range k.elements {
			if !skyline.HasElement(e) {
				missing = append(missing, e)
			}
		}
		state := "ok"
		if len(missing) > 0 {
			state = "needs " + strings.Join(missing, ", ")
		}
		d.printf("  %-32s %-40s %s\n", k.name, k.out, state)
	}

	if len(outs) > 0 || len(needs) > 0 {
		d.printf("\nRequested\n")
	}
	log := slog.New(slog.DiscardHandler)
	for _, raw := range outs {
		dst, err := parseOut(raw, log)
		spec := skyline.Redact(skyline.RedactURL(raw)) // shown without its secrets
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "--out "+spec+": ")
			d.printf("  CANNOT   --out %s: %s\n", spec, msg)
			d.problem("--out %s: %s", spec, msg)
			continue
		}
		g, ok := dst.(skyline.GstDestination)
		if !ok || len(g.Elements()) == 0 {
			d.printf("  ok       --out %s (pure Go)\n", spec)
			continue
		}
		for _, e := range g.Elements() {
			d.element(e, "--out "+spec, true)
		}
	}
	for _, n := range needs {
		d.element(n, "--need", true)
	}
}

// envVar explains one variable: its value, where it came from, and whether
// it is in effect now or needs a new process.
func (d *doctorReport) envVar(v skyline.EnvVar, reexecuted bool) {
	if v.Effective == "" {
		d.printf("  %-16s unset\n", v.Name)
		return
	}
	from := "environment"
	switch {
	case v.DotEnv == "":
	case v.Effective == v.DotEnv:
		from = ".env"
	case v.Name == "LD_LIBRARY_PATH":
		from = "environment + .env"
	default:
		from = "environment, which wins over .env"
	}
	if reexecuted && v.Name != "GST_PLUGIN_PATH" && v.DotEnv != "" {
		from += ", applied by re-executing skyline"
	}
	d.printf("  %-16s %s (from %s)\n", v.Name, v.Effective, from)
	if v.Name != "LD_PRELOAD" {
		for _, dir := range strings.Split(v.Effective, ":") {
			if st, err := os.Stat(dir); dir != "" && (err != nil || !st.IsDir()) {
				d.printf("  %-16s warning: %s is not a folder\n", "", dir)
			}
		}
	}
	switch {
	case v.Name == "GST_PLUGIN_PATH" && v.InEffect:
		d.printf("  %-16s in effect now: GStreamer scanned these folders\n", "")
	case v.InEffect:
		d.printf("  %-16s in effect: the dynamic loader read it when this process started\n", "")
	default:
		d.printf("  %-16s NOT in effect in this process: the dynamic loader reads it only at start; "+
			"export it before running your program, or call skyline.Reexec first thing in main (the skyline CLI does)\n", "")
	}
}

func (d *doctorReport) exit() int {
	if len(d.problems) == 0 {
		d.printf("\nResult: OK, everything requested can work.\n")
		return 0
	}
	d.printf("\nResult: %d problem(s):\n", len(d.problems))
	for _, p := range d.problems {
		d.printf("  - %s\n", p)
	}
	return 1
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none of GST_PLUGIN_PATH, LD_LIBRARY_PATH, LD_PRELOAD"
	}
	return strings.Join(s, ", ")
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
