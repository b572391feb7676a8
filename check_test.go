package skyline_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/skyline-go/skyline"
)

func TestHasElement(t *testing.T) {
	for _, e := range append([]string{"x264enc"}, skyline.CoreElements...) {
		if !skyline.HasElement(e) {
			t.Errorf("HasElement(%q) = false on this machine", e)
		}
	}
	if skyline.HasElement("nosuchelementatall") {
		t.Error("HasElement(nosuchelementatall) = true")
	}
}

// TestEnvironmentReport: the values of a .env file are reported, with
// LD_PRELOAD not in effect (the loader read it at start) and
// GST_PLUGIN_PATH from the environment winning over the file.
func TestEnvironmentReport(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, ".env")
	if err := os.WriteFile(env, []byte("LD_PRELOAD=/nowhere/libx.so\nGST_PLUGIN_PATH=/from/file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GST_PLUGIN_PATH", "/from/env")
	t.Setenv("LD_PRELOAD", "")
	r, err := skyline.Environment(env)
	if err != nil {
		t.Fatal(err)
	}
	if r.DotEnv != env || len(r.Vars) != 3 {
		t.Fatalf("report %+v", r)
	}
	got := map[string]skyline.EnvVar{}
	for _, v := range r.Vars {
		got[v.Name] = v
	}
	if v := got["LD_PRELOAD"]; v.DotEnv != "/nowhere/libx.so" || v.Effective != "/nowhere/libx.so" || v.InEffect {
		t.Errorf("LD_PRELOAD %+v", v)
	}
	if v := got["GST_PLUGIN_PATH"]; v.DotEnv != "/from/file" || v.Effective != "/from/env" {
		t.Errorf("GST_PLUGIN_PATH %+v", v)
	}
	if _, err := skyline.Environment(filepath.Join(dir, "missing.env")); err == nil {
		t.Error("a missing named .env is not an error")
	}
}
