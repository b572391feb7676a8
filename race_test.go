//go:build race

package skyline_test

// The race detector makes sync.Pool drop items at random: allocation
// counts that rely on a pool are meaningless under it.
func init() { raceEnabled = true }
