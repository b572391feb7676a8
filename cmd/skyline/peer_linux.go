package main

import (
	"net"
	"syscall"
)

// peerPID is the process id of a Unix socket's peer (SO_PEERCRED), 0 when
// it cannot tell: it names a producer in the log, where a Unix socket has
// no remote address.
func peerPID(c net.Conn) int {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0
	}
	pid := 0
	_ = rc.Control(func(fd uintptr) {
		if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			pid = int(cred.Pid)
		}
	})
	return pid
}
