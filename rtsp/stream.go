package rtsp

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

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
	// it plays this offline card, and its viewers stay connected; the live
	// stream resumes at its next keyframe in the same RTP session. Default
	// nil: no card, requests wait for the first picture
	// (ServerConfig.HoldTimeout).
	Offline *skyline.OfflineCard
}

// String describes the options without the password.
func (o StreamOptions) String() string {
	pass := ""
	if o.Pass != "" {
		pass = "***"
	}
	return fmt.Sprintf("rtsp.StreamOptions{User:%q Pass:%q Public:%v Offline:%v}", o.User, pass, o.Public, o.Offline != nil)
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
	if o.Offline != nil {
		if err := o.Offline.Validate(); err != nil {
			return fmt.Errorf("%w: StreamOptions: %v", ErrInvalidConfig, err)
		}
	}
	return nil
}

// StreamStats are a stream's counters since AddStream.
type StreamStats struct {
	// Viewers playing now.
	Viewers int
	// ViewersTotal: viewers that started playing.
	ViewersTotal uint64
	// AccessUnits written to the viewers (one per encoded picture).
	AccessUnits uint64
	// Packets: RTP packets sent to the fan-out (once per packet, whatever
	// the number of viewers).
	Packets uint64
	// PacketsDropped: RTP packets not delivered to a viewer because its
	// write queue was full (one per packet and slow viewer).
	PacketsDropped uint64
	// SlowViewersDisconnected: viewers disconnected because their queue
	// overflowed for longer than ServerConfig.SlowViewerTimeout, or a write
	// to them blocked for ServerConfig.WriteTimeout.
	SlowViewersDisconnected uint64
	// HeldRequests: DESCRIBE and SETUP requests that arrived before the
	// first picture and waited for it (ServerConfig.HoldTimeout).
	HeldRequests uint64
}

// Stream is one path of a Server. It implements skyline.Receiver: give it
// to skyline.New (one SkyLine per Stream), or use NewSkyLine.
type Stream struct {
	srv  *Server
	path string
	opts StreamOptions
	log  *slog.Logger

	mu       sync.Mutex // guards the fields below
	removed  bool
	open     bool
	info     skyline.StreamInfo
	ss       *gortsplib.ServerStream // nil until the first keyframe
	mss      *gortsplib.ServerStream // multicast viewers' stream (see multicastStream), or nil
	media    *description.Media
	enc      *rtph264.Encoder
	sps, pps []byte
	width    int
	height   int
	timeline rtptime.Timeline // capture times to RTP time, from the first access unit ss served
	tsBase   uint32
	warned   bool
	ready    chan struct{} // closed at the first picture (see hold.go)

	feed feed.Feed    // the session feeding the stream: keyframe requests, events
	card *card.Source // the offline card, or nil (StreamOptions.Offline)
	live bool         // (under mu) the open session's first keyframe went out

	vmu     sync.Mutex // guards viewers and the viewer structs
	viewers map[*viewer]struct{}
	targets []*viewer // fanOutLocked's scratch list (under mu)

	viewersTotal atomic.Uint64
	aus          atomic.Uint64
	packets      atomic.Uint64
	dropped      atomic.Uint64
	kicked       atomic.Uint64
	held         atomic.Uint64
}

// viewer is one RTSP session set up on a stream (its ServerSession's user
// data).
type viewer struct {
	st         *Stream
	sess       *gortsplib.ServerSession
	addr       string                  // the viewer's address (host:port of its connection at SETUP)
	ss         *gortsplib.ServerStream // the stream it was set up with
	playing    bool
	waitKey    bool // receives nothing until a keyframe (see fanOutLocked)
	multicast  bool
	pendingKey bool
	paused     bool // PAUSE received: receives nothing until its next PLAY
	firstDrop  time.Time
	lastDrop   time.Time
	kicked     bool
}

func newStream(srv *Server, path string, opts StreamOptions) *Stream {
	s := &Stream{srv: srv, path: path, opts: opts, viewers: map[*viewer]struct{}{},
		log: srv.log.With(slog.String("path", path))}
	if opts.Offline != nil {
		s.card = card.New(*opts.Offline, path, s.log, s.writeCard, s.watched)
		s.card.Show(card.Waiting, 0, 0)
	}
	return s
}

// Name is "rtsp:" followed by the path (a skyline.Destination name).
func (s *Stream) Name() string { return "rtsp:" + s.path }

// Path is the stream's mount path, with its leading "/".
func (s *Stream) Path() string { return s.path }

// URL is the stream's URL, as listed by Server.URLs.
func (s *Stream) URL() string {
	s.srv.mu.RLock()
	defer s.srv.mu.RUnlock()
	return s.srv.urlLocked(s.path)
}

// Viewers is the number of viewers playing now.
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
	return StreamStats{
		Viewers:                 s.Viewers(),
		ViewersTotal:            s.viewersTotal.Load(),
		AccessUnits:             s.aus.Load(),
		Packets:                 s.packets.Load(),
		PacketsDropped:          s.dropped.Load(),
		SlowViewersDisconnected: s.kicked.Load(),
		HeldRequests:            s.held.Load(),
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

// Open implements skyline.Receiver. A new picture size ends the sessions of
// the current viewers (they reconnect and get the new SDP); with the same
// size they stay connected.
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
	// A new size ends the viewers' sessions now, so they reconnect and get
	// the new SDP; with the offline card, at the first picture of the new
	// size (the card's, which follows the stream's size), not twice.
	if s.ss != nil && s.card == nil && (info.Width != s.width || info.Height != s.height) {
		s.log.Info("picture size changed: ending viewer sessions so they reconnect",
			"from", fmt.Sprintf("%dx%d", s.width, s.height), "to", fmt.Sprintf("%dx%d", info.Width, info.Height))
		s.closeStreamLocked()
	}
	s.open, s.info, s.live = true, info, false
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

// endOfAccessUnit is an access unit delimiter (H.264 7.3.2.4: NAL unit
// type 9, primary_pic_type 7 "any slice type", then the RBSP stop bit) sent
// after the last slice of every access unit, in the access unit's last RTP
// packet (same timestamp, marker bit set).
//
// Why: FFmpeg-based players (ffmpeg, ffplay, OpenCV's FFmpeg backend, VLC's
// avcodec path) depacketise RTP H.264 into a byte stream and cut it into
// pictures with their H.264 parser (libavformat/rtpdec_h264.c sets
// need_parsing = AVSTREAM_PARSE_FULL; the marker bit is not used). That
// parser (libavcodec/h264_parser.c, h264_find_frame_end) ends a picture only
// when it sees the start of the next one: an SEI, SPS, PPS or access unit
// delimiter NAL unit, or a slice with first_mb_in_slice 0. Without this NAL
// unit every picture waits one frame interval (33 ms at 30 fps, 1 s at
// 1 fps) for the next access unit, and a late joiner's first keyframe is
// held until the picture after it arrives. With it the parser ends the
// picture as soon as its last packet arrives. The delimiter it leaves in the
// parser's buffer begins the next picture, where H.264 wants it (7.4.1.2.3).
// RTP-aware depacketisers (GStreamer rtph264depay, gortsplib) cut access
// units at the marker bit and pass the trailing delimiter to the decoder,
// which ignores it (tested with avdec_h264 behind rtph264depay, h264parse
// and decodebin).
var endOfAccessUnit = []byte{byte(h264.NALUTypeAccessUnitDelimiter), 0xf0}

// WriteAccessUnit implements skyline.Receiver: it packetises the access
// unit, ended by endOfAccessUnit, and queues the packets to every viewer.
// It never blocks on a viewer.
func (s *Stream) WriteAccessUnit(au *skyline.AccessUnit) error {
	if au == nil || len(au.Data) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed || !s.open {
		return nil
	}
	if s.card != nil && !s.live {
		if !au.Keyframe {
			return nil // the card plays until the live stream's keyframe
		}
		s.live = true
		s.card.Hide()
	}
	s.writeLocked(au, s.info.Start.Add(au.PTS), rtptime.Source{Start: s.info.Start})
	return nil
}

// writeCard writes an access unit of the offline card, captured at at,
// while the stream has no live picture.
func (s *Stream) writeCard(au *skyline.AccessUnit, at time.Time) {
	if au == nil || len(au.Data) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed || s.live {
		return
	}
	s.writeLocked(au, at, rtptime.Source{Card: true})
}

// writeLocked describes, packetises and fans out one access unit of src
// captured at the wall-clock time at.
func (s *Stream) writeLocked(au *skyline.AccessUnit, at time.Time, src rtptime.Source) {
	var nalus [][]byte
	var sps, pps []byte
	for _, n := range skyline.SplitAnnexB(au.Data) {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter:
			continue
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		}
		nalus = append(nalus, n)
	}
	if len(nalus) == 0 {
		return
	}
	if s.ss == nil || sps != nil && !bytes.Equal(sps, s.sps) || pps != nil && !bytes.Equal(pps, s.pps) {
		if sps == nil || pps == nil || !au.Keyframe {
			return // nothing to describe yet, or wait for a complete keyframe
		}
		if !s.configureLocked(sps, pps, at) {
			return
		}
	}
	pkts, err := s.enc.Encode(append(nalus, endOfAccessUnit))
	if err != nil {
		s.log.Warn("cannot packetise an access unit", "error", err)
		return
	}
	// The timeline shifts a source whose capture times lie behind the last
	// timestamp sent (rtptime.Timeline); the NTP time of the RTCP sender
	// reports follows it.
	ts := s.tsBase + uint32(s.timeline.Ticks(at, src, time.Now()))
	for _, p := range pkts {
		p.Timestamp = ts
	}
	s.fanOutLocked(pkts, au.Keyframe, at.Add(s.timeline.Shift()))
	s.aus.Add(1)
	s.packets.Add(uint64(len(pkts)))
}

// configureLocked (re)describes the stream from a keyframe's SPS and PPS.
// A new picture size replaces the ServerStream (ending its viewers'
// sessions); other parameter changes are reloaded in place.
func (s *Stream) configureLocked(sps, pps []byte, at time.Time) bool {
	var p h264.SPS
	if err := p.Unmarshal(sps); err != nil {
		if !s.warned {
			s.warned = true
			s.log.Warn("cannot parse the encoder's SPS", "error", err)
		}
		return false
	}
	w, h := p.Width(), p.Height()
	if s.ss != nil && w == s.width && h == s.height {
		s.sps, s.pps = bytes.Clone(sps), bytes.Clone(pps)
		forma := s.media.Formats[0].(*format.H264)
		forma.SPS, forma.PPS = s.sps, s.pps
		s.ss.ReloadDesc()
		if s.mss != nil {
			s.mss.ReloadDesc()
		}
		return true
	}
	if s.ss != nil {
		s.log.Info("picture size changed: ending viewer sessions so they reconnect",
			"from", fmt.Sprintf("%dx%d", s.width, s.height), "to", fmt.Sprintf("%dx%d", w, h))
		s.closeStreamLocked()
	}
	gs := s.srv.current()
	if gs == nil {
		return false // not serving: keep waiting for a keyframe after Start
	}
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: bytes.Clone(sps), PPS: bytes.Clone(pps)}
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	ss := &gortsplib.ServerStream{Server: gs, Desc: &description.Session{Title: "SkyLine", Medias: []*description.Media{media}}}
	if err := ss.Initialize(); err != nil {
		s.log.Warn("cannot create the stream", "error", err)
		return false
	}
	enc, err := forma.CreateEncoder()
	if err != nil {
		ss.Close()
		s.log.Warn("cannot create the RTP packetiser", "error", err)
		return false
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	s.ss, s.media, s.enc = ss, media, enc
	s.sps, s.pps = forma.SPS, forma.PPS
	s.width, s.height = w, h
	s.timeline.Reset(at)
	s.tsBase = binary.BigEndian.Uint32(b[:])
	s.signalReadyLocked()
	s.log.Info("stream ready", "width", w, "height", h)
	return true
}

// multicastStream is the ServerStream a multicast SETUP gets, made at the
// first one: the stream of ss with the same description. gortsplib sends to
// a multicast group only from ServerStream writes (a multicast session has
// no writer of its own: its WritePacketRTP sends nothing), and a
// ServerStream write also goes to each of its unicast readers, which
// fanOutLocked serves one by one (each from its keyframe). So multicast
// viewers get a stream of their own, written whole. ss must be the current
// stream; nil if it is not.
func (s *Stream) multicastStream(ss *gortsplib.ServerStream) *gortsplib.ServerStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss != s.ss || s.ss == nil {
		return nil
	}
	if s.mss == nil {
		mss := &gortsplib.ServerStream{Server: s.ss.Server, Desc: s.ss.Desc}
		if err := mss.Initialize(); err != nil {
			s.log.Warn("cannot create the multicast stream", "error", err)
			return nil
		}
		s.mss = mss
	}
	return s.mss
}

// closeStreamLocked ends every viewer session and forgets the description.
func (s *Stream) closeStreamLocked() {
	if s.ss != nil {
		s.ss.Close()
	}
	if s.mss != nil {
		s.mss.Close()
	}
	s.ss, s.mss, s.media, s.enc, s.sps, s.pps = nil, nil, nil, nil, nil, nil
}

// serverStream is the stream to serve a DESCRIBE or SETUP, or nil and why
// not.
func (s *Stream) serverStream() (*gortsplib.ServerStream, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.removed:
		return nil, "stream removed"
	case s.ss != nil:
		return s.ss, ""
	case s.open:
		return nil, "stream starting, no picture yet"
	}
	return nil, "stream not started, no picture yet"
}

// serverStarted is called when the server (re)starts.
func (s *Stream) serverStarted() { s.requestKeyframe() }

// detach forgets the ServerStream of a server that is closing.
func (s *Stream) detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeStreamLocked()
}

// remove ends the stream for good.
func (s *Stream) remove() {
	s.mu.Lock()
	s.removed = true
	s.closeStreamLocked()
	s.signalReadyLocked()
	s.mu.Unlock()
	s.feed.Detach()
	if s.card != nil {
		s.card.Close()
	}
}

// viewerOf is the viewer of a session, or nil.
func viewerOf(sess *gortsplib.ServerSession) *viewer {
	if sess == nil {
		return nil
	}
	v, _ := sess.UserData().(*viewer)
	return v
}

// addViewer attaches a viewer to a session at SETUP. Its address is taken
// now: when the session closes it may have no connection left to ask.
// Its session was counted against the address's cap (sessionCap.take).
func (s *Stream) addViewer(sess *gortsplib.ServerSession, addr string, ss *gortsplib.ServerStream) {
	v := &viewer{st: s, sess: sess, ss: ss, addr: addr}
	sess.SetUserData(v)
	s.vmu.Lock()
	s.viewers[v] = struct{}{}
	s.vmu.Unlock()
}

// markPlay notes a PLAY request; the keyframe is requested once the session
// is active (see playing).
func (v *viewer) markPlay() {
	v.st.vmu.Lock()
	v.pendingKey = true
	v.st.vmu.Unlock()
}

// started is called after a successful PLAY response: the viewer now
// receives packets, so a keyframe is requested for it.
func (v *viewer) started() {
	s := v.st
	s.vmu.Lock()
	if !v.pendingKey {
		s.vmu.Unlock()
		return
	}
	v.pendingKey = false
	first := !v.playing
	if v.paused {
		// Resumed after a PAUSE: the viewer's decoder lacks the pictures
		// sent meanwhile, so it waits for the keyframe requested below.
		v.paused = false
		v.waitKey = !v.multicast
	}
	if first {
		v.waitKey = true
		if tr := v.sess.Transport(); tr != nil && tr.Protocol == gortsplib.ProtocolUDPMulticast {
			v.multicast = true
		}
	}
	v.playing = true
	s.vmu.Unlock()
	if first {
		s.viewersTotal.Add(1)
		s.log.Info("viewer playing", "remote", v.addr, "viewers", s.Viewers())
		s.emit(skyline.Event{Kind: skyline.EventViewerJoined, Viewer: v.addr})
	}
	s.requestKeyframe()
}

// pause is called after a PAUSE: the session sends nothing until the next
// PLAY (RFC 2326 10.6), and the viewer stays counted. ffplay, for one,
// sends PAUSE when its user pauses and then stops reading: answered 501
// and still fed, it was disconnected as a slow viewer.
func (v *viewer) pause() {
	v.st.vmu.Lock()
	v.paused = true
	v.pendingKey = false
	v.st.vmu.Unlock()
}

// gone is called when the session closes.
func (v *viewer) gone(err error) {
	s := v.st
	s.vmu.Lock()
	_, ok := s.viewers[v]
	delete(s.viewers, v)
	s.vmu.Unlock()
	if ok {
		s.srv.sessions.release(v.addr)
	}
	if ok && !v.kicked && errors.Is(err, os.ErrDeadlineExceeded) {
		// A write blocked for WriteTimeout: the viewer stopped reading.
		s.kicked.Add(1)
		s.log.Warn("disconnected a viewer that stopped reading", "remote", v.addr,
			"write_timeout", s.srv.cfg.WriteTimeout)
	}
	if ok && v.playing {
		s.log.Info("viewer left", "remote", v.addr, "reason", errString(err), "viewers", s.Viewers())
		s.emit(skyline.Event{Kind: skyline.EventViewerLeft, Viewer: v.addr, Detail: errString(err)})
	}
}

// droppedPacket counts a packet lost to a full write queue and disconnects
// a viewer that has been overflowing for too long.
func (v *viewer) droppedPacket() {
	s := v.st
	s.dropped.Add(1)
	now := time.Now()
	s.vmu.Lock()
	if now.Sub(v.lastDrop) > time.Second {
		v.firstDrop = now
	}
	v.lastDrop = now
	kick := !v.kicked && now.Sub(v.firstDrop) >= s.srv.cfg.SlowViewerTimeout
	if kick {
		v.kicked = true
	}
	s.vmu.Unlock()
	if kick {
		s.kicked.Add(1)
		s.log.Warn("disconnecting a viewer that cannot keep up", "remote", v.addr,
			"overflowing_for", s.srv.cfg.SlowViewerTimeout)
		v.sess.Close()
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
