package skyline

import (
	"os"
	"path/filepath"
	"strings"
)

// File records the stream into a file: MP4 (.mp4, .m4v), QuickTime (.mov),
// Matroska (.mkv) or MPEG-TS (.ts), chosen by the extension. Each session
// rewrites the file; Stop finalises it so it plays. Matroska and MPEG-TS
// stay playable up to the last frame written even if the program dies
// before Stop; MP4 needs Stop.
type File struct {
	path string
	mux  string
}

var muxers = map[string]string{
	".mp4": "mp4mux", ".m4v": "mp4mux", ".mov": "qtmux", ".mkv": "matroskamux", ".ts": "mpegtsmux",
}

// NewFile returns a file destination. The folder must exist and be
// writable. The path is cleaned (filepath.Clean), so that ./d.mkv and d.mkv
// are one name, which New refuses twice.
func NewFile(path string) (*File, error) {
	if path == "" {
		return nil, configErr("file destination: empty path")
	}
	path = filepath.Clean(path)
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

// Name is "file:<path>".
func (f *File) Name() string { return "file:" + f.path }

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Launch is the muxer and filesink branch.
func (f *File) Launch() string {
	return f.mux + " ! filesink location=" + quoteLaunch(f.path)
}

// LaunchRetry writes to <name>-rN<ext> after the n-th failure, so a
// restart never overwrites what was recorded before.
func (f *File) LaunchRetry(n int) string {
	return f.mux + " ! filesink location=" + quoteLaunch(retryName(f.path, n))
}

// Elements are the muxer and filesink.
func (f *File) Elements() []string { return []string{f.mux, "filesink"} }
