// Package kvs streams a SkyLine to Amazon Kinesis Video Streams.
//
// Two backends share one Config:
//
//   - BackendNative (the default) speaks PutMedia from Go: SigV4, Matroska
//     fragments cut at keyframes, fragment acknowledgements, reconnection
//     with exponential backoff and a bounded retry buffer. It needs nothing
//     but this module: no C++ producer SDK, no GST_PLUGIN_PATH.
//   - BackendKVSSink feeds the stream to the kvssink GStreamer element of the
//     AWS C++ producer SDK, the way the original KVSSkyLine did, with its
//     three credential handlers (inline, environment, file).
//
// Credentials come from Config.Credentials, or else the standard AWS chain
// (environment, shared config and credentials files, SSO, container and
// instance roles) through aws-sdk-go-v2's config.LoadDefaultConfig, whose
// cache refreshes temporary credentials. The endpoint can be overridden the
// standard way (AWS_ENDPOINT_URL_KINESIS_VIDEO or AWS_ENDPOINT_URL, or
// endpoint_url in the shared config) or with Config.Endpoint; the package
// kvslocal is a local KVS-compatible endpoint for tests and development.
//
// Use:
//
//	dst, err := kvs.New(kvs.Config{Region: "us-east-1", Stream: "demo", CreateStream: true})
//	sl, err := skyline.New(skyline.Config{}, dst)
package kvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/skyline-go/skyline"
)

// Backend selects how the stream reaches KVS.
type Backend int

const (
	// BackendNative speaks PutMedia from Go. The default.
	BackendNative Backend = iota
	// BackendKVSSink uses the kvssink GStreamer element (C++ producer SDK).
	BackendKVSSink
)

func (b Backend) String() string {
	switch b {
	case BackendNative:
		return "native"
	case BackendKVSSink:
		return "kvssink"
	}
	return fmt.Sprintf("Backend(%d)", int(b))
}

// Defaults of the zero Config.
const (
	DefaultFragmentDuration      = 2 * time.Second
	DefaultRetryBufferBytes      = 64 << 20
	DefaultRetryBufferDuration   = 2 * time.Minute
	DefaultMinBackoff            = 500 * time.Millisecond
	DefaultMaxBackoff            = 30 * time.Second
	DefaultCloseTimeout          = 4 * time.Second
	DefaultMaxConnectionDuration = 30 * time.Minute
	DefaultRediscoverInterval    = 45 * time.Minute
	DefaultRetentionHours        = 24
	// MinFragmentDuration is KVS's shortest fragment (limits.html).
	MinFragmentDuration = time.Second
)

// Config configures a KVS destination. Region and Stream are required.
type Config struct {
	// Region is the AWS region, e.g. "us-east-1". Default: the region of
	// the standard AWS configuration (AWS_REGION, shared config).
	Region string
	// Stream is the Kinesis video stream name.
	Stream string
	// Credentials are used as given (wrap them in aws.NewCredentialsCache
	// if retrieving them is expensive). Default: the standard AWS chain,
	// cached and refreshed by the SDK.
	Credentials aws.CredentialsProvider
	// Endpoint overrides the KVS control-plane endpoint (the SDK's
	// BaseEndpoint), e.g. "http://127.0.0.1:8080" for kvslocal. Default:
	// AWS_ENDPOINT_URL_KINESIS_VIDEO / AWS_ENDPOINT_URL / shared config,
	// else the regional AWS endpoint.
	Endpoint string

	// Backend is BackendNative (default) or BackendKVSSink.
	Backend Backend
	// FragmentDuration is the target fragment length; fragments are cut at
	// the first keyframe after it (a keyframe is requested when it is
	// reached; a natural keyframe up to one frame interval early is taken
	// as the boundary, so the encoder's GOP of the same length gives one
	// keyframe per fragment). Default 2 s; 1 s..9 s: KVS refuses fragments
	// shorter than 1 s (at most 5 fragments per second per stream) and
	// longer than 10 s,
	// https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/limits.html
	FragmentDuration time.Duration
	// CreateStream creates the stream when it does not exist, with
	// RetentionHours of retention (default 24).
	CreateStream   bool
	RetentionHours int

	// RetryBufferBytes and RetryBufferDuration bound the fragments kept
	// until KVS has persisted them (re-sent after a reconnection). When
	// either is exceeded the oldest fragments are given up: counted in
	// Stats and reported with EventFragmentsDropped. Defaults 64 MiB and
	// 2 minutes. For kvssink, RetryBufferBytes sets storage-size.
	RetryBufferBytes    int64
	RetryBufferDuration time.Duration

	// MinBackoff and MaxBackoff bound the exponential backoff between
	// connection attempts. Defaults 500 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// MaxConnectionDuration: a PutMedia connection is rotated (at a
	// fragment boundary) after this long. Default 30 min.
	MaxConnectionDuration time.Duration
	// RediscoverInterval: the data endpoint is looked up again after this
	// long. Default 45 min.
	RediscoverInterval time.Duration
	// CloseTimeout bounds how long Close waits for outstanding fragments
	// to be persisted; those that are not are given up, counted and
	// reported. Default 4 s: under the SkyLine's DrainTimeout (default
	// 5 s), past which Stop detaches the destination instead (raise both
	// together).
	CloseTimeout time.Duration

	// OnEvent receives connection, acknowledgement, error and loss events
	// from the destination's goroutines. It must return quickly.
	OnEvent func(Event)
	// Logger is the parent logger (the destination logs with
	// component=kvs:<stream>). Default slog.Default().
	Logger *slog.Logger
	// Clock supplies the time for credential expiry, connection rotation
	// and rediscovery decisions (tests). Default: the system clock.
	Clock skyline.Clock

	// KVSSink configures the kvssink backend.
	KVSSink SinkOptions
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (c Config) withDefaults() Config {
	if c.FragmentDuration == 0 {
		c.FragmentDuration = DefaultFragmentDuration
	}
	if c.RetentionHours == 0 {
		c.RetentionHours = DefaultRetentionHours
	}
	if c.RetryBufferBytes == 0 {
		c.RetryBufferBytes = DefaultRetryBufferBytes
	}
	if c.RetryBufferDuration == 0 {
		c.RetryBufferDuration = DefaultRetryBufferDuration
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxConnectionDuration == 0 {
		c.MaxConnectionDuration = DefaultMaxConnectionDuration
	}
	if c.RediscoverInterval == 0 {
		c.RediscoverInterval = DefaultRediscoverInterval
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	return c
}

// ErrConfig is wrapped by every configuration error of this package (it
// wraps skyline.ErrInvalidConfig).
var ErrConfig = fmt.Errorf("%w: kvs", skyline.ErrInvalidConfig)

func configErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...)
}

func (c Config) validate() error {
	switch {
	case c.Stream == "":
		return configErr("Stream is required")
	case len(c.Stream) > 256 || strings.ContainsAny(c.Stream, " /\\\"'\t\n"):
		return configErr("Stream %q: want 1-256 characters of [a-zA-Z0-9_.-]", c.Stream)
	case c.Backend != BackendNative && c.Backend != BackendKVSSink:
		return configErr("unknown Backend %d", int(c.Backend))
	case c.FragmentDuration < MinFragmentDuration || c.FragmentDuration > 9*time.Second:
		return configErr("FragmentDuration %v: want 1s..9s (KVS fragments are 1 s..10 s: https://docs.aws.amazon.com/kinesisvideostreams/latest/dg/limits.html)", c.FragmentDuration)
	case c.RetryBufferBytes < 0 || c.RetryBufferDuration < 0:
		return configErr("negative retry buffer bound")
	case c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff:
		return configErr("backoff bounds %v..%v", c.MinBackoff, c.MaxBackoff)
	case c.RetentionHours < 0:
		return configErr("negative RetentionHours")
	}
	for _, r := range c.Stream {
		if !(r == '_' || r == '.' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return configErr("Stream %q: want 1-256 characters of [a-zA-Z0-9_.-]", c.Stream)
		}
	}
	return nil
}

// Destination is what New returns: a skyline destination (a Receiver for the
// native backend, a GstDestination for kvssink) with its KVS status.
type Destination interface {
	skyline.Destination
	// Stats reads the counters.
	Stats() Stats
	// Err is the last error (nil after a successful reconnection).
	Err() error
}

// New creates a KVS destination for cfg.Backend: a *Native or a *Sink.
func New(cfg Config) (Destination, error) {
	switch cfg.Backend {
	case BackendKVSSink:
		return NewSink(cfg)
	default:
		return NewNative(cfg)
	}
}

// loadAWS resolves region, credentials and endpoint from cfg and the
// standard AWS configuration.
func loadAWS(ctx context.Context, cfg Config) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	ac, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, configErr("AWS configuration: %v", err)
	}
	if cfg.Credentials != nil {
		ac.Credentials = cfg.Credentials
	}
	if ac.Region == "" {
		return aws.Config{}, configErr("no region: set Config.Region or AWS_REGION")
	}
	if ac.Credentials == nil {
		return aws.Config{}, configErr("no AWS credentials provider")
	}
	return ac, nil
}

// EventType classifies an Event.
type EventType int

const (
	// EventConnecting: discovery or a PutMedia connection is being set up.
	EventConnecting EventType = iota
	// EventConnected: a PutMedia connection is streaming.
	EventConnected
	// EventAck: an acknowledgement arrived (Event.Ack).
	EventAck
	// EventError: a request or connection failed (Event.Err); a retry
	// follows after Event.Backoff.
	EventError
	// EventDisconnected: a connection ended (rotation, error, Close).
	EventDisconnected
	// EventFragmentsDropped: fragments were given up (Event.Fragments,
	// Event.Frames, Event.Err says why).
	EventFragmentsDropped
	// EventStreamCreated: CreateStream created the stream.
	EventStreamCreated
	// EventCredentialsRefreshed: new credentials were written (kvssink file
	// handler) or retrieved for a new connection.
	EventCredentialsRefreshed
)

func (t EventType) String() string {
	switch t {
	case EventConnecting:
		return "connecting"
	case EventConnected:
		return "connected"
	case EventAck:
		return "ack"
	case EventError:
		return "error"
	case EventDisconnected:
		return "disconnected"
	case EventFragmentsDropped:
		return "fragments-dropped"
	case EventStreamCreated:
		return "stream-created"
	case EventCredentialsRefreshed:
		return "credentials-refreshed"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is reported to Config.OnEvent.
type Event struct {
	Type              EventType
	Stream            string
	Time              time.Time
	Ack               Ack           // EventAck
	Err               error         // EventError, EventDisconnected, EventFragmentsDropped
	Backoff           time.Duration // EventError: wait before the next attempt
	Fragments, Frames int           // EventFragmentsDropped
	Endpoint          string        // EventConnecting/EventConnected: the data endpoint
}

// AckType is a PutMedia acknowledgement's EventType.
type AckType string

// The acknowledgement types of PutMedia.
const (
	AckBuffering AckType = "BUFFERING"
	AckReceived  AckType = "RECEIVED"
	AckPersisted AckType = "PERSISTED"
	AckError     AckType = "ERROR"
	AckIdle      AckType = "IDLE"
)

// Ack is one PutMedia acknowledgement.
type Ack struct {
	EventType        AckType
	FragmentTimecode int64 // absolute ms
	FragmentNumber   string
	ErrorID          int    `json:"ErrorId"`
	ErrorCode        string `json:",omitempty"`
}

// AckErrorText names the PutMedia acknowledgement error ids.
func AckErrorText(id int) string {
	switch id {
	case 4000:
		return "stream read error"
	case 4001:
		return "fragment size over the limit (50 MB)"
	case 4002:
		return "fragment duration limit reached (1 s..10 s)"
	case 4003:
		return "connection duration over the limit"
	case 4004:
		return "fragment timecode lower than the previous one"
	case 4005:
		return "more than one track"
	case 4006:
		return "invalid MKV data"
	case 4007:
		return "invalid producer timestamp"
	case 4008:
		return "stream is not active (deleted)"
	case 4009:
		return "fragment metadata limit reached"
	case 4010:
		return "track number mismatch"
	case 4011:
		return "frames missing for a track"
	case 4012:
		return "more tracks than allowed"
	case 4500:
		return "KMS key access denied"
	case 4501:
		return "KMS key disabled"
	case 4502:
		return "KMS key validation error"
	case 4503:
		return "KMS key unavailable"
	case 4504:
		return "invalid use of KMS key"
	case 4505:
		return "invalid KMS key state"
	case 4506:
		return "KMS key not found"
	case 4507:
		return "stream deleted"
	case 5000:
		return "internal service error"
	case 5001:
		return "archival error"
	}
	return "unknown error"
}

// FragmentError is an ERROR acknowledgement as an error.
type FragmentError struct {
	Ack Ack
}

func (e *FragmentError) Error() string {
	text := AckErrorText(e.Ack.ErrorID)
	if e.Ack.ErrorCode != "" {
		text += ", " + e.Ack.ErrorCode
	}
	return fmt.Sprintf("kvs: fragment %d rejected: error %d (%s)", e.Ack.FragmentTimecode, e.Ack.ErrorID, text)
}

// retriable says whether re-sending the fragment may succeed: the
// producer SDK's rule (serviceCallResultRetry in
// amazon-kinesis-video-streams-pic src/client/src/StreamEvent.c): the
// errors about the fragment's content, the stream or its KMS key are
// final; every other id, unknown ones included, is retried.
func (e *FragmentError) retriable() bool {
	switch e.Ack.ErrorID {
	case 4001, 4002, 4004, 4005, 4006, 4007, 4008, 4009, 4010, 4011, 4012,
		4500, 4501, 4502, 4503, 4504, 4505, 4506, 4507:
		return false
	}
	return true
}

// APIError is an HTTP error answer of KVS (x-amzn-ErrorType).
type APIError struct {
	Op      string
	Status  int
	Type    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("kvs: %s: HTTP %d %s: %s", e.Op, e.Status, e.Type, e.Message)
}

// ErrGivenUp wraps the reason fragments were dropped.
var ErrGivenUp = errors.New("kvs: fragments given up")

// Stats are a destination's counters.
type Stats struct {
	Backend Backend
	// Connected: a PutMedia connection is streaming (native).
	Connected bool
	// Frames taken, fragments cut, fragments sent (counting re-sends).
	Frames, Fragments, FragmentsSent uint64
	// Acknowledgements by type.
	Buffering, Received, Persisted, AckErrors, Idle uint64
	// Fragments and frames given up (buffer bound, rejected, Close).
	FragmentsDropped, FramesDropped uint64
	// Connections made; errors (failed requests or connections).
	Connections, Errors uint64
	// BufferedFragments and BufferedBytes: kept until persisted.
	BufferedFragments int
	BufferedBytes     int64
	// CredentialRefreshes: credential retrievals for new connections
	// (native) or credential file rewrites (kvssink file handler).
	CredentialRefreshes uint64
	// LastError is the last error's text ("" after recovery).
	LastError string
}
