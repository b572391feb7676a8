package rtsp

import (
	"time"

	"github.com/bluenviron/gortsplib/v5"
)

// DefaultHoldTimeout is how long a DESCRIBE or SETUP that arrives before the
// stream's first picture waits for it (ServerConfig.HoldTimeout): long
// enough for a 100-frame warm-up at 15 fps (6.7 s) and the encoder's start,
// shorter than GStreamer rtspsrc's 20 s tcp-timeout, so the player sees our
// status rather than its own timeout.
const DefaultHoldTimeout = 10 * time.Second

// readyLocked is a channel closed when the stream has a ServerStream (its
// first keyframe was described), made on demand. s.mu must be held.
func (s *Stream) readyLocked() chan struct{} {
	if s.ready == nil {
		s.ready = make(chan struct{})
	}
	return s.ready
}

// signalReadyLocked wakes the requests held for the first picture.
func (s *Stream) signalReadyLocked() {
	if s.ready != nil {
		close(s.ready)
		s.ready = nil
	}
}

// holdServerStream is serverStream, but a request that arrives before the
// first picture waits for it up to ServerConfig.HoldTimeout (or until the
// server closes or the stream is removed), so that a player started
// together with the stream plays instead of failing (gst-rtsp-server holds
// a DESCRIBE until its media is prepared, too).
func (s *Stream) holdServerStream(closing <-chan struct{}) (*gortsplib.ServerStream, string) {
	deadline := time.NewTimer(s.srv.cfg.HoldTimeout)
	defer deadline.Stop()
	counted := false
	for {
		s.mu.Lock()
		if s.removed || s.ss != nil {
			s.mu.Unlock()
			return s.serverStream()
		}
		ready := s.readyLocked()
		s.mu.Unlock()
		if !counted {
			counted = true
			s.held.Add(1)
		}
		select {
		case <-ready:
		case <-closing:
			return nil, "server closing"
		case <-deadline.C:
			ss, why := s.serverStream()
			if ss == nil {
				why += " after waiting " + s.srv.cfg.HoldTimeout.String()
			}
			return ss, why
		}
	}
}
