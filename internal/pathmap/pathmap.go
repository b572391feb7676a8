// Package pathmap holds a server's streams by URL path: one way to
// normalise and check paths for every server (RTSP, WebRTC), and a map
// guarded for concurrent use.
package pathmap

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// ErrInvalid is wrapped by every error Normalize returns; servers wrap it
// again with their own sentinel.
var ErrInvalid = errors.New("invalid path")

// Normalize adds the missing leading "/", removes a trailing one and
// rejects paths a URL cannot carry (control characters, spaces, ?#%\"<>,
// empty, "." or ".." segments, "//"), and paths with a reserved name as
// one of their elements.
func Normalize(p string, reserved ...string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	p = strings.TrimRight(p, "/")
	if p == "" {
		return "", fmt.Errorf("%w: empty path", ErrInvalid)
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`?#%\"<>`, r) {
			return "", fmt.Errorf("%w: %q has a character a URL path cannot carry (%q)", ErrInvalid, p, r)
		}
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("%w: %q", ErrInvalid, p)
		}
		for _, r := range reserved {
			if seg == r || (strings.HasSuffix(r, "=") && strings.HasPrefix(seg, r)) {
				return "", fmt.Errorf("%w: %q: %q is the server's own", ErrInvalid, p, strings.TrimSuffix(r, "="))
			}
		}
	}
	return p, nil
}

// Map maps normalised paths to streams. The zero value is ready to use.
type Map[T any] struct {
	mu sync.RWMutex
	m  map[string]T
}

// Add stores make() at path unless the path is taken; ok is false then.
func (m *Map[T]) Add(path string, make func() T) (v T, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, taken := m.m[path]; taken {
		return v, false
	}
	if m.m == nil {
		m.m = map[string]T{}
	}
	v = make()
	m.m[path] = v
	return v, true
}

// Remove deletes and returns the stream at path.
func (m *Map[T]) Remove(path string) (v T, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok = m.m[path]
	delete(m.m, path)
	return v, ok
}

// Get returns the stream at path.
func (m *Map[T]) Get(path string) (v T, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok = m.m[path]
	return v, ok
}

// Paths lists the paths, sorted.
func (m *Map[T]) Paths() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.m))
	for p := range m.m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Values lists the streams, in path order.
func (m *Map[T]) Values() []T {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]T, 0, len(m.m))
	for _, p := range m.pathsLocked() {
		out = append(out, m.m[p])
	}
	return out
}

func (m *Map[T]) pathsLocked() []string {
	out := make([]string, 0, len(m.m))
	for p := range m.m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
