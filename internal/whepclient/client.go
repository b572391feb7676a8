// Package whepclient is a WHEP viewer built on pion, and an in-process
// H.264 decoder, for the webrtc package's tests and benchmark: it
// negotiates through WHEP, reassembles the received RTP into access units
// and decodes them to BGR pictures.
package whepclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// AU is one received access unit in Annex-B form.
type AU struct {
	Data     []byte
	RTPTime  uint32
	Received time.Time // when its last packet arrived
	Keyframe bool
}

// Client is one WHEP session.
type Client struct {
	pc        *webrtc.PeerConnection
	session   string
	user      string
	pass      string
	aus       chan AU
	done      chan struct{}
	wg        sync.WaitGroup
	once      sync.Once
	lost      atomic.Int64
	connected chan struct{}
	connOnce  sync.Once
	answer    string
}

// Options of Dial.
type Options struct {
	User, Pass string
	// Queue is the capacity of the AUs channel (default 256); when it is
	// full, access units are dropped and counted as lost.
	Queue int
	// TCP gathers ICE-TCP candidates only (no UDP).
	TCP bool
	// H264Profiles, when set, restricts the offer to H.264 with these
	// profile-level-ids (packetization-mode=1), like a browser whose
	// decoder has fewer profiles (Firefox: "42e01f").
	H264Profiles []string
}

// HTTPError is a WHEP answer other than 201.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("WHEP: HTTP %d: %s", e.Status, e.Body) }

var silent = logging.NewDefaultLoggerFactory()

func init() { silent.DefaultLogLevel = logging.LogLevelDisabled }

// Dial negotiates a session with the WHEP endpoint at url.
func Dial(ctx context.Context, url string, o Options) (*Client, error) {
	if o.Queue == 0 {
		o.Queue = 256
	}
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m, o.H264Profiles); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{LoggerFactory: silent}
	se.SetIncludeLoopbackCandidate(true)
	if o.TCP {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	c := &Client{pc: pc, user: o.User, pass: o.Pass, aus: make(chan AU, o.Queue), done: make(chan struct{}),
		connected: make(chan struct{})}
	fail := func(err error) (*Client, error) {
		_ = pc.Close()
		return nil, err
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return fail(err)
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			c.connOnce.Do(func() { close(c.connected) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.wg.Add(1)
		go c.read(tr)
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	if o.User != "" {
		req.SetBasicAuth(o.User, o.Pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fail(&HTTPError{resp.StatusCode, strings.TrimSpace(string(body))})
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return fail(fmt.Errorf("WHEP: bad Location %q", resp.Header.Get("Location")))
	}
	c.session, c.answer = loc.String(), string(body)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return fail(err)
	}
	return c, nil
}

// Answer is the server's SDP answer.
func (c *Client) Answer() string { return c.answer }

// Connected is closed when the peer connection is connected.
func (c *Client) Connected() <-chan struct{} { return c.connected }

// AUs delivers the received access units, complete ones only.
func (c *Client) AUs() <-chan AU { return c.aus }

// Lost counts access units lost (missing packets, or a full AUs channel).
func (c *Client) Lost() int64 { return c.lost.Load() }

// SendPLI asks the server for a keyframe.
func (c *Client) SendPLI() error {
	for _, r := range c.pc.GetReceivers() {
		if t := r.Track(); t != nil {
			return c.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
		}
	}
	return errors.New("no track yet")
}

// read reassembles the track's RTP into access units (on the marker bit).
func (c *Client) read(tr *webrtc.TrackRemote) {
	defer c.wg.Done()
	var (
		pkts    []*rtp.Packet
		broken  bool
		lastSeq uint16
		haveSeq bool
	)
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if haveSeq && p.SequenceNumber != lastSeq+1 {
			if int16(p.SequenceNumber-lastSeq) <= 0 {
				continue // late or duplicate
			}
			broken = true
		}
		lastSeq, haveSeq = p.SequenceNumber, true
		if len(pkts) > 0 && pkts[0].Timestamp != p.Timestamp {
			broken, pkts = true, pkts[:0] // the previous AU lost its end
		}
		pkts = append(pkts, p)
		if !p.Marker {
			continue
		}
		now := time.Now()
		if broken {
			c.lost.Add(1)
			broken, pkts = false, pkts[:0]
			continue
		}
		var buf bytes.Buffer
		var h codecs.H264Packet
		key := false
		for _, q := range pkts {
			b, err := h.Unmarshal(q.Payload)
			if err != nil {
				broken = true
				break
			}
			buf.Write(b)
		}
		for _, n := range splitAnnexB(buf.Bytes()) {
			if len(n) > 0 && n[0]&0x1f == 5 {
				key = true
			}
		}
		ts := pkts[0].Timestamp
		pkts = pkts[:0]
		if broken || buf.Len() == 0 {
			c.lost.Add(1)
			broken = false
			continue
		}
		select {
		case c.aus <- AU{Data: buf.Bytes(), RTPTime: ts, Received: now, Keyframe: key}:
		default:
			c.lost.Add(1)
		}
	}
}

// Close ends the session (DELETE) and the peer connection.
func (c *Client) Close() {
	c.once.Do(func() {
		if c.session != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.session, nil)
			if err == nil {
				if c.user != "" {
					req.SetBasicAuth(c.user, c.pass)
				}
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			cancel()
		}
		_ = c.pc.Close()
		c.wg.Wait()
		close(c.done)
	})
}

func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				for end > start && b[end-1] == 0 {
					end--
				}
				out = append(out, b[start:end])
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

// SelectedPair describes the selected ICE candidate pair ("" if none).
func (c *Client) SelectedPair() string {
	for _, r := range c.pc.GetReceivers() {
		if tr := r.Transport(); tr != nil {
			if p, err := tr.ICETransport().GetSelectedCandidatePair(); err == nil && p != nil {
				return p.String()
			}
		}
	}
	return ""
}

// registerCodecs registers pion's default codecs, or H.264 with the given
// profile-level-ids only.
func registerCodecs(m *webrtc.MediaEngine, profiles []string) error {
	if len(profiles) == 0 {
		return m.RegisterDefaultCodecs()
	}
	for i, p := range profiles {
		err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + p,
				RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}},
			PayloadType: webrtc.PayloadType(102 + i),
		}, webrtc.RTPCodecTypeVideo)
		if err != nil {
			return err
		}
	}
	return nil
}

// Offer makes an SDP offer as Dial sends it (ICE gathered), without
// sending it: for tests of the endpoint itself. The peer connection is
// closed before Offer returns.
func Offer(ctx context.Context, o Options) (string, error) {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m, o.H264Profiles); err != nil {
		return "", err
	}
	se := webrtc.SettingEngine{LoggerFactory: silent}
	se.SetIncludeLoopbackCandidate(true)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", err
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return "", err
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}
