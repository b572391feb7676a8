package main

import (
	"os/signal"
	"syscall"
)

// keepRunningWithoutReaders makes a reader of our output that goes away (a
// closed pipe: `skyline serve | head -c 200`, a terminal closed) cost only
// that output. By default Go ends the process with SIGPIPE on the first
// write to a broken stdout or stderr (os/signal, "SIGPIPE"), which would cut
// the stream short and leave recordings unfinalised. With SIGPIPE ignored,
// such writes return EPIPE, which the status line and the logs drop: the
// stream and the recordings go on, and an end of input still shuts down
// cleanly. (Standard descriptors closed before start are opened on
// /dev/null by the Go runtime, so later files never take their numbers.)
func keepRunningWithoutReaders() { signal.Ignore(syscall.SIGPIPE) }
