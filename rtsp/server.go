package rtsp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v5"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/pathmap"
)

// Defaults for the zero values of ServerConfig.
const (
	DefaultAddress           = ":8554"
	DefaultUDPPort           = 8000
	DefaultMulticastIPRange  = "224.1.0.0/16"
	DefaultMulticastPort     = 8002
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 5 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultSlowViewerTimeout = 5 * time.Second
	DefaultWriteQueueSize    = 1024

	DefaultFirstRequestTimeout     = 10 * time.Second
	DefaultMaxConnections          = 1000
	DefaultMaxConnectionsPerClient = 100
)

// ServerConfig configures a Server. The zero value is valid: every field's
// zero value is the documented default.
type ServerConfig struct {
	// Address is the RTSP (TCP) listen address. Default ":8554". Port 0
	// picks a free port (see Addr and URLs).
	Address string

	// User and Pass, when User is set, are required from every viewer
	// (server-wide; a stream may override them in StreamOptions).
	User, Pass string
	// AuthMethods are the schemes offered and accepted. Default basic and
	// digest (DefaultAuthMethods).
	AuthMethods []AuthMethod

	// CertFile and KeyFile (PEM), or TLSConfig, turn the server into an
	// RTSPS server: every connection is TLS and URLs start with rtsps://.
	// TLSConfig wins when both are given.
	CertFile, KeyFile string
	TLSConfig         *tls.Config

	// UDPPort is the RTP port of the UDP transport; RTCP uses UDPPort+1.
	// It must be even. Default 8000 (8000-8001), on the host of Address.
	// DisableUDP turns the UDP transport off (TCP only).
	UDPPort    int
	DisableUDP bool
	// MulticastIPRange is the range multicast groups are taken from, one
	// per stream. Default "224.1.0.0/16". MulticastPort is the RTP port
	// (RTCP: +1, even); default 8002. DisableMulticast turns multicast off.
	MulticastIPRange string
	MulticastPort    int
	DisableMulticast bool

	// ReadTimeout bounds reading one request (or interleaved packet) from
	// its first byte to its last: a partial request is not held longer.
	// Default 10 s.
	ReadTimeout time.Duration
	// FirstRequestTimeout closes a connection that sends nothing for this
	// long after it was accepted. Default 10 s.
	FirstRequestTimeout time.Duration
	// MaxConnections caps the TCP connections served at once; beyond it a
	// new connection is closed at once, with a warning (one per second at
	// most). Default 1000. MaxConnectionsPerClient caps them per client IP
	// address, and caps that address's sessions too (a UDP session outlives
	// its connection until IdleTimeout; beyond the cap SETUP is answered
	// 503). Default 100.
	MaxConnections          int
	MaxConnectionsPerClient int
	// WriteTimeout bounds one write to a viewer: a viewer that does not
	// read for this long is disconnected. Default 5 s.
	WriteTimeout time.Duration
	// IdleTimeout closes sessions of viewers that stopped talking. Default
	// 60 s.
	IdleTimeout time.Duration
	// HoldTimeout is how long a DESCRIBE or SETUP that arrives before the
	// stream's first picture (before Start, during the warm-up, between
	// Stop and Start after a size change) waits for it; then it is
	// answered "503 Service Unavailable" with the reason. Default
	// DefaultHoldTimeout (10 s); negative: answer at once.
	HoldTimeout time.Duration
	// SlowViewerTimeout disconnects a viewer whose write queue has been
	// overflowing (losing packets) continuously for this long. Default 5 s.
	SlowViewerTimeout time.Duration
	// WriteQueueSize is the number of RTP packets queued per viewer before
	// packets are dropped (rounded up to a power of two). Default 1024.
	WriteQueueSize int
	// SocketWriteBuffer, when positive, fixes the kernel send buffer of each
	// viewer's TCP connection (bytes). Default 0: the operating system's
	// autotuning, which lets a stalled viewer absorb up to a few MB before
	// its queue overflows. A small value detects stalled viewers sooner.
	SocketWriteBuffer int

	// Logger is the parent logger; the server logs with component=rtsp.
	// Default slog.Default().
	Logger *slog.Logger
}

// String describes the configuration without the password.
func (c ServerConfig) String() string {
	pass := ""
	if c.Pass != "" {
		pass = "***"
	}
	return fmt.Sprintf("rtsp.ServerConfig{Address:%q User:%q Pass:%q TLS:%v UDPPort:%d DisableUDP:%v Multicast:%q/%d DisableMulticast:%v}",
		c.Address, c.User, pass, c.TLSConfig != nil || c.CertFile != "", c.UDPPort, c.DisableUDP,
		c.MulticastIPRange, c.MulticastPort, c.DisableMulticast)
}

// LogValue keeps the password out of structured logs.
func (c ServerConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c ServerConfig) withDefaults() ServerConfig {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.UDPPort == 0 {
		c.UDPPort = DefaultUDPPort
	}
	if c.MulticastIPRange == "" {
		c.MulticastIPRange = DefaultMulticastIPRange
	}
	if c.MulticastPort == 0 {
		c.MulticastPort = DefaultMulticastPort
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.FirstRequestTimeout == 0 {
		c.FirstRequestTimeout = DefaultFirstRequestTimeout
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
	if c.SlowViewerTimeout == 0 {
		c.SlowViewerTimeout = DefaultSlowViewerTimeout
	}
	if c.WriteQueueSize == 0 {
		c.WriteQueueSize = DefaultWriteQueueSize
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
		return bad("Address %q: want host:port (e.g. \":8554\")", c.Address)
	}
	if c.User == "" && c.Pass != "" {
		return bad("a password without a User")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return bad("CertFile and KeyFile go together")
	}
	if !c.DisableUDP && (c.UDPPort < 2 || c.UDPPort > 65534 || c.UDPPort%2 != 0) {
		return bad("UDPPort %d: want an even port 2..65534", c.UDPPort)
	}
	if !c.DisableMulticast {
		if c.MulticastPort < 2 || c.MulticastPort > 65534 || c.MulticastPort%2 != 0 {
			return bad("MulticastPort %d: want an even port 2..65534", c.MulticastPort)
		}
		_, n, err := net.ParseCIDR(c.MulticastIPRange)
		if err != nil || n.IP.To4() == nil || !n.IP.IsMulticast() {
			return bad("MulticastIPRange %q: want an IPv4 multicast range such as %s", c.MulticastIPRange, DefaultMulticastIPRange)
		}
	}
	if c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0 || c.SlowViewerTimeout < 0 || c.FirstRequestTimeout < 0 {
		return bad("negative timeout")
	}
	if c.MaxConnections < 0 || c.MaxConnectionsPerClient < 0 {
		return bad("negative MaxConnections or MaxConnectionsPerClient")
	}
	if c.SocketWriteBuffer < 0 {
		return bad("negative SocketWriteBuffer")
	}
	if c.WriteQueueSize < 1 || c.WriteQueueSize > 1<<20 {
		return bad("WriteQueueSize %d: want 1..%d", c.WriteQueueSize, 1<<20)
	}
	if _, err := verifyMethods(c.AuthMethods); err != nil {
		return err
	}
	return nil
}

// Server is an RTSP server serving any number of streams by path. Create it
// with NewServer, then Start; Close stops it (it may be started again).
// Streams may be added and removed at any time. Safe for concurrent use.
type Server struct {
	cfg     ServerConfig
	log     *slog.Logger
	tls     *tls.Config
	methods []AuthMethod

	mu      sync.RWMutex // guards everything below
	gs      *gortsplib.Server
	closing <-chan struct{} // closed when gs's listener closes (Close, or failure): held requests give up
	addr    net.Addr
	streams pathmap.Map[*Stream]

	failed   chan error  // Failed
	sessions *sessionCap // sessions per client address
}

// NewServer validates cfg and returns a stopped server.
func NewServer(cfg ServerConfig) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With(slog.String("component", "rtsp")),
		methods: cfg.AuthMethods, failed: make(chan error, 1), sessions: newSessionCap(cfg.MaxConnectionsPerClient)}
	s.tls = cfg.TLSConfig
	if s.tls == nil && cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %s / key %s: %v", ErrTLS, cfg.CertFile, cfg.KeyFile, err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return s, nil
}

// Start listens and serves. A port in use gives an error wrapping
// ErrAddressInUse that names it.
func (s *Server) Start() error {
	s.mu.Lock()
	if s.gs != nil {
		s.mu.Unlock()
		return ErrRunning
	}
	methods, _ := verifyMethods(s.cfg.AuthMethods)
	host, _, _ := net.SplitHostPort(s.cfg.Address)
	gs := &gortsplib.Server{
		Handler:        &handler{s: s},
		RTSPAddress:    s.cfg.Address,
		ReadTimeout:    s.cfg.ReadTimeout,
		WriteTimeout:   s.cfg.WriteTimeout,
		IdleTimeout:    s.cfg.IdleTimeout,
		TLSConfig:      s.tls,
		WriteQueueSize: ceilPow2(s.cfg.WriteQueueSize),
		AuthMethods:    methods,
	}
	var gl *guardListener
	gs.Listen = func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		gl = newGuardListener(ln, s.cfg, s.log)
		return gl, nil
	}
	if !s.cfg.DisableUDP {
		gs.UDPRTPAddress = net.JoinHostPort(host, strconv.Itoa(s.cfg.UDPPort))
		gs.UDPRTCPAddress = net.JoinHostPort(host, strconv.Itoa(s.cfg.UDPPort+1))
	}
	if !s.cfg.DisableMulticast {
		gs.MulticastIPRange = s.cfg.MulticastIPRange
		gs.MulticastRTPPort = s.cfg.MulticastPort
		gs.MulticastRTCPPort = s.cfg.MulticastPort + 1
	}
	if err := gs.Start(); err != nil {
		s.mu.Unlock()
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%w: %v (another program, or another server, uses the port: choose another Address/UDPPort or disable UDP)", ErrAddressInUse, err)
		}
		return fmt.Errorf("%w: %v", ErrListen, err)
	}
	// gortsplib closes its listener first when it ends, by Close or by a
	// failed listener (before it waits for the connections): requests held
	// for the first picture then give up, and neither Close nor the
	// failure report waits HoldTimeout for them.
	s.gs, s.closing = gs, gl.closing
	s.addr = gs.NetListener().Addr()
	streams := s.streams.Values()
	s.mu.Unlock()
	go s.watch(gs)
	s.log.Info("RTSP server listening", "address", s.addr.String(), "tls", s.tls != nil,
		"udp", !s.cfg.DisableUDP, "multicast", !s.cfg.DisableMulticast, "auth", s.cfg.User != "")
	for _, st := range streams {
		st.serverStarted() // ask for a keyframe so the stream comes back quickly
	}
	return nil
}

func ceilPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// Close disconnects every viewer and stops listening. The streams stay
// registered; Start serves them again. Safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	gs := s.gs
	s.gs = nil // s.closing stays: gs.Close closes it
	streams := s.streams.Values()
	s.mu.Unlock()
	if gs == nil {
		return
	}
	for _, st := range streams {
		st.detach()
	}
	gs.Close()
	s.log.Info("RTSP server closed")
}

// closingCh is closed when the last started server closes or fails (nil
// before the first Start: a held request then waits for its deadline).
func (s *Server) closingCh() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closing
}

// current is the running gortsplib server, or nil.
func (s *Server) current() *gortsplib.Server {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gs
}

// Addr is the address the server listens on (with the real port), or nil
// when it is not running.
func (s *Server) Addr() net.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.gs == nil {
		return nil
	}
	return s.addr
}

// URLs lists the URL of every stream, sorted, as
// rtsp://127.0.0.1:PORT/path (rtsps:// with TLS), with the real port.
func (s *Server) URLs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, p := range s.streams.Paths() {
		out = append(out, s.urlLocked(p))
	}
	return out
}

// urlLocked builds the URL of path; the host is the listen host, or
// 127.0.0.1 when listening on all interfaces (as the original did).
func (s *Server) urlLocked(path string) string {
	host, port, _ := net.SplitHostPort(s.cfg.Address)
	if s.addr != nil {
		if a, ok := s.addr.(*net.TCPAddr); ok {
			port = strconv.Itoa(a.Port)
		}
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "rtsp"
	if s.tls != nil {
		scheme = "rtsps"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: path}
	return u.String()
}

// normalizePath adds the missing leading "/", removes a trailing one and
// rejects paths a URL cannot carry (and gortsplib's own trackID= element).
func normalizePath(p string) (string, error) {
	n, err := pathmap.Normalize(p, "trackID=")
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrInvalidPath, strings.TrimPrefix(err.Error(), pathmap.ErrInvalid.Error()+": "))
	}
	return n, nil
}

// AddStream creates a stream at path (a missing leading "/" is added). It
// serves viewers as soon as a SkyLine feeding it produces its first
// keyframe. A second stream at the same path is an error wrapping
// ErrStreamExists.
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

// credentials are the server-wide credentials.
func (s *Server) credentials() credentials { return credentials{s.cfg.User, s.cfg.Pass} }

// watch waits for a running gortsplib server to end. When it ends by
// itself (not by Close: its listener or a UDP socket failed), the failure
// is logged, reported to every stream's SkyLine as an EventError and sent
// on Failed; the server is then stopped (Start may start it again).
func (s *Server) watch(gs *gortsplib.Server) {
	err := gs.Wait()
	s.mu.Lock()
	if s.gs != gs {
		s.mu.Unlock()
		return // closed by Close
	}
	s.gs = nil
	streams := s.streams.Values()
	s.mu.Unlock()
	gs.Close() // already ended: frees what is left
	err = fmt.Errorf("%w: %v", ErrServerFailed, err)
	s.log.Error("RTSP server stopped serving", "error", err)
	for _, st := range streams {
		st.detach()
		st.emit(skyline.Event{Kind: skyline.EventError, Destination: st.Name(), Err: err})
	}
	select {
	case s.failed <- err:
	default:
	}
}

// Failed receives an error wrapping ErrServerFailed when the running
// server stops serving by itself (its listener failed); never after Close.
// Programs that depend on the server exit on it (skyline serve does).
func (s *Server) Failed() <-chan error { return s.failed }
