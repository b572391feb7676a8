package main

import (
	"io"
	"syscall"
	"unsafe"
)

// pending tells whether r has bytes ready to be read at once (FIONREAD, for
// a pipe, socket or regular file), false when it cannot tell. A frame that
// was already waiting when SkyLine came to read it arrived earlier than it
// was read: its read time says how fast SkyLine reads, not when the
// producer made it.
func pending(r io.Reader) bool {
	sc, ok := r.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int32
	ctlErr := rc.Control(func(fd uintptr) {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); e != 0 {
			n = 0
		}
	})
	return ctlErr == nil && n > 0
}
