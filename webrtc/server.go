package webrtc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/stun/v4"
	pion "github.com/pion/webrtc/v4"

	"github.com/skyline-go/skyline/internal/netguard"
	"github.com/skyline-go/skyline/internal/pathmap"
	"github.com/skyline-go/skyline/internal/ratelog"
)

// Defaults for the zero values of ServerConfig.
const (
	DefaultAddress          = ":8889"
	DefaultViewerQueue      = 64
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMaxSessions      = 100
	DefaultReadTimeout      = 10 * time.Second
	DefaultIdleTimeout      = 60 * time.Second

	DefaultMaxConnections          = 1000
	DefaultMaxConnectionsPerClient = 100
	// MaxOfferBytes bounds a WHEP request body (an SDP offer is a few kB);
	// larger ones are refused with 413. MaxHeaderBytes bounds a request's
	// headers (431 beyond).
	MaxOfferBytes  = 64 << 10
	MaxHeaderBytes = 16 << 10
)

// ICEServer is a STUN or TURN server given to the server's and the page's
// peer connections (for viewers behind NAT). URLs are like
// "stun:stun.example.org:3478" or "turn:turn.example.org:3478?transport=udp".
type ICEServer struct {
	URLs               []string
	Username, Password string
}

// ServerConfig configures a Server. The zero value is valid: every field's
// zero value is the documented default. With the defaults the server needs
// no external service: it offers host candidates (loopback included) on
// ephemeral UDP ports, which is what a LAN or the same machine needs.
type ServerConfig struct {
	// Address is the HTTP listen address of the pages and WHEP endpoints.
	// Default ":8889". Port 0 picks a free port (see Addr and URLs).
	Address string

	// User and Pass, when User is set, are required (HTTP basic
	// authentication) for the pages, the WHEP endpoints and the clock of
	// every stream (server-wide; a stream may override them in
	// StreamOptions).
	User, Pass string

	// CertFile and KeyFile (PEM), or TLSConfig, serve HTTPS instead of HTTP
	// (advised with User/Pass: basic authentication sends the password in
	// clear text otherwise). TLSConfig wins when both are given.
	CertFile, KeyFile string
	TLSConfig         *tls.Config

	// AllowOrigins lists the origins (e.g. "https://app.example.org") whose
	// pages may call the WHEP endpoints from a browser (CORS); "*" allows
	// every origin. Default: none, only the server's own page.
	AllowOrigins []string

	// ICEServers are STUN/TURN servers, used by the server to gather
	// server-reflexive/relay candidates and handed to the page's
	// RTCPeerConnection. Default none: host candidates only.
	ICEServers []ICEServer

	// UDPPort, when set, carries every viewer's media on this one UDP port
	// (on all interfaces) instead of an ephemeral port per viewer: the one
	// port to open in a firewall. Default 0: ephemeral ports.
	UDPPort int
	// TCPPort, when set, also offers ICE-TCP candidates on this TCP port
	// (all interfaces), for networks that block UDP. Default 0: UDP only.
	TCPPort int
	// AdvertiseIPs replace the IP addresses of the host candidates (the
	// public address of a server behind a 1:1 NAT, a container's host).
	// Default: the interfaces' own addresses.
	AdvertiseIPs []string
	// NoLoopback leaves out loopback candidates (127.0.0.1, ::1). Default:
	// included, so that a browser on the same machine connects even without
	// a network interface.
	NoLoopback bool

	// ViewerQueue is the number of access units queued per viewer before
	// that viewer's access units are dropped (it resumes at the next
	// keyframe, which is requested). Default 64.
	ViewerQueue int
	// HandshakeTimeout closes a WHEP session whose peer connection did not
	// connect in time. Default 10 s.
	HandshakeTimeout time.Duration
	// HoldTimeout is how long a WHEP offer that arrives before the
	// stream's first keyframe (before the first Start, during its warm-up)
	// waits for it, so that the answer names the stream's real H.264
	// profile; then it is answered "503 Service Unavailable" with the
	// reason (the page retries). Default DefaultHoldTimeout (10 s);
	// negative: answer at once.
	HoldTimeout time.Duration
	// MaxViewers limits the sessions per stream (503 beyond). Default 0: no
	// limit but MaxSessions.
	MaxViewers int
	// MaxSessions limits the WHEP sessions of the whole server, connected
	// or still connecting (each holds sockets and memory until its
	// HandshakeTimeout), and the offers held for a stream's first picture
	// (HoldTimeout). Offers beyond it are refused at once with 503 and the
	// reason; sessions already playing are not affected. Default 100.
	// MaxViewers counts held offers the same way.
	MaxSessions int
	// ReadTimeout bounds reading one HTTP request, headers and body, from
	// the moment the server waits for it: a new connection that sends
	// nothing, a client that trickles its headers (slowloris) or a request
	// announcing a body that never comes is closed after ReadTimeout (net/http's
	// ReadHeaderTimeout and ReadTimeout). Default 10 s.
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no new request
	// for this long (net/http's IdleTimeout). Default 60 s.
	IdleTimeout time.Duration
	// MaxConnections caps the HTTP connections open at once; beyond it a
	// new connection is closed at once, with a warning (one per second at
	// most). Default 1000. MaxConnectionsPerClient caps them per client IP
	// address. Default 100. (A page uses one or two; WHEP sessions'
	// media is not counted: it flows over UDP, or TCPPort.)
	MaxConnections          int
	MaxConnectionsPerClient int

	// Logger is the parent logger; the server logs with component=webrtc,
	// and pion's own logs go there too, one level down (pion's errors as
	// warnings, its warnings as info, the rest at debug level). Default slog.Default().
	Logger *slog.Logger
}

// String describes the configuration without secrets.
func (c ServerConfig) String() string {
	pass := ""
	if c.Pass != "" {
		pass = "***"
	}
	var ice []string
	for _, s := range c.ICEServers {
		ice = append(ice, strings.Join(s.URLs, ","))
	}
	return fmt.Sprintf("webrtc.ServerConfig{Address:%q User:%q Pass:%q TLS:%v AllowOrigins:%q ICEServers:%q UDPPort:%d TCPPort:%d AdvertiseIPs:%q NoLoopback:%v}",
		c.Address, c.User, pass, c.TLSConfig != nil || c.CertFile != "", c.AllowOrigins, ice,
		c.UDPPort, c.TCPPort, c.AdvertiseIPs, c.NoLoopback)
}

// LogValue keeps secrets out of structured logs.
func (c ServerConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c ServerConfig) withDefaults() ServerConfig {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.ViewerQueue == 0 {
		c.ViewerQueue = DefaultViewerQueue
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxConnectionsPerClient == 0 {
		c.MaxConnectionsPerClient = DefaultMaxConnectionsPerClient
	}
	if c.HoldTimeout == 0 {
		c.HoldTimeout = DefaultHoldTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c ServerConfig) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
	}
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		return bad("Address %q: want host:port (e.g. \":8889\")", c.Address)
	}
	if c.User == "" && c.Pass != "" {
		return bad("a password without a User")
	}
	if strings.ContainsAny(c.User, ":") {
		return bad("User may not contain ':'")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return bad("CertFile and KeyFile go together")
	}
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		return bad("UDPPort %d: want 1..65535 (0: ephemeral ports)", c.UDPPort)
	}
	if c.TCPPort < 0 || c.TCPPort > 65535 {
		return bad("TCPPort %d: want 1..65535 (0: no ICE-TCP)", c.TCPPort)
	}
	for _, ip := range c.AdvertiseIPs {
		if net.ParseIP(ip) == nil {
			return bad("AdvertiseIPs: %q is not an IP address", ip)
		}
	}
	for _, s := range c.ICEServers {
		if len(s.URLs) == 0 {
			return bad("ICEServers: a server without URLs")
		}
		for _, u := range s.URLs {
			if _, err := stun.ParseURI(u); err != nil {
				return bad("ICEServers: %q: %v", u, err)
			}
		}
	}
	for _, o := range c.AllowOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" {
			return bad("AllowOrigins: %q: want \"*\" or an origin such as https://example.org", o)
		}
	}
	if c.ViewerQueue < 1 || c.ViewerQueue > 1<<16 {
		return bad("ViewerQueue %d: want 1..%d", c.ViewerQueue, 1<<16)
	}
	if c.HandshakeTimeout < 0 || c.MaxViewers < 0 || c.MaxSessions < 0 || c.ReadTimeout < 0 || c.IdleTimeout < 0 {
		return bad("negative HandshakeTimeout, MaxViewers, MaxSessions, ReadTimeout or IdleTimeout")
	}
	if c.MaxConnections < 0 || c.MaxConnectionsPerClient < 0 {
		return bad("negative MaxConnections or MaxConnectionsPerClient")
	}
	return nil
}

// Server serves WebRTC viewers over WHEP, and a page that plays each
// stream, over HTTP(S). Create it with NewServer, then Start; Close stops
// it (it may be started again). Streams may be added and removed at any
// time. It is also an http.Handler, to be mounted in a program's own HTTP
// server instead of Start (the peer connections still need Start for their
// ports: call Start with the Address of a spare port, or serve both). Safe
// for concurrent use.
type Server struct {
	cfg ServerConfig
	log *slog.Logger
	tls *tls.Config

	mu       sync.RWMutex // guards everything below
	running  bool
	hs       *http.Server
	served   chan struct{} // closed when hs.Serve returned
	addr     net.Addr
	api      *pion.API
	closers  []func() error // the ICE muxes of the running server
	streams  pathmap.Map[*Stream]
	sessions map[string]*viewer
	pending  int       // offers held or being negotiated (each holds a MaxSessions slot)
	refused  int       // offers refused by MaxSessions since the last log line
	refusedT time.Time // time of the last log line about them

	wg sync.WaitGroup // viewer goroutines

	logLimit ratelog.Limiter // rate-limited warnings (a flood must not flood the log)
}

// NewServer validates cfg and returns a stopped server.
func NewServer(cfg ServerConfig) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With(slog.String("component", "webrtc")),
		sessions: map[string]*viewer{}}
	s.tls = cfg.TLSConfig
	if s.tls == nil && cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %s / key %s: %v", ErrInvalidConfig, cfg.CertFile, cfg.KeyFile, err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return s, nil
}

// listenErr wraps a listen error with the right sentinel.
func listenErr(what string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w: %s: %v (another program uses the port: choose another)", ErrAddressInUse, what, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrListen, what, err)
}

// h264Codecs are the H.264 variants the server accepts in an offer, all
// packetization-mode=1. The answer lists one: the offered variant whose
// decoders play the stream's SPS profile (chooseProfile); an offer with
// none is refused with 406 and the reason.
var h264Codecs = []struct {
	pt      pion.PayloadType
	profile string
}{
	{96, "42e01f"}, {97, "42001f"}, {98, "4d001f"}, {99, "64001f"}, {100, "640c1f"},
	// Chromium's High: a High 4:4:4 Predictive decoder decodes High streams
	// (H.264 A.2.11); Chromium offers it instead of 64001f.
	{101, "f4001f"},
}

// h264Feedback is the RTCP feedback the server's H.264 formats accept.
var h264Feedback = []pion.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"},
	{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "transport-cc"}}

func h264Fmtp(profile string) string {
	return "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile
}

// newAPI builds the pion API of a run, with its ICE muxes.
func (s *Server) newAPI() (*pion.API, []func() error, error) {
	m := &pion.MediaEngine{}
	fb := h264Feedback
	for _, c := range h264Codecs {
		err := m.RegisterCodec(pion.RTPCodecParameters{
			RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: h264Fmtp(c.profile), RTCPFeedback: fb},
			PayloadType: c.pt,
		}, pion.RTPCodecTypeVideo)
		if err != nil {
			return nil, nil, fmt.Errorf("webrtc: registering H.264: %w", err)
		}
	}
	ir := &interceptor.Registry{}
	if err := pion.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, nil, fmt.Errorf("webrtc: interceptors: %w", err)
	}
	logs := pionLogs{s.log}
	se := pion.SettingEngine{LoggerFactory: logs}
	se.SetIncludeLoopbackCandidate(!s.cfg.NoLoopback)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(4*time.Second, 10*time.Second, 2*time.Second)
	networks := []pion.NetworkType{pion.NetworkTypeUDP4, pion.NetworkTypeUDP6}
	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			_ = c()
		}
	}
	if p := s.cfg.UDPPort; p != 0 {
		opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithLogger(logs.NewLogger("udpmux"))}
		if !s.cfg.NoLoopback {
			opts = append(opts, ice.UDPMuxFromPortWithLoopback())
		}
		mux, err := ice.NewMultiUDPMuxFromPort(p, opts...)
		if err != nil {
			return nil, nil, listenErr(fmt.Sprintf("UDP port %d", p), err)
		}
		closers = append(closers, mux.Close)
		se.SetICEUDPMux(mux)
	}
	if p := s.cfg.TCPPort; p != 0 {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			closeAll()
			return nil, nil, listenErr(fmt.Sprintf("TCP port %d", p), err)
		}
		mux := pion.NewICETCPMux(logs.NewLogger("tcpmux"), ln, 8)
		closers = append(closers, mux.Close, ln.Close)
		se.SetICETCPMux(mux)
		networks = append(networks, pion.NetworkTypeTCP4, pion.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	if len(s.cfg.AdvertiseIPs) > 0 {
		err := se.SetICEAddressRewriteRules(pion.ICEAddressRewriteRule{External: s.cfg.AdvertiseIPs,
			AsCandidateType: pion.ICECandidateTypeHost, Mode: pion.ICEAddressRewriteReplace})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("%w: AdvertiseIPs: %v", ErrInvalidConfig, err)
		}
	}
	api := pion.NewAPI(pion.WithMediaEngine(m), pion.WithInterceptorRegistry(ir), pion.WithSettingEngine(se))
	return api, closers, nil
}

// Start listens and serves. A port in use gives an error wrapping
// ErrAddressInUse that names it.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return ErrRunning
	}
	api, closers, err := s.newAPI()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		for _, c := range closers {
			_ = c()
		}
		return listenErr("HTTP address "+s.cfg.Address, err)
	}
	// The guard retries accept errors that pass (a full descriptor table)
	// with a warning, and closes connections beyond the caps at once
	// (net/http retries such errors too, but logs them at debug level
	// only, and has no cap).
	ln = netguard.New(ln, netguard.Config{Name: "WebRTC", MaxConnections: s.cfg.MaxConnections,
		MaxConnectionsPerClient: s.cfg.MaxConnectionsPerClient, Logger: s.log})
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	// WriteTimeout leaves room for a WHEP answer, which waits for the
	// first picture (HoldTimeout) and ICE gathering (up to 10 s).
	hs := &http.Server{Handler: s, ReadHeaderTimeout: s.cfg.ReadTimeout, ReadTimeout: s.cfg.ReadTimeout,
		WriteTimeout: 30*time.Second + max(s.cfg.HoldTimeout, 0), IdleTimeout: s.cfg.IdleTimeout, MaxHeaderBytes: MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(ln)
	}()
	s.running, s.hs, s.served, s.addr, s.api, s.closers = true, hs, served, ln.Addr(), api, closers
	s.log.Info("WebRTC server listening", "address", s.addr.String(), "tls", s.tls != nil,
		"udp_port", s.cfg.UDPPort, "tcp_port", s.cfg.TCPPort, "auth", s.cfg.User != "")
	return nil
}

// Close ends every viewer session and stops listening. The streams stay
// registered; Start serves them again. Safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	s.running = false
	hs, served, closers := s.hs, s.served, s.closers
	sessions := make([]*viewer, 0, len(s.sessions))
	for _, v := range s.sessions {
		sessions = append(sessions, v)
	}
	s.hs, s.api, s.closers = nil, nil, nil
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = hs.Shutdown(ctx) // lets WHEP requests in progress finish
	cancel()
	_ = hs.Close()
	<-served
	for _, v := range sessions {
		v.close("server closed")
	}
	s.wg.Wait()
	for _, c := range closers {
		_ = c()
	}
	s.log.Info("WebRTC server closed")
}

// Addr is the address the server listens on (with the real port), or nil
// when it is not running.
func (s *Server) Addr() net.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.running {
		return nil
	}
	return s.addr
}

// URLs lists the page URL of every stream, sorted, as
// http://127.0.0.1:PORT/path/ (https:// with TLS), with the real port.
func (s *Server) URLs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, p := range s.streams.Paths() {
		out = append(out, s.urlLocked(p+"/"))
	}
	return out
}

// urlLocked builds the URL of path; the host is the listen host, or
// 127.0.0.1 when listening on all interfaces.
func (s *Server) urlLocked(path string) string {
	host, port, _ := net.SplitHostPort(s.cfg.Address)
	if a, ok := s.addr.(*net.TCPAddr); ok && s.addr != nil {
		port = strconv.Itoa(a.Port)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: path}
	return u.String()
}

// reserved are the path elements the server uses itself.
var reserved = []string{"whep", "clock"}

// normalizePath adds the missing leading "/", removes a trailing one and
// rejects paths a URL cannot carry or that clash with the server's own.
func normalizePath(p string) (string, error) {
	n, err := pathmap.Normalize(p, reserved...)
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrInvalidPath, strings.TrimPrefix(err.Error(), pathmap.ErrInvalid.Error()+": "))
	}
	return n, nil
}

// AddStream creates a stream at path (a missing leading "/" is added): its
// page at /path/ and its WHEP endpoint at /path/whep. Viewers may connect
// before a SkyLine feeds it; they get the picture from the first keyframe.
// A second stream at the same path is an error wrapping ErrStreamExists.
func (s *Server) AddStream(path string, opts StreamOptions) (*Stream, error) {
	p, err := normalizePath(path)
	if err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	st, ok := s.streams.Add(p, func() *Stream { return newStream(s, p, opts) })
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrStreamExists, p)
	}
	s.log.Info("stream added", "path", p)
	return st, nil
}

// RemoveStream removes the stream at path: its viewers are disconnected and
// the path then answers 404. Its SkyLine may keep running; what it sends is
// discarded.
func (s *Server) RemoveStream(path string) error {
	p, err := normalizePath(path)
	if err != nil {
		return err
	}
	st, ok := s.streams.Remove(p)
	if !ok {
		return fmt.Errorf("%w: %s", ErrStreamNotFound, p)
	}
	st.remove()
	s.log.Info("stream removed", "path", p)
	return nil
}

// Stream is the stream at path, or nil.
func (s *Server) Stream(path string) *Stream {
	p, err := normalizePath(path)
	if err != nil {
		return nil
	}
	st, _ := s.streams.Get(p)
	return st
}

// lookup is the stream at an already normalised request path, or nil.
func (s *Server) lookup(p string) *Stream {
	st, _ := s.streams.Get(p)
	return st
}

// credentials are the server-wide credentials.
func (s *Server) credentials() credentials { return credentials{s.cfg.User, s.cfg.Pass} }

// refusedLog logs that an offer was refused by MaxSessions, at most once a
// second (a flood must not flood the log), with the count since.
func (s *Server) refusedLog(remote string, sessions, offers int) {
	s.mu.Lock()
	s.refused++
	now := time.Now()
	if now.Sub(s.refusedT) < time.Second {
		s.mu.Unlock()
		return
	}
	n := s.refused
	s.refused, s.refusedT = 0, now
	s.mu.Unlock()
	s.log.Warn("refused WHEP offers: too many sessions (MaxSessions)", "remote", remote, "refused", n,
		"sessions", sessions, "offers_waiting", offers, "max_sessions", s.cfg.MaxSessions)
}
