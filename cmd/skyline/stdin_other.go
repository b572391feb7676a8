//go:build !linux

package main

// interruptibleStdin: see stdin_linux.go; elsewhere stdin stays as it is.
func interruptibleStdin() {}
