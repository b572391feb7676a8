package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestServeStdinSilentWriterInterrupt: Ctrl-C (and SIGTERM) end `serve
// --input stdin` while the pipe's writer is connected and sends nothing:
// a program loading its model before its first frame (--keep-serving, no
// frame yet) or a stalled producer (after some frames). serve waited in a
// read(2) of the pipe that closing os.Stdin does not interrupt, and went on
// until the writer went away.
func TestServeStdinSilentWriterInterrupt(t *testing.T) {
	const w, h = 64, 48
	for _, tc := range []struct {
		name   string
		flags  string
		frames int
		sig    os.Signal
	}{
		{"keep-serving, before the first frame, SIGINT", "--keep-serving", 0, os.Interrupt},
		{"stalled after 5 frames, SIGTERM", "", 5, syscall.SIGTERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "frames")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			c := startShell(t, fmt.Sprintf(`exec "$0" serve --input stdin %s --size %dx%d --fps 30 `+
				`--listen 127.0.0.1:%d --no-udp --status never < %s`, tc.flags, w, h, freePort(t), fifo))
			f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close() // held open, silent, until the end of the test
			if _, err := f.Write(make([]byte, tc.frames*w*h*3)); err != nil {
				t.Fatal(err)
			}
			c.line(t, "SkyLine: streaming stdin")
			if err := c.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-c.done:
				if err != nil {
					t.Errorf("exit: %v; stderr: %s", err, c.stderr.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("serve still runs 15 s after %v, its pipe's writer connected and silent", tc.sig)
			}
			// The signal may come before serve has read every frame written
			// (the streaming line follows the first): those still in the
			// pipe were never accepted. Every frame read is encoded.
			for l := range c.lines {
				var n, enc, dropped int
				if _, err := fmt.Sscanf(l, "SkyLine: stopped after %d frames (%d encoded, %d dropped)", &n, &enc, &dropped); err != nil {
					continue
				}
				if n < min(1, tc.frames) || n > tc.frames || enc != n || dropped != 0 {
					t.Errorf("%q, want %d to %d frames, all encoded", l, min(1, tc.frames), tc.frames)
				}
			}
		})
	}
}
