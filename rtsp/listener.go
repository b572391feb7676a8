package rtsp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Accept retry backoff (as net/http's Server does): from acceptBackoffMin,
// doubling, up to acceptBackoffMax.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// guardListener is the RTSP server's TCP listener. gortsplib ends the
// whole server on the first Accept error, and reads a new connection's
// first bytes with no deadline; this listener keeps a stranger from
// shutting the server:
//   - Accept errors that pass (EMFILE "too many open files", ENFILE,
//     ENOBUFS, ECONNABORTED, ...) are logged and retried with backoff;
//     only errors of a listener that is gone end the server;
//   - connections beyond MaxConnections, or beyond MaxConnectionsPerClient
//     from one address, are closed at once, with a log line;
//   - every connection is a guardConn (read deadlines below).
type guardListener struct {
	net.Listener
	log        *slog.Logger
	firstByte  time.Duration // ServerConfig.FirstRequestTimeout
	readLimit  time.Duration // ServerConfig.ReadTimeout
	maxTotal   int
	maxPerAddr int
	sndbuf     int

	mu      sync.Mutex // guards the fields below
	total   int
	perAddr map[string]int
	logged  map[string]time.Time // last log line per kind, to rate-limit them
	quiet   map[string]int       // lines not logged since

	closing chan struct{}
	once    sync.Once
}

func newGuardListener(ln net.Listener, cfg ServerConfig, log *slog.Logger) *guardListener {
	return &guardListener{Listener: ln, log: log, firstByte: cfg.FirstRequestTimeout, readLimit: cfg.ReadTimeout,
		maxTotal: cfg.MaxConnections, maxPerAddr: cfg.MaxConnectionsPerClient, sndbuf: cfg.SocketWriteBuffer,
		perAddr: map[string]int{}, logged: map[string]time.Time{}, quiet: map[string]int{}, closing: make(chan struct{})}
}

// Close stops listening; Accept then returns net.ErrClosed.
func (l *guardListener) Close() error {
	l.once.Do(func() { close(l.closing) })
	return l.Listener.Close()
}

// fatalAccept tells the Accept errors of a listener that cannot serve any
// more (closed under us, or broken) from those that pass.
func fatalAccept(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EBADF) ||
		errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSOCK)
}

func (l *guardListener) Accept() (net.Conn, error) {
	backoff := time.Duration(0)
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.closing:
				return nil, err
			default:
			}
			if fatalAccept(err) {
				l.log.Error("RTSP listener failed: the server stops", "error", err)
				return nil, err
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			l.logLimited("accept", slog.LevelWarn, "cannot accept a connection (retrying)",
				"error", err.Error(), "retry_in", backoff)
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
func (l *guardListener) admit(c net.Conn) net.Conn {
	addr := c.RemoteAddr().String()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	l.mu.Lock()
	over := ""
	switch {
	case l.maxTotal > 0 && l.total >= l.maxTotal:
		over = "MaxConnections"
	case l.maxPerAddr > 0 && l.perAddr[host] >= l.maxPerAddr:
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
		l.logLimited("cap:"+over, slog.LevelWarn, "refused a connection: too many connections ("+over+")",
			"remote", addr, "connections", total, "from_this_address", fromHost,
			"max_connections", l.maxTotal, "max_connections_per_client", l.maxPerAddr)
		return nil
	}
	if tc, ok := c.(*net.TCPConn); ok && l.sndbuf > 0 {
		_ = tc.SetWriteBuffer(l.sndbuf)
	}
	g := &guardConn{Conn: c, l: l, host: host, armed: true, limit: time.Now().Add(l.firstByte)}
	_ = c.SetReadDeadline(g.limit)
	return g
}

func (l *guardListener) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perAddr[host]--; l.perAddr[host] <= 0 {
		delete(l.perAddr, host)
	}
}

// logLimited logs at most one line per kind and second, counting the
// others (an attack or a full descriptor table must not flood the log).
func (l *guardListener) logLimited(kind string, level slog.Level, msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.logged[kind]) < time.Second {
		l.quiet[kind]++
		l.mu.Unlock()
		return
	}
	l.logged[kind] = now
	if n := l.quiet[kind]; n > 0 {
		args = append(args, "not_logged_since", n)
	}
	l.quiet[kind] = 0
	l.mu.Unlock()
	l.log.Log(context.Background(), level, msg, args...)
}

// guardConn bounds the reads of one connection. gortsplib sets a read
// deadline (IdleTimeout, 60 s by default) before it reads each message,
// and none before a new connection's first bytes. guardConn adds:
//   - a connection must send its first bytes within FirstRequestTimeout;
//   - once a message has begun (its first bytes read), it must be read
//     whole within ReadTimeout: a partial request cannot hold the
//     connection for the idle timeout.
//
// A message ends when gortsplib sets the deadline for the next one.
type guardConn struct {
	net.Conn
	l    *guardListener
	host string
	once sync.Once

	mu       sync.Mutex // guards the fields below
	deadline time.Time  // gortsplib's read deadline
	limit    time.Time  // ours (zero: none)
	armed    bool       // waiting for the first bytes of a message
}

func (g *guardConn) Read(b []byte) (int, error) {
	n, err := g.Conn.Read(b)
	if n > 0 {
		g.mu.Lock()
		if g.armed {
			g.armed = false
			limit := time.Now().Add(g.l.readLimit)
			if g.limit.IsZero() || limit.Before(g.limit) {
				g.limit = limit
			}
			g.applyLocked()
		}
		g.mu.Unlock()
	}
	return n, err
}

func (g *guardConn) SetReadDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deadline = t
	if !g.armed {
		// Bytes were read since the last deadline: a message was read.
		g.armed, g.limit = true, time.Time{}
	}
	return g.applyLocked()
}

func (g *guardConn) SetDeadline(t time.Time) error {
	if err := g.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return g.SetReadDeadline(t)
}

func (g *guardConn) applyLocked() error {
	d := g.deadline
	if !g.limit.IsZero() && (d.IsZero() || g.limit.Before(d)) {
		d = g.limit
	}
	return g.Conn.SetReadDeadline(d)
}

func (g *guardConn) Close() error {
	g.once.Do(func() { g.l.release(g.host) })
	return g.Conn.Close()
}
