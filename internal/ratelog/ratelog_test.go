package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestLimiter: within an interval one line per kind; the others are
// counted on the next line of that kind.
func TestLimiter(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(slog.NewTextHandler(&b, nil))
	var l Limiter
	for i := 0; i < 5; i++ {
		l.Log(log, slog.LevelWarn, "a", "flood a")
	}
	l.Log(log, slog.LevelWarn, "b", "flood b")
	if n := strings.Count(b.String(), "flood a"); n != 1 {
		t.Fatalf("%d lines of kind a, want 1:\n%s", n, &b)
	}
	if n := strings.Count(b.String(), "flood b"); n != 1 {
		t.Fatalf("%d lines of kind b, want 1:\n%s", n, &b)
	}
	// The next line of kind a after the interval counts the 4 left out.
	l.mu.Lock()
	l.last["a"] = l.last["a"].Add(-Interval)
	l.mu.Unlock()
	l.Log(log, slog.LevelWarn, "a", "flood a")
	if !strings.Contains(b.String(), "not_logged_since=4") {
		t.Fatalf("no count of the lines left out:\n%s", &b)
	}
}
