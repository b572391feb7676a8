package kvs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/skyline-go/skyline"
)

// CredentialHandler says how kvssink gets its credentials (the original's
// three credential handlers).
type CredentialHandler int

const (
	// CredentialsFile writes kvssink's credential-path file and rewrites it
	// 2 minutes before temporary credentials expire. The default: it is the
	// only handler that keeps temporary credentials working.
	CredentialsFile CredentialHandler = iota
	// CredentialsEnvironment exports AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) for kvssink to read.
	CredentialsEnvironment
	// CredentialsInline passes access-key and secret-key as kvssink
	// properties; it refuses temporary credentials (they would expire
	// inside the running pipeline).
	CredentialsInline
)

func (h CredentialHandler) String() string {
	switch h {
	case CredentialsFile:
		return "file"
	case CredentialsEnvironment:
		return "environment"
	case CredentialsInline:
		return "inline"
	}
	return fmt.Sprintf("CredentialHandler(%d)", int(h))
}

// Timing of the file handler.
const (
	// RefreshBeforeExpiry: temporary credentials are rewritten this long
	// before they expire.
	RefreshBeforeExpiry = 2 * time.Minute
	// FileExpiryAfterRefresh: the expiry written into the file is the
	// planned refresh plus this, so kvssink re-reads the file after the
	// refresh and before the credentials really expire.
	FileExpiryAfterRefresh = 60 * time.Second
)

// SinkOptions configures the kvssink backend.
type SinkOptions struct {
	// Credentials selects the credential handler. Default CredentialsFile.
	Credentials CredentialHandler
	// CredentialPath is the file handler's file. Default
	// <os.TempDir()>/skyline-kvs-<uid>/<stream>.credentials.
	CredentialPath string
	// StorageSizeMB is kvssink's storage-size (its retry buffer). Default:
	// Config.RetryBufferBytes in MiB (at least 16).
	StorageSizeMB int
	// Framerate is kvssink's framerate property (it sizes its buffers).
	// Default 30.
	Framerate int
	// Properties are extra kvssink properties (e.g. "restart-on-error").
	Properties map[string]string
}

// Sink is the kvssink backend: a skyline.GstDestination.
type Sink struct {
	cfg   Config
	log   *slog.Logger
	name  string
	creds aws.CredentialsProvider
	path  string

	next       atomic.Int64 // unix nanos of the next planned refresh (file handler); 0: never
	refreshing atomic.Bool
	wg         sync.WaitGroup

	mu      sync.Mutex
	st      Stats
	lastErr error
	static  aws.Credentials // inline handler
	written aws.Credentials // file handler: what the file holds
	backoff time.Duration   // file handler: wait while the provider returns the same credentials
	env     map[string]string
}

// NewSink creates the kvssink backend. Credentials are retrieved now: the
// inline handler refuses temporary ones, the file handler writes its file.
// The kvssink element itself is checked by skyline.New.
func NewSink(cfg Config) (*Sink, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := &cfg.KVSSink
	if o.Credentials < CredentialsFile || o.Credentials > CredentialsInline {
		return nil, configErr("unknown KVSSink.Credentials %d", int(o.Credentials))
	}
	if o.Framerate == 0 {
		o.Framerate = 30
	}
	if o.StorageSizeMB == 0 {
		o.StorageSizeMB = max(16, int(cfg.RetryBufferBytes>>20))
	}
	if o.Framerate < 0 || o.StorageSizeMB < 0 {
		return nil, configErr("negative KVSSink.Framerate or StorageSizeMB")
	}
	for k := range o.Properties {
		if !propName.MatchString(k) {
			return nil, configErr("KVSSink.Properties: %q is not a property name", k)
		}
	}
	ac, err := loadAWS(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, name: "kvssink:" + cfg.Stream, creds: ac.Credentials}
	s.log = cfg.Logger.With(slog.String("component", s.name))
	s.st.Backend = BackendKVSSink
	if cfg.Region == "" {
		s.cfg.Region = ac.Region
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := s.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: kvs: credentials: %v", ErrConfig, err)
	}
	switch o.Credentials {
	case CredentialsInline:
		if c.CanExpire {
			return nil, configErr("the inline credentials handler refuses temporary credentials (%s expires at %s): "+
				"kvssink would keep them after they expire; use the file handler (CredentialsFile) or the native backend",
				maskKey(c.AccessKeyID), c.Expires.UTC().Format(time.RFC3339))
		}
		s.static = c
	case CredentialsEnvironment:
		exportEnv(c)
		if c.CanExpire {
			s.log.Warn("temporary credentials exported to the environment: kvssink reads them once and they expire",
				"expires", c.Expires.UTC().Format(time.RFC3339))
		}
	case CredentialsFile:
		s.path = o.CredentialPath
		if s.path == "" {
			s.path = filepath.Join(os.TempDir(), fmt.Sprintf("skyline-kvs-%d", os.Getuid()), cfg.Stream+".credentials")
		}
		if err := s.writeFile(c, cfg.Clock.Now()); err != nil {
			return nil, err
		}
	}
	s.env = s.environment()
	for k, v := range s.env {
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
	}
	return s, nil
}

// environment is what NewSink changes in the process environment, which
// kvssink reads (kinesis_video_producer_init in the producer SDK's
// src/gstreamer/gstkvssink.cpp): "" means unset.
//
//   - CONTROL_PLANE_URI: Config.Endpoint, when set.
//   - AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN: kvssink
//     prefers the first two over its credential-path file, and takes the
//     token from the environment unless session-token is set. With the
//     file and inline handlers they are unset when they hold other
//     credentials than the ones this destination resolved (explicit
//     Config.Credentials win), and AWS_SESSION_TOKEN is unset for the
//     inline handler (its credentials have none).
//   - AWS_DEFAULT_REGION: set to the resolved region when it holds
//     another (some kvssink versions prefer it over aws-region).
//
// The environment is the process's: other kvssink elements of the process
// see the same values.
func (s *Sink) environment() map[string]string {
	env := map[string]string{}
	if s.cfg.Endpoint != "" {
		env["CONTROL_PLANE_URI"] = s.cfg.Endpoint
	}
	if v, ok := os.LookupEnv("AWS_DEFAULT_REGION"); ok && v != s.cfg.Region {
		env["AWS_DEFAULT_REGION"] = s.cfg.Region
	}
	switch s.cfg.KVSSink.Credentials {
	case CredentialsFile, CredentialsInline:
		want := s.written
		if s.cfg.KVSSink.Credentials == CredentialsInline {
			want = s.static
		}
		ak, sk := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		if (ak != "" || sk != "") && (ak != want.AccessKeyID || sk != want.SecretAccessKey || s.cfg.KVSSink.Credentials == CredentialsFile && want.CanExpire) {
			env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = "", ""
			s.log.Warn("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY unset: kvssink would prefer them over the configured credentials")
		}
		if tok, ok := os.LookupEnv("AWS_SESSION_TOKEN"); ok && (s.cfg.KVSSink.Credentials == CredentialsInline || tok != want.SessionToken || env["AWS_ACCESS_KEY_ID"] == "" && ak != "") {
			env["AWS_SESSION_TOKEN"] = ""
		}
	}
	return env
}

// Environment is what NewSink set ("" : unset) in the process environment
// for kvssink: CONTROL_PLANE_URI, AWS_DEFAULT_REGION, and the AWS_* keys it
// cleared so that the configured credentials win.
func (s *Sink) Environment() map[string]string {
	out := make(map[string]string, len(s.env))
	for k, v := range s.env {
		out[k] = v
	}
	return out
}

var propName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Name is "kvssink:<stream>".
func (s *Sink) Name() string { return s.name }

// Elements is kvssink.
func (s *Sink) Elements() []string { return []string{"kvssink"} }

// NeedsPluginPath: kvssink is found through GST_PLUGIN_PATH.
func (s *Sink) NeedsPluginPath() bool { return true }

// CredentialPath is the file handler's file ("" for the other handlers).
func (s *Sink) CredentialPath() string { return s.path }

// Launch is the kvssink branch. It contains secrets with the inline
// handler: log MaskedLaunch instead.
func (s *Sink) Launch() string { return s.launch(false) }

// MaskedLaunch is Launch with every secret replaced by "****".
func (s *Sink) MaskedLaunch() string { return s.launch(true) }

func (s *Sink) launch(mask bool) string {
	o := s.cfg.KVSSink
	props := [][2]string{
		{"stream-name", s.cfg.Stream},
		{"aws-region", s.cfg.Region},
		{"storage-size", strconv.Itoa(o.StorageSizeMB)},
		{"framerate", strconv.Itoa(o.Framerate)},
		{"fragment-duration", strconv.FormatInt(s.cfg.FragmentDuration.Milliseconds(), 10)},
		{"restart-on-error", "true"},
		{"allow-create-stream", strconv.FormatBool(s.cfg.CreateStream)},
		{"retention-period", strconv.Itoa(s.cfg.RetentionHours)},
	}
	switch o.Credentials {
	case CredentialsFile:
		props = append(props, [2]string{"credential-path", s.path})
	case CredentialsInline:
		ak, sk := s.static.AccessKeyID, s.static.SecretAccessKey
		if mask {
			ak, sk = maskKey(ak), "****"
		}
		props = append(props, [2]string{"access-key", ak}, [2]string{"secret-key", sk})
	}
	keys := make([]string, 0, len(o.Properties))
	for k := range o.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := o.Properties[k]
		if mask && secretProp(k) {
			v = "****"
		}
		props = append(props, [2]string{k, v})
	}
	var b strings.Builder
	b.WriteString("video/x-h264,stream-format=avc,alignment=au ! kvssink name=kvssink")
	for _, p := range props {
		b.WriteString(" ")
		b.WriteString(p[0])
		b.WriteString("=")
		b.WriteString(quote(p[1]))
	}
	return b.String()
}

func secretProp(k string) bool { return skyline.IsSecretName(k) }

// quote quotes a gst-launch value when needed.
func quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\"'\\!=,;") {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// BeforePut is called by SkyLine for every frame it streams. With the file
// handler it compares the time with the planned refresh (one atomic load)
// and, when due, rewrites the credential file in the background.
func (s *Sink) BeforePut(now time.Time) {
	next := s.next.Load()
	if next == 0 || now.UnixNano() < next {
		return
	}
	if !s.refreshing.CompareAndSwap(false, true) {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.refreshing.Store(false)
		_ = s.Refresh(now)
	}()
}

// Wait waits for a background credential refresh to finish.
func (s *Sink) Wait() { s.wg.Wait() }

// Refresh retrieves the credentials and rewrites the credential file now
// (file handler), or re-exports them (environment handler).
func (s *Sink) Refresh(now time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := s.creds.Retrieve(ctx)
	if inv, ok := s.creds.(interface{ Invalidate() }); ok && err == nil && s.cfg.KVSSink.Credentials == CredentialsFile &&
		sameCredentials(c, s.fileCredentials()) {
		// The SDK's CredentialsCache (the standard chain) hands out the
		// same credentials until they expire; the file would then declare
		// them expired (FileExpiryAfterRefresh) while nothing newer is
		// available, and kvssink refuses a credential file whose expiry
		// is past (STATUS_IOT_EXPIRATION_OCCURS_IN_PAST, convertTimestampToEpoch
		// in amazon-kinesis-video-streams-producer-c src/source/Common/Util.c).
		// Inside the refresh window, ask the cache for new ones.
		inv.Invalidate()
		c, err = s.creds.Retrieve(ctx)
	}
	if err == nil && s.cfg.KVSSink.Credentials == CredentialsFile && sameCredentials(c, s.fileCredentials()) {
		// The provider (a cache) returns the file's credentials again:
		// nothing to write; ask again later, backing off, and at the latest
		// when they expire.
		s.mu.Lock()
		s.backoff = min(max(2*s.backoff, 5*time.Second), time.Minute)
		next := now.Add(s.backoff)
		if c.CanExpire && c.Expires.After(now) && c.Expires.Before(next) {
			next = c.Expires
		}
		s.mu.Unlock()
		s.next.Store(next.UnixNano())
		return nil
	}
	if err == nil {
		switch s.cfg.KVSSink.Credentials {
		case CredentialsFile:
			err = s.writeFile(c, now)
		case CredentialsEnvironment:
			exportEnv(c)
		}
	}
	s.mu.Lock()
	if err != nil {
		s.lastErr = err
		s.st.Errors++
	} else {
		s.lastErr = nil
	}
	s.mu.Unlock()
	if err != nil {
		// Try again in 10 s rather than on every frame.
		s.next.Store(now.Add(10 * time.Second).UnixNano())
		s.log.Error("credential refresh failed", "error", err)
		s.emit(Event{Type: EventError, Err: err, Backoff: 10 * time.Second})
		return err
	}
	return nil
}

func sameCredentials(a, b aws.Credentials) bool {
	return a.AccessKeyID == b.AccessKeyID && a.SecretAccessKey == b.SecretAccessKey && a.SessionToken == b.SessionToken &&
		a.CanExpire == b.CanExpire && a.Expires.Equal(b.Expires)
}

func (s *Sink) fileCredentials() aws.Credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}

// writeFile writes kvssink's credential file (mode 0600) and plans the next
// refresh. The expiry written never passes the credentials' own.
func (s *Sink) writeFile(c aws.Credentials, now time.Time) error {
	var line string
	next := int64(0)
	if c.CanExpire {
		refresh := c.Expires.Add(-RefreshBeforeExpiry)
		if refresh.Before(now) {
			refresh = now // already inside the window: refresh on the next frame after this
		}
		fileExpiry := refresh.Add(FileExpiryAfterRefresh)
		if fileExpiry.After(c.Expires) {
			fileExpiry = c.Expires
		}
		line = strings.Join([]string{"CREDENTIALS", c.AccessKeyID, fileExpiry.UTC().Format("2006-01-02T15:04:05Z"), c.SecretAccessKey, c.SessionToken}, "\t")
		next = refresh.UnixNano()
		if next <= now.UnixNano() {
			next = now.Add(time.Second).UnixNano()
		}
	} else {
		line = strings.Join([]string{"CREDENTIALS", c.AccessKeyID, c.SecretAccessKey}, "\t")
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("kvs: credential file folder: %w", err)
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(line+"\n"), 0o600); err != nil {
		return fmt.Errorf("kvs: writing the credential file: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("kvs: credential file mode: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("kvs: writing the credential file: %w", err)
	}
	s.next.Store(next)
	s.mu.Lock()
	s.st.CredentialRefreshes++
	s.written = c
	s.backoff = 0
	s.mu.Unlock()
	attrs := []any{"path", s.path, "temporary", c.CanExpire}
	if c.CanExpire {
		attrs = append(attrs, "next_refresh", time.Unix(0, next).UTC().Format(time.RFC3339))
	}
	s.log.Info("credential file written", attrs...)
	s.emit(Event{Type: EventCredentialsRefreshed})
	return nil
}

// NextRefresh is when the file handler plans to rewrite the file (zero for
// static credentials and the other handlers).
func (s *Sink) NextRefresh() time.Time {
	n := s.next.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func exportEnv(c aws.Credentials) {
	os.Setenv("AWS_ACCESS_KEY_ID", c.AccessKeyID)
	os.Setenv("AWS_SECRET_ACCESS_KEY", c.SecretAccessKey)
	if c.SessionToken != "" {
		os.Setenv("AWS_SESSION_TOKEN", c.SessionToken)
	} else {
		os.Unsetenv("AWS_SESSION_TOKEN")
	}
}

func (s *Sink) emit(ev Event) {
	ev.Stream = s.cfg.Stream
	if ev.Time.IsZero() {
		ev.Time = s.cfg.Clock.Now()
	}
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(ev)
	}
}

// Stats reads the counters (kvssink reports no acknowledgements to Go).
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	return st
}

// Err is the last credential refresh error.
func (s *Sink) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}
