package skyline

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/skyline-go/skyline/internal/urlport"
)

// Sink is a GStreamer branch destination: text in gst-launch syntax that
// consumes parsed H.264, run in a pipeline of its own (so a failure is
// retried without touching the encoder or the other destinations).
// NewGstSink takes any text; NewPush, NewSegmentedFile build common ones.
type Sink struct {
	name string
	// launch is the branch text; it may hold secrets (a stream key in a
	// URL, a password property), so it is shown only through name.
	launch   Secret
	elements []string
	// retry, when set, gives the text for the n-th restart (n >= 1), for
	// sinks that must not overwrite what the first run wrote.
	retry func(n int) string
	// secrets are masked in every error and event about the sink.
	secrets []Secret
	// seg, when set, makes it a segmented recording (NewSegmentedFile).
	seg *segments
}

// Recording tells whether the sink records to files (see Recorder).
func (s *Sink) Recording() bool { return s.seg != nil }

// Secrets are the values (passwords, stream keys, passphrases) the SkyLine
// masks in every error, event and log line about the sink.
func (s *Sink) Secrets() []Secret { return s.secrets }

// Name identifies the sink, without its secrets.
func (s *Sink) Name() string { return s.name }

// Launch is the branch text, secrets included: it is what GStreamer runs,
// not something to show (Name is).
func (s *Sink) Launch() string { return s.launch.Reveal() }

// Elements are the elements the branch needs.
func (s *Sink) Elements() []string { return s.elements }

// LaunchRetry is the branch text for the n-th restart after a failure.
func (s *Sink) LaunchRetry(n int) string {
	if s.retry == nil {
		return s.Launch()
	}
	return s.retry(n)
}

// NewGstSink makes a destination of GStreamer launch text, for example
// "matroskamux ! filesink location=out.mkv" or "fakesink". The text is
// checked now: an unknown element or property is an error naming it.
//
// The text may hold secrets: the values of properties named like secrets
// (password, passphrase, key, secret-key, session-token ...; see
// IsSecretName) and the credentials of URLs in it are masked wherever the
// sink is shown (its Name, errors, events, logs, metrics), as are the
// values in secrets (for secrets placed elsewhere).
func NewGstSink(launch string, secrets ...Secret) (*Sink, error) {
	launch = strings.TrimSpace(launch)
	if launch == "" {
		return nil, configErr("GStreamer sink: empty pipeline text")
	}
	secrets = append(append([]Secret(nil), secrets...), LaunchSecrets(launch)...)
	s := &Sink{name: "gst:" + Redact(launch, secrets...), launch: NewSecret(launch), secrets: secrets}
	if err := ensureInit(); err != nil {
		return nil, err
	}
	if err := checkBranch(s); err != nil {
		return nil, err
	}
	return s, nil
}

// NewPush publishes the stream to a server through GStreamer: rtmp:// or
// rtmps:// (FLV), srt:// (MPEG-TS, caller mode; the port is required). A
// port outside 1..65535 is refused (ErrInvalidConfig). A server that goes away is
// retried with backoff; on reconnection the stream resumes at a keyframe.
// SRT waits for the listener's answer before sending (wait-for-connection),
// so a listener that never answers fails the push after libsrt's connect
// timeout (3 s; connect_timeout=MS in the URL) and nothing is counted
// written: access units given to a push or gst: branch count as written
// only once its sink shows it has rendered them.
// For RTSP servers use rtsp.NewPublisher (ANNOUNCE/RECORD from Go).
//
// The URL's secrets (see URLSecrets: the RTMP stream key, a password, an
// SRT passphrase or streamid) and the values in secrets never reach its
// Name, errors, events or logs, even when the URL is malformed.
func NewPush(rawURL string, secrets ...Secret) (*Sink, error) {
	secrets = append(append([]Secret(nil), secrets...), URLSecrets(rawURL)...)
	shown := Redact(RedactURL(rawURL), secrets...)
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, configErr("push destination %q: not a valid URL: %s", shown, Redact(URLProblem(err), secrets...))
	}
	if u.Host == "" {
		return nil, configErr("push destination %q: no host", shown)
	}
	if err := urlport.Check(u, u.Scheme == "srt"); err != nil { // SRT has no default port
		return nil, configErr("push destination %q: %v", shown, err)
	}
	q := quoteLaunch(rawURL)
	var s *Sink
	switch u.Scheme {
	case "rtmp", "rtmps":
		s = &Sink{launch: NewSecret("flvmux streamable=true ! rtmp2sink location=" + q),
			elements: []string{"flvmux", "rtmp2sink"}}
	case "srt":
		s = &Sink{launch: NewSecret("mpegtsmux alignment=7 ! srtsink uri=" + q + " wait-for-connection=true"),
			elements: []string{"mpegtsmux", "srtsink"}}
	}
	if s != nil {
		s.secrets = secrets
		s.name = "push:" + shown
		return s, nil
	}
	// An unknown scheme: where its secrets are is unknown, so only the
	// scheme is shown.
	return nil, configErr("push destination with scheme %q: want rtmp, rtmps or srt (RTSP: rtsp.NewPublisher)", Redact(u.Scheme, secrets...))
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
	if strings.Count(pattern, "%") != 1 || !segmentVerb.MatchString(filepath.Base(pattern)) {
		return nil, configErr("segmented file %q: the file name needs one integer like %%d or %%05d, and no other %%", pattern)
	}
	if segment <= 0 || keep < 0 {
		return nil, configErr("segmented file %q: segment %v and keep %d: want segment > 0 and keep >= 0", pattern, segment, keep)
	}
	pattern = filepath.Clean(pattern) // one name for ./rec-%05d.mp4 and rec-%05d.mp4
	ext := strings.ToLower(filepath.Ext(pattern))
	mux, ok := muxers[ext]
	if !ok {
		return nil, configErr("segmented file %q: unknown extension %q (want .mp4, .m4v, .mov, .mkv or .ts)", pattern, ext)
	}
	if _, err := NewFile(strings.ReplaceAll(pattern, "%", "")); err != nil {
		return nil, err // the folder must exist
	}
	seg := &segments{pattern: pattern, mux: mux, every: segment, keep: keep}
	return &Sink{name: "file:" + pattern, launch: NewSecret(seg.file(0, 0).Launch()), elements: []string{mux, "filesink"}, seg: seg,
		retry: func(n int) string { return seg.file(n, 0).Launch() }}, nil
}

// segmentVerb is the one printf verb a segment pattern's file name may
// hold: a decimal integer with optional flags and width (%d, %05d, %-3d).
// Other verbs (%s, %c, %q, %*d ...) make names like "rec-%!s(int=0).mp4".
var segmentVerb = regexp.MustCompile(`%[-+ 0]*[0-9]*d`)

// retryName inserts -rN before the extension: rec-%05d.mp4 -> rec-%05d-r1.mp4.
func retryName(path string, n int) string {
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-r%d%s", strings.TrimSuffix(path, ext), n, ext)
}
