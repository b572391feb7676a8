package main

import (
	"os"
	"syscall"
)

// interruptibleStdin makes a read of stdin end when os.Stdin is closed
// (Ctrl-C, SIGTERM: the producers' Close). A pipe or socket is blocking by
// default, and os.File reads a blocking descriptor with a plain read(2)
// that Close does not interrupt: with a writer connected that sends
// nothing (a Python program loading its model before its first frame, a
// stalled producer), serve ignored Ctrl-C and SIGTERM until the writer
// went away. Made non-blocking, the descriptor is read through Go's
// poller, whose Close wakes the read (os.NewFile, "non-blocking"). Only
// pipes and sockets: their read end is ours alone (a terminal's is shared
// with the shell, and a regular file never blocks).
func interruptibleStdin() {
	var st syscall.Stat_t
	if err := syscall.Fstat(0, &st); err != nil {
		return
	}
	if mode := st.Mode & syscall.S_IFMT; mode != syscall.S_IFIFO && mode != syscall.S_IFSOCK {
		return
	}
	if err := syscall.SetNonblock(0, true); err != nil {
		return
	}
	blockingStdin = os.Stdin
	os.Stdin = os.NewFile(0, "/dev/stdin")
}

// blockingStdin keeps the os.File that os.Stdin was: unreachable, its
// finalizer would close descriptor 0 under the new one. It is only
// written: being referenced is its whole use.
//
//lint:ignore U1000 kept reachable on purpose (see above)
var blockingStdin *os.File
