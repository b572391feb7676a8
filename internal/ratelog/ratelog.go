// Package ratelog keeps a flood (of connections, refused requests, accept
// errors) from flooding the log: at most one line per kind and second, the
// next one counting those left out.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Interval is the least time between two lines of one kind.
const Interval = time.Second

// Limiter rate-limits log lines by kind. The zero value is ready; it is
// safe for concurrent use and never logs under its lock.
type Limiter struct {
	mu    sync.Mutex
	last  map[string]time.Time
	quiet map[string]int
}

// Log logs msg on log at level, unless a line of kind was logged less than
// Interval ago; then it only counts it. A line that follows left-out ones
// carries "not_logged_since" with their number.
func (l *Limiter) Log(log *slog.Logger, level slog.Level, kind, msg string, args ...any) {
	l.mu.Lock()
	if l.last == nil {
		l.last, l.quiet = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if now.Sub(l.last[kind]) < Interval {
		l.quiet[kind]++
		l.mu.Unlock()
		return
	}
	if n := l.quiet[kind]; n > 0 {
		args = append(args, "not_logged_since", n)
	}
	l.last[kind], l.quiet[kind] = now, 0
	l.mu.Unlock()
	log.Log(context.Background(), level, msg, args...)
}
