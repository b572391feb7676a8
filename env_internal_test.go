package skyline

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMergePathList(t *testing.T) {
	cases := []struct{ cur, add, want string }{
		{"", "", ""},
		{"/a", "", "/a"},
		{"", "/b", "/b"},
		{"/a:/b", "/b:/c", "/a:/b:/c"},
		{"/a::/a", ":/c:/c:", "/a:/c"},
	}
	for _, c := range cases {
		if got := mergePathList(c.cur, c.add); got != c.want {
			t.Errorf("mergePathList(%q, %q) = %q, want %q", c.cur, c.add, got, c.want)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{"GST_PLUGIN_PATH": "/env/plugins", "LD_LIBRARY_PATH": "/usr/lib:/opt/a"}
	got := applyEnv(map[string]string{
		"GST_PLUGIN_PATH": "/dotenv/plugins", "LD_LIBRARY_PATH": "/opt/a:/opt/b", "LD_PRELOAD": "/opt/x.so",
	}, func(k string) string { return env[k] })
	want := map[string]string{
		"GST_PLUGIN_PATH": "/env/plugins",           // the environment wins
		"LD_LIBRARY_PATH": "/usr/lib:/opt/a:/opt/b", // appended, no duplicates
		"LD_PRELOAD":      "/opt/x.so",              // taken from .env when unset
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestDotEnvSearchesParents(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "a", ".env"),
		[]byte("# comment\nGST_PLUGIN_PATH=/x/plugins\nOTHER=1\nLD_PRELOAD=\"/y/lib.so\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(deep)
	path, vals, err := dotEnvValues("", true)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(root, "a", ".env") {
		t.Fatalf("found %q", path)
	}
	if vals["GST_PLUGIN_PATH"] != "/x/plugins" || vals["LD_PRELOAD"] != "/y/lib.so" || len(vals) != 2 {
		t.Fatalf("values %v", vals)
	}
	if _, vals, _ := dotEnvValues("", false); vals != nil {
		t.Fatalf("search disabled but got %v", vals)
	}
	if _, _, err := dotEnvValues(filepath.Join(root, "missing.env"), true); err == nil {
		t.Fatal("a named .env that does not exist must be an error")
	}
}
