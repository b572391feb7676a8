package skyline

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
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

// attemptPath is the file written by attempt n (0: the first).
func (f *File) attemptPath(n int) string {
	if n == 0 {
		return f.path
	}
	return retryName(f.path, n)
}

// at is the file attempt n writes.
func (f *File) at(n int) *File { return &File{path: f.attemptPath(n), mux: f.mux} }

// wroteMedia tells whether the file has pictures on disk (for MP4 and
// QuickTime: a complete fragment).
func (f *File) wroteMedia() bool {
	if !regularOrMissing(f.path) {
		return true // a named pipe or a device: nothing to inspect
	}
	if fragmented(f.mux) {
		return hasFragment(f.path)
	}
	return nonEmpty(f.path)
}

// removeIfNoMedia removes the file if it holds no picture (nothing, or only
// a header, was written: a full disk) and tells whether it did. A file with
// media data (mdat), such as an unfragmented MP4 written by someone else,
// is never removed.
func (f *File) removeIfNoMedia() bool {
	if !regularOrMissing(f.path) {
		return false
	}
	if fragmented(f.mux) && nonEmpty(f.path) && !hasMediaBox(f.path) {
		return os.Remove(f.path) == nil
	}
	return removeEmpty(f.path)
}

// repair cuts what a failed write (a full disk) left half-written at the
// end of a fragmented MP4 or QuickTime file, so that it ends with its last
// complete fragment and plays cleanly.
func (f *File) repair() {
	if fragmented(f.mux) && regularOrMissing(f.path) {
		trimFragments(f.path)
	}
}

// trimFragments truncates an ISO BMFF file after its last complete top-level
// box, and before a movie fragment header (moof) whose media data (mdat)
// is incomplete.
func trimFragments(path string) {
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer fh.Close()
	if good, _, _, size := scanBoxes(fh); good > 0 && good < size {
		_ = fh.Truncate(good)
	}
}

// hasFragment tells whether an ISO BMFF file holds a complete fragment
// (moof followed by a complete mdat).
func hasFragment(path string) bool {
	fh, err := os.Open(path)
	if err != nil {
		return false
	}
	defer fh.Close()
	_, frags, _, _ := scanBoxes(fh)
	return frags > 0
}

// hasMediaBox tells whether an ISO BMFF file has a media data box (mdat),
// even an incomplete one.
func hasMediaBox(path string) bool {
	fh, err := os.Open(path)
	if err != nil {
		return true // unknown: keep it
	}
	defer fh.Close()
	_, _, mdat, _ := scanBoxes(fh)
	return mdat
}

// scanBoxes walks the top-level boxes of an ISO BMFF file (ISO/IEC
// 14496-12 4.2): good is where the complete part ends (before a moof whose
// mdat is incomplete), frags the complete fragments, mdat whether any
// media data box begins, size the file's size.
func scanBoxes(fh *os.File) (good int64, frags int, mdat bool, size int64) {
	st, err := fh.Stat()
	if err != nil {
		return 0, 0, true, 0
	}
	var pos, moof int64 = 0, -1
	hdr := make([]byte, 16)
	for pos+8 <= st.Size() {
		if _, err := fh.ReadAt(hdr[:8], pos); err != nil {
			break
		}
		size, typ := int64(binary.BigEndian.Uint32(hdr)), string(hdr[4:8])
		mdat = mdat || typ == "mdat"
		if size == 1 {
			if _, err := fh.ReadAt(hdr[8:16], pos+8); err != nil && err != io.EOF {
				break
			}
			size = int64(binary.BigEndian.Uint64(hdr[8:16]))
		}
		if size < 8 || pos+size > st.Size() {
			break
		}
		if typ == "mdat" && moof >= 0 {
			frags++
		}
		if typ == "moof" {
			moof = pos
		} else {
			moof = -1
		}
		pos += size
		good = pos
	}
	if moof >= 0 {
		good = moof
	}
	return good, frags, mdat, st.Size()
}

// regularOrMissing tells whether path is a regular file, or nothing: the
// recording's file is inspected, trimmed or removed only then. A named
// pipe (mkfifo, read by another program) is never read, which would steal
// the reader's data or wait forever, nor removed.
func regularOrMissing(path string) bool {
	st, err := os.Stat(path)
	return err != nil || st.Mode().IsRegular()
}

func nonEmpty(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Size() > 0
}

func removeEmpty(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Size() == 0 && os.Remove(path) == nil
}

// Elements are the muxer and filesink.
func (f *File) Elements() []string { return []string{f.mux, "filesink"} }

// segments is a segmented recording: one File per segment, which the
// destination's outlet starts at the first keyframe after every segment
// duration (rather than splitmuxsink, which holds a whole keyframe interval
// before its muxer and so would lose two on a crash).
type segments struct {
	pattern string // one printf integer verb
	mux     string
	every   time.Duration
	keep    int // > 0: files of an attempt kept, the oldest deleted
}

// file is segment index of attempt n (0: the first; n: -rN names).
func (g *segments) file(n, index int) *File {
	p := g.pattern
	if n > 0 {
		p = retryName(p, n)
	}
	return &File{path: fmt.Sprintf(p, index), mux: g.mux}
}
