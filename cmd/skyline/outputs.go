package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
)

// outFlags collects repeatable --out flags.
type outFlags []string

func (o *outFlags) String() string     { return strings.Join(*o, ",") }
func (o *outFlags) Set(v string) error { *o = append(*o, v); return nil }

const outHelp = `destination (repeatable): rtsp://HOST:PORT/PATH (publish), rtmp://..., srt://..., ` +
	`file:PATH.mp4|.mkv|.ts, file:PATTERN-%05d.mp4?segment=2s&keep=10, gst:PIPELINE, kvs://REGION/STREAM`

// parseOut builds the destination an --out value names, after expanding
// ${NAME} and ${file:PATH} (expandSecrets). Neither its errors nor the
// destination's name show a secret: the URL's own (stream key, password,
// passphrase, secret properties of gst: text) or a substituted value.
func parseOut(raw string, log *slog.Logger) (skyline.Destination, error) {
	spec, secrets, err := expandSecrets("--out", raw)
	if err != nil {
		return nil, err
	}
	shown := skyline.Redact(skyline.RedactURL(spec), secrets...)
	scheme, rest, ok := strings.Cut(spec, ":")
	if !ok {
		return nil, fmt.Errorf("--out %q: want SCHEME:..., e.g. file:rec.mp4 or rtsp://host:8554/path", shown)
	}
	switch scheme {
	case "rtsp", "rtsps", "rtmp", "rtmps", "srt":
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("--out %s: not a URL of the form %s://HOST:PORT", redactSpec(shown), scheme)
		}
		if err := checkPushURL(shown, u); err != nil {
			return nil, err
		}
	}
	switch scheme {
	case "rtsp", "rtsps":
		return rtsp.NewPublisher(rtsp.PublisherConfig{URL: spec, Secrets: secrets, Logger: log})
	case "rtmp", "rtmps", "srt":
		return skyline.NewPush(spec, secrets...)
	case "gst":
		return skyline.NewGstSink(rest, secrets...)
	case "file":
		return parseFileOut(rest)
	case "kvs":
		return newKVSOut(spec, shown, log)
	}
	// Where an unknown scheme keeps its secrets is unknown: only the scheme
	// is shown.
	return nil, fmt.Errorf("--out with unknown scheme %q (%s)", skyline.Redact(scheme, secrets...), outHelp)
}

// parseFileOut: PATH, or PATTERN?segment=DURATION[&keep=N].
func parseFileOut(rest string) (skyline.Destination, error) {
	path, query, _ := strings.Cut(rest, "?")
	if query == "" {
		return skyline.NewFile(path)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("--out file:%s: %v", rest, err)
	}
	var segment time.Duration
	keep := 0
	for k, v := range q {
		switch k {
		case "segment":
			if segment, err = time.ParseDuration(v[0]); err != nil || segment <= 0 {
				return nil, fmt.Errorf("--out file:%s: segment=%q: want a duration like 2s or 10m", rest, v[0])
			}
		case "keep":
			if keep, err = strconv.Atoi(v[0]); err != nil || keep < 0 {
				return nil, fmt.Errorf("--out file:%s: keep=%q: want a number of files", rest, v[0])
			}
		default:
			return nil, fmt.Errorf("--out file:%s: unknown option %q (want segment, keep)", rest, k)
		}
	}
	if segment == 0 {
		return nil, errors.New("--out file:" + rest + ": keep needs segment")
	}
	return skyline.NewSegmentedFile(path, segment, keep)
}

// shortName is a destination's name for the status line.
func shortName(name string) string {
	if len(name) > 24 {
		return name[:21] + "..."
	}
	return name
}
