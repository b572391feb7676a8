package skyline_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind (sessions own theirs).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
