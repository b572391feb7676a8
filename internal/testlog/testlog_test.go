package testlog

import (
	"strings"
	"testing"
	"time"
)

// TestWaitFor: a waiter wakes at the write that makes its condition hold;
// one whose condition never holds returns false at its deadline.
func TestWaitFor(t *testing.T) {
	var b Buffer
	done := make(chan bool)
	go func() { done <- b.WaitFor(10*time.Second, func(s string) bool { return strings.Contains(s, "two") }) }()
	_, _ = b.Write([]byte("one\n"))
	_, _ = b.Write([]byte("two\n"))
	if !<-done {
		t.Fatal("the waiter did not see the second write")
	}
	if b.WaitFor(50*time.Millisecond, func(s string) bool { return strings.Contains(s, "three") }) {
		t.Fatal("a condition that never held was reported held")
	}
}
