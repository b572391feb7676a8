package skyline

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File records the stream into a file: MP4 (.mp4, .m4v), QuickTime (.mov),
// Matroska (.mkv) or MPEG-TS (.ts), chosen by the extension. Each session
// rewrites the file; Stop finalises it (index, duration).
//
// What survives a crash (kill -9, power kept) before Stop, in every
// container: everything up to the last keyframe interval.
//   - MP4 and QuickTime are written fragmented (ISO/IEC 14496-12 movie
//     fragments): the header (moov) comes first, then one fragment (moof +
//     mdat) per keyframe interval, at most FileFragment long. Any prefix of
//     the file plays; a crash loses the fragment being built (at most one
//     keyframe interval, and at most FileFragment).
//   - Matroska and MPEG-TS are written as they go: a crash loses only the
//     frames still in the muxer; the file has no index or duration then
//     (players scan it).
//
// The file is written without buffering in the process (filesink
// buffer-mode=unbuffered): what the muxer has output is in the kernel's
// hands even when the process is killed.
type File struct {
	path string
	mux  string
}

var muxers = map[string]string{
	".mp4": "mp4mux", ".m4v": "mp4mux", ".mov": "qtmux", ".mkv": "matroskamux", ".ts": "mpegtsmux",
}

// FileFragment is the longest fragment of an MP4 or QuickTime recording:
// mp4mux/qtmux end a fragment at every keyframe and after FileFragment at
// the latest, so with the default keyframe interval (2 s) each fragment is
// one keyframe interval, and a crash never loses more than FileFragment.
const FileFragment = DefaultKeyframeInterval

// fragmented reports whether a muxer writes fragments (MP4 and QuickTime).
func fragmented(mux string) bool { return mux == "mp4mux" || mux == "qtmux" }

// muxLaunch is the muxer element with its crash-safety settings.
func muxLaunch(mux string) string {
	if fragmented(mux) {
		return fmt.Sprintf("%s fragment-duration=%d", mux, FileFragment.Milliseconds())
	}
	return mux
}

// fileSinkLaunch writes without buffering in the process, so a kill loses
// nothing the muxer has output.
const fileSinkLaunch = "filesink buffer-mode=unbuffered location="

// NewFile returns a file destination. The folder must exist and be
// writable.
func NewFile(path string) (*File, error) {
	if path == "" {
		return nil, configErr("file destination: empty path")
	}
	ext := strings.ToLower(filepath.Ext(path))
	mux, ok := muxers[ext]
	if !ok {
		return nil, configErr("file destination %q: unknown extension %q (want .mp4, .m4v, .mov, .mkv or .ts)", path, ext)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return nil, configErr("file destination %q: folder: %v", path, err)
	}
	if !st.IsDir() {
		return nil, configErr("file destination %q: %s is not a folder", path, dir)
	}
	return &File{path: path, mux: mux}, nil
}

// Recording is true: a File records (see Recorder).
func (f *File) Recording() bool { return true }

// Name is "file:<path>".
func (f *File) Name() string { return "file:" + f.path }

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Launch is the muxer and filesink branch.
func (f *File) Launch() string {
	return muxLaunch(f.mux) + " ! " + fileSinkLaunch + quoteLaunch(f.path)
}

// LaunchRetry writes to <name>-rN<ext> after the n-th failure, so a
// restart never overwrites what was recorded before.
func (f *File) LaunchRetry(n int) string {
	return muxLaunch(f.mux) + " ! " + fileSinkLaunch + quoteLaunch(retryName(f.path, n))
}

// Elements are the muxer and filesink.
func (f *File) Elements() []string { return []string{f.mux, "filesink"} }

// segmentMuxer is splitmuxsink's muxer and sink setup: each segment is
// written as File writes its file. splitmuxsink applies muxer-properties
// and sink-properties only with async-finalize (a fresh muxer and sink per
// segment, the previous one finalised in the background).
func segmentMuxer(mux string) string {
	props := ""
	if fragmented(mux) {
		props = fmt.Sprintf(` muxer-properties="properties,fragment-duration=(uint)%d"`, FileFragment.Milliseconds())
	}
	return "async-finalize=true muxer-factory=" + mux + props +
		` sink-factory=filesink sink-properties="properties,buffer-mode=(int)2"` // 2: unbuffered
}
