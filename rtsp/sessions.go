package rtsp

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/skyline-go/skyline/internal/ratelog"
)

// sessionCap counts the sessions of each client address against
// MaxConnectionsPerClient. A connection cap alone does not bound them: an
// RTSP session is not tied to a connection (RFC 2326 section 3.4), so a UDP
// session set up and played lives on after its connection closes, until
// IdleTimeout, and a client that hangs up and sets up again would pile up
// sessions, each sent the whole stream.
type sessionCap struct {
	max int

	mu      sync.Mutex
	perHost map[string]int

	refused atomic.Uint64
	logs    ratelog.Limiter
}

func newSessionCap(max int) *sessionCap {
	return &sessionCap{max: max, perHost: map[string]int{}}
}

// hostOf is the IP address of a host:port address.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// take counts a new session of addr (host:port), or reports false when
// the address has max sessions already.
func (c *sessionCap) take(addr string) bool {
	h := hostOf(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.perHost[h] >= c.max {
		c.refused.Add(1)
		return false
	}
	c.perHost[h]++
	return true
}

// release uncounts a session taken for addr.
func (c *sessionCap) release(addr string) {
	h := hostOf(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.perHost[h]--; c.perHost[h] <= 0 {
		delete(c.perHost, h)
	}
}
