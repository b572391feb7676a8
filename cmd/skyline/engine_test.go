package main

import (
	"bufio"
	byteorder "encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// engineProc is `skyline engine` driven over its protocol.
type engineProc struct {
	t   *testing.T
	cmd *exec.Cmd
	in  *os.File
	out *bufio.Scanner
	id  int
}

func startEngine(t *testing.T) *engineProc {
	t.Helper()
	cmd := exec.Command(binary, "engine", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "SKYLINE_REEXEC=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &engineProc{t: t, cmd: cmd, in: stdin.(*os.File), out: bufio.NewScanner(stdout)}
}

// call sends a request and returns its reply (events are skipped).
func (e *engineProc) call(req map[string]any) map[string]any {
	e.t.Helper()
	e.id++
	req["id"] = e.id
	b, _ := json.Marshal(req)
	if _, err := e.in.Write(append(b, '\n')); err != nil {
		e.t.Fatal(err)
	}
	for e.out.Scan() {
		var m map[string]any
		if err := json.Unmarshal(e.out.Bytes(), &m); err != nil {
			e.t.Fatalf("reply %q: %v", e.out.Text(), err)
		}
		if m["ev"] == nil && m["id"] == float64(e.id) {
			return m
		}
	}
	e.t.Fatalf("engine ended before answering %v", req)
	return nil
}

func (e *engineProc) send(req map[string]any) {
	b, _ := json.Marshal(req)
	_, _ = e.in.Write(append(b, '\n'))
}

// makeRing writes a ring file as the Python package does.
func makeRing(t *testing.T, slots, slotSize int, magic string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ring")
	b := make([]byte, ringHeader+slots*(slotHeader+slotSize))
	copy(b, magic)
	byteorder.LittleEndian.PutUint32(b[8:], 1)
	byteorder.LittleEndian.PutUint32(b[12:], uint32(slots))
	byteorder.LittleEndian.PutUint64(b[16:], uint64(slotSize))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantError(t *testing.T, rep map[string]any, sub string) {
	t.Helper()
	if rep["ok"] != false || !strings.Contains(fmt.Sprint(rep["error"]), sub) {
		t.Errorf("reply %v: want an error containing %q", rep, sub)
	}
}

// TestEngineProtocolBadRequests: every malformed request gets an error that
// says what is wrong, the engine keeps serving, a frame line naming a slot
// that was not filled is counted (not a crash), and EOF on stdin ends the
// engine with status 0 and unlinks nothing it did not map.
func TestEngineProtocolBadRequests(t *testing.T) {
	e := startEngine(t)
	if rep := e.call(map[string]any{"op": "hello"}); rep["ok"] != true || rep["pid"] == nil {
		t.Fatalf("hello: %v", rep)
	}
	wantError(t, e.call(map[string]any{"op": "fly"}), `unknown op "fly"`)
	wantError(t, e.call(map[string]any{"op": "start", "stream": "nope"}), `no stream "nope"`)
	wantError(t, e.call(map[string]any{"op": "add", "stream": "a", "kind": "rtsp", "path": "/a"}), "no RTSP server")
	wantError(t, e.call(map[string]any{"op": "server", "port": 70000}), "port 70000")
	if rep := e.call(map[string]any{"op": "server", "port": freePort(t), "udp": false}); rep["ok"] != true {
		t.Fatalf("server: %v", rep)
	}
	wantError(t, e.call(map[string]any{"op": "add", "stream": "b", "kind": "carrier-pigeon"}), `kind "carrier-pigeon"`)
	wantError(t, e.call(map[string]any{"op": "add", "stream": "c", "kind": "rtsp", "path": "/c",
		"options": map[string]any{"profile": "ultra"}}), "ultra")
	wantError(t, e.call(map[string]any{"op": "add", "stream": "d", "kind": "kvs",
		"kvs": map[string]any{"region": "us-east-1", "stream": "x", "handler": "telepathy"}}), `handler "telepathy"`)
	if rep := e.call(map[string]any{"op": "add", "stream": "s", "kind": "rtsp", "path": "s"}); rep["ok"] != true {
		t.Fatalf("add: %v", rep)
	}
	wantError(t, e.call(map[string]any{"op": "add", "stream": "s", "kind": "rtsp", "path": "/t"}), "in use")
	start := func(ring string, slots, size int) map[string]any {
		return e.call(map[string]any{"op": "start", "stream": "s", "fps": 30, "width": 64, "height": 48,
			"ring": ring, "slots": slots, "slot_size": size})
	}
	wantError(t, start("/nonexistent/ring", 4, 64*48*4), "no such file")
	wantError(t, start(makeRing(t, 4, 64*48*4, ringMagic), 4, 64*48*4+64), "size")
	wantError(t, start(makeRing(t, 4, 64*48*4, "NOTARING"), 4, 64*48*4), "header")
	wantError(t, start(makeRing(t, 100, 64, ringMagic), 100, 64), "want 1..64 slots")
	ring := makeRing(t, 2, 64*48*4, ringMagic)
	if rep := start(ring, 2, 64*48*4); rep["ok"] != true || rep["state"] != "STREAMING" {
		t.Fatalf("start: %v", rep)
	}
	if _, err := os.Stat(ring); !os.IsNotExist(err) {
		t.Errorf("ring file still there after the engine mapped it: %v", err)
	}
	e.send(map[string]any{"op": "frame", "stream": "s", "slot": 0}) // not filled
	e.send(map[string]any{"op": "frame", "stream": "s", "slot": 9}) // no such slot
	rep := e.call(map[string]any{"op": "stats", "stream": "s"})
	st, _ := rep["stats"].(map[string]any)
	if st["engine_bad_slots"] != float64(2) || st["accepted"] != float64(0) {
		t.Errorf("stats: %v", rep)
	}
	if !strings.Contains(mapsOf(t, e.cmd.Process.Pid), ring) {
		t.Errorf("ring %s not mapped while streaming", ring)
	}
	if rep := e.call(map[string]any{"op": "stop", "stream": "s"}); rep["ok"] != true || rep["state"] != "STOPPED" {
		t.Fatalf("stop: %v", rep)
	}
	if strings.Contains(mapsOf(t, e.cmd.Process.Pid), ring) {
		t.Errorf("ring %s still mapped after stop", ring)
	}
	e.send(map[string]any{"op": "frame", "stream": "s", "slot": 0}) // after stop: counted, no crash
	rep = e.call(map[string]any{"op": "stats", "stream": "s"})
	if st, _ := rep["stats"].(map[string]any); st["engine_bad_slots"] != float64(3) {
		t.Errorf("stats after stop: %v", rep)
	}
	_ = e.in.Close()
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("engine after EOF: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("engine still running 15 s after EOF on stdin")
	}
}

// mapsOf is /proc/pid/maps (the engine's mappings).
func mapsOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCredentialFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		text, want, err string
	}{
		{"CREDENTIALS\tAKID\tSECRET\n", "AKID/SECRET//false", ""},
		{"CREDENTIALS\tAKID\t2030-01-02T03:04:05Z\tSECRET\tTOKEN\n", "AKID/SECRET/TOKEN/true", ""},
		{"CREDENTIALS\tAKID\tyesterday\tSECRET\tTOKEN\n", "", `expiry "yesterday"`},
		{"CREDENTIALS AKID SECRET\n", "", "no CREDENTIALS line"},
		{"", "", "no CREDENTIALS line"},
	} {
		p := filepath.Join(dir, "c")
		if err := os.WriteFile(p, []byte(c.text), 0o600); err != nil {
			t.Fatal(err)
		}
		cr, err := credentialFile(p).read()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.text, err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), "SECRET") {
				t.Errorf("%q: the error shows the secret: %v", c.text, err)
			}
			continue
		}
		got := fmt.Sprintf("%s/%s/%s/%v", cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken, cr.CanExpire)
		if err != nil || got != c.want {
			t.Errorf("%q: %s, %v; want %s", c.text, got, err, c.want)
		}
	}
}
