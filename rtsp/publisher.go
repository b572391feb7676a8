package rtsp

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/skyline-go/skyline"
)

// PublisherConfig configures a Publisher. Zero values are documented
// defaults.
type PublisherConfig struct {
	// URL is where to publish: rtsp://[user:pass@]host:port/path or
	// rtsps://. Required.
	URL string
	// UDP sends RTP over UDP instead of TCP (interleaved, the default).
	UDP bool
	// TLSConfig for rtsps:// (default: system roots).
	TLSConfig *tls.Config
	// Timeout bounds connecting and each request. Default 5 s.
	Timeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff between
	// reconnection attempts. Defaults 500 ms and 30 s.
	RetryMin, RetryMax time.Duration
	// Logger is the parent logger. Default slog.Default().
	Logger *slog.Logger
}

// Publisher publishes a SkyLine's stream to an external RTSP server
// (ANNOUNCE, SETUP, RECORD), like ffmpeg -f rtsp. It is a skyline.Receiver.
// When the server goes away it reports EventDestinationDown and
// EventDestinationRetrying, reconnects with exponential backoff, starts
// again at a keyframe and reports EventDestinationRecovered. Credentials in
// the URL never reach logs or errors.
type Publisher struct {
	cfg      PublisherConfig
	url      string // with credentials
	redacted string
	log      *slog.Logger

	// owned by the destination's goroutine (WriteAccessUnit)
	info      skyline.StreamInfo
	client    *gortsplib.Client
	media     *description.Media
	enc       *rtph264.Encoder
	tsBase    uint32
	dead      atomic.Pointer[deadConn]
	failures  int
	retryAt   time.Time
	wasDown   bool
	connected atomic.Bool

	sent, lost, reconnects atomic.Int64
}

// deadConn records that a connection ended, and which one.
type deadConn struct {
	c   *gortsplib.Client
	err error
}

// PublisherStats are a Publisher's counters.
type PublisherStats struct {
	Connected       bool
	AccessUnitsSent int64
	AccessUnitsLost int64 // while disconnected or waiting for a keyframe
	Reconnections   int64
}

// NewPublisher checks the configuration; it connects when the stream starts.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
		return nil, fmt.Errorf("%w: publish URL %q: want rtsp://host:port/path or rtsps://", ErrInvalidConfig, redact(cfg.URL))
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = skyline.DefaultRetryMin
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = skyline.DefaultRetryMax
	}
	if cfg.Timeout < 0 || cfg.RetryMin < 0 || cfg.RetryMax < cfg.RetryMin {
		return nil, fmt.Errorf("%w: publisher timeouts must be positive and RetryMin <= RetryMax", ErrInvalidConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Publisher{cfg: cfg, url: cfg.URL, redacted: redact(cfg.URL)}
	p.log = cfg.Logger.With(slog.String("component", "rtsp-publisher"), slog.String("url", p.redacted))
	return p, nil
}

// redact hides the password of a URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// Name is "push:" and the URL without its password.
func (p *Publisher) Name() string { return "push:" + p.redacted }

// Stats reads the counters.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{Connected: p.connected.Load(), AccessUnitsSent: p.sent.Load(),
		AccessUnitsLost: p.lost.Load(), Reconnections: p.reconnects.Load()}
}

// Open implements skyline.Receiver.
func (p *Publisher) Open(info skyline.StreamInfo) error {
	p.info = info
	p.failures, p.retryAt = 0, time.Time{}
	return nil
}

// WriteAccessUnit implements skyline.Receiver. It runs on the destination's
// own goroutine: connecting or a slow server delays only this destination.
func (p *Publisher) WriteAccessUnit(au *skyline.AccessUnit) {
	if d := p.dead.Load(); d != nil && d.c == p.client && p.client != nil {
		p.fail(d.err)
	}
	if p.client == nil {
		if time.Now().Before(p.retryAt) {
			p.lost.Add(1)
			return
		}
		if !au.Keyframe {
			p.lost.Add(1)
			p.info.RequestKeyframe()
			return
		}
		if err := p.connect(au); err != nil {
			p.lost.Add(1)
			p.fail(err)
			return
		}
	}
	if err := p.write(au); err != nil {
		p.lost.Add(1)
		p.fail(err)
		return
	}
	p.sent.Add(1)
}

func (p *Publisher) connect(au *skyline.AccessUnit) error {
	var sps, pps []byte
	for _, n := range skyline.SplitAnnexB(au.Data) {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		}
	}
	if sps == nil || pps == nil {
		return errors.New("keyframe without SPS/PPS")
	}
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: bytes.Clone(sps), PPS: bytes.Clone(pps)}
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	desc := &description.Session{Title: "SkyLine", Medias: []*description.Media{media}}
	proto := gortsplib.ProtocolTCP
	if p.cfg.UDP {
		proto = gortsplib.ProtocolUDP
	}
	c := &gortsplib.Client{Protocol: &proto, TLSConfig: p.cfg.TLSConfig,
		ReadTimeout: p.cfg.Timeout, WriteTimeout: p.cfg.Timeout}
	if err := c.StartRecording(p.url, desc); err != nil {
		return err
	}
	enc, err := forma.CreateEncoder()
	if err != nil {
		c.Close()
		return err
	}
	p.client, p.media, p.enc = c, media, enc
	p.tsBase = uint32(time.Now().UnixNano())
	go func() { // learns when this connection dies; ends when it is closed
		err := c.Wait()
		if err == nil {
			err = errors.New("connection closed")
		}
		p.dead.Store(&deadConn{c: c, err: err})
	}()
	p.connected.Store(true)
	if p.wasDown {
		p.reconnects.Add(1)
		p.log.Info("reconnected")
		p.emit(skyline.Event{Kind: skyline.EventDestinationRecovered})
	} else {
		p.log.Info("publishing")
	}
	p.wasDown, p.failures = false, 0
	return nil
}

func (p *Publisher) write(au *skyline.AccessUnit) error {
	var nalus [][]byte
	for _, n := range skyline.SplitAnnexB(au.Data) {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) != h264.NALUTypeAccessUnitDelimiter {
			nalus = append(nalus, n)
		}
	}
	pkts, err := p.enc.Encode(nalus)
	if err != nil {
		return err
	}
	ts := p.tsBase + uint32(au.PTS.Seconds()*90000)
	ntp := p.info.Start.Add(au.PTS)
	for _, pkt := range pkts {
		pkt.Timestamp = ts
		if err := p.client.WritePacketRTPWithNTP(p.media, pkt, ntp); err != nil {
			return err
		}
	}
	return nil
}

// fail closes the connection and schedules a reconnection with backoff.
func (p *Publisher) fail(err error) {
	if p.client != nil {
		p.client.Close()
		p.client = nil
	}
	p.connected.Store(false)
	p.failures++
	p.wasDown = true
	backoff := min(p.cfg.RetryMin<<min(p.failures-1, 20), p.cfg.RetryMax)
	p.retryAt = time.Now().Add(backoff)
	msg := errors.New(p.mask(err.Error()))
	p.log.Warn("publishing failed; retrying", "error", msg, "attempt", p.failures, "in", backoff)
	p.emit(skyline.Event{Kind: skyline.EventDestinationDown, Err: msg})
	p.emit(skyline.Event{Kind: skyline.EventDestinationRetrying, Attempt: p.failures, Retry: backoff})
}

func (p *Publisher) mask(s string) string {
	u, err := url.Parse(p.url)
	if err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			s = strings.ReplaceAll(s, pw, "****")
		}
	}
	return s
}

func (p *Publisher) emit(e skyline.Event) {
	if p.info.Emit != nil {
		p.info.Emit(e)
	}
}

// Close implements skyline.Receiver: the session ended.
func (p *Publisher) Close() {
	if p.client != nil {
		p.client.Close()
		p.client = nil
	}
	p.connected.Store(false)
}
