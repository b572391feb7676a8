package rtsp

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/urlport"
)

// PublisherConfig configures a Publisher. Zero values are documented
// defaults.
type PublisherConfig struct {
	// URL is where to publish: rtsp://[user:pass@]host:port/path or
	// rtsps://. Required. Its password (and query values named like
	// secrets) never reach Name, errors, events or logs.
	URL string
	// Secrets are further values to mask wherever the Publisher is shown
	// (a token placed elsewhere in the URL).
	Secrets []skyline.Secret
	// UDP sends RTP over UDP instead of TCP (interleaved, the default).
	UDP bool
	// TLSConfig for rtsps:// (default: system roots).
	TLSConfig *tls.Config
	// Timeout bounds connecting and each request. Default 5 s.
	Timeout time.Duration
	// Logger is the parent logger. Default slog.Default().
	Logger *slog.Logger
}

// Publisher publishes a SkyLine's stream to an external RTSP server
// (ANNOUNCE, SETUP, RECORD), like ffmpeg -f rtsp. It is a skyline.Receiver:
// it connects at the first keyframe after each Open, and WriteAccessUnit
// returns an error when the connection cannot be made or has died. The
// SkyLine's outlet then owns what follows, as for every destination: Up is
// false, the access units missed are counted in Lost, EventDestinationDown
// and EventDestinationRetrying are reported, and the Publisher is reopened
// with backoff (Config.RetryMin..RetryMax), resuming at a keyframe
// (EventDestinationRecovered). Credentials in the URL never reach logs or
// errors.
type Publisher struct {
	cfg      PublisherConfig
	url      skyline.Secret // with credentials: revealed only to connect
	redacted string
	secrets  []skyline.Secret
	log      *slog.Logger

	// owned by the destination's goroutine (Open, WriteAccessUnit, Close)
	info   skyline.StreamInfo
	client *gortsplib.Client
	media  *description.Media
	enc    *rtph264.Encoder
	tsBase uint32
	dead   atomic.Pointer[deadConn]
	opens  int

	connected        atomic.Bool
	sent, reconnects atomic.Int64
}

// deadConn records that a connection ended, and which one.
type deadConn struct {
	c   *gortsplib.Client
	err error
}

// PublisherStats are a Publisher's counters. Access units lost are counted
// by the SkyLine (Stats().Destinations).
type PublisherStats struct {
	Connected       bool
	AccessUnitsSent int64
	Reconnections   int64
}

// NewPublisher checks the configuration; it connects when the stream starts.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	secrets := append(append([]skyline.Secret(nil), cfg.Secrets...), skyline.URLSecrets(cfg.URL)...)
	shown := skyline.Redact(skyline.RedactURL(cfg.URL), secrets...)
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: publish URL %q: not a valid URL: %s", ErrInvalidConfig, shown,
			skyline.Redact(skyline.URLProblem(err), secrets...))
	}
	if (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
		return nil, fmt.Errorf("%w: publish URL %q: want rtsp://host:port/path or rtsps://", ErrInvalidConfig, shown)
	}
	if err := urlport.Check(u, false); err != nil {
		return nil, fmt.Errorf("%w: publish URL %s://%s: %v", ErrInvalidConfig, u.Scheme, u.Hostname(), err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: publisher Timeout must be positive", ErrInvalidConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Publisher{url: skyline.NewSecret(cfg.URL), redacted: shown, secrets: secrets}
	cfg.URL = "" // kept only as a Secret
	p.cfg = cfg
	p.log = cfg.Logger.With(slog.String("component", "rtsp-publisher"), slog.String("url", p.redacted))
	return p, nil
}

// Name is "push:" and the URL without its password.
func (p *Publisher) Name() string { return "push:" + p.redacted }

// Stats reads the counters.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{Connected: p.connected.Load(), AccessUnitsSent: p.sent.Load(),
		Reconnections: p.reconnects.Load()}
}

// Open implements skyline.Receiver; the connection is made at the first
// access unit (a keyframe: its SPS and PPS describe the stream).
func (p *Publisher) Open(info skyline.StreamInfo) error {
	p.info = info
	p.opens++
	return nil
}

// Secrets implements skyline.SecretHolder: the SkyLine masks them in
// every error, event and log line about the Publisher.
func (p *Publisher) Secrets() []skyline.Secret { return p.secrets }

// WriteAccessUnit implements skyline.Receiver. It runs on the destination's
// own goroutine: connecting or a slow server delays only this destination.
// An error means the access unit was not sent and the connection is gone.
func (p *Publisher) WriteAccessUnit(au *skyline.AccessUnit) error {
	if d := p.dead.Load(); d != nil && d.c == p.client && p.client != nil {
		return fmt.Errorf("connection lost: %s", p.mask(d.err.Error()))
	}
	if p.client == nil {
		if !au.Keyframe { // the outlet delivers a keyframe first; be safe anyway
			p.info.RequestKeyframe()
			return nil
		}
		if err := p.connect(au); err != nil {
			return errors.New(p.mask(err.Error()))
		}
	}
	if err := p.write(au); err != nil {
		return errors.New(p.mask(err.Error()))
	}
	p.sent.Add(1)
	return nil
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
	if err := c.StartRecording(p.url.Reveal(), desc); err != nil {
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
	if p.opens > 1 {
		p.reconnects.Add(1)
	}
	p.log.Info("publishing")
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

func (p *Publisher) mask(s string) string { return skyline.Redact(s, p.secrets...) }

// Close implements skyline.Receiver: the session ended.
func (p *Publisher) Close() {
	if p.client != nil {
		p.client.Close()
		p.client = nil
	}
	p.connected.Store(false)
}
