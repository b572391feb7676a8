package skyline_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyline-go/skyline"
)

// These tests run the test binary again as a child, because GStreamer and
// the dynamic loader read their settings once per process.
const childEnv = "SKYLINE_TEST_CHILD"

func runChild(t *testing.T, name string, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), append(env, childEnv+"="+name)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", name, err, out)
	}
	return string(out)
}

func TestGstLogFileAndLevel(t *testing.T) {
	if os.Getenv(childEnv) == t.Name() {
		sl, err := skyline.New(skyline.Config{NoDotEnv: true, GstLogFile: os.Getenv("LOGFILE"), GstLogLevel: "x264enc:6"})
		if err != nil {
			t.Fatal(err)
		}
		defer sl.Close()
		if err := sl.Start(skyline.Params{FPS: 30, Width: 64, Height: 48}); err != nil {
			t.Fatal(err)
		}
		mustPut(t, sl, bgr(64, 48, 0), true)
		if err := sl.Stop(); err != nil {
			t.Fatal(err)
		}
		return
	}
	logfile := filepath.Join(t.TempDir(), "gst.log")
	runChild(t, t.Name(), "LOGFILE="+logfile, "GST_DEBUG=", "GST_DEBUG_FILE=")
	b, err := os.ReadFile(logfile)
	if err != nil {
		t.Fatalf("GStreamer log file not written: %v", err)
	}
	if !strings.Contains(string(b), "x264enc") {
		t.Fatalf("log file has no x264enc lines at level 6 (%d bytes)", len(b))
	}
}

func TestDotEnvReachesGStreamerAndLoader(t *testing.T) {
	if os.Getenv(childEnv) == t.Name() {
		// Reexec restarts this child once with the .env's LD_* applied.
		if err := skyline.Reexec(os.Getenv("DOTENV")); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		sl, err := skyline.New(skyline.Config{DotEnvPath: os.Getenv("DOTENV"), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer sl.Close()
		environ, _ := os.ReadFile("/proc/self/environ") // what the loader saw at exec
		fmt.Printf("LD_LIBRARY_PATH=%s\n", os.Getenv("LD_LIBRARY_PATH"))
		fmt.Printf("GST_PLUGIN_PATH=%s\n", os.Getenv("GST_PLUGIN_PATH"))
		fmt.Printf("execenv_has_ld=%v\n", bytes.Contains(environ, []byte("LD_LIBRARY_PATH=/opt/pre:/opt/kvs/lib")))
		fmt.Printf("logs=%q\n", logs.String())
		return
	}
	dir := t.TempDir()
	dotenv := filepath.Join(dir, ".env")
	if err := os.WriteFile(dotenv, []byte("GST_PLUGIN_PATH="+dir+"\nLD_LIBRARY_PATH=/opt/kvs/lib:/opt/pre\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runChild(t, t.Name(), "DOTENV="+dotenv, "LD_LIBRARY_PATH=/opt/pre", "GST_PLUGIN_PATH=")
	for _, want := range []string{
		"LD_LIBRARY_PATH=/opt/pre:/opt/kvs/lib\n", // appended, duplicate dropped
		"GST_PLUGIN_PATH=" + dir + "\n",
		"execenv_has_ld=true", // the process was re-executed with it
		"environment variable set",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
}
