package kvs

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/kvs/internal/mkv"
)

// emptySHA256 is the SigV4 payload hash of PutMedia: the streamed body is
// not hashed.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// maxFragmentMS is where a fragment is closed even without a keyframe
// (frames are then dropped until the next keyframe): KVS rejects > 10 s.
const maxFragmentMS = 9500

// ackTimeout: a connection that has unacknowledged fragments and receives
// nothing for this long is considered dead.
const ackTimeout = 20 * time.Second

// idleFragmentAfter: the open fragment is closed (an end-of-fragment tag,
// then the connection ends cleanly) when no frame came for this long, as
// the producer SDK does for intermittent producers
// (INTERMITTENT_PRODUCER_MAX_TIMEOUT, 20 s, amazon-kinesis-video-streams-pic
// src/client/src/Include_i.h). KVS itself ends a PutMedia connection after
// 30 s without data (IDLE acknowledgement).
const idleFragmentAfter = 20 * time.Second

// putMediaInterval: PutMedia requests of one stream start at least this
// far apart. KVS allows 5 PutMedia requests per second per stream and one
// connection (API_dataplane_PutMedia.html; more: ClientLimitExceeded).
// 250 ms, not 200: requests sent exactly 200 ms apart reach the service
// with network and scheduling jitter, and then 6 can land within one
// second.
const putMediaInterval = 250 * time.Millisecond

// credentialWindow: within this of their expiry, the connection's
// credentials are looked up again at fragment boundaries; the connection
// is rotated only when the provider hands out different ones.
const credentialWindow = 30 * time.Second

// Backoff of the credential check when the provider keeps returning the
// same (or again near-expiry) credentials.
const (
	minCredentialCheck = 5 * time.Second
	maxCredentialCheck = time.Minute
)

// Native is the native PutMedia backend: a skyline.Receiver.
//
// Ownership: WriteAccessUnit (the SkyLine's access-unit goroutine) appends
// frames to fragments under mu; one run goroutine per session discovers the
// endpoint, owns the PutMedia connection and writes the body; one goroutine
// per connection performs the request and reads acknowledgements. Close
// ends the session within CloseTimeout.
type Native struct {
	// skyEmit forwards events to the SkyLine's ordered event stream.
	skyEmit atomic.Pointer[func(skyline.Event)]

	cfg    Config
	log    *slog.Logger
	name   string
	aws    aws.Config
	kv     *kinesisvideo.Client
	tr     *http.Transport // PutMedia
	ctl    *http.Transport // control plane
	httpc  *http.Client
	signer *v4.Signer

	mu      sync.Mutex
	wake    chan struct{}
	info    skyline.StreamInfo
	running bool
	closing bool
	frags   []*fragment // not yet persisted, oldest first
	// inflight: fragments evicted from the retry buffer after they were
	// sent whole on the live connection; lost only if that connection ends
	// without their PERSISTED.
	inflight []*fragment
	connID   uint64    // the live connection (0: none)
	cur      *fragment // being built (last of frags), nil before the first keyframe
	seq      uint64
	lastTC   int64
	lastAt   time.Time // Clock time the last access unit arrived
	keyReq   bool
	codec    []byte // avcC
	// the fragment the live connection is in the middle of writing
	writingSeq uint64
	writingMid bool
	bytes      int64
	st         Stats
	lastErr    error

	seqConn      uint64
	endpoint     string
	discoveredAt time.Time
	// retention of the stream (DescribeStream): without it KVS sends no
	// PERSISTED and fragments are released on RECEIVED, as the SDK's PIC
	// does (WAIT_FOR_PERSISTED_ACK, src/client/src/Include_i.h).
	noRetention bool
	// fresh: credentials found by the rotation check, for the next
	// connection; credCheckAt/credBackoff pace that check (Clock time).
	fresh        *aws.Credentials
	credCheckAt  time.Time
	credBackoff  time.Duration
	lastPutMedia time.Time // wall clock
	// parked: the last connection ended cleanly because the producer went
	// silent; the destination can deliver (it reconnects on the next frame).
	parked bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type fragment struct {
	seq       uint64
	tc, last  int64 // first and last frame timecodes, absolute ms
	frames    []frameData
	bytes     int64
	complete  bool
	persisted bool
	sentOn    uint64 // connection that carried it whole
	nframes   int
	eofr      bool // closed by the idle timer (end-of-fragment tag sent)
}

type frameData struct {
	tc   int64
	key  bool
	data []byte // AVCC
}

// NewNative creates the native backend. It resolves region, credentials and
// endpoint now (no network access); the stream is looked up when a session
// opens.
func NewNative(cfg Config) (*Native, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ac, err := loadAWS(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	d := &Native{cfg: cfg, name: "kvs:" + cfg.Stream, aws: ac, wake: make(chan struct{}, 1), signer: v4.NewSigner()}
	d.log = cfg.Logger.With(slog.String("component", d.name))
	d.ctl = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 20 * time.Second,
		IdleConnTimeout:       30 * time.Second,
	}
	d.kv = kinesisvideo.NewFromConfig(ac, func(o *kinesisvideo.Options) {
		o.HTTPClient = &http.Client{Transport: d.ctl}
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.Retryer = aws.NopRetryer{} // the destination backs off itself
		o.Credentials = ac.Credentials
	})
	d.tr = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 20 * time.Second,
		DisableKeepAlives:     true,
		DisableCompression:    true,
	}
	d.httpc = &http.Client{Transport: d.tr}
	d.st.Backend = BackendNative
	return d, nil
}

// Name is "kvs:<stream>".
func (d *Native) Name() string { return d.name }

// Stats reads the counters.
func (d *Native) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st
	st.BufferedFragments = len(d.frags)
	st.BufferedBytes = d.bytes
	if d.lastErr != nil {
		st.LastError = d.lastErr.Error()
	}
	return st
}

// Err is the last error; nil once a connection succeeds again.
func (d *Native) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr
}

func (d *Native) emit(ev Event) {
	ev.Stream = d.cfg.Stream
	if ev.Time.IsZero() {
		ev.Time = d.cfg.Clock.Now()
	}
	if d.cfg.OnEvent != nil {
		d.cfg.OnEvent(ev)
	}
	if fn := d.skyEmit.Load(); fn != nil {
		for _, e := range d.bridge(ev) {
			(*fn)(e)
		}
	}
}

// bridge translates an event for the SkyLine's own ordered event stream
// (Config.OnEvent of the SkyLine): acknowledgements, errors and dropped
// frames. The destination going down and coming back is reported by the
// SkyLine's outlet from DeliveryStatus, as for every destination.
func (d *Native) bridge(ev Event) []skyline.Event {
	switch ev.Type {
	case EventAck:
		e := skyline.Event{Kind: skyline.EventAck, Err: ev.Err,
			Detail: fmt.Sprintf("%s fragment %s timecode %d", ev.Ack.EventType, ev.Ack.FragmentNumber, ev.Ack.FragmentTimecode)}
		return []skyline.Event{e}
	case EventError:
		return []skyline.Event{{Kind: skyline.EventError, Err: ev.Err, Retry: ev.Backoff}}
	case EventFragmentsDropped:
		return []skyline.Event{{Kind: skyline.EventDropped, Count: int64(ev.Frames), Err: ev.Err}}
	}
	return nil
}

func (d *Native) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Open starts a session: fragments are built from the access units and a
// goroutine streams them.
func (d *Native) Open(info skyline.StreamInfo) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running {
		return fmt.Errorf("%w: %s is already open", skyline.ErrInvalidConfig, d.name)
	}
	d.info = info
	if info.Emit != nil {
		d.skyEmit.Store(&info.Emit)
	}
	d.running, d.closing = true, false
	d.frags, d.cur, d.codec, d.keyReq, d.bytes = nil, nil, nil, false, 0
	d.writingMid = false
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.wg.Add(1)
	go d.run(ctx)
	return nil
}

// WriteAccessUnit adds an access unit to the current fragment. It never
// blocks on the network.
func (d *Native) WriteAccessUnit(au *skyline.AccessUnit) error {
	data, sps, pps := toAVCC(au.NALUs())
	var dropped []Event
	d.mu.Lock()
	if !d.running || d.closing {
		d.mu.Unlock()
		return nil
	}
	d.st.Frames++
	d.lastAt = d.cfg.Clock.Now()
	ns := d.info.Start.UnixNano() + int64(au.PTS)
	tc := (ns + 500_000) / 1_000_000
	if tc <= d.lastTC {
		tc = d.lastTC + 1
	}
	if d.codec == nil && au.Keyframe && sps != nil && pps != nil {
		if c, err := avcC(sps, pps); err == nil {
			d.codec = c
		}
	}
	fragMS := d.cfg.FragmentDuration.Milliseconds()
	// A natural keyframe up to one frame interval before the target ends
	// the fragment too: with capture jitter the encoder's keyframe of a GOP
	// as long as the fragment lands just under it, and waiting would cost
	// a second, requested, keyframe in every fragment. Never below KVS's
	// minimum fragment duration.
	cutMS := fragMS
	if d.info.FPS > 0 {
		cutMS -= int64(1000/d.info.FPS + 0.5)
	}
	cutMS = max(cutMS, MinFragmentDuration.Milliseconds())
	switch {
	case d.codec == nil || (d.cur == nil && !au.Keyframe):
		// Nothing can be sent before the first keyframe.
		d.st.FramesDropped++
		d.mu.Unlock()
		if d.info.RequestKeyframe != nil {
			d.info.RequestKeyframe()
		}
		d.emit(Event{Type: EventFragmentsDropped, Frames: 1, Err: fmt.Errorf("%w: a frame before the first keyframe", ErrGivenUp)})
		return nil
	case au.Keyframe && (d.cur == nil || tc-d.cur.tc >= cutMS):
		if d.cur != nil {
			d.cur.complete = true
		}
		d.seq++
		d.cur = &fragment{seq: d.seq, tc: tc}
		d.frags = append(d.frags, d.cur)
		d.st.Fragments++
		d.keyReq = false
	case d.cur.complete || tc-d.cur.tc >= maxFragmentMS:
		// Too long without a keyframe: close the fragment and wait.
		d.cur.complete = true
		d.st.FramesDropped++
		into := tc - d.cur.tc
		d.mu.Unlock()
		d.signal()
		if d.info.RequestKeyframe != nil {
			d.info.RequestKeyframe()
		}
		d.emit(Event{Type: EventFragmentsDropped, Frames: 1,
			Err: fmt.Errorf("%w: a frame %d ms into a fragment without a keyframe (KVS limit 10 s)", ErrGivenUp, into)})
		return nil
	}
	d.lastTC = tc
	f := d.cur
	f.frames = append(f.frames, frameData{tc: tc, key: au.Keyframe, data: data})
	f.last = tc
	f.bytes += int64(len(data))
	d.bytes += int64(len(data))
	needKey := !d.keyReq && tc-f.tc >= fragMS
	if needKey {
		d.keyReq = true
	}
	dropped = d.enforceBoundLocked()
	d.mu.Unlock()
	d.signal()
	if needKey && d.info.RequestKeyframe != nil {
		d.info.RequestKeyframe()
	}
	for _, ev := range dropped {
		d.emit(ev)
	}
	return nil
}

// enforceBoundLocked gives up the oldest fragments beyond the retry bound.
func (d *Native) enforceBoundLocked() []Event {
	var frs, frames int
	for len(d.frags) > 1 {
		old, newest := d.frags[0], d.frags[len(d.frags)-1]
		over := d.bytes > d.cfg.RetryBufferBytes || newest.last-old.tc > d.cfg.RetryBufferDuration.Milliseconds()
		if !over || (d.writingMid && d.writingSeq == old.seq) {
			break
		}
		d.removeLocked(0)
		if d.connID != 0 && old.sentOn == d.connID {
			// On the wire already: keep its identity until the connection
			// says PERSISTED or ends.
			old.nframes, old.frames = len(old.frames), nil
			d.inflight = append(d.inflight, old)
			continue
		}
		frs++
		frames += len(old.frames)
	}
	if frs == 0 {
		return nil
	}
	d.st.FragmentsDropped += uint64(frs)
	d.st.FramesDropped += uint64(frames)
	err := fmt.Errorf("%w: %d fragment(s), %d frame(s) over the retry buffer bound (%d bytes, %v)",
		ErrGivenUp, frs, frames, d.cfg.RetryBufferBytes, d.cfg.RetryBufferDuration)
	d.log.Warn("fragments given up", "fragments", frs, "frames", frames, "reason", "retry buffer bound")
	return []Event{{Type: EventFragmentsDropped, Fragments: frs, Frames: frames, Err: err}}
}

func (d *Native) removeLocked(i int) {
	f := d.frags[i]
	d.bytes -= f.bytes
	d.frags = append(d.frags[:i], d.frags[i+1:]...)
	if d.cur == f {
		d.cur = nil
	}
}

// Close ends the session: the last fragment is finished and Close waits up
// to CloseTimeout for the outstanding fragments to be persisted; those that
// are not are counted as given up and reported.
func (d *Native) Close() {
	d.mu.Lock()
	if !d.running {
		d.mu.Unlock()
		return
	}
	d.closing = true
	if d.cur != nil {
		d.cur.complete = true
	}
	cancel := d.cancel
	d.mu.Unlock()
	d.signal()
	t := time.AfterFunc(d.cfg.CloseTimeout, cancel)
	d.wg.Wait()
	t.Stop()
	cancel()
	d.tr.CloseIdleConnections()
	d.ctl.CloseIdleConnections()

	d.mu.Lock()
	var frs, frames int
	for _, f := range d.frags {
		frs++
		frames += len(f.frames)
	}
	d.frags, d.cur, d.bytes = nil, nil, 0
	d.st.FragmentsDropped += uint64(frs)
	d.st.FramesDropped += uint64(frames)
	d.st.Connected = false
	d.parked = false
	d.running = false
	d.mu.Unlock()
	if frs > 0 {
		err := fmt.Errorf("%w: %d fragment(s), %d frame(s) not persisted within CloseTimeout %v", ErrGivenUp, frs, frames, d.cfg.CloseTimeout)
		d.log.Warn("fragments given up at close", "fragments", frs, "frames", frames)
		d.emit(Event{Type: EventFragmentsDropped, Fragments: frs, Frames: frames, Err: err})
	}
}

// run owns the connection cycle of one session.
func (d *Native) run(ctx context.Context) {
	defer d.wg.Done()
	attempt := 0
	for {
		if !d.waitWork(ctx) {
			return
		}
		progressed, err := d.connection(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			attempt = 0
			continue
		}
		if progressed {
			attempt = 0
		}
		backoff := d.cfg.MinBackoff << min(attempt, 20)
		if backoff > d.cfg.MaxBackoff || backoff <= 0 {
			backoff = d.cfg.MaxBackoff
		}
		attempt++
		d.mu.Lock()
		d.lastErr = err
		d.st.Errors++
		// A cached data endpoint is reloaded after a failure (limits.html,
		// GetDataEndpoint: "Caching data endpoints is safe if the
		// application reloads them on failure").
		d.endpoint = ""
		d.parked = false
		d.mu.Unlock()
		d.log.Warn("KVS connection failed; retrying", "error", err, "backoff", backoff)
		d.emit(Event{Type: EventError, Err: err, Backoff: backoff})
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// waitWork waits until there is something to send; false when the session
// is over.
func (d *Native) waitWork(ctx context.Context) bool {
	for {
		d.mu.Lock()
		ready := len(d.frags) > 0 && d.codec != nil
		done := d.closing && len(d.frags) == 0
		d.mu.Unlock()
		if done {
			return false
		}
		if ready {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-d.wake:
		}
	}
}

// discover finds the PutMedia endpoint (cached for RediscoverInterval).
func (d *Native) discover(ctx context.Context) (string, error) {
	now := d.cfg.Clock.Now()
	d.mu.Lock()
	ep, at := d.endpoint, d.discoveredAt
	d.mu.Unlock()
	if ep != "" && now.Sub(at) < d.cfg.RediscoverInterval {
		return ep, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	name := aws.String(d.cfg.Stream)
	out, err := d.kv.DescribeStream(cctx, &kinesisvideo.DescribeStreamInput{StreamName: name})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) && d.cfg.CreateStream {
		_, err = d.kv.CreateStream(cctx, &kinesisvideo.CreateStreamInput{
			StreamName: name, MediaType: aws.String("video/h264"),
			DataRetentionInHours: aws.Int32(int32(d.cfg.RetentionHours)),
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return "", fmt.Errorf("kvs: create stream %q: %w", d.cfg.Stream, err)
		}
		if err == nil {
			d.log.Info("stream created", "stream", d.cfg.Stream)
			d.emit(Event{Type: EventStreamCreated})
		}
		for i := 0; ; i++ {
			out, err = d.kv.DescribeStream(cctx, &kinesisvideo.DescribeStreamInput{StreamName: name})
			if err != nil || out.StreamInfo == nil || out.StreamInfo.Status == types.StatusActive || i == 20 {
				break
			}
			select {
			case <-cctx.Done():
				return "", cctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	if err != nil {
		return "", fmt.Errorf("kvs: describe stream %q: %w", d.cfg.Stream, err)
	}
	if out.StreamInfo != nil && out.StreamInfo.Status != types.StatusActive {
		return "", fmt.Errorf("kvs: stream %q is %s, not ACTIVE", d.cfg.Stream, out.StreamInfo.Status)
	}
	ge, err := d.kv.GetDataEndpoint(cctx, &kinesisvideo.GetDataEndpointInput{StreamName: name, APIName: types.APINamePutMedia})
	if err != nil {
		return "", fmt.Errorf("kvs: get data endpoint of %q: %w", d.cfg.Stream, err)
	}
	if ge.DataEndpoint == nil || *ge.DataEndpoint == "" {
		return "", fmt.Errorf("kvs: get data endpoint of %q: empty answer", d.cfg.Stream)
	}
	ep = strings.TrimRight(*ge.DataEndpoint, "/")
	d.mu.Lock()
	d.endpoint, d.discoveredAt = ep, now
	if out.StreamInfo != nil && out.StreamInfo.DataRetentionInHours != nil {
		d.noRetention = *out.StreamInfo.DataRetentionInHours == 0
	}
	d.mu.Unlock()
	return ep, nil
}

// conn is one PutMedia connection's shared state.
type conn struct {
	pr      *io.PipeReader
	pw      *io.PipeWriter
	cancel  context.CancelFunc
	done    chan struct{} // the request goroutine ended
	err     error         // why it ended (set before done closes)
	lastAck time.Time     // under Native.mu
	idle    atomic.Bool   // KVS sent IDLE: its end of the request is clean
}

// connection runs one PutMedia connection until it must end. progressed
// says whether a fragment was persisted on it.
func (d *Native) connection(ctx context.Context) (progressed bool, err error) {
	d.emit(Event{Type: EventConnecting})
	ep, err := d.discover(ctx)
	if err != nil {
		return false, err
	}
	d.mu.Lock()
	fresh := d.fresh
	d.fresh = nil
	d.mu.Unlock()
	var creds aws.Credentials
	if fresh != nil && (!fresh.CanExpire || fresh.Expires.After(d.cfg.Clock.Now())) {
		creds = *fresh
	} else {
		creds, err = d.aws.Credentials.Retrieve(ctx)
		if err != nil {
			return false, fmt.Errorf("kvs: credentials: %w", err)
		}
		d.mu.Lock()
		d.st.CredentialRefreshes++
		d.mu.Unlock()
	}
	now := d.cfg.Clock.Now()
	if creds.CanExpire && !creds.Expires.After(now) {
		return false, fmt.Errorf("kvs: credentials %s expired at %s", maskKey(creds.AccessKeyID), creds.Expires.UTC().Format(time.RFC3339))
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	c := &conn{pr: pr, pw: pw, cancel: cancel, done: make(chan struct{})}
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, ep+"/putMedia", pr)
	if err != nil {
		return false, fmt.Errorf("kvs: data endpoint %q: %w", ep, err)
	}
	d.mu.Lock()
	startTC := now.UnixMilli()
	if len(d.frags) > 0 {
		startTC = d.frags[0].tc
	}
	d.mu.Unlock()
	req.Header.Set("x-amzn-stream-name", d.cfg.Stream)
	req.Header.Set("x-amzn-fragment-timecode-type", "ABSOLUTE")
	req.Header.Set("x-amzn-producer-start-timestamp", fmt.Sprintf("%d.%03d", startTC/1000, startTC%1000))
	req.Header.Set("x-amzn-fragment-acknowledgment-required", "1")
	req.Header.Set("Content-Type", "application/octet-stream")
	if err := d.signer.SignHTTP(cctx, creds, req, emptySHA256, "kinesisvideo", d.aws.Region, time.Now()); err != nil {
		return false, fmt.Errorf("kvs: signing PutMedia: %w", err)
	}
	// At most 5 PutMedia requests per second per stream, whatever the
	// reason of the reconnection (API_dataplane_PutMedia.html).
	if wait := putMediaInterval - time.Since(d.lastPutMedia); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
	}
	d.lastPutMedia = time.Now()
	go d.request(req, c)
	defer func() {
		pr.CloseWithError(errors.New("connection ended"))
		cancel()
		<-c.done
		d.mu.Lock()
		d.writingMid = false
		d.st.Connected = false
		d.connID = 0
		lost := d.inflight
		d.inflight = nil
		frames := 0
		for _, f := range lost {
			frames += f.nframes
		}
		d.st.FragmentsDropped += uint64(len(lost))
		d.st.FramesDropped += uint64(frames)
		d.mu.Unlock()
		d.emit(Event{Type: EventDisconnected, Err: err})
		if len(lost) > 0 {
			d.log.Warn("fragments given up", "fragments", len(lost), "frames", frames, "reason", "evicted from the retry buffer, not acknowledged")
			d.emit(Event{Type: EventFragmentsDropped, Fragments: len(lost), Frames: frames,
				Err: fmt.Errorf("%w: %d fragment(s), %d frame(s) evicted from the retry buffer and never acknowledged", ErrGivenUp, len(lost), frames)})
		}
	}()
	st0 := d.Stats()
	err = d.write(ctx, c, creds, now)
	st1 := d.Stats()
	progressed = st1.Persisted > st0.Persisted || (d.retentionless() && st1.Received > st0.Received)
	return progressed, err
}

// write streams the body: the header, then every fragment not yet
// persisted, then new frames as they come. It returns nil when the
// connection was rotated or the session is finished.
func (d *Native) write(ctx context.Context, c *conn, creds aws.Credentials, connStart time.Time) error {
	d.mu.Lock()
	w, h := d.info.Width, d.info.Height
	hdr := mkv.Header(mkv.Track{Width: w, Height: h, CodecPrivate: d.codec}, randomUID(), "skyline")
	c.lastAck = time.Now()
	d.mu.Unlock()
	if _, err := c.pw.Write(hdr); err != nil {
		return d.connErr(c, err)
	}
	d.mu.Lock()
	d.seqConn++
	connID := d.seqConn
	d.connID = connID
	d.mu.Unlock()
	var curSeq uint64
	curIdx := 0
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var buf []byte
	for {
		d.mu.Lock()
		var f *fragment
		for _, x := range d.frags {
			if x.seq >= curSeq {
				f = x
				break
			}
		}
		if f != nil && f.seq != curSeq {
			curSeq, curIdx = f.seq, 0
		}
		if f != nil && curIdx == 0 {
			why := d.rotateReason(connStart)
			if why == "" && d.credentialsDueLocked(creds) {
				d.mu.Unlock()
				if !d.newCredentials(ctx, creds) {
					continue // the buffer may have changed meanwhile: look again
				}
				d.mu.Lock()
				why = "new credentials"
			}
			if why != "" {
				d.mu.Unlock()
				d.log.Info("rotating PutMedia connection", "reason", why)
				return d.finish(ctx, c)
			}
		}
		if f != nil && curIdx < len(f.frames) {
			buf = buf[:0]
			if curIdx == 0 {
				buf = mkv.ClusterStart(buf, f.tc)
				d.st.FragmentsSent++
			}
			for _, fr := range f.frames[curIdx:] {
				buf = mkv.AppendSimpleBlock(buf, int16(fr.tc-f.tc), fr.key, fr.data)
			}
			curIdx = len(f.frames)
			d.writingSeq, d.writingMid = curSeq, !f.complete
			d.mu.Unlock()
			if _, err := c.pw.Write(buf); err != nil {
				return d.connErr(c, err)
			}
			continue
		}
		if f != nil && f.complete {
			f.sentOn = connID
			curSeq, curIdx = f.seq+1, 0
			d.writingMid = false
			d.mu.Unlock()
			continue
		}
		closing := d.closing
		// Only fragments sent whole on this connection await an ack: a
		// fragment still being built (a paused producer) does not.
		unacked := false
		for _, x := range d.frags {
			if x.complete && x.sentOn == connID {
				unacked = true
				break
			}
		}
		unacked = unacked || len(d.inflight) > 0
		lastAck := c.lastAck
		// A producer silent for idleFragmentAfter: the open fragment, all
		// of it written, is closed with an end-of-fragment tag and the
		// connection ends cleanly once it is acknowledged.
		// Silence is measured from the last arrival, not the last
		// timecode: fixed-rate timestamps of a slow producer fall behind
		// the clock while frames keep coming.
		idle := f != nil && f == d.cur && !f.complete && curSeq == f.seq && curIdx == len(f.frames) &&
			d.cfg.Clock.Now().Sub(d.lastAt) >= idleFragmentAfter
		if idle {
			f.complete, f.eofr = true, true
			d.writingMid = false
		}
		d.mu.Unlock()
		if idle {
			d.log.Info("no frame for a while: closing the open fragment", "after", idleFragmentAfter)
			if d.info.RequestKeyframe != nil {
				d.info.RequestKeyframe() // the next fragment starts at the first frame after the pause
			}
			if _, err := c.pw.Write(mkv.AppendEndOfFragment(nil)); err != nil {
				return d.connErr(c, err)
			}
			d.mu.Lock()
			f.sentOn = connID
			d.mu.Unlock()
			err := d.finish(ctx, c)
			if err == nil {
				d.mu.Lock()
				d.parked = true
				d.mu.Unlock()
			}
			return err
		}
		if closing && f == nil {
			// Everything is written: end the body and collect the acks.
			return d.finish(ctx, c)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			if c.idle.Load() && c.err == io.EOF {
				d.mu.Lock()
				d.parked = true
				d.mu.Unlock()
				return nil // KVS ended an idle connection: reconnect when frames come
			}
			return d.connErr(c, io.EOF)
		case <-d.wake:
		case <-tick.C:
			if unacked && time.Since(lastAck) > ackTimeout {
				return fmt.Errorf("kvs: no acknowledgement for %v", ackTimeout)
			}
		}
	}
}

// rotateReason says why the connection should be replaced at this fragment
// boundary ("" to keep it).
func (d *Native) rotateReason(connStart time.Time) string {
	now := d.cfg.Clock.Now()
	switch {
	case now.Sub(connStart) >= d.cfg.MaxConnectionDuration:
		return "connection duration"
	case now.Sub(d.discoveredAt) >= d.cfg.RediscoverInterval:
		return "endpoint rediscovery"
	}
	return ""
}

// credentialsDueLocked says whether the connection's credentials are close
// enough to their expiry to ask the provider again now.
func (d *Native) credentialsDueLocked(creds aws.Credentials) bool {
	now := d.cfg.Clock.Now()
	return creds.CanExpire && !now.Before(creds.Expires.Add(-credentialWindow)) && !now.Before(d.credCheckAt)
}

// newCredentials asks the provider again and says whether it hands out
// credentials different from the connection's: only then is the
// connection rotated (once). A provider that returns the same ones (the
// SDK's CredentialsCache does until they expire) is asked again with a
// growing backoff; the connection, authorised at its start, goes on.
func (d *Native) newCredentials(ctx context.Context, cur aws.Credentials) bool {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := d.aws.Credentials.Retrieve(cctx)
	now := d.cfg.Clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		d.st.CredentialRefreshes++
	}
	changed := err == nil && (c.AccessKeyID != cur.AccessKeyID || c.SessionToken != cur.SessionToken || !c.Expires.Equal(cur.Expires))
	if changed && (!c.CanExpire || c.Expires.Sub(now) > credentialWindow) {
		d.credBackoff = 0
		d.fresh = &c
		return true
	}
	// Same credentials, an error, or new ones that are again about to
	// expire: check later, backing off.
	d.credBackoff = min(max(2*d.credBackoff, minCredentialCheck), maxCredentialCheck)
	d.credCheckAt = now.Add(d.credBackoff)
	if cur.Expires.After(now) && cur.Expires.Before(d.credCheckAt) {
		d.credCheckAt = cur.Expires // a cache hands out new ones once they expire
	}
	if changed && (!c.CanExpire || c.Expires.After(now)) {
		d.fresh = &c
		return true
	}
	// New ones already expired would only be refused by the next
	// connection: keep the live one, authorised at its start.
	if err != nil {
		d.log.Warn("credential refresh failed; keeping the connection", "error", err, "retry_in", d.credBackoff)
	}
	return false
}

// finish ends the body cleanly and waits for the last acknowledgements.
func (d *Native) finish(ctx context.Context, c *conn) error {
	_ = c.pw.Close()
	t := time.NewTimer(ackTimeout)
	defer t.Stop()
	select {
	case <-c.done:
		if c.err != nil && !errors.Is(c.err, io.EOF) {
			return c.err
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("kvs: no end of acknowledgements within %v", ackTimeout)
	}
}

// connErr explains why writing failed: the request's error if it has one.
func (d *Native) connErr(c *conn, werr error) error {
	select {
	case <-c.done:
		if c.err != nil {
			return c.err
		}
		return fmt.Errorf("kvs: PutMedia connection closed by the endpoint")
	case <-time.After(2 * time.Second):
		return fmt.Errorf("kvs: PutMedia body: %w", werr)
	}
}

// request performs the PutMedia request and reads acknowledgements.
func (d *Native) request(req *http.Request, c *conn) {
	defer close(c.done)
	fail := func(err error) {
		c.err = err
		c.pr.CloseWithError(err)
		c.cancel()
	}
	resp, err := d.httpc.Do(req)
	if err != nil {
		fail(fmt.Errorf("kvs: PutMedia: %w", err))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fail(readAPIError("PutMedia", resp))
		return
	}
	d.mu.Lock()
	d.st.Connected = true
	d.parked = false
	d.st.Connections++
	d.lastErr = nil
	ep := d.endpoint
	d.mu.Unlock()
	d.log.Info("PutMedia connected", "endpoint", ep)
	d.emit(Event{Type: EventConnected, Endpoint: ep})
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var a Ack
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			d.log.Warn("unreadable acknowledgement", "line", line, "error", err)
			continue
		}
		if err := d.handleAck(c, a); err != nil {
			fail(err)
			return
		}
	}
	if err := sc.Err(); err != nil {
		c.err = fmt.Errorf("kvs: reading acknowledgements: %w", err)
	} else {
		c.err = io.EOF
	}
	c.pr.CloseWithError(c.err)
}

// handleAck applies one acknowledgement; an error ends the connection.
func (d *Native) handleAck(c *conn, a Ack) error {
	var ret error
	var drop *Event
	d.mu.Lock()
	c.lastAck = time.Now()
	switch a.EventType {
	case AckBuffering:
		d.st.Buffering++
	case AckReceived:
		d.st.Received++
		if d.noRetention {
			d.releaseLocked(a.FragmentTimecode)
		}
	case AckPersisted:
		d.st.Persisted++
		d.releaseLocked(a.FragmentTimecode)
	case AckIdle:
		d.st.Idle++
		c.idle.Store(true)
	case AckError:
		d.st.AckErrors++
		ae := &FragmentError{Ack: a}
		ret = ae
		if !ae.retriable() {
			for i, f := range d.frags {
				if f.tc == a.FragmentTimecode {
					if !(d.writingMid && d.writingSeq == f.seq) || f.complete {
						d.removeLocked(i)
						d.st.FragmentsDropped++
						d.st.FramesDropped += uint64(len(f.frames))
						drop = &Event{Type: EventFragmentsDropped, Fragments: 1, Frames: len(f.frames), Err: fmt.Errorf("%w: %v", ErrGivenUp, ae)}
					}
					break
				}
			}
		}
	}
	d.mu.Unlock()
	d.emit(Event{Type: EventAck, Ack: a, Err: ret})
	if drop != nil {
		d.log.Warn("fragment rejected and given up", "timecode", a.FragmentTimecode, "error", ret)
		d.emit(*drop)
	}
	d.signal()
	return ret
}

// releaseLocked frees the fragment KVS has taken for good: PERSISTED, or
// RECEIVED on a stream without retention.
func (d *Native) releaseLocked(tc int64) {
	for i, f := range d.frags {
		if f.tc == tc && f.complete {
			f.persisted = true
			d.removeLocked(i)
			break
		}
	}
	for i, f := range d.inflight {
		if f.tc == tc {
			d.inflight = append(d.inflight[:i], d.inflight[i+1:]...)
			break
		}
	}
}

// readAPIError turns an HTTP error answer into an *APIError.
func readAPIError(op string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	typ := resp.Header.Get("x-amzn-ErrorType")
	if typ == "" {
		typ = resp.Header.Get("x-amz-ErrorType")
	}
	typ, _, _ = strings.Cut(typ, ":")
	var m struct {
		Message  string `json:"message"`
		Message2 string `json:"Message"`
		Type     string `json:"__type"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &m) == nil {
		if m.Message != "" {
			msg = m.Message
		} else if m.Message2 != "" {
			msg = m.Message2
		}
		if typ == "" {
			typ = m.Type
		}
	}
	return &APIError{Op: op, Status: resp.StatusCode, Type: typ, Message: msg}
}

func randomUID() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return b
}

// maskKey shows an access key ID's first 4 characters only.
func maskKey(k string) string {
	if len(k) <= 4 {
		return "****"
	}
	return k[:4] + "****"
}

func (d *Native) retentionless() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.noRetention
}

// DeliveryStatus implements skyline.DeliveryReporter: the SkyLine shows
// this destination up while a PutMedia connection streams or, after a
// producer's pause closed the connection cleanly, until a reconnection
// fails (then Err is the last error, and the SkyLine reports it down once
// and recovered once it reconnects); it counts
// the frames given up (retry buffer bound, rejected fragments, Close) in
// its Lost.
func (d *Native) DeliveryStatus() skyline.DeliveryStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	ds := skyline.DeliveryStatus{Connected: d.st.Connected || d.parked, Lost: d.st.FramesDropped}
	if !ds.Connected {
		ds.Err = d.lastErr
	}
	return ds
}

var _ skyline.DeliveryReporter = (*Native)(nil)
