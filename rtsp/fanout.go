package rtsp

import (
	"errors"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/pion/rtp"
)

// fanOutLocked writes the packets of one access unit to every playing
// viewer's session (each has a bounded write queue; a full one drops the
// packet, counted). A viewer that has just started playing receives
// nothing before its first keyframe, so its first picture is a clean one,
// never a picture decoded without its references. Multicast viewers share
// one group: the packets go once, written to their own ServerStream (see
// multicastStream), and are not held back for a keyframe. s.mu must be
// held.
func (s *Stream) fanOutLocked(pkts []*rtp.Packet, key bool, at time.Time) {
	s.vmu.Lock()
	targets := s.targets[:0]
	multicast := false
	for v := range s.viewers {
		switch {
		case v.multicast:
			multicast = multicast || v.playing && !v.paused && s.mss != nil && v.ss == s.mss
			continue
		case !v.playing || v.paused || v.ss != s.ss: // not yet, paused, or of a stream that ended
			continue
		case v.waitKey:
			if !key {
				continue
			}
			v.waitKey = false
		}
		targets = append(targets, v)
	}
	s.vmu.Unlock()
	if multicast {
		for _, p := range pkts {
			if err := s.mss.WritePacketRTPWithNTP(s.media, p, at); err != nil {
				break // the stream is closing
			}
		}
	}
	for _, v := range targets {
		for _, p := range pkts {
			err := v.sess.WritePacketRTPWithNTP(s.media, p, at)
			if errors.As(err, new(liberrors.ErrServerWriteQueueFull)) {
				v.droppedPacket()
			} else if err != nil {
				break // the session is closing
			}
		}
	}
	clear(targets)
	s.targets = targets
}
