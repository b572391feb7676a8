// Package feed links a served stream (RTSP, WebRTC) back to the SkyLine
// session that feeds it: keyframe requests and events, callable from any
// goroutine (viewer callbacks), harmless when no session is open.
package feed

import (
	"sync"

	"github.com/skyline-go/skyline"
)

// Feed is the current session's callbacks. The zero value has none.
type Feed struct {
	mu   sync.Mutex // also serialises RequestKeyframe with Detach
	key  func()
	emit func(skyline.Event)
}

// Attach takes the callbacks of a session that opened the stream.
func (f *Feed) Attach(info skyline.StreamInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.key, f.emit = info.RequestKeyframe, info.Emit
}

// Detach forgets them: the session ended.
func (f *Feed) Detach() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.key, f.emit = nil, nil
}

// RequestKeyframe asks the session's encoder for a keyframe, if any.
func (f *Feed) RequestKeyframe() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.key != nil {
		f.key()
	}
}

// Emit reports an event to the session's program, if any.
func (f *Feed) Emit(e skyline.Event) {
	f.mu.Lock()
	fn := f.emit
	f.mu.Unlock()
	if fn != nil {
		fn(e)
	}
}
