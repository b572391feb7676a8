package skyline

// State is the streaming state of a SkyLine (the original's SkyLine.State).
type State int32

// The five states of SPEC A3.
const (
	// StateStopped: not streaming; Put returns false. The initial state.
	StateStopped State = iota
	// StateStartWarmup: Start was called with an unknown parameter; the next
	// Put begins the warm-up.
	StateStartWarmup
	// StateWarmup: frames are measured (fps, size) and discarded.
	StateWarmup
	// StateStreaming: frames go to the pipeline.
	StateStreaming
	// StateError: the pipeline could not open or failed; Put returns false
	// and logs a warning at most once a minute. Start or Stop leave it.
	StateError
)

func (s State) String() string {
	switch s {
	case StateStopped:
		return "STOPPED"
	case StateStartWarmup:
		return "START_WARMUP"
	case StateWarmup:
		return "WARMUP"
	case StateStreaming:
		return "STREAMING"
	case StateError:
		return "ERROR"
	}
	return "UNKNOWN"
}
