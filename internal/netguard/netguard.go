// Package netguard is the TCP listener guard of the RTSP and WebRTC (HTTP)
// servers: it keeps a stranger from shutting a server or exhausting its
// process.
//
//   - Accept errors that pass (EMFILE "too many open files", ENFILE,
//     ENOBUFS, ECONNABORTED, ...) are logged and retried with backoff (5 ms
//     doubling up to 1 s, as net/http's Server does); only the errors of a
//     listener that is gone (closed, EBADF, EINVAL, ENOTSOCK) are returned.
//   - Connections beyond MaxConnections, or beyond MaxConnectionsPerClient
//     from one IP address, are closed at once, with a warning.
//   - Log lines are rate-limited: at most one per kind and second, with the
//     count of the lines left out.
//
// golang.org/x/net/netutil.LimitListener was not used: it blocks Accept at
// the cap (connections queue in the kernel's backlog, unserved, and
// strangers keep their place) instead of closing them, and it has no
// per-client cap.
package netguard

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/skyline-go/skyline/internal/ratelog"
)

// Accept retry backoff: from BackoffMin, doubling, up to BackoffMax.
const (
	BackoffMin = 5 * time.Millisecond
	BackoffMax = time.Second
)

// Config configures a Listener. Zero caps mean no cap.
type Config struct {
	// Name names the server in log lines ("RTSP", "WebRTC").
	Name string
	// MaxConnections caps the connections open at once (accepted and not
	// yet closed); MaxConnectionsPerClient caps them per remote IP address.
	MaxConnections          int
	MaxConnectionsPerClient int
	// Logger receives the warnings (default slog.Default()).
	Logger *slog.Logger
}

// Listener wraps a net.Listener with the guard. Its Accept returns
// *Conn values; closing one frees its place under the caps.
type Listener struct {
	net.Listener
	cfg  Config
	log  *slog.Logger
	logs ratelog.Limiter

	mu      sync.Mutex // guards the fields below
	total   int
	perAddr map[string]int

	closing chan struct{}
	once    sync.Once
}

// New wraps ln.
func New(ln net.Listener, cfg Config) *Listener {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Listener{Listener: ln, cfg: cfg, log: log, perAddr: map[string]int{}, closing: make(chan struct{})}
}

// Close stops listening; Accept then returns net.ErrClosed.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closing) })
	return l.Listener.Close()
}

// Closing is closed when Close is called.
func (l *Listener) Closing() <-chan struct{} { return l.closing }

// Connections is the number of connections open now (admitted, not yet
// closed).
func (l *Listener) Connections() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Fatal tells the Accept errors of a listener that cannot serve any more
// (closed under us, or broken) from those that pass.
func Fatal(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EBADF) ||
		errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSOCK)
}

// Accept returns the next connection within the caps, retrying the errors
// that pass.
func (l *Listener) Accept() (net.Conn, error) {
	backoff := time.Duration(0)
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.closing:
				return nil, err
			default:
			}
			if Fatal(err) {
				l.log.Error(l.cfg.Name+" listener failed: the server stops", "error", err)
				return nil, err
			}
			backoff = min(max(2*backoff, BackoffMin), BackoffMax)
			l.LogLimited("accept", slog.LevelWarn, "cannot accept a connection (retrying)",
				"server", l.cfg.Name, "error", err.Error(), "retry_in", backoff)
			select {
			case <-l.closing:
				return nil, net.ErrClosed
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		if gc := l.admit(c); gc != nil {
			return gc, nil
		}
	}
}

// admit counts a new connection against the caps, or closes it.
func (l *Listener) admit(c net.Conn) *Conn {
	addr := c.RemoteAddr().String()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	l.mu.Lock()
	over := ""
	switch {
	case l.cfg.MaxConnections > 0 && l.total >= l.cfg.MaxConnections:
		over = "MaxConnections"
	case l.cfg.MaxConnectionsPerClient > 0 && l.perAddr[host] >= l.cfg.MaxConnectionsPerClient:
		over = "MaxConnectionsPerClient"
	}
	if over == "" {
		l.total++
		l.perAddr[host]++
	}
	total, fromHost := l.total, l.perAddr[host]
	l.mu.Unlock()
	if over != "" {
		_ = c.Close()
		l.LogLimited("cap:"+over, slog.LevelWarn, "refused a connection: too many connections ("+over+")",
			"server", l.cfg.Name, "remote", addr, "connections", total, "from_this_address", fromHost,
			"max_connections", l.cfg.MaxConnections, "max_connections_per_client", l.cfg.MaxConnectionsPerClient)
		return nil
	}
	return &Conn{Conn: c, l: l, host: host}
}

func (l *Listener) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perAddr[host]--; l.perAddr[host] <= 0 {
		delete(l.perAddr, host)
	}
}

// LogLimited logs at most one line per kind and second, counting the
// others (an attack or a full descriptor table must not flood the log).
func (l *Listener) LogLimited(kind string, level slog.Level, msg string, args ...any) {
	l.logs.Log(l.log, level, kind, msg, args...)
}

// Conn is an admitted connection; Close frees its place under the caps
// (once).
type Conn struct {
	net.Conn
	l    *Listener
	host string
	once sync.Once
}

// NetConn is the connection the listener accepted.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Close closes the connection and frees its place.
func (c *Conn) Close() error {
	c.once.Do(func() { c.l.release(c.host) })
	return c.Conn.Close()
}
