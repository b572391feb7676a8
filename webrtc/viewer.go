package webrtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/rtcp"
	pion "github.com/pion/webrtc/v4"

	"github.com/skyline-go/skyline"
)

// viewer is one WHEP session: a peer connection that sends the stream.
type viewer struct {
	st     *Stream
	id     string
	remote string
	pc     *pion.PeerConnection
	track  *pion.TrackLocalStaticRTP
	q      chan *frame
	done   chan struct{} // closed by close
	once   sync.Once
	timer  *time.Timer // handshake timeout
	seq    uint16      // sendLoop only
	start  time.Time

	// under st.vmu
	playing bool // connected: receives frames
	waitKey bool // skip frames until a keyframe
	closed  bool
}

// reservation is an offer's slot under MaxSessions (server) and
// MaxViewers (stream), taken before the offer is held for the first
// picture or negotiated: offers waiting count against the caps, so a
// flood is refused at once and costs no goroutine beyond its request.
type reservation struct {
	st    *Stream
	taken bool // the session owns the slots (newViewer)
	once  sync.Once
}

// reserve takes an offer's slot, or says which cap refuses it (an error
// wrapping errTooMany). Only the offer's goroutine uses the reservation.
func (s *Stream) reserve(remote string) (*reservation, error) {
	srv := s.srv
	s.vmu.Lock()
	if m := srv.cfg.MaxViewers; m > 0 && len(s.viewers)+s.pending >= m {
		s.vmu.Unlock()
		return nil, fmt.Errorf("%w on this stream (MaxViewers %d)", errTooMany, m)
	}
	s.pending++
	s.vmu.Unlock()
	srv.mu.Lock()
	if len(srv.sessions)+srv.pending >= srv.cfg.MaxSessions {
		n, pending := len(srv.sessions), srv.pending
		srv.mu.Unlock()
		s.vmu.Lock()
		s.pending--
		s.vmu.Unlock()
		srv.refusedLog(remote, n, pending)
		return nil, fmt.Errorf("%w on this server (MaxSessions %d)", errTooMany, srv.cfg.MaxSessions)
	}
	srv.pending++
	srv.mu.Unlock()
	return &reservation{st: s}, nil
}

// release gives the slots back unless the session took them (idempotent).
func (r *reservation) release() {
	r.once.Do(func() {
		if r.taken {
			return
		}
		srv := r.st.srv
		srv.mu.Lock()
		srv.pending--
		srv.mu.Unlock()
		r.st.vmu.Lock()
		r.st.pending--
		r.st.vmu.Unlock()
	})
}

// offerErr classifies an error of pion's negotiation: a server short of
// resources (no descriptor, buffer or memory for the session's sockets:
// the viewer may retry) or, otherwise, an offer that cannot be answered.
func offerErr(err error) error {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %v", errResources, err)
		}
	}
	return fmt.Errorf("%w: %v", errBadOffer, err)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newViewer negotiates a WHEP session from an SDP offer and returns the
// viewer and its answer (with every host candidate: no trickle needed).
// The offer's slot (reserve) becomes the session's; the caller releases
// it in every case (a no-op once the session has it).
func (s *Stream) newViewer(ctx context.Context, offer, remote string, slot *reservation) (*viewer, string, error) {
	srv := s.srv
	srv.mu.RLock()
	api, running := srv.api, srv.running
	srv.mu.RUnlock()
	if !running || api == nil {
		return nil, "", errNotServing
	}
	if err := s.check(); err != nil {
		return nil, "", err
	}
	if !strings.Contains(strings.ToUpper(offer), "H264/90000") {
		return nil, "", fmt.Errorf("%w: the offer has no H.264 video", errBadOffer)
	}
	// The answer must label the stream with a profile the viewer decodes
	// (a Constrained-Baseline-only offer, as Firefox may send, answered
	// with its own label while the stream is High shows black video).
	label := "42e01f" // before the first keyframe: the in-band SPS tells
	if sp := s.streamProfile(); sp != "" {
		var err error
		if label, err = chooseProfile(offeredH264(offer), sp); err != nil {
			return nil, "", err
		}
	}
	var ice []pion.ICEServer
	for _, is := range srv.cfg.ICEServers {
		ice = append(ice, pion.ICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Password})
	}
	pc, err := api.NewPeerConnection(pion.Configuration{ICEServers: ice})
	if err != nil {
		return nil, "", fmt.Errorf("webrtc: new peer connection: %w", err)
	}
	v := &viewer{st: s, id: newID(), remote: remote, pc: pc, q: make(chan *frame, srv.cfg.ViewerQueue),
		done: make(chan struct{}), start: time.Now()}
	fail := func(err error) (*viewer, string, error) {
		_ = pc.Close()
		return nil, "", err
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(offerErr(err))
	}
	v.track, err = pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: h264Fmtp(label)}, "video", "skyline")
	if err != nil {
		return fail(fmt.Errorf("webrtc: new track: %w", err))
	}
	sender, err := pc.AddTrack(v.track)
	if err != nil {
		return fail(offerErr(err))
	}
	if codec, ok := answerCodec(label); ok && s.streamProfile() != "" {
		for _, tr := range pc.GetTransceivers() {
			if tr.Sender() == sender {
				if err := tr.SetCodecPreferences([]pion.RTPCodecParameters{codec}); err != nil {
					return fail(fmt.Errorf("webrtc: codec preferences: %w", err))
				}
			}
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(offerErr(err))
	}
	gathered := pion.GatheringCompletePromise(pc)
	pc.OnConnectionStateChange(v.stateChanged)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(offerErr(err))
	}
	wait := time.NewTimer(10 * time.Second)
	defer wait.Stop()
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-wait.C:
		return fail(errGatherTimer)
	}
	sdp := pc.LocalDescription().SDP
	if !strings.Contains(strings.ToUpper(sdp), "H264/90000") {
		return fail(fmt.Errorf("%w: no H.264 variant of the offer is acceptable", errBadOffer))
	}
	if !strings.Contains(sdp, "a=candidate:") {
		// Every socket failed (a full descriptor table): the viewer could
		// never reach this session.
		return fail(fmt.Errorf("%w: no ICE candidate could be gathered (no socket could be opened)", errResources))
	}

	srv.mu.Lock()
	if !srv.running || srv.api != api {
		srv.mu.Unlock()
		return fail(errNotServing)
	}
	srv.pending-- // the reserved slots become the session's
	srv.sessions[v.id] = v
	srv.wg.Add(2)
	srv.mu.Unlock()
	s.vmu.Lock()
	s.pending--
	s.viewers[v] = struct{}{}
	s.vmu.Unlock()
	slot.taken = true
	if s.check() != nil { // removed meanwhile
		v.close("stream removed")
	}
	go v.sendLoop()
	go v.readRTCP(sender)
	v.timer = time.AfterFunc(srv.cfg.HandshakeTimeout, func() {
		s.vmu.Lock()
		playing := v.playing
		s.vmu.Unlock()
		if !playing {
			v.close("not connected within the handshake timeout")
		}
	})
	s.log.Debug("WHEP session created", "session", v.id, "remote", remote)
	return v, sdp, nil
}

// stateChanged follows the peer connection's state.
func (v *viewer) stateChanged(state pion.PeerConnectionState) {
	s := v.st
	switch state {
	case pion.PeerConnectionStateConnected:
		s.vmu.Lock()
		if v.closed {
			s.vmu.Unlock()
			return
		}
		first := !v.playing
		v.playing, v.waitKey = true, true
		s.vmu.Unlock()
		if first {
			s.viewersTotal.Add(1)
			s.log.Info("viewer playing", "remote", v.remote, "session", v.id, "viewers", s.Viewers(),
				"setup", time.Since(v.start).Round(time.Millisecond))
			s.emit(skyline.Event{Kind: skyline.EventViewerJoined, Viewer: v.remote})
		}
		s.requestKeyframe()
	case pion.PeerConnectionStateFailed:
		v.close("connection failed")
	case pion.PeerConnectionStateClosed:
		v.close("connection closed")
	}
}

// close ends the session (idempotent): the viewer leaves the fan-out and
// its peer connection is closed in the background.
func (v *viewer) close(reason string) {
	v.once.Do(func() {
		s, srv := v.st, v.st.srv
		s.vmu.Lock()
		wasPlaying := v.playing
		v.closed, v.playing = true, false
		delete(s.viewers, v)
		s.vmu.Unlock()
		srv.mu.Lock()
		registered := srv.sessions[v.id] == v
		delete(srv.sessions, v.id)
		if registered {
			srv.wg.Add(1) // before done is closed, so that Close's Wait sees it
		}
		srv.mu.Unlock()
		if v.timer != nil {
			v.timer.Stop()
		}
		close(v.done)
		if registered {
			go func() {
				defer srv.wg.Done()
				_ = v.pc.Close()
			}()
		} else {
			_ = v.pc.Close()
		}
		if wasPlaying {
			s.log.Info("viewer left", "remote", v.remote, "session", v.id, "reason", reason, "viewers", s.Viewers())
			s.emit(skyline.Event{Kind: skyline.EventViewerLeft, Viewer: v.remote, Detail: reason})
		} else {
			s.log.Debug("WHEP session ended before connecting", "remote", v.remote, "session", v.id, "reason", reason)
		}
	})
}

// sendLoop writes the viewer's queued frames to its track, giving them the
// viewer's own sequence numbers.
func (v *viewer) sendLoop() {
	defer v.st.srv.wg.Done()
	for {
		select {
		case <-v.done:
			return
		case f := <-v.q:
			for i := range f.pkts {
				p := f.pkts[i]
				p.SequenceNumber = v.seq
				v.seq++
				if err := v.track.WriteRTP(&p); err != nil && errors.Is(err, io.ErrClosedPipe) {
					return
				}
			}
		}
	}
}

// readRTCP reads the viewer's RTCP (which also feeds the interceptors:
// NACK retransmissions, reports) and asks for a keyframe on PLI and FIR.
func (v *viewer) readRTCP(sender *pion.RTPSender) {
	defer v.st.srv.wg.Done()
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				v.st.keyRequests.Add(1)
				v.st.requestKeyframe()
			}
		}
	}
}
