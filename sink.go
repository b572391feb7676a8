package skyline

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Sink is a GStreamer branch destination: text in gst-launch syntax that
// consumes parsed H.264, run in a pipeline of its own (so a failure is
// retried without touching the encoder or the other destinations).
// NewGstSink takes any text; NewPush, NewSegmentedFile build common ones.
type Sink struct {
	name     string
	launch   string
	elements []string
	// retry, when set, gives the text for the n-th restart (n >= 1), for
	// sinks that must not overwrite what the first run wrote.
	retry func(n int) string
	// secrets are masked in every error and event about the sink.
	secrets []string
	// seg, when set, makes it a segmented recording (NewSegmentedFile).
	seg *segments
}

// Recording tells whether the sink records to files (see Recorder).
func (s *Sink) Recording() bool { return s.seg != nil }

// Secrets are strings (passwords, stream keys) to mask in errors and logs.
func (s *Sink) Secrets() []string { return s.secrets }

// Name identifies the sink.
func (s *Sink) Name() string { return s.name }

// Launch is the branch text.
func (s *Sink) Launch() string { return s.launch }

// Elements are the elements the branch needs.
func (s *Sink) Elements() []string { return s.elements }

// LaunchRetry is the branch text for the n-th restart after a failure.
func (s *Sink) LaunchRetry(n int) string {
	if s.retry == nil {
		return s.launch
	}
	return s.retry(n)
}

// NewGstSink makes a destination of GStreamer launch text, for example
// "matroskamux ! filesink location=out.mkv" or "fakesink". The text is
// checked now: an unknown element or property is an error naming it.
func NewGstSink(launch string) (*Sink, error) {
	launch = strings.TrimSpace(launch)
	if launch == "" {
		return nil, configErr("GStreamer sink: empty pipeline text")
	}
	s := &Sink{name: "gst:" + launch, launch: launch}
	if err := ensureInit(); err != nil {
		return nil, err
	}
	if err := checkBranch(s); err != nil {
		return nil, err
	}
	return s, nil
}

// NewPush publishes the stream to a server through GStreamer: rtmp:// or
// rtmps:// (FLV), srt:// (MPEG-TS, caller mode). A server that goes away is
// retried with backoff; on reconnection the stream resumes at a keyframe.
// For RTSP servers use rtsp.NewPublisher (ANNOUNCE/RECORD from Go).
func NewPush(rawURL string) (*Sink, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, configErr("push destination %q: not a URL with a host", redactURL(rawURL))
	}
	var secrets []string
	if p, ok := u.User.Password(); ok && p != "" {
		secrets = append(secrets, p)
	}
	for _, k := range []string{"passphrase", "streamid", "key"} { // SRT and some RTMP servers
		if v := u.Query().Get(k); v != "" {
			secrets = append(secrets, v)
		}
	}
	q := quoteLaunch(rawURL)
	var s *Sink
	switch u.Scheme {
	case "rtmp", "rtmps":
		// The last path element of an RTMP URL is the stream key: a secret.
		if i := strings.LastIndex(u.Path, "/"); i >= 0 && i+1 < len(u.Path) {
			secrets = append(secrets, u.Path[i+1:])
		}
		s = &Sink{launch: "flvmux streamable=true ! rtmp2sink location=" + q,
			elements: []string{"flvmux", "rtmp2sink"}}
	case "srt":
		s = &Sink{launch: "mpegtsmux alignment=7 ! srtsink uri=" + q + " wait-for-connection=false",
			elements: []string{"mpegtsmux", "srtsink"}}
	}
	if s != nil {
		s.secrets = secrets
		s.name = "push:" + mask(redactURL(rawURL), secrets)
		return s, nil
	}
	return nil, configErr("push destination %q: scheme %q: want rtmp, rtmps or srt (RTSP: rtsp.NewPublisher)", redactURL(rawURL), u.Scheme)
}

// redactURL hides a password in a URL (secrets never reach logs).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// NewSegmentedFile records into a series of files, each playable on its
// own: pattern has one printf-style integer (rec-%05d.mp4); a new file
// starts at the first keyframe after each segment duration (so segments are
// multiples of the keyframe interval); keep > 0 deletes all but the newest
// keep files. The extension picks the container (.mp4, .mov, .mkv, .ts),
// each written as File writes its file: a finished segment is complete,
// and a crash loses at most the last keyframe interval of the segment being
// written (MP4 and QuickTime segments are fragmented). Stop finalises the
// last file. After a failure the numbering goes on in
// files named with a -rN suffix, never overwriting earlier ones.
func NewSegmentedFile(pattern string, segment time.Duration, keep int) (*Sink, error) {
	if strings.Count(pattern, "%") != 1 || !strings.Contains(pattern, "d") {
		return nil, configErr("segmented file %q: the pattern needs one integer like %%05d", pattern)
	}
	if segment <= 0 || keep < 0 {
		return nil, configErr("segmented file %q: segment %v and keep %d: want segment > 0 and keep >= 0", pattern, segment, keep)
	}
	ext := strings.ToLower(filepath.Ext(pattern))
	mux, ok := muxers[ext]
	if !ok {
		return nil, configErr("segmented file %q: unknown extension %q (want .mp4, .m4v, .mov, .mkv or .ts)", pattern, ext)
	}
	if _, err := NewFile(strings.ReplaceAll(pattern, "%", "")); err != nil {
		return nil, err // the folder must exist
	}
	seg := &segments{pattern: pattern, mux: mux, every: segment, keep: keep}
	return &Sink{name: "file:" + pattern, launch: seg.file(0, 0).Launch(), elements: []string{mux, "filesink"}, seg: seg,
		retry: func(n int) string { return seg.file(n, 0).Launch() }}, nil
}

// retryName inserts -rN before the extension: rec-%05d.mp4 -> rec-%05d-r1.mp4.
func retryName(path string, n int) string {
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-r%d%s", strings.TrimSuffix(path, ext), n, ext)
}

// mask replaces every secret in s by "****".
func mask(s string, secrets []string) string {
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "****")
		}
	}
	return s
}
