// Package testlog is a log sink for tests: safe for concurrent writers,
// and each write is an event a test can wait on (WaitFor) instead of
// polling what was logged.
package testlog

import (
	"bytes"
	"log/slog"
	"sync"
	"time"
)

// Buffer collects log output. The zero value is ready.
type Buffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{} // closed (and replaced) at each write
}

// Write appends p and wakes the waiters.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.b.Write(p)
	if b.written != nil {
		close(b.written)
		b.written = nil
	}
	return n, err
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Logger is a text logger at level that writes to b.
func (b *Buffer) Logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: level}))
}

// WaitFor waits until cond holds for what was written, checking it at
// once and after each write, for at most d. It reports whether cond held.
func (b *Buffer) WaitFor(d time.Duration, cond func(text string) bool) bool {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		b.mu.Lock()
		if cond(b.b.String()) {
			b.mu.Unlock()
			return true
		}
		if b.written == nil {
			b.written = make(chan struct{})
		}
		written := b.written
		b.mu.Unlock()
		select {
		case <-written:
		case <-timeout.C:
			return cond(b.String())
		}
	}
}
