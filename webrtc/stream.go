package webrtc

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/card"
	"github.com/skyline-go/skyline/internal/feed"
	"github.com/skyline-go/skyline/internal/rtptime"
)

// StreamOptions configure one stream. The zero value is valid: the stream
// uses the server-wide credentials.
type StreamOptions struct {
	// User and Pass, when User is set, replace the server-wide credentials
	// for this path.
	User, Pass string
	// Public serves this path without authentication even when the server
	// requires credentials.
	Public bool
	// Offline, when set, makes the path always available: while it has no
	// live picture (before the first Start, during a warm-up, after Stop)
	// it plays this offline card, and its viewers (the page included) stay
	// connected; the live stream resumes at its next keyframe in the same
	// session. Default nil: no card.
	Offline *skyline.OfflineCard
}

// String describes the options without the password.
func (o StreamOptions) String() string {
	pass := ""
	if o.Pass != "" {
		pass = "***"
	}
	return fmt.Sprintf("webrtc.StreamOptions{User:%q Pass:%q Public:%v Offline:%v}", o.User, pass, o.Public, o.Offline != nil)
}

// LogValue keeps the password out of structured logs.
func (o StreamOptions) LogValue() slog.Value { return slog.StringValue(o.String()) }

func (o StreamOptions) validate() error {
	if o.User == "" && o.Pass != "" {
		return fmt.Errorf("%w: StreamOptions: a password without a User", ErrInvalidConfig)
	}
	if o.Public && o.User != "" {
		return fmt.Errorf("%w: StreamOptions: Public with credentials", ErrInvalidConfig)
	}
	if strings.Contains(o.User, ":") {
		return fmt.Errorf("%w: StreamOptions: User may not contain ':'", ErrInvalidConfig)
	}
	if o.Offline != nil {
		if err := o.Offline.Validate(); err != nil {
			return fmt.Errorf("%w: StreamOptions: %v", ErrInvalidConfig, err)
		}
	}
	return nil
}

// StreamStats are a stream's counters since AddStream.
type StreamStats struct {
	// Viewers whose peer connection is connected now (receiving).
	Viewers int
	// Sessions: WHEP sessions now, connected or still connecting.
	Sessions int
	// ViewersTotal: viewers that connected.
	ViewersTotal uint64
	// AccessUnits packetised (once per encoded picture, whatever the
	// number of viewers).
	AccessUnits uint64
	// AccessUnitsDropped: access units not delivered to a viewer because
	// its queue was full (one per access unit and slow viewer).
	AccessUnitsDropped uint64
	// KeyframeRequests: picture loss indications (PLI) and full intra
	// requests (FIR) received from viewers.
	KeyframeRequests uint64
	// HeldOffers: WHEP offers that arrived before the stream's first
	// keyframe and waited for it (ServerConfig.HoldTimeout).
	HeldOffers uint64
}

// rtpMTU is the RTP packet size (header included) the stream is cut into:
// small enough for any path (TURN, VPN) without IP fragmentation.
const rtpMTU = 1200

// frame is one packetised access unit, shared by the viewers (read only).
type frame struct {
	pkts []rtp.Packet
	key  bool
}

// Stream is one path of a Server. It implements skyline.Receiver: give it
// to skyline.New (one SkyLine per Stream), or use NewSkyLine. The access
// units are packetised once (RTP, H.264 packetization mode 1) and fanned
// out to every viewer through a bounded queue of its own, so a slow viewer
// loses pictures (and resumes at a keyframe) without delaying the others.
type Stream struct {
	srv  *Server
	path string
	opts StreamOptions
	log  *slog.Logger

	mu       sync.Mutex // guards the fields below
	removed  bool
	open     bool
	info     skyline.StreamInfo
	pay      codecs.H264Payloader
	timeline rtptime.Timeline // capture times to RTP time (epoch: StreamInfo.Start of the first session, RTP time tsBase)
	tsBase   uint32
	profile  string // profile-level-id of the last SPS ("" before one)
	width    int
	height   int
	ready    chan struct{} // closed at the first keyframe (see hold.go)

	feed feed.Feed    // the session feeding the stream: keyframe requests, events
	card *card.Source // the offline card, or nil (StreamOptions.Offline)
	live bool         // (under mu) the open session's first keyframe went out

	vmu     sync.Mutex // guards viewers, pending and the viewers' fan-out fields
	viewers map[*viewer]struct{}
	pending int // offers held or being negotiated (each holds a MaxViewers slot)

	viewersTotal atomic.Uint64
	aus          atomic.Uint64
	dropped      atomic.Uint64
	keyRequests  atomic.Uint64
	held         atomic.Uint64
}

func newStream(srv *Server, path string, opts StreamOptions) *Stream {
	var b [4]byte
	_, _ = rand.Read(b[:])
	s := &Stream{srv: srv, path: path, opts: opts, viewers: map[*viewer]struct{}{},
		tsBase: binary.BigEndian.Uint32(b[:]), log: srv.log.With(slog.String("path", path))}
	if opts.Offline != nil {
		s.card = card.New(*opts.Offline, path, s.log, s.writeCard, s.watched)
		s.card.Show(card.Waiting, 0, 0)
	}
	return s
}

// Name is "webrtc:" followed by the path (a skyline.Destination name).
func (s *Stream) Name() string { return "webrtc:" + s.path }

// Path is the stream's path, with its leading "/".
func (s *Stream) Path() string { return s.path }

// URL is the stream's page, as listed by Server.URLs.
func (s *Stream) URL() string {
	s.srv.mu.RLock()
	defer s.srv.mu.RUnlock()
	return s.srv.urlLocked(s.path + "/")
}

// WHEPURL is the stream's WHEP endpoint.
func (s *Stream) WHEPURL() string {
	s.srv.mu.RLock()
	defer s.srv.mu.RUnlock()
	return s.srv.urlLocked(s.path + "/whep")
}

// Viewers is the number of viewers receiving now.
func (s *Stream) Viewers() int {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	n := 0
	for v := range s.viewers {
		if v.playing {
			n++
		}
	}
	return n
}

// watched tells the offline card whether any viewer is set up (see
// card.New): with none, it is not drawn at its frame rate.
func (s *Stream) watched() bool {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	return len(s.viewers) > 0
}

// Stats reads the stream's counters.
func (s *Stream) Stats() StreamStats {
	s.vmu.Lock()
	sessions := len(s.viewers)
	s.vmu.Unlock()
	return StreamStats{
		Viewers:            s.Viewers(),
		Sessions:           sessions,
		ViewersTotal:       s.viewersTotal.Load(),
		AccessUnits:        s.aus.Load(),
		AccessUnitsDropped: s.dropped.Load(),
		KeyframeRequests:   s.keyRequests.Load(),
		HeldOffers:         s.held.Load(),
	}
}

func (s *Stream) credentials() credentials {
	switch {
	case s.opts.Public:
		return credentials{}
	case s.opts.User != "":
		return credentials{s.opts.User, s.opts.Pass}
	}
	return s.srv.credentials()
}

// Open implements skyline.Receiver. Viewers stay connected across sessions
// and picture size changes (the new SPS travels in-band).
func (s *Stream) Open(info skyline.StreamInfo) error {
	s.mu.Lock()
	switch {
	case s.removed:
		s.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrStreamRemoved, s.path)
	case s.open:
		s.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrStreamBusy, s.path)
	}
	if s.timeline.Epoch().IsZero() {
		s.timeline.Reset(info.Start)
	}
	s.open, s.info, s.live = true, info, false
	s.width, s.height = info.Width, info.Height
	s.mu.Unlock()
	if s.card != nil {
		s.card.Show(card.Starting, info.Width, info.Height)
	}
	s.feed.Attach(info)
	return nil
}

// Close implements skyline.Receiver: the SkyLine's session ended. Viewers
// stay connected, waiting for the next session.
func (s *Stream) Close() {
	s.feed.Detach()
	s.mu.Lock()
	s.open, s.live = false, false
	w, h := s.width, s.height
	s.mu.Unlock()
	if s.card != nil {
		s.card.Show(card.Stopped, w, h)
	}
}

// emit reports an event to the feeding SkyLine's program, if one is open.
func (s *Stream) emit(e skyline.Event) { s.feed.Emit(e) }

// requestKeyframe asks the feeding SkyLine for a keyframe, if any, and the
// offline card for its next picture now, if shown.
func (s *Stream) requestKeyframe() {
	s.feed.RequestKeyframe()
	if s.card != nil {
		s.card.Kick()
	}
}

// WriteAccessUnit implements skyline.Receiver: it packetises the access
// unit once and queues it to every connected viewer. It never blocks on a
// viewer.
func (s *Stream) WriteAccessUnit(au *skyline.AccessUnit) error {
	if au == nil || len(au.Data) == 0 {
		return nil
	}
	s.mu.Lock()
	if s.removed || !s.open {
		s.mu.Unlock()
		return nil
	}
	if s.card != nil && !s.live {
		if !au.Keyframe {
			s.mu.Unlock()
			return nil // the card plays until the live stream's keyframe
		}
		s.live = true
		s.card.Hide()
	}
	s.write(au, s.info.Start.Add(au.PTS), rtptime.Source{Start: s.info.Start})
	return nil
}

// writeCard writes an access unit of the offline card, captured at at,
// while the stream has no live picture.
func (s *Stream) writeCard(au *skyline.AccessUnit, at time.Time) {
	if au == nil || len(au.Data) == 0 {
		return
	}
	s.mu.Lock()
	if s.removed || s.live {
		s.mu.Unlock()
		return
	}
	s.write(au, at, rtptime.Source{Card: true})
}

// write packetises an access unit of src captured at at and queues it to
// every connected viewer (never waiting for one). It is called with s.mu
// held and unlocks it.
func (s *Stream) write(au *skyline.AccessUnit, at time.Time, src rtptime.Source) {
	if au.Keyframe {
		for _, n := range skyline.SplitAnnexB(au.Data) {
			if len(n) >= 4 && n[0]&0x1f == 7 {
				// profile_idc, constraint flags and level_idc.
				s.profile = hex.EncodeToString(n[1:4])
				s.signalReadyLocked()
			}
		}
	}
	ts := s.tsBase + uint32(s.timeline.Ticks(at, src, time.Now()))
	payloads := s.pay.Payload(rtpMTU-12, au.Data)
	if len(payloads) == 0 {
		s.mu.Unlock()
		return
	}
	f := &frame{pkts: make([]rtp.Packet, len(payloads)), key: au.Keyframe}
	for i, p := range payloads {
		f.pkts[i] = rtp.Packet{Header: rtp.Header{Version: 2, Timestamp: ts, Marker: i == len(payloads)-1}, Payload: p}
	}
	s.aus.Add(1)

	needKey := false
	s.vmu.Lock()
	for v := range s.viewers {
		if !v.playing {
			continue
		}
		if v.waitKey {
			if !f.key {
				continue
			}
			v.waitKey = false
		}
		select {
		case v.q <- f:
		default:
			// The viewer is behind: drop, and resume it at a keyframe.
			s.dropped.Add(1)
			v.waitKey, needKey = true, true
		}
	}
	s.vmu.Unlock()
	s.mu.Unlock() // held until queued: the card's and the live access units stay in order
	if needKey {
		s.requestKeyframe()
	}
}

// clock is the RTP clock mapping the page uses to measure latency.
type clock struct {
	// Now is the server's wall clock, in Unix milliseconds.
	Now float64 `json:"now"`
	// Epoch is the wall-clock time (Unix ms) of RTP timestamp RTPBase, or
	// 0 before the first session: a picture with RTP timestamp ts was
	// captured (Put) at Epoch + (ts-RTPBase mod 2^32)/90 ms.
	Epoch   float64 `json:"epoch"`
	RTPBase uint32  `json:"rtpBase"`
	Width   int     `json:"width"`
	Height  int     `json:"height"`
	Open    bool    `json:"open"`
}

func (s *Stream) clock() clock {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := clock{RTPBase: s.tsBase, Width: s.width, Height: s.height, Open: s.open}
	if e := s.timeline.Epoch(); !e.IsZero() {
		// RTP time maps to the capture time Epoch + (ts-RTPBase)/90 ms
		// less the timeline's shift (rtptime.Timeline).
		c.Epoch = float64(e.Add(-s.timeline.Shift()).UnixMicro()) / 1000
	}
	c.Now = float64(time.Now().UnixMicro()) / 1000
	return c
}

// streamProfile is the profile-level-id of the stream's last SPS, or ""
// before the first keyframe.
func (s *Stream) streamProfile() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.profile
}

// remove ends the stream for good.
func (s *Stream) remove() {
	s.mu.Lock()
	s.removed = true
	s.signalReadyLocked()
	s.mu.Unlock()
	s.feed.Detach()
	if s.card != nil {
		s.card.Close()
	}
	s.vmu.Lock()
	vs := make([]*viewer, 0, len(s.viewers))
	for v := range s.viewers {
		vs = append(vs, v)
	}
	s.vmu.Unlock()
	for _, v := range vs {
		v.close("stream removed")
	}
}

var (
	errNotServing  = errors.New("the server is not running")
	errTooMany     = errors.New("too many viewers")
	errBadOffer    = errors.New("bad offer")
	errProfile     = errors.New("this viewer cannot decode the stream")
	errRemoved     = errors.New("stream removed")
	errGatherTimer = errors.New("ICE gathering did not complete in time")
	errResources   = errors.New("the server is short of resources for a new session")
)

// check returns errRemoved when the stream was removed.
func (s *Stream) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return errRemoved
	}
	return nil
}
