package skyline

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/joho/godotenv"

	"github.com/skyline-go/skyline/internal/gst"
)

// The variables SkyLine takes from a .env file (SPEC A5).
var envVars = []string{"GST_PLUGIN_PATH", "LD_LIBRARY_PATH", "LD_PRELOAD"}

// startEnv is the loader environment this process started with: the
// dynamic loader reads LD_* only then.
var startEnv = map[string]string{
	"GST_PLUGIN_PATH": os.Getenv("GST_PLUGIN_PATH"),
	"LD_LIBRARY_PATH": os.Getenv("LD_LIBRARY_PATH"),
	"LD_PRELOAD":      os.Getenv("LD_PRELOAD"),
}

var envMu sync.Mutex

// findDotEnv returns the first .env in dir or its parents, or "".
func findDotEnv(dir string) string {
	for {
		p := filepath.Join(dir, ".env")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// dotEnvValues reads the SkyLine variables of a .env file. path "" searches
// the current folder and its parents; a missing searched file is not an
// error, a missing named one is.
func dotEnvValues(path string, search bool) (string, map[string]string, error) {
	if path == "" && search {
		wd, err := os.Getwd()
		if err == nil {
			path = findDotEnv(wd)
		}
	}
	if path == "" {
		return "", nil, nil
	}
	all, err := godotenv.Read(path)
	if err != nil {
		return path, nil, configErr(".env file %s: %v", path, err)
	}
	vals := map[string]string{}
	for _, k := range envVars {
		if v, ok := all[k]; ok {
			vals[k] = v
		}
	}
	return path, vals, nil
}

// mergePathList appends add to cur (colon-separated), dropping duplicates
// and empty entries, keeping the first occurrence's position.
func mergePathList(cur, add string) string {
	seen := map[string]bool{}
	var out []string
	for _, p := range append(strings.Split(cur, ":"), strings.Split(add, ":")...) {
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return strings.Join(out, ":")
}

// applyEnv computes the environment after .env: GST_PLUGIN_PATH and
// LD_PRELOAD from the file unless already set in the environment (which
// wins, as with python-dotenv), LD_LIBRARY_PATH appended to the existing
// value without duplicates.
func applyEnv(vals map[string]string, getenv func(string) string) map[string]string {
	out := map[string]string{}
	for _, k := range envVars {
		cur, v := getenv(k), vals[k]
		switch {
		case k == "LD_LIBRARY_PATH":
			out[k] = mergePathList(cur, v)
		case cur != "":
			out[k] = cur
		default:
			out[k] = v
		}
	}
	return out
}

// setupEnvironment loads .env, exports its variables, sets the GStreamer
// log settings and initialises GStreamer, making each setting take effect as
// far as a running process can. It logs what is set and what is missing.
func setupEnvironment(cfg Config, log *slog.Logger, needPluginPath bool) error {
	envMu.Lock()
	defer envMu.Unlock()
	path, vals, err := dotEnvValues(cfg.DotEnvPath, !cfg.NoDotEnv)
	if err != nil {
		return err
	}
	if path != "" {
		log.Info("read .env", "path", path)
	}
	env := applyEnv(vals, os.Getenv)
	for _, k := range envVars {
		if env[k] == "" {
			lvl := slog.LevelDebug
			if k == "GST_PLUGIN_PATH" && needPluginPath {
				lvl = slog.LevelWarn
			}
			log.Log(context.Background(), lvl, "environment variable not set", "name", k)
			continue
		}
		if os.Getenv(k) != env[k] {
			_ = os.Setenv(k, env[k])
		}
		log.Info("environment variable set", "name", k, "value", env[k])
	}
	for _, k := range []string{"LD_LIBRARY_PATH", "LD_PRELOAD"} {
		if env[k] != startEnv[k] && env[k] != "" {
			log.Warn("the dynamic loader read "+k+" when the process started; the new value only reaches "+
				"child processes. Export it before starting the program, or call skyline.Reexec at the start of main",
				"name", k)
		}
	}
	if cfg.GstLogFile != "" {
		if gst.Initialized() {
			log.Warn("GStreamer is already initialised in this process; GstLogFile is ignored", "file", cfg.GstLogFile)
		}
		_ = os.Setenv("GST_DEBUG_FILE", cfg.GstLogFile)
	}
	if cfg.GstLogLevel != "" {
		_ = os.Setenv("GST_DEBUG", cfg.GstLogLevel)
	}
	if gst.Initialized() {
		// Too late for GStreamer to read these at init: apply them now.
		if cfg.GstLogLevel != "" {
			gst.SetDebugThreshold(cfg.GstLogLevel)
		}
		for _, dir := range strings.Split(env["GST_PLUGIN_PATH"], ":") {
			if dir != "" {
				gst.ScanPath(dir)
			}
		}
		return nil
	}
	if err := gst.Init(); err != nil {
		return fmt.Errorf("%w: %v", ErrPipeline, err)
	}
	return nil
}

// reexecGuard marks a process started by Reexec so it never loops.
const reexecGuard = "SKYLINE_REEXEC"

// Reexec makes LD_LIBRARY_PATH and LD_PRELOAD from a .env file (path ""
// searches the current folder and its parents) take effect by re-executing
// the running program with them when they differ from the environment it
// started with. Call it first thing in main, before starting goroutines that
// matter; on success it does not return. It returns nil when nothing needs
// to change.
func Reexec(dotEnvPath string) error {
	if os.Getenv(reexecGuard) != "" {
		return nil
	}
	_, vals, err := dotEnvValues(dotEnvPath, true)
	if err != nil {
		return err
	}
	env := applyEnv(vals, os.Getenv)
	if env["LD_LIBRARY_PATH"] == startEnv["LD_LIBRARY_PATH"] && env["LD_PRELOAD"] == startEnv["LD_PRELOAD"] {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("skyline: reexec: %w", err)
	}
	for k, v := range env {
		if v != "" {
			_ = os.Setenv(k, v)
		}
	}
	_ = os.Setenv(reexecGuard, "1")
	err = syscall.Exec(exe, os.Args, os.Environ())
	return fmt.Errorf("skyline: reexec %s: %w", exe, err)
}

// ensureInit initialises GStreamer for the package's own checks made before
// New (with the default .env search, logging nothing); New applies its own
// settings afterwards.
func ensureInit() error {
	if gst.Initialized() {
		return nil
	}
	return setupEnvironment(Config{}.withDefaults(), slog.New(slog.DiscardHandler), false)
}
