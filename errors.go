package skyline

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error SkyLine returns wraps one of these, so callers
// can test with errors.Is.
var (
	// ErrInvalidFrame: a frame is malformed (nil or short buffer, negative
	// stride or one out of range, bad size, unknown pixel format; see Frame
	// for the limits), or an image has empty, too large or infinite bounds.
	ErrInvalidFrame = errors.New("skyline: invalid frame")
	// ErrInvalidParams: Start was given an impossible fps, width or height.
	ErrInvalidParams = errors.New("skyline: invalid stream parameters")
	// ErrInvalidConfig: Config or a destination's settings are wrong (for
	// example an unknown encoder property).
	ErrInvalidConfig = errors.New("skyline: invalid configuration")
	// ErrMissingElement: a GStreamer element is not installed. The concrete
	// error is *MissingElementsError, which says how to install it.
	ErrMissingElement = errors.New("skyline: missing GStreamer element")
	// ErrPipeline: the GStreamer pipeline could not be built, started or
	// kept running.
	ErrPipeline = errors.New("skyline: pipeline failure")
	// ErrClosed: the SkyLine was closed (every method after Close).
	ErrClosed = errors.New("skyline: closed")
	// ErrTimeout: Start, Stop or Close did not complete within its bound
	// (see the lifecycle section of the package docs); the work goes on in
	// the background and State reports its outcome.
	ErrTimeout = errors.New("skyline: timed out")
	// ErrDestination: a destination failed (its error wraps this one). The
	// others go on; it is retried with backoff.
	ErrDestination = errors.New("skyline: destination failure")

	// ErrNotAccepted is wrapped by every reason Put gives for a frame it
	// did not take in the normal course of streaming (below): nothing is
	// wrong with the frame or the program. errors.Is(err, ErrNotAccepted)
	// tells these apart from ErrInvalidFrame and ErrClosed.
	ErrNotAccepted = errors.New("skyline: frame not accepted")
	// ErrStopped: Put while stopped (call Start).
	ErrStopped error = &refusal{"skyline: not streaming: call Start"}
	// ErrWarmingUp: Put during the warm-up; the frame was measured (fps,
	// size) and discarded, as the original does.
	ErrWarmingUp error = &refusal{"skyline: warming up: frame measured and discarded"}
	// ErrOpening: Put while the pipeline opens (after the warm-up, or while
	// the next encoder candidate is tried); counted in Stats.Dropped.
	ErrOpening error = &refusal{"skyline: pipeline opening: frame refused"}
	// ErrQueueFull: the encoder is behind and Config.QueueSize frames wait
	// (DropNewest); counted in Stats.Dropped.
	ErrQueueFull error = &refusal{"skyline: encoder queue full: frame refused"}
	// ErrStreamFailed: Put in StateError (Err gives the cause; Start again).
	ErrStreamFailed error = &refusal{"skyline: stream failed: call Start (Err gives the cause)"}
)

// refusal is a reason Put did not take a frame; it wraps ErrNotAccepted.
// Each is a fixed value, so refusing a frame never allocates.
type refusal struct{ msg string }

func (r *refusal) Error() string        { return r.msg }
func (r *refusal) Is(target error) bool { return target == ErrNotAccepted }

// MissingElementsError lists the GStreamer elements that are not installed,
// with how to get each.
type MissingElementsError struct {
	Missing []string
}

func (e *MissingElementsError) Error() string {
	var b strings.Builder
	b.WriteString("skyline: missing GStreamer element(s): ")
	b.WriteString(strings.Join(e.Missing, ", "))
	for _, name := range e.Missing {
		fmt.Fprintf(&b, "; %s: %s", name, InstallHint(name))
	}
	return b.String()
}

// Is makes errors.Is(err, ErrMissingElement) true.
func (e *MissingElementsError) Is(target error) bool { return target == ErrMissingElement }

func frameErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidFrame}, a...)...)
}

func paramErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidParams}, a...)...)
}

func configErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
}
