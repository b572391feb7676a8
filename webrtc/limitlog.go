package webrtc

import (
	"sync"
	"time"
)

// logLimiter keeps a flood from flooding the log: at most one line per
// kind and second, the next one counting those left out.
type logLimiter struct {
	mu    sync.Mutex
	last  map[string]time.Time
	quiet map[string]int
}

// limitedLog logs a warning of kind, rate-limited.
func (s *Server) limitedLog(kind, msg string, args ...any) {
	l := &s.logLimit
	l.mu.Lock()
	if l.last == nil {
		l.last, l.quiet = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if now.Sub(l.last[kind]) < time.Second {
		l.quiet[kind]++
		l.mu.Unlock()
		return
	}
	if n := l.quiet[kind]; n > 0 {
		args = append(args, "not_logged_since", n)
	}
	l.last[kind], l.quiet[kind] = now, 0
	l.mu.Unlock()
	s.log.Warn(msg, args...)
}
