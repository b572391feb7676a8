package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/skyline-go/skyline/internal/urlport"
)

// flagError is a command line refused before anything started: a flag
// value that does not parse, or a destination that cannot work. serve exits
// 2 for it, as Go's flag package does for the flags it parses itself; 1 is
// for failures after start.
type flagError struct{ error }

func (e flagError) Unwrap() error { return e.error }

// refuse marks err as a refused command line (nil stays nil).
func refuse(err error) error {
	if err == nil {
		return nil
	}
	return flagError{err}
}

// checkPushURL refuses a push URL whose port is not 1..65535 (srt:// needs
// one: SRT has no default port); RTMP and RTSP default to 1935 and 554.
// shown is the URL with its secrets masked (skyline.RedactURL, and the
// values of ${NAME} and ${file:PATH}).
func checkPushURL(shown string, u *url.URL) error {
	if err := urlport.Check(u, u.Scheme == "srt"); err != nil {
		return fmt.Errorf("--out %s: %w", redactSpec(shown), err)
	}
	return nil
}

// redactSpec is a push URL as errors show it: scheme and host only (user
// info, an RTMP stream key in the path and an SRT passphrase in the query
// are secrets). Give it the URL with its secrets already masked: it cuts
// at the first '/', so a password with a '/' in it would otherwise show
// its first part (rtsp://bob:first/second@host).
func redactSpec(spec string) string {
	scheme, rest, _ := strings.Cut(spec, "://")
	host, _, more := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "?")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = host[i+1:]
	}
	if more || strings.Contains(rest, "?") {
		return scheme + "://" + host + "/..."
	}
	return scheme + "://" + host
}

// fileOut is an --out file destination, for the start-up checks.
type fileOut struct {
	spec, path string // path: the file, or the segments' pattern
}

// checkWritable refuses a file destination that cannot be written: it
// creates and removes a probe file in the folder (a folder's mode bits do
// not tell: read-only mounts, ACLs, root), and checks that an existing file
// of that name can be opened for writing (without truncating it), unless
// it is a named pipe or a device.
func (f fileOut) checkWritable() error {
	dir := filepath.Dir(f.path)
	probe, err := os.CreateTemp(dir, ".skyline-probe-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the reason, without the probe's random name
		}
		return fmt.Errorf("--out %s: cannot write in %s: %w", f.spec, dir, err)
	}
	name := probe.Name()
	_ = probe.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("--out %s: cannot remove a probe file in %s: %w", f.spec, dir, err)
	}
	if strings.Contains(f.path, "%") { // a segment pattern: files to come
		return nil
	}
	if st, err := os.Stat(f.path); err == nil {
		if st.IsDir() {
			return fmt.Errorf("--out %s: %s is a folder", f.spec, f.path)
		}
		if !st.Mode().IsRegular() {
			// A named pipe (mkfifo, read by another program) is not
			// probed: opening it waits for a reader, and closing it gives
			// the reader an end of file before the recording starts.
			return nil
		}
		w, err := os.OpenFile(f.path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("--out %s: %w", f.spec, err)
		}
		_ = w.Close()
	}
	return nil
}

// minSize is the smallest picture each container takes, where it has a
// limit: GStreamer's mp4mux and qtmux refuse pictures under 16x16 (checked
// with GStreamer 1.22: 15 px either way fails, 16 works); Matroska and
// MPEG-TS take any size.
var minSize = map[string]int{".mp4": 16, ".m4v": 16, ".mov": 16}

// checkSize refuses a stream of w x h pixels that the container cannot hold.
func (f fileOut) checkSize(w, h int) error {
	ext := strings.ToLower(filepath.Ext(f.path))
	if m := minSize[ext]; w < m || h < m {
		return fmt.Errorf("--out %s: the stream is %dx%d and %s files need at least %dx%d pixels: "+
			"record to .mkv or .ts, or send larger frames", f.spec, w, h, ext, m, m)
	}
	return nil
}

// sameFile refuses two file destinations that name one file (d.mkv and
// ./d.mkv, an absolute path to it, a path through a symbolic link to its
// folder, or a link to the file, existing or not yet): they would write
// over each other.
func sameFile(outs []fileOut) error {
	seen := map[string]string{}
	for _, f := range outs {
		key := realPath(f.path)
		if prev, ok := seen[key]; ok {
			return fmt.Errorf("--out %s and --out %s name the same file", prev, f.spec)
		}
		seen[key] = f.spec
	}
	return nil
}

// realPath is the file a path names once symbolic links are followed: those
// of its folder, and the file's own, even when they point to a file not
// yet created (filepath.EvalSymlinks fails for those).
func realPath(path string) string {
	for range 40 { // as the kernel's limit on nested links (ELOOP)
		st, err := os.Lstat(path)
		if err != nil || st.Mode()&fs.ModeSymlink == 0 {
			break
		}
		target, err := os.Readlink(path)
		if err != nil {
			break
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	dir, base := filepath.Split(path)
	if d, err := filepath.EvalSymlinks(filepath.Clean(dir)); err == nil {
		dir = d
	}
	if abs, err := filepath.Abs(filepath.Join(dir, base)); err == nil { // Abs cleans the path
		return abs
	}
	return filepath.Clean(path)
}
