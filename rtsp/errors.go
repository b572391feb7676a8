package rtsp

import "errors"

// Sentinel errors. Every error this package returns wraps one of them, so
// callers can test with errors.Is.
var (
	// ErrInvalidConfig: a ServerConfig or StreamOptions field is wrong.
	ErrInvalidConfig = errors.New("rtsp: invalid configuration")
	// ErrAddressInUse: a port the server needs is taken by another program.
	ErrAddressInUse = errors.New("rtsp: address already in use")
	// ErrListen: the server cannot listen for another reason.
	ErrListen = errors.New("rtsp: cannot listen")
	// ErrTLS: the TLS certificate or key cannot be loaded.
	ErrTLS = errors.New("rtsp: TLS configuration")
	// ErrInvalidPath: a stream path is empty or has characters a URL path
	// cannot carry.
	ErrInvalidPath = errors.New("rtsp: invalid stream path")
	// ErrStreamExists: AddStream at a path already served.
	ErrStreamExists = errors.New("rtsp: a stream already exists at this path")
	// ErrStreamNotFound: no stream at this path.
	ErrStreamNotFound = errors.New("rtsp: no stream at this path")
	// ErrStreamRemoved: the stream was removed from its server.
	ErrStreamRemoved = errors.New("rtsp: stream removed")
	// ErrStreamBusy: a second SkyLine tried to open a stream already fed by
	// another one.
	ErrStreamBusy = errors.New("rtsp: stream already fed by a SkyLine")
	// ErrRunning: Start on a server that is already running.
	ErrRunning = errors.New("rtsp: server already running")
	// ErrServerFailed: the running server stopped serving by itself (see
	// Server.Failed).
	ErrServerFailed = errors.New("rtsp: server stopped serving")
	// ErrNotRunning: the server is not started.
	ErrNotRunning = errors.New("rtsp: server not running")
)
