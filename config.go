package skyline

import (
	"log/slog"
	"time"
)

// Defaults for the zero values of Config and Encoder.
const (
	// DefaultWarmupFrames is the original's FPS_METER_WARMUP_FRAMES.
	DefaultWarmupFrames = 100
	// DefaultQueueSize is how many frames may wait for the encoder.
	DefaultQueueSize = 8
	// DefaultKeyframeInterval keeps a late viewer's wait short.
	DefaultKeyframeInterval = 2 * time.Second
	// DefaultDrainTimeout bounds how long Stop waits for the end of stream.
	DefaultDrainTimeout = 5 * time.Second
	// DefaultPutWait bounds how long Put waits for room (DropNone) or for
	// a frame's turn (TimestampsPaced).
	DefaultPutWait = 5 * time.Second
	// DefaultStartTimeout bounds how long Start waits for the pipeline to
	// open.
	DefaultStartTimeout = 10 * time.Second
	// DefaultEncoder is the software H.264 encoder.
	DefaultEncoder = "x264enc"
	// DefaultPreset is x264's speed preset, chosen with bench/presets: at
	// 1280x720@30 on a 2-core VM superfast costs about 8-10 ms of CPU per
	// frame (1.3-2x ultrafast) and gains 5-6 dB of luma PSNR over
	// ultrafast on camera-like content (ultrafast has no sub-pixel motion
	// search); veryfast costs 1.5-2x superfast for no gain at the same
	// bitrate, faster 2.5x for about 1 dB.
	DefaultPreset = "superfast"

	// defaultBitsPerPixel sets the automatic bitrate (bit per pixel per
	// frame: 2488 kbit/s at 1280x720@30), chosen with bench/presets as the
	// lowest that keeps superfast above 35 dB luma PSNR on camera-like
	// content: 0.07 gave 34.8-35.1 dB mean (min 32.7), 0.08 35.4-35.7,
	// 0.09 35.8-36.2 (min 34.0), 0.10 36.2-36.6.
	defaultBitsPerPixel = 0.09
)

// Config configures a SkyLine. The zero value is valid: every field's zero
// value is the documented default.
type Config struct {
	// Logger is the parent logger; the SkyLine logs through a child with
	// the attribute component=<Name>. Default slog.Default().
	Logger *slog.Logger
	// Name names the instance in logs (the original used its class name).
	// Default "SkyLine".
	Name string

	// GstLogFile sets GST_DEBUG_FILE and GstLogLevel sets GST_DEBUG (e.g.
	// "3" or "x264enc:5,*:2"). GStreamer reads the file name once per
	// process, when the first SkyLine is created.
	GstLogFile  string
	GstLogLevel string

	// DotEnvPath is the .env file to read GST_PLUGIN_PATH, LD_LIBRARY_PATH
	// and LD_PRELOAD from. Default: the first .env found in the current
	// folder or its parents. NoDotEnv disables the search.
	DotEnvPath string
	NoDotEnv   bool

	// Encoder selects and tunes the H.264 encoder.
	Encoder Encoder

	// QueueSize bounds the frames waiting for the encoder. Default 8.
	QueueSize int
	// Drop says what Put does when the queue is full: wait for room
	// (DropNone, at most PutWait), refuse the frame (DropNewest), or
	// discard the oldest waiting one (DropOldest). Default DropNone:
	// nothing is lost unless asked for (offline work, as with OpenCV's
	// VideoWriter, and every frame to live viewers); a live loop that must
	// never wait for the encoder sets DropNewest (what the encoder cannot
	// keep up with is then refused and counted) or DropOldest.
	Drop DropPolicy
	// PutWait bounds how long Put waits for room in the queue (DropNone);
	// past it Put returns false with ErrQueueFull. A frame's turn
	// (TimestampsPaced) is waited for at most one frame duration, and at
	// most PutWait. Default 5 s.
	PutWait time.Duration
	// Timestamps selects how frames are timestamped. Default
	// TimestampsAuto: TimestampsFixedRate when every destination is a
	// recording (frame n at n/fps: a clip Put as fast as it can be read
	// records at its real length), else TimestampsPaced (capture time, and
	// a producer faster than the declared rate is slowed to it, so live
	// viewers get every frame at the declared rate).
	Timestamps Timestamps

	// WarmupFrames is the number of frames a warm-up measures
	// (FPS_METER_WARMUP_FRAMES). Default 100; at least 2.
	WarmupFrames int
	// DrainTimeout bounds how long Stop waits for the pipeline and the
	// destinations to finish what they hold (one deadline for all; Stop
	// returns within DrainTimeout + 1 s). Default 5 s.
	DrainTimeout time.Duration
	// StartTimeout bounds how long Start waits for the encoder to open
	// (with its fallbacks); see Start. Default 10 s.
	StartTimeout time.Duration

	// Clock supplies the time (for tests); it must be safe for concurrent
	// use. Default: the system clock.
	Clock Clock

	// OnEvent, when set, receives every Event in order, from a goroutine
	// of its own, never under a SkyLine lock: it may call any method of the
	// SkyLine, Close included. A slow callback delays only later events,
	// never Put.
	OnEvent func(Event)

	// DestinationQueue bounds the access units waiting for each
	// destination; beyond it a slow destination loses access units
	// (counted) and resumes at the next keyframe. Default 128.
	DestinationQueue int
	// RetryMin and RetryMax bound the exponential backoff between attempts
	// to reopen a failed destination. Defaults 500 ms and 30 s.
	RetryMin, RetryMax time.Duration
}

// Encoder configures the H.264 encoder. Zero values are the low-latency
// defaults of SPEC B2: the best encoder present (x264enc on a machine
// without a hardware encoder), zerolatency tuning, no B-frames, a keyframe
// every 2 s, the superfast preset and a bitrate scaled to the picture. The
// common knobs are mapped onto each encoder's own properties.
type Encoder struct {
	// Element is the GStreamer encoder element. Default: the first of
	// EncoderCandidates the machine has (hardware first, x264enc last);
	// if it cannot start, the next one is tried and the reason logged.
	Element string
	// Candidates replaces EncoderCandidates as the encoders tried in order
	// when Element is empty (those not installed are skipped). An encoder
	// that fails to start, or fails on its first frames, makes way for the
	// next one, with a warning and EventEncoderFallback.
	Candidates []string
	// Bitrate in kbit/s. Default: 0.09 bit per pixel per frame, between 300
	// and 20000 (2.5 Mbit/s at 1280x720@30).
	Bitrate int
	// KeyframeInterval is the time between keyframes. Default 2 s.
	KeyframeInterval time.Duration
	// Preset is x264's speed-preset. Default "superfast".
	Preset string
	// Profile restricts the H.264 profile ("baseline", "main", "high").
	// Default: the encoder's choice (High for x264 with 4:2:0 input).
	Profile string
	// Properties are extra encoder properties in gst-launch syntax
	// ("threads": "2"). They are applied last and override the above.
	Properties map[string]string
}

// DropPolicy decides what happens when the encoder falls behind.
type DropPolicy int

const (
	// DropNone makes Put wait for room in the queue (back-pressure, the
	// behaviour of OpenCV's VideoWriter), at most Config.PutWait; past it
	// the frame is refused with ErrQueueFull (counted). The default.
	DropNone DropPolicy = iota
	// DropNewest refuses the frame being Put (Put returns false with
	// ErrQueueFull): frames already accepted are always encoded, and Put
	// never waits for the encoder.
	DropNewest
	// DropOldest accepts the new frame and discards the oldest waiting one:
	// lowest latency, but an accepted frame may be dropped (counted).
	DropOldest
)

// Timestamps selects how frames are timestamped.
type Timestamps int

const (
	// TimestampsAuto is TimestampsFixedRate when every destination is a
	// recording, else TimestampsPaced (see Config.Timestamps). The
	// default.
	TimestampsAuto Timestamps = iota
	// TimestampsCapture uses Frame.Time when set, else the Put wall clock:
	// irregular Put rates play back in real time; a producer faster than
	// real time is squeezed into less time.
	TimestampsCapture
	// TimestampsFixedRate stamps frame n of a session at n/fps, as the
	// original did (and OpenCV's VideoWriter): right for frames read from a
	// file, wrong for a producer that is not regular.
	TimestampsFixedRate
	// TimestampsPaced is TimestampsCapture for a producer at or below the
	// declared rate; one that runs ahead of it (frames from memory or a
	// file) is slowed to it: Put waits until the frame's turn, 1/fps after
	// the previous one (at most one frame duration, and Config.PutWait),
	// and the frame is stamped with that turn. A producer that falls behind by more than a frame is
	// followed in real time from there (no catching up in a burst).
	TimestampsPaced

	// TimestampsSteady stamps a frame with its Frame.Time (or the Put time)
	// relative to the first frame's, placed at the first Put, and never
	// less than one frame period (1/Params.FPS) after the previous frame: a
	// producer faster than real time (frames decoded from a file, a burst
	// that waited in a pipe) is recorded at n/fps, its real length, while a
	// live producer at or below FPS, and its pauses, keep real time. The
	// times are taken as given, from any clock, never re-anchored; the PTS
	// may run ahead of the wall clock while a producer is faster than FPS.
	TimestampsSteady
)

// Recorder is implemented by destinations that record (File, segmented
// files): when every destination of a SkyLine is one, TimestampsAuto
// chooses TimestampsFixedRate.
type Recorder interface {
	Recording() bool
}

// resolveAuto picks the automatic Timestamps mode for dests.
func (c Config) resolveAuto(dests []Destination) Config {
	offline := len(dests) > 0
	for _, d := range dests {
		if r, ok := d.(Recorder); !ok || !r.Recording() {
			offline = false
		}
	}
	if c.Timestamps == TimestampsAuto {
		c.Timestamps = TimestampsPaced
		if offline {
			c.Timestamps = TimestampsFixedRate
		}
	}
	return c
}

// Clock is the time source.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Name == "" {
		c.Name = "SkyLine"
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.WarmupFrames == 0 {
		c.WarmupFrames = DefaultWarmupFrames
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.PutWait == 0 {
		c.PutWait = DefaultPutWait
	}
	if c.DestinationQueue == 0 {
		c.DestinationQueue = DefaultDestinationQueue
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.Encoder.KeyframeInterval == 0 {
		c.Encoder.KeyframeInterval = DefaultKeyframeInterval
	}
	if c.Encoder.Preset == "" {
		c.Encoder.Preset = DefaultPreset
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.QueueSize < 1 || c.QueueSize > 1000:
		return configErr("QueueSize %d: want 1..1000", c.QueueSize)
	case c.WarmupFrames < 2:
		return configErr("WarmupFrames %d: want at least 2 (fps is measured between frames)", c.WarmupFrames)
	case c.Drop < DropNone || c.Drop > DropOldest:
		return configErr("unknown Drop policy %d", c.Drop)
	case c.Timestamps < TimestampsAuto || c.Timestamps > TimestampsSteady:
		return configErr("unknown Timestamps mode %d", c.Timestamps)
	case c.PutWait < 0:
		return configErr("negative PutWait")
	case c.DestinationQueue < 1 || c.DestinationQueue > 100000:
		return configErr("DestinationQueue %d: want 1..100000", c.DestinationQueue)
	case c.RetryMin < 0 || c.RetryMax < c.RetryMin:
		return configErr("RetryMin %v / RetryMax %v: want 0 <= RetryMin <= RetryMax", c.RetryMin, c.RetryMax)
	case c.DrainTimeout < 0 || c.StartTimeout < 0:
		return configErr("negative DrainTimeout or StartTimeout")
	case c.Encoder.Bitrate < 0 || c.Encoder.Bitrate > 1_000_000:
		return configErr("Encoder.Bitrate %d kbit/s: want 1..1000000 or 0 for automatic", c.Encoder.Bitrate)
	case c.Encoder.KeyframeInterval < 0:
		return configErr("negative Encoder.KeyframeInterval")
	}
	if c.Encoder.Element != "" && !isIdent(c.Encoder.Element) {
		return configErr("Encoder.Element %q is not an element name", c.Encoder.Element)
	}
	switch c.Encoder.Profile {
	case "", "baseline", "constrained-baseline", "main", "high":
	default:
		return configErr("Encoder.Profile %q: want baseline, constrained-baseline, main or high", c.Encoder.Profile)
	}
	for k := range c.Encoder.Properties {
		if !isIdent(k) {
			return configErr("Encoder.Properties: %q is not a property name", k)
		}
	}
	return nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// bitrate is the effective bitrate in kbit/s for a stream.
func (e Encoder) bitrate(p Params) int {
	if e.Bitrate > 0 {
		return e.Bitrate
	}
	b := int(float64(p.Width*p.Height) * p.FPS * defaultBitsPerPixel / 1000)
	return min(max(b, 300), 20000)
}
