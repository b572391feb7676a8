package webrtc

import "errors"

// Sentinel errors. Every error this package returns wraps one of them, so
// callers can test with errors.Is.
var (
	// ErrInvalidConfig: a ServerConfig or StreamOptions field is wrong.
	ErrInvalidConfig = errors.New("webrtc: invalid configuration")
	// ErrAddressInUse: a port the server needs (HTTP, UDP or TCP) is taken.
	ErrAddressInUse = errors.New("webrtc: address already in use")
	// ErrListen: the server cannot listen for another reason.
	ErrListen = errors.New("webrtc: cannot listen")
	// ErrInvalidPath: a stream path is empty or has characters a URL path
	// cannot carry, or ends with a name the server uses itself.
	ErrInvalidPath = errors.New("webrtc: invalid stream path")
	// ErrStreamExists: AddStream at a path already served.
	ErrStreamExists = errors.New("webrtc: a stream already exists at this path")
	// ErrStreamNotFound: no stream at this path.
	ErrStreamNotFound = errors.New("webrtc: no stream at this path")
	// ErrStreamRemoved: the stream was removed from its server.
	ErrStreamRemoved = errors.New("webrtc: stream removed")
	// ErrStreamBusy: a second SkyLine tried to open a stream already fed by
	// another one.
	ErrStreamBusy = errors.New("webrtc: stream already fed by a SkyLine")
	// ErrRunning: Start on a server that is already running.
	ErrRunning = errors.New("webrtc: server already running")
)
