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
	// ErrClosed: the SkyLine was closed.
	ErrClosed = errors.New("skyline: closed")
)

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
