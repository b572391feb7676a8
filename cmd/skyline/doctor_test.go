package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyline-go/skyline"
)

// runCLI runs the skyline binary in dir with the environment minus the
// variables .env handling looks at, and returns its output and exit status.
func runCLI(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "GST_PLUGIN_PATH", "LD_LIBRARY_PATH", "LD_PRELOAD", "SKYLINE_REEXEC":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

func wantLines(t *testing.T, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

// TestDoctorAllPresent: on this machine everything the usual destinations
// need is installed: exit 0 and a report that says so.
func TestDoctorAllPresent(t *testing.T) {
	out, code := runCLI(t, t.TempDir(), "doctor", "--out", "file:rec.mp4", "--out", "file:rec.mkv",
		"--out", "file:seg-%03d.mp4?segment=2s", "--out", "rtmp://127.0.0.1/app/key", "--out", "srt://127.0.0.1:9000",
		"--out", "rtsp://127.0.0.1:8554/x", "--encoder", "x264enc")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	gv, err := skyline.GStreamerVersion()
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "skyline ", "ok       "+gv, ".env             none found",
		"ok       appsrc", "ok       h264parse", "ok       x264enc", "SkyLine will use",
		"ok       mp4mux           --out file:rec.mp4", "ok       matroskamux",
		"ok       rtmp2sink", "ok       flvmux", "ok       srtsink", "ok       --out rtsp://127.0.0.1:8554/x (pure Go)",
		"Kinesis Video Streams (kvssink)", "Result: OK")
	if strings.Contains(out, "MISSING") || strings.Contains(out, "CANNOT") {
		t.Errorf("something reported missing:\n%s", out)
	}
}

// TestDoctorMissingElement: a requested element that is not installed
// (kvssink, an encoder) fails the check and prints the fix.
func TestDoctorMissingElement(t *testing.T) {
	if skyline.HasElement("kvssink") {
		t.Fatal("kvssink is installed on this machine: the test needs an element that is not")
	}
	out, code := runCLI(t, t.TempDir(), "doctor", "--need", "kvssink")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	wantLines(t, out, "MISSING  kvssink", "fix: build the Amazon Kinesis Video Streams C++ producer SDK",
		"GST_PLUGIN_PATH", "native KVS backend", "Result: 1 problem(s)")

	out, code = runCLI(t, t.TempDir(), "doctor", "--encoder", "nvh264enc", "--out", "file:rec.mp4")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	wantLines(t, out, "MISSING  nvh264enc", "fix: "+skyline.InstallHint("nvh264enc"), "ok       mp4mux")

	// KVS: the native backend needs nothing built; the kvssink backend
	// needs the C++ producer SDK's plugin.
	out, code = runCLI(t, t.TempDir(), "doctor", "--out", "kvs://us-east-1/demo")
	if code != 0 {
		t.Fatalf("native KVS: exit %d, want 0:\n%s", code, out)
	}
	wantLines(t, out, "ok       --out kvs://us-east-1/demo (pure Go)")
	out, code = runCLI(t, t.TempDir(), "doctor", "--out", "kvs://us-east-1/demo?backend=kvssink")
	if code != 1 {
		t.Fatalf("kvssink backend: exit %d, want 1:\n%s", code, out)
	}
	wantLines(t, out, "kvssink", "GST_PLUGIN_PATH")

	out, code = runCLI(t, t.TempDir(), "doctor", "--out", "file:rec.avi")
	if code != 1 {
		t.Fatalf("exit %d for an unusable --out, want 1:\n%s", code, out)
	}
	wantLines(t, out, "CANNOT   --out file:rec.avi")
}

// TestDoctorDotEnv: the variables of a .env file are reported with where
// they come from; LD_LIBRARY_PATH takes effect through the CLI's re-exec,
// GST_PLUGIN_PATH at once, and a folder that does not exist is flagged.
func TestDoctorDotEnv(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	if err := os.Mkdir(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	plugins := filepath.Join(dir, "no-such-plugins")
	env := "LD_LIBRARY_PATH=" + lib + "\nGST_PLUGIN_PATH=" + plugins + "\n"
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, dir, "doctor")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	wantLines(t, out,
		".env             "+filepath.Join(dir, ".env")+" (read: GST_PLUGIN_PATH, LD_LIBRARY_PATH)",
		"LD_LIBRARY_PATH  "+lib+" (from .env, applied by re-executing skyline)",
		"in effect: the dynamic loader read it when this process started",
		"GST_PLUGIN_PATH  "+plugins+" (from .env)",
		"in effect now: GStreamer scanned these folders",
		"warning: "+plugins+" is not a folder",
		"LD_PRELOAD       unset")
}

// TestDoctorEnvNotInEffect: a loader variable that differs from the one the
// process started with is reported as needing a new process.
func TestDoctorEnvNotInEffect(t *testing.T) {
	var b bytes.Buffer
	d := &doctorReport{w: &b}
	d.envVar(skyline.EnvVar{Name: "LD_PRELOAD", DotEnv: "/opt/x/libx.so", Effective: "/opt/x/libx.so"}, false)
	wantLines(t, b.String(), "LD_PRELOAD       /opt/x/libx.so (from .env)", "NOT in effect", "skyline.Reexec")
}

// TestVersion: the module version, GStreamer's and the encoders found.
func TestVersion(t *testing.T) {
	out, code := runCLI(t, t.TempDir(), "version")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	gv, err := skyline.GStreamerVersion()
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "skyline ", gv, "H.264 encoders: "+strings.Join(skyline.AvailableEncoders(), " "))
}
