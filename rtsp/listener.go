package rtsp

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/skyline-go/skyline/internal/netguard"
)

// guardListener is the RTSP server's TCP listener. gortsplib ends the
// whole server on the first Accept error, and reads a new connection's
// first bytes with no deadline; this listener keeps a stranger from
// shutting the server:
//   - netguard retries the Accept errors that pass (EMFILE "too many open
//     files", ENFILE, ENOBUFS, ECONNABORTED, ...) with backoff, logging
//     them; only errors of a listener that is gone end the server;
//   - netguard closes connections beyond MaxConnections, or beyond
//     MaxConnectionsPerClient from one address, at once, with a log line;
//   - every connection is a guardConn (read deadlines below).
//
// Listener is the listener netguard wraps (a test closes it to break the
// server under it).
type guardListener struct {
	net.Listener
	g         *netguard.Listener
	firstByte time.Duration // ServerConfig.FirstRequestTimeout
	readLimit time.Duration // ServerConfig.ReadTimeout
	sndbuf    int
	closing   <-chan struct{}
}

func newGuardListener(ln net.Listener, cfg ServerConfig, log *slog.Logger) *guardListener {
	g := netguard.New(ln, netguard.Config{Name: "RTSP", MaxConnections: cfg.MaxConnections,
		MaxConnectionsPerClient: cfg.MaxConnectionsPerClient, Logger: log})
	return &guardListener{Listener: ln, g: g, firstByte: cfg.FirstRequestTimeout, readLimit: cfg.ReadTimeout,
		sndbuf: cfg.SocketWriteBuffer, closing: g.Closing()}
}

// Close stops listening; Accept then returns net.ErrClosed.
func (l *guardListener) Close() error { return l.g.Close() }

func (l *guardListener) Accept() (net.Conn, error) {
	c, err := l.g.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*netguard.Conn).NetConn().(*net.TCPConn); ok && l.sndbuf > 0 {
		_ = tc.SetWriteBuffer(l.sndbuf)
	}
	g := &guardConn{Conn: c, l: l, armed: true, limit: time.Now().Add(l.firstByte)}
	_ = c.SetReadDeadline(g.limit)
	return g, nil
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
	l *guardListener

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
