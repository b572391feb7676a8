package skyline

import (
	"os"

	"github.com/skyline-go/skyline/internal/gst"
)

// CoreElements are the GStreamer elements every SkyLine needs besides its
// encoder and its destinations' own.
var CoreElements = []string{"appsrc", "appsink", "videoconvert", "videoscale", "h264parse"}

// HasElement reports whether the GStreamer registry has the element name,
// initialising GStreamer first if needed (with the .env found from the
// current folder, as New does). For diagnostics such as `skyline doctor`;
// New checks what it needs itself.
func HasElement(name string) bool {
	if ensureInit() != nil {
		return false
	}
	return gst.HasElement(name)
}

// EnvVar is one of the variables SkyLine takes from .env.
type EnvVar struct {
	Name string
	// DotEnv is its value in the .env file ("" when absent).
	DotEnv string
	// AtStart is its value when the process started (for LD_*, what the
	// dynamic loader used).
	AtStart string
	// Effective is the value SkyLine applies: the environment's, with .env
	// filling in (LD_LIBRARY_PATH: .env entries appended).
	Effective string
	// InEffect: Effective is in effect in this process now.
	// GST_PLUGIN_PATH always is once GStreamer is initialised (SkyLine
	// scans its folders); LD_LIBRARY_PATH and LD_PRELOAD only when the
	// process started with them (export them first, or call Reexec).
	InEffect bool
}

// EnvReport is what SkyLine's environment handling reads and applies.
type EnvReport struct {
	// DotEnv is the .env file read ("" when none).
	DotEnv string
	Vars   []EnvVar
	// Reexecuted: this process was started by Reexec (with the LD_*
	// variables of .env).
	Reexecuted bool
}

// Environment reports the .env file dotEnvPath ("" searches the current
// folder and its parents) and, for GST_PLUGIN_PATH, LD_LIBRARY_PATH and
// LD_PRELOAD, the values read, the values applied and whether they are in
// effect now.
func Environment(dotEnvPath string) (EnvReport, error) {
	path, vals, err := dotEnvValues(dotEnvPath, true)
	if err != nil {
		return EnvReport{DotEnv: path}, err
	}
	r := EnvReport{DotEnv: path, Reexecuted: os.Getenv(reexecGuard) != ""}
	env := applyEnv(vals, os.Getenv)
	for _, k := range envVars {
		v := EnvVar{Name: k, DotEnv: vals[k], AtStart: startEnv[k], Effective: env[k]}
		if k == "GST_PLUGIN_PATH" {
			v.InEffect = gst.Initialized() && os.Getenv(k) == env[k]
		} else {
			v.InEffect = startEnv[k] == env[k]
		}
		r.Vars = append(r.Vars, v)
	}
	return r, nil
}
