// Package kvslocal is a local Kinesis Video Streams-compatible endpoint:
// CreateStream, DescribeStream, ListStreams, DeleteStream, GetDataEndpoint
// and PutMedia over plain HTTP, as strict as AWS where it matters to
// producers: SigV4 verified over the request's own SignedHeaders (as AWS
// does: kvssink's user-agent, transfer-encoding, connection and x-amzn-*
// headers included) and dated within 5 minutes of the wall clock, 5 PutMedia requests per second and one connection per
// stream (ClientLimitExceededException, ConnectionLimitExceededException),
// MKV validation (fragments 1 s..10 s and <= 50 MB, timecodes increasing
// within a connection, codec private present), IDLE and the end of a
// connection after 30 s without data, fragment acknowledgements in order
// (BUFFERING, RECEIVED, and PERSISTED only for streams with retention;
// ERROR with AWS's error ids and codes, timecode -1 for errors of the
// request), no de-duplication of re-sent fragments (Duplicates counts
// them; Config.Lenient brings back the old forgiving behaviour), and the
// received media stored as playable Matroska files: one file per PutMedia
// connection, <DataDir>/<stream>/<first fragment timecode>.mkv, plus an index
// <DataDir>/<stream>/fragments.jsonl (one JSON Fragment per line).
//
// Use it with the Go SDK and this module's kvs package by pointing the
// endpoint at it:
//
//	AWS_ENDPOINT_URL_KINESIS_VIDEO=http://127.0.0.1:PORT   (or kvs.Config.Endpoint,
//	                                                        or the SDK's BaseEndpoint)
//
// and with kvssink (AWS C++ producer SDK) through its control-plane variable:
//
//	CONTROL_PLANE_URI=http://127.0.0.1:PORT gst-launch-1.0 ... ! kvssink stream-name=demo ...
//
// The credentials must be the ones the endpoint accepts (Config.AccessKey
// and SecretKey, or Config.Lookup). A stream it does not know is created on
// first use unless Strict is set (then ResourceNotFoundException, as AWS
// answers). Only ABSOLUTE fragment timecodes are supported.
package kvslocal

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Limits of the service that the endpoint enforces (unless Lenient), from
// https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/limits.html and
// https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/API_dataplane_PutMedia.html
const (
	// MaxFragmentDuration and MaxFragmentBytes bound one fragment (ERROR
	// 4002 MAX_FRAGMENT_DURATION_REACHED, 4001 MAX_FRAGMENT_SIZE_REACHED).
	MaxFragmentDuration = 10 * time.Second
	MaxFragmentBytes    = 50 << 20
	// MinFragmentDuration: a fragment that starts less than this after the
	// previous one on the connection is refused (ERROR 4002 with
	// ErrorCode MIN_FRAGMENT_DURATION_REACHED); with it the service's
	// 5 fragments per second per stream hold.
	MinFragmentDuration = time.Second
	// PutMediaTPS: PutMedia requests per second per stream; more are
	// refused with 400 ClientLimitExceededException. A second concurrent
	// PutMedia connection to a stream is refused with 400
	// ConnectionLimitExceededException.
	PutMediaTPS = 5
	// DefaultIdleTimeout: a PutMedia connection that receives no data for
	// this long gets an IDLE acknowledgement and is closed.
	DefaultIdleTimeout = 30 * time.Second
	// maxSkew: how far a request's X-Amz-Date may be from the endpoint's
	// wall clock (403 InvalidSignatureException "Signature expired").
	maxSkew = 5 * time.Minute
)

// Clock supplies the time (credential expiry checks).
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Config configures the endpoint.
type Config struct {
	// Listen is the TCP address. Default "127.0.0.1:0" (a free port).
	Listen string
	// DataDir is where streams and media are stored. Required.
	DataDir string
	// AccessKey and SecretKey are the credentials the endpoint accepts.
	// Default: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and
	// AWS_SESSION_TOKEN) from the environment.
	AccessKey, SecretKey, SessionToken string
	// Lookup, when set, is asked for the credentials of an access key ID
	// instead (for temporary credentials; Expires is checked).
	Lookup func(accessKeyID string) (aws.Credentials, bool)
	// Strict answers ResourceNotFoundException for unknown streams
	// instead of creating them.
	Strict bool
	// Lenient keeps the old, more forgiving behaviour for debugging: no
	// PutMedia rate limit, no minimum fragment duration, no idle close,
	// PERSISTED even for streams without retention, fragments ordered
	// across PutMedia requests and re-sent fragments stored once. AWS
	// does none of that; tests of producers should not use it.
	Lenient bool
	// IdleTimeout: Clock time without data after which a PutMedia
	// connection gets an IDLE acknowledgement and is closed. Default
	// DefaultIdleTimeout (30 s, as AWS).
	IdleTimeout time.Duration
	// Logger: default slog.Default().
	Logger *slog.Logger
	// Clock supplies the time of credential expiry checks and of the idle
	// timeout. Default: the system clock.
	Clock Clock
}

// Server is a running local endpoint.
type Server struct {
	cfg Config
	log *slog.Logger
	srv *http.Server
	ln  net.Listener
	url string

	mu      sync.Mutex
	streams map[string]*stream
	fragNo  uint64
	conns   uint64
	ops     map[string]int
	wg      sync.WaitGroup
	closed  bool
	dataURL string // GetDataEndpoint's answer ("" : this server)
}

type stream struct {
	Name           string
	ARN            string
	Created        time.Time
	RetentionHours int32
	MediaType      string
	Version        string
	LastTimecode   int64 // last frame of the last persisted fragment (ms)
	Fragments      int
	active         bool
	persisted      map[int64]string // fragment timecode -> number (recent)
	calls          []time.Time      // recent PutMedia requests (wall clock)
	duplicates     int              // fragments stored again (same timecode)
	refused        map[string]int   // PutMedia refusals by error type
}

// Fragment is one stored fragment (a line of fragments.jsonl).
type Fragment struct {
	FragmentNumber string
	Timecode       int64   // absolute ms
	FrameTimecodes []int64 // absolute ms of every frame
	Keyframe       bool    // first frame is a keyframe
	Keyframes      int     // keyframes in the fragment
	Bytes          int
	File           string // file holding it, relative to the stream folder
}

// StreamInfo describes a stream.
type StreamInfo struct {
	Name, ARN    string
	Created      time.Time
	LastTimecode int64
	Fragments    int
}

// New checks cfg and prepares a server; Start listens.
func New(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("kvslocal: DataDir is required")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Lookup == nil && cfg.AccessKey == "" {
		cfg.AccessKey, cfg.SecretKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		cfg.SessionToken = os.Getenv("AWS_SESSION_TOKEN")
	}
	if cfg.Lookup == nil && (cfg.AccessKey == "" || cfg.SecretKey == "") {
		return nil, errors.New("kvslocal: no credentials to accept: set AccessKey and SecretKey (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("kvslocal: data folder: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With(slog.String("component", "kvslocal")), streams: map[string]*stream{}, ops: map[string]int{}}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("kvslocal: listen %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	s.url = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /createStream", s.control(s.createStream))
	mux.HandleFunc("POST /describeStream", s.control(s.describeStream))
	mux.HandleFunc("POST /listStreams", s.control(s.listStreams))
	mux.HandleFunc("POST /deleteStream", s.control(s.deleteStream))
	mux.HandleFunc("POST /getDataEndpoint", s.control(s.getDataEndpoint))
	mux.HandleFunc("POST /putMedia", s.putMedia)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, &apiError{http.StatusNotFound, "UnknownOperationException", "kvslocal does not serve " + r.Method + " " + r.URL.Path})
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
	s.log.Info("local KVS endpoint listening", "url", s.url, "data", s.cfg.DataDir, "strict", s.cfg.Strict)
	return nil
}

// URL is the endpoint's base URL, e.g. http://127.0.0.1:43127.
func (s *Server) URL() string { return s.url }

// Addr is the address it listens on.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops listening, drops open connections (a fragment not fully
// received is not stored) and waits for the handlers.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed || s.srv == nil {
		s.closed = true
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.srv.Close()
	s.wg.Wait()
	return err
}

func (s *Server) count(path string) {
	s.mu.Lock()
	s.ops[strings.TrimPrefix(path, "/")]++
	s.mu.Unlock()
}

// Requests counts the requests received per operation ("describeStream",
// "getDataEndpoint", "putMedia", ...), accepted or not.
func (s *Server) Requests(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops[op]
}

// Streams lists the known streams.
func (s *Server) Streams() []StreamInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []StreamInfo
	for _, st := range s.streams {
		out = append(out, StreamInfo{Name: st.Name, ARN: st.ARN, Created: st.Created, LastTimecode: st.LastTimecode, Fragments: st.Fragments})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// StreamDir is the folder of a stream's media.
func (s *Server) StreamDir(name string) string { return filepath.Join(s.cfg.DataDir, name) }

// Fragments reads a stream's stored fragments, oldest first.
func (s *Server) Fragments(name string) ([]Fragment, error) {
	return ReadFragments(filepath.Join(s.cfg.DataDir, name))
}

// Files lists a stream's media files, oldest first.
func (s *Server) Files(name string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(s.cfg.DataDir, name, "*.mkv"))
	sort.Strings(m)
	return m, err
}

// ReadFragments reads the fragments.jsonl index of a stream folder.
func ReadFragments(dir string) ([]Fragment, error) {
	b, err := os.ReadFile(filepath.Join(dir, "fragments.jsonl"))
	if err != nil {
		return nil, err
	}
	var out []Fragment
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var f Fragment
		if err := json.Unmarshal(line, &f); err != nil {
			return nil, fmt.Errorf("kvslocal: fragments.jsonl: %w", err)
		}
		out = append(out, f)
	}
	return out, nil
}

// ---- persistence of the stream registry ----

func (s *Server) registryPath() string { return filepath.Join(s.cfg.DataDir, "streams.json") }

func (s *Server) load() error {
	b, err := os.ReadFile(s.registryPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kvslocal: %w", err)
	}
	var list []*stream
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("kvslocal: %s: %w", s.registryPath(), err)
	}
	for _, st := range list {
		st.persisted = map[int64]string{}
		st.refused = map[string]int{}
		s.streams[st.Name] = st
		if frs, err := ReadFragments(s.StreamDir(st.Name)); err == nil {
			for _, f := range frs[max(0, len(frs)-1000):] {
				st.persisted[f.Timecode] = f.FragmentNumber
				if n, err := strconv.ParseUint(f.FragmentNumber, 10, 64); err == nil && n > s.fragNo {
					s.fragNo = n
				}
			}
		}
	}
	return nil
}

// saveLocked writes the registry (s.mu held).
func (s *Server) saveLocked() {
	list := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		list = append(list, st)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	b, _ := json.MarshalIndent(list, "", "  ")
	tmp := s.registryPath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err == nil {
		_ = os.Rename(tmp, s.registryPath())
	}
}

func (s *Server) newStreamLocked(name string, hours int32, mediaType string) *stream {
	now := time.Now().UTC()
	st := &stream{
		Name: name, ARN: fmt.Sprintf("arn:aws:kinesisvideo:local:000000000000:stream/%s/%d", name, now.UnixMilli()),
		Created: now, RetentionHours: hours, MediaType: mediaType, Version: strconv.FormatInt(now.UnixNano(), 36),
		persisted: map[int64]string{}, refused: map[string]int{},
	}
	s.streams[name] = st
	s.saveLocked()
	s.log.Info("stream created", "stream", name)
	return st
}

// ---- errors ----

type apiError struct {
	status  int
	typ     string
	message string
}

func (e *apiError) Error() string { return e.typ + ": " + e.message }

func writeErr(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", e.typ+":")
	w.Header().Set("x-amz-ErrorType", e.typ+":")
	w.WriteHeader(e.status)
	b, _ := json.Marshal(map[string]string{"__type": e.typ, "message": e.message})
	_, _ = w.Write(b)
}

func errNotFound(name string) *apiError {
	return &apiError{http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("The requested stream %s is not found or not active.", name)}
}

func errInvalid(format string, a ...any) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidArgumentException", fmt.Sprintf(format, a...)}
}

// ---- SigV4 ----

// verify checks the request's SigV4 signature the way AWS does: the
// canonical request is built from the request itself over exactly the
// headers its SignedHeaders lists (whatever they are: user-agent,
// transfer-encoding, connection, expect, x-amzn-*), then signed with the
// secret of its access key ID and compared. Algorithm:
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
func (s *Server) verify(r *http.Request, payloadHash string) *apiError {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return &apiError{http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token (a SigV4 Authorization header is required)"}
	}
	fields := map[string]string{}
	for _, p := range strings.Split(auth[len(algo):], ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return &apiError{http.StatusForbidden, "IncompleteSignatureException", "Authorization header is malformed"}
	}
	akid, day, region, service := scope[0], scope[1], scope[2], scope[3]
	creds, ok := s.credentials(akid)
	if !ok {
		return &apiError{http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."}
	}
	if creds.SessionToken != "" && r.Header.Get("X-Amz-Security-Token") != creds.SessionToken {
		return &apiError{http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."}
	}
	if creds.CanExpire && !s.cfg.Clock.Now().Before(creds.Expires) {
		return &apiError{http.StatusForbidden, "ExpiredTokenException", "The security token included in the request is expired"}
	}
	if service != "kinesisvideo" {
		return &apiError{http.StatusForbidden, "InvalidSignatureException", fmt.Sprintf("Credential should be scoped to correct service: 'kinesisvideo', not %q", service)}
	}
	date := r.Header.Get("X-Amz-Date")
	signedAt, err := time.Parse("20060102T150405Z", date)
	if err != nil || !strings.HasPrefix(date, day) {
		return &apiError{http.StatusForbidden, "IncompleteSignatureException", "X-Amz-Date is missing, malformed or not of the credential scope's day"}
	}
	// A signature is good for 5 minutes either side of the service's
	// (wall) clock: older requests cannot be replayed, and a producer
	// whose clock is off is refused (reference_sigv-create-signed-request.html:
	// "the request must reach AWS within five minutes of the time stamp").
	if now := time.Now().UTC(); !s.cfg.Lenient && (signedAt.Before(now.Add(-maxSkew)) || signedAt.After(now.Add(maxSkew))) {
		const f = "20060102T150405Z"
		if signedAt.Before(now) {
			return &apiError{http.StatusForbidden, "InvalidSignatureException", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)",
				date, now.Add(-maxSkew).Format(f), now.Format(f))}
		}
		return &apiError{http.StatusForbidden, "InvalidSignatureException", fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 5 min.)",
			date, now.Add(maxSkew).Format(f), now.Format(f))}
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	hasHost := false
	for _, h := range signed {
		hasHost = hasHost || h == "host"
	}
	if !hasHost {
		return &apiError{http.StatusForbidden, "InvalidSignatureException", "'Host' must be a signed header"}
	}
	canonical := CanonicalRequest(r, signed, payloadHash)
	want := Signature(creds.SecretAccessKey, date, day+"/"+region+"/"+service+"/aws4_request", canonical)
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return &apiError{http.StatusForbidden, "InvalidSignatureException",
			"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	return nil
}

// CanonicalRequest is the SigV4 canonical request of r over the signed
// header names (lower case, in SignedHeaders order, which is sorted).
// Headers that Go's server moves out of r.Header are read where it puts
// them: host (r.Host), content-length (r.ContentLength) and
// transfer-encoding (r.TransferEncoding).
func CanonicalRequest(r *http.Request, signed []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(path)
	b.WriteByte('\n')
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var qs []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			qs = append(qs, uriEncode(k)+"="+uriEncode(v))
		}
	}
	b.WriteString(strings.Join(qs, "&"))
	b.WriteByte('\n')
	for _, h := range signed {
		var vals []string
		switch h {
		case "host":
			vals = []string{r.Host}
		case "content-length":
			if v := r.Header.Values("Content-Length"); len(v) > 0 {
				vals = v
			} else if r.ContentLength >= 0 {
				vals = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		case "transfer-encoding":
			vals = r.Header.Values("Transfer-Encoding")
			if len(vals) == 0 {
				vals = r.TransferEncoding
			}
		default:
			vals = r.Header.Values(h)
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(strings.Join(vals, ","))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// Signature is the hex SigV4 signature of a canonical request.
func Signature(secret, amzDate, scope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	parts := strings.Split(scope, "/")
	k := hmacSHA256([]byte("AWS4"+secret), parts[0])
	for _, p := range parts[1:] {
		k = hmacSHA256(k, p)
	}
	return hex.EncodeToString(hmacSHA256(k, toSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// uriEncode is SigV4's URI encoding: everything but A-Za-z0-9-_.~ as %XY.
func uriEncode(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (s *Server) credentials(akid string) (aws.Credentials, bool) {
	if s.cfg.Lookup != nil {
		return s.cfg.Lookup(akid)
	}
	if akid != s.cfg.AccessKey {
		return aws.Credentials{}, false
	}
	return aws.Credentials{AccessKeyID: s.cfg.AccessKey, SecretAccessKey: s.cfg.SecretKey, SessionToken: s.cfg.SessionToken}, true
}

// ---- control plane ----

type controlFunc func(body map[string]any) (any, *apiError)

func (s *Server) control(f controlFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeErr(w, errInvalid("reading the request: %v", err))
			return
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != hash {
			writeErr(w, &apiError{http.StatusBadRequest, "InvalidSignatureException", "x-amz-content-sha256 does not match the body"})
			return
		}
		s.count(r.URL.Path)
		if e := s.verify(r, hash); e != nil {
			s.log.Warn("request refused", "path", r.URL.Path, "error", e.typ)
			writeErr(w, e)
			return
		}
		in := map[string]any{}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &in); err != nil {
				writeErr(w, &apiError{http.StatusBadRequest, "SerializationException", "request body is not JSON"})
				return
			}
		}
		out, e := f(in)
		if e != nil {
			writeErr(w, e)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

func str(in map[string]any, k string) string {
	v, _ := in[k].(string)
	return v
}

func validName(n string) bool {
	if n == "" || len(n) > 256 || n == "." || n == ".." {
		return false
	}
	for _, r := range n {
		if !(r == '_' || r == '.' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// lookupLocked finds a stream by name or ARN, creating it unless strict.
func (s *Server) lookupLocked(name, arn string, create bool) (*stream, *apiError) {
	if name == "" && arn != "" {
		for _, st := range s.streams {
			if st.ARN == arn {
				return st, nil
			}
		}
		return nil, errNotFound(arn)
	}
	if !validName(name) {
		return nil, errInvalid("invalid stream name %q", name)
	}
	if st, ok := s.streams[name]; ok {
		return st, nil
	}
	if s.cfg.Strict || !create {
		return nil, errNotFound(name)
	}
	return s.newStreamLocked(name, 24, "video/h264"), nil
}

func (st *stream) info() map[string]any {
	return map[string]any{
		"StreamName": st.Name, "StreamARN": st.ARN, "Status": "ACTIVE", "Version": st.Version,
		"MediaType": st.MediaType, "DataRetentionInHours": st.RetentionHours,
		"CreationTime": float64(st.Created.UnixMilli()) / 1000, "DeviceName": "kvslocal",
	}
}

func (s *Server) createStream(in map[string]any) (any, *apiError) {
	name := str(in, "StreamName")
	if !validName(name) {
		return nil, errInvalid("invalid stream name %q", name)
	}
	hours := int32(0)
	if v, ok := in["DataRetentionInHours"].(float64); ok {
		hours = int32(v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.streams[name]; ok {
		return nil, &apiError{http.StatusBadRequest, "ResourceInUseException", fmt.Sprintf("The stream %s already exists.", name)}
	}
	mt := str(in, "MediaType")
	if mt == "" {
		mt = "video/h264"
	}
	st := s.newStreamLocked(name, hours, mt)
	return map[string]any{"StreamARN": st.ARN}, nil
}

func (s *Server) describeStream(in map[string]any) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, e := s.lookupLocked(str(in, "StreamName"), str(in, "StreamARN"), true)
	if e != nil {
		return nil, e
	}
	return map[string]any{"StreamInfo": st.info()}, nil
}

func (s *Server) listStreams(map[string]any) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.streams))
	for n := range s.streams {
		names = append(names, n)
	}
	sort.Strings(names)
	list := []any{}
	for _, n := range names {
		list = append(list, s.streams[n].info())
	}
	return map[string]any{"StreamInfoList": list}, nil
}

func (s *Server) deleteStream(in map[string]any) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, e := s.lookupLocked(str(in, "StreamName"), str(in, "StreamARN"), false)
	if e != nil {
		return nil, e
	}
	delete(s.streams, st.Name)
	s.saveLocked()
	return map[string]any{}, nil
}

func (s *Server) getDataEndpoint(in map[string]any) (any, *apiError) {
	api := str(in, "APIName")
	if api == "" {
		return nil, errInvalid("APIName is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.lookupLocked(str(in, "StreamName"), str(in, "StreamARN"), true); e != nil {
		return nil, e
	}
	if s.dataURL != "" {
		return map[string]any{"DataEndpoint": s.dataURL}, nil
	}
	return map[string]any{"DataEndpoint": s.url}, nil
}

// SetDataEndpoint changes what GetDataEndpoint answers ("" for this
// server's own URL), e.g. to send producers to an endpoint that fails.
func (s *Server) SetDataEndpoint(url string) {
	s.mu.Lock()
	s.dataURL = url
	s.mu.Unlock()
}

// Duplicates is the number of fragments of a stream stored although a
// fragment with the same timecode was stored before (re-sends: AWS stores
// them again too).
func (s *Server) Duplicates(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.streams[name]; ok {
		return st.duplicates
	}
	return 0
}

// Refused counts the PutMedia requests of a stream refused with an AWS
// error type (e.g. "ClientLimitExceededException").
func (s *Server) Refused(name, errorType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.streams[name]; ok {
		return st.refused[errorType]
	}
	return 0
}
