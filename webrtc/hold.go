package webrtc

import (
	"context"
	"fmt"
	"strings"
	"time"

	pion "github.com/pion/webrtc/v4"
)

// DefaultHoldTimeout is how long a WHEP offer that arrives before the
// stream's first picture waits for it (ServerConfig.HoldTimeout): long
// enough for a 100-frame warm-up at 15 fps (6.7 s) and the encoder's start.
const DefaultHoldTimeout = 10 * time.Second

// signalReadyLocked wakes the offers held for the first picture. s.mu must
// be held.
func (s *Stream) signalReadyLocked() {
	if s.ready != nil {
		close(s.ready)
		s.ready = nil
	}
}

// hold waits until the stream has seen its first keyframe (so the answer
// names the H.264 profile the stream really has), up to d, the request's
// end or the stream's removal. It returns "" when the stream has a
// picture, else why not.
func (s *Stream) hold(ctx context.Context, d time.Duration) string {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	counted := false
	for {
		s.mu.Lock()
		switch {
		case s.removed, s.profile != "":
			s.mu.Unlock()
			return ""
		}
		if s.ready == nil {
			s.ready = make(chan struct{})
		}
		ready, open := s.ready, s.open
		s.mu.Unlock()
		if !counted {
			counted = true
			s.held.Add(1)
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return "request ended"
		case <-deadline.C:
			if open {
				return "stream starting, no picture yet after waiting " + d.String() + ", retry shortly"
			}
			return "stream not started, no picture yet after waiting " + d.String() + ", retry shortly"
		}
	}
}

// checkOffer refuses, before any hold, an offer that could never be
// answered: one that does not parse as SDP, has no H.264 video, or lacks
// the ICE credentials or DTLS fingerprint every WebRTC offer carries
// (RFC 8839, RFC 8842).
func checkOffer(offer string) error {
	desc := pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}
	d, err := desc.Unmarshal()
	if err != nil {
		return fmt.Errorf("%w: %v", errBadOffer, err)
	}
	if !strings.Contains(strings.ToUpper(offer), "H264/90000") {
		return fmt.Errorf("%w: the offer has no H.264 video", errBadOffer)
	}
	_, ufrag := d.Attribute("ice-ufrag")
	_, finger := d.Attribute("fingerprint")
	for _, m := range d.MediaDescriptions {
		_, u := m.Attribute("ice-ufrag")
		_, f := m.Attribute("fingerprint")
		ufrag, finger = ufrag || u, finger || f
	}
	if !ufrag || !finger {
		return fmt.Errorf("%w: the offer has no ICE credentials or DTLS fingerprint", errBadOffer)
	}
	return nil
}
