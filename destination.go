package skyline

import (
	"time"
)

// Destination is where the encoded stream goes. Every destination of a
// SkyLine shares its one encode. A destination is either a Receiver
// (Go code that takes encoded access units: the RTSP server, the native
// KVS client) or a GstDestination (a GStreamer branch: files, kvssink,
// RTMP, any sink).
type Destination interface {
	// Name identifies the destination in logs, errors, events, metrics
	// and Stats, so it never holds a secret (see RedactURL, RedactLaunch).
	// A destination whose settings hold secrets implements SecretHolder:
	// they are then masked in every error and event about it.
	Name() string
}

// Receiver is a destination implemented in Go.
//
// Its methods are called from the destination's own goroutine (the
// outlet), never two at a time and never under a SkyLine lock: a slow
// Receiver delays only itself. The outlet owns its failure handling for
// every kind of destination: when Open or WriteAccessUnit returns an error
// (or panics) the destination is marked down (Stats Up=false), reported
// (EventDestinationDown, EventDestinationRetrying), Closed, and reopened
// with exponential backoff (Config.RetryMin..RetryMax); it then resumes at
// a keyframe (EventDestinationRecovered); it backs off ever longer until it
// has delivered for 5 s. Access units it misses meanwhile are counted in
// its Lost. A Receiver must not call the SkyLine's Stop or Close from its
// own methods: the session would wait for the call to return, and detach
// the Receiver after DrainTimeout.
type Receiver interface {
	Destination
	// Open is called when a streaming session starts, and again to reopen
	// the destination after a failure. An error (wrapped in ErrDestination
	// and reported) leaves it down until the next attempt.
	Open(info StreamInfo) error
	// WriteAccessUnit hands over one encoded picture. nil means the
	// destination took it (Stats Written); an error means it did not and
	// the destination is failed (Lost, then Close and a later Open). The
	// first access unit after each Open is a keyframe. Past
	// Config.DestinationQueue waiting access units the excess is dropped
	// (Lost) and delivery resumes at a keyframe. The AccessUnit is shared by
	// all destinations and must not be modified; it may be kept.
	WriteAccessUnit(au *AccessUnit) error
	// Close is called when the session ends (after the last access unit,
	// within Config.DrainTimeout, else the destination is detached and
	// closed when its call returns) and after a failure.
	Close()
}

// DeliveryReporter is an optional interface of a Receiver that delivers
// after WriteAccessUnit returns (the native KVS client buffers fragments
// and sends them on a connection of its own, and retries by itself). Stats
// shows the destination Up only while Connected, and adds Lost (access
// units it gave up after taking them) to the outlet's own count. Its
// outlet reports it like any failing destination: EventDestinationDown
// when it is not Connected with an Err, EventDestinationRecovered when it
// is Connected again (polled every 100 ms; it is not closed and reopened).
type DeliveryReporter interface {
	DeliveryStatus() DeliveryStatus
}

// DeliveryStatus is what a DeliveryReporter reports.
type DeliveryStatus struct {
	// Connected: the destination can deliver now.
	Connected bool
	// Lost: access units taken by WriteAccessUnit and later given up,
	// since the destination was created.
	Lost uint64
	// Err: why it cannot deliver (nil while Connected, or when it is
	// merely idle).
	Err error
}

// GstDestination is a destination implemented as a GStreamer branch.
type GstDestination interface {
	Destination
	// Launch is the branch in gst-launch syntax. It runs in a pipeline of
	// its own and receives parsed H.264 (avc or byte-stream as its first
	// element asks), e.g. "mp4mux ! filesink location=out.mp4". When it
	// fails it is torn down, reported and restarted with backoff.
	Launch() string
	// Elements lists the elements the branch needs (checked by New).
	Elements() []string
}

// StreamInfo describes a streaming session to a Receiver.
type StreamInfo struct {
	Width, Height int
	FPS           float64
	// Start is the wall-clock time of PTS 0.
	Start time.Time
	// RequestKeyframe asks the encoder for a keyframe as soon as possible
	// (for example when a viewer joins). Cheap and safe to call often.
	RequestKeyframe func()
	// Emit reports an event of the destination (a viewer joined, an
	// acknowledgement, an error) to the program, in order with the
	// SkyLine's own events. Event.Destination is filled in. Never blocks.
	Emit func(Event)
}

// AccessUnit is one encoded H.264 picture in Annex-B byte-stream form.
// Keyframes carry SPS and PPS in-band.
type AccessUnit struct {
	PTS, DTS time.Duration // since StreamInfo.Start
	Keyframe bool
	Data     []byte
}

// NALUs splits the access unit into NAL units (without start codes).
func (au *AccessUnit) NALUs() [][]byte { return SplitAnnexB(au.Data) }

// SplitAnnexB splits an Annex-B byte stream into NAL units.
func SplitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	i := 0
	for i+2 < len(b) {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				for end > start && b[end-1] == 0 {
					end--
				}
				out = append(out, b[start:end])
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}
