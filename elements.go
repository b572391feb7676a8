package skyline

import (
	"sort"

	"github.com/skyline-go/skyline/internal/gst"
)

// installHints maps GStreamer elements to what provides them on Debian and
// Ubuntu (and, for out-of-tree plugins, how to build them).
var installHints = map[string]string{
	"appsrc":        "apt-get install gstreamer1.0-plugins-base",
	"appsink":       "apt-get install gstreamer1.0-plugins-base",
	"videoconvert":  "apt-get install gstreamer1.0-plugins-base",
	"videoscale":    "apt-get install gstreamer1.0-plugins-base",
	"tee":           "apt-get install libgstreamer1.0-0",
	"queue":         "apt-get install libgstreamer1.0-0",
	"filesink":      "apt-get install libgstreamer1.0-0",
	"fakesink":      "apt-get install libgstreamer1.0-0",
	"x264enc":       "apt-get install gstreamer1.0-plugins-ugly",
	"h264parse":     "apt-get install gstreamer1.0-plugins-bad",
	"mpegtsmux":     "apt-get install gstreamer1.0-plugins-bad",
	"mp4mux":        "apt-get install gstreamer1.0-plugins-good",
	"qtmux":         "apt-get install gstreamer1.0-plugins-good",
	"matroskamux":   "apt-get install gstreamer1.0-plugins-good",
	"rtph264pay":    "apt-get install gstreamer1.0-plugins-good",
	"splitmuxsink":  "apt-get install gstreamer1.0-plugins-good",
	"flvmux":        "apt-get install gstreamer1.0-plugins-good",
	"rtmp2sink":     "apt-get install gstreamer1.0-plugins-bad",
	"srtsink":       "apt-get install gstreamer1.0-plugins-bad",
	"tcpclientsink": "apt-get install gstreamer1.0-plugins-base",
	"avdec_h264":    "apt-get install gstreamer1.0-libav",
	"vah264enc":     "apt-get install gstreamer1.0-plugins-bad and a VA-API driver (intel-media-va-driver or mesa-va-drivers)",
	"vaapih264enc":  "apt-get install gstreamer1.0-vaapi",
	"v4l2h264enc":   "apt-get install gstreamer1.0-plugins-good (needs a V4L2 M2M encoder device)",
	"nvh264enc":     "apt-get install gstreamer1.0-plugins-bad with the NVIDIA driver",
	"nvv4l2h264enc": "install NVIDIA JetPack / DeepStream GStreamer plugins",
	"kvssink": "build the Amazon Kinesis Video Streams C++ producer SDK with -DBUILD_GSTREAMER_PLUGIN=ON " +
		"and set GST_PLUGIN_PATH (and LD_LIBRARY_PATH for its open-source dependencies) to its build folder, " +
		"in the environment or a .env file; or use the native KVS backend, which needs nothing built",
}

// InstallHint says how to install the GStreamer element name.
func InstallHint(name string) string {
	if h, ok := installHints[name]; ok {
		return h
	}
	return "find the plugin that provides it (gst-inspect-1.0 " + name + " fails now) and install it, " +
		"or point GST_PLUGIN_PATH at its folder"
}

// checkElements returns a *MissingElementsError for the names the registry
// does not have.
func checkElements(names []string) error {
	seen := map[string]bool{}
	var missing []string
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if !gst.HasElement(n) {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	return &MissingElementsError{Missing: missing}
}

// EncoderCandidates are the H.264 encoders SkyLine knows, in order of
// preference: Jetson, NVIDIA desktop, VA-API (new, old), V4L2 M2M, x264.
var EncoderCandidates = []string{"nvv4l2h264enc", "nvh264enc", "vah264enc", "vaapih264enc", "v4l2h264enc", "x264enc"}

// AvailableEncoders lists the EncoderCandidates this machine's GStreamer
// registry has, in order of preference.
func AvailableEncoders() []string {
	if gst.Init() != nil {
		return nil
	}
	var out []string
	for _, e := range EncoderCandidates {
		if gst.HasElement(e) {
			out = append(out, e)
		}
	}
	return out
}

// GStreamerVersion initialises GStreamer and returns its version string.
func GStreamerVersion() (string, error) {
	if err := gst.Init(); err != nil {
		return "", err
	}
	return gst.Version(), nil
}
