package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/ratelog"
)

// producers hands out the inputs of successive producer sessions: each is
// streamed with a Start of its own and ends with a Stop (the offline card
// shows in between). Next blocks until the next producer, returns io.EOF
// when there will be none, and is interrupted by ctx or Close.
type producers interface {
	Next(ctx context.Context) (input, error)
	// Keep: serve goes on after a producer ends (its end is not the
	// program's).
	Keep() bool
	// Describe says where producers come from, for the start-up lines.
	Describe() string
	Close()
}

// openProducers builds the producers of --input and --keep-serving:
// unix:PATH and tcp:ADDR listen for producers that connect and disconnect;
// any other input is one producer (with --keep-serving, serve stays up
// after it ends; stdin then resumes when new data arrives, as when another
// writer opens the named pipe it reads).
func openProducers(o *serveOptions, log *slog.Logger) (producers, error) {
	switch {
	case strings.HasPrefix(o.input, "unix:"), strings.HasPrefix(o.input, "tcp:"):
		return listenProducers(o, log)
	case (o.input == "stdin" || o.input == "-") && o.keepServing:
		return &stdinProducers{o: o}, nil
	}
	in, err := openInput(o.input, o)
	if err != nil {
		return nil, err
	}
	return &oneProducer{in: in, keep: o.keepServing, what: o.input, closed: make(chan struct{})}, nil
}

// oneProducer is a single input.
type oneProducer struct {
	mu     sync.Mutex
	in     input // until handed out
	keep   bool
	what   string
	closed chan struct{}
	once   sync.Once
	given  input
}

func (p *oneProducer) Keep() bool       { return p.keep }
func (p *oneProducer) Describe() string { return p.what }

func (p *oneProducer) Next(ctx context.Context) (input, error) {
	p.mu.Lock()
	in := p.in
	p.in, p.given = nil, in
	p.mu.Unlock()
	if in != nil {
		return in, nil
	}
	if !p.keep {
		return nil, io.EOF
	}
	select { // --keep-serving: the card plays until Ctrl-C
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.closed:
		return nil, io.EOF
	}
}

// Close closes the input if it was never handed out; a handed-out one is
// closed by its session (runProducers), except a reader (stdin), closed
// here to interrupt a blocked read: GStreamer and test sources follow ctx,
// and must not be closed under a Next in progress.
func (p *oneProducer) Close() {
	p.once.Do(func() { close(p.closed) })
	p.mu.Lock()
	in, given := p.in, p.given
	p.in = nil
	p.mu.Unlock()
	if in != nil {
		in.Close()
	}
	if r, ok := given.(*rawSource); ok {
		r.Close()
	}
}

// stdinProducers: stdin with --keep-serving. After EOF it waits for new
// data (a new writer of a named pipe), polling every 100 ms.
type stdinProducers struct {
	o      *serveOptions
	mu     sync.Mutex
	ended  bool // the first producer ended: wait for data
	closed bool
}

func (p *stdinProducers) Keep() bool       { return true }
func (p *stdinProducers) Describe() string { return "stdin" }

func (p *stdinProducers) Next(ctx context.Context) (input, error) {
	p.mu.Lock()
	ended := p.ended
	p.ended = true
	p.mu.Unlock()
	var r io.Reader = os.Stdin
	if ended {
		var b [1]byte
		for {
			n, err := os.Stdin.Read(b[:])
			if n == 1 {
				r = io.MultiReader(bytes.NewReader(b[:]), os.Stdin)
				break
			}
			if err != nil && !errors.Is(err, io.EOF) {
				if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
					return nil, io.EOF // closed: Ctrl-C
				}
				return nil, err
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return openReader(r, func() {}, p.o)
}

// Close interrupts a read of stdin.
func (p *stdinProducers) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		_ = os.Stdin.Close()
	}
}

// listener accepts producers on a Unix socket or a TCP address, one at a
// time, so that two programs never interleave their frames. A connection
// that arrives while a producer streams is refused (closed, with a warning);
// but when the active producer has gone silent (no complete frame for the
// takeover grace), the new connection takes over: the silent one is closed
// and its session ends as if it had disconnected. So a producer restarted
// after a freeze or a crash that left its connection half-open gets in at
// once instead of waiting for the producer timeout.
//
// Every producer must complete each frame within the producer timeout
// (--producer-timeout, the first frame counting from the first read of its
// connection): a connection that sends nothing, or part of a frame and
// then hangs, or drips a byte at a time, is closed when the bound is
// reached, its session ends (the offline card plays), and the next producer
// gets in. The bound is on the whole frame (one read deadline per frame),
// never on each read.
type listener struct {
	o     *serveOptions
	log   *slog.Logger
	ln    net.Listener
	what  string
	unix  string // socket file to remove at Close
	conns chan *producerConn
	done  chan struct{}
	wg    sync.WaitGroup
	// timeout bounds each frame of a producer; grace is how long the active
	// producer may wait for a frame before a new connection takes over.
	timeout, grace time.Duration

	// unixFile is the socket file as created: Close removes the path only
	// while it is this file.
	unixFile os.FileInfo
	logs     ratelog.Limiter // refusals (a flood must not flood the log)

	mu     sync.Mutex
	active *producerConn // the producer streaming or handed over, nil when none
	closed bool
}

// producerTimeouts gives the bound on one frame of a listening input's
// producer and the takeover grace, for --producer-timeout and --fps: the
// bound is at least 3 frame periods (a producer at --fps 1 is not dropped
// between two frames), the grace max(1 s, 2 frame periods), at most the
// bound.
func producerTimeouts(timeout time.Duration, fps float64) (bound, grace time.Duration) {
	period := time.Duration(float64(time.Second) / fps)
	bound = max(timeout, 3*period)
	grace = min(max(time.Second, 2*period), bound)
	return bound, grace
}

func listenProducers(o *serveOptions, log *slog.Logger) (*listener, error) {
	network, addr, _ := strings.Cut(o.input, ":")
	if addr == "" {
		return nil, fmt.Errorf("--input %s: want unix:/path/to.sock or tcp:HOST:PORT", o.input)
	}
	l := &listener{o: o, log: log, what: o.input, conns: make(chan *producerConn), done: make(chan struct{})}
	l.timeout, l.grace = producerTimeouts(o.producerTimeout, o.fps)
	if network == "unix" {
		if err := claimSocketPath(addr); err != nil {
			return nil, fmt.Errorf("--input %s: %w", o.input, err)
		}
		l.unix = addr
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("--input %s: %w", o.input, err)
	}
	l.ln = ln
	if ul, ok := ln.(*net.UnixListener); ok && !strings.HasPrefix(addr, "@") { // @: Linux's abstract namespace, no file
		// Close removes the socket file only while it is still this
		// listener's (Go's unlink on close would remove whatever file has
		// the path by then: another serve's, started after this one's file
		// was deleted).
		ul.SetUnlinkOnClose(false)
		if l.unixFile, err = os.Lstat(addr); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("--input %s: %w", o.input, err)
		}
	}
	if network == "tcp" {
		l.what = "tcp:" + ln.Addr().String()
		if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
			// A producer needs no credentials: whoever reaches the port
			// streams to the viewers while no producer does.
			log.Warn("producer input: listening beyond this machine, with no authentication: anyone who can reach "+
				"the port can stream to the viewers while no producer streams (listen on 127.0.0.1, or unix:PATH, "+
				"unless that is intended)", "input", l.what)
		}
	}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

func (l *listener) Keep() bool { return true }

func (l *listener) Describe() string { return l.what }

// accept owns the listening socket: it hands each connection to Next when
// no producer is streaming, lets it take over from a silent one, refuses it
// otherwise, and retries accept errors with backoff (a full descriptor
// table must not end the input for good).
func (l *listener) accept() {
	defer l.wg.Done()
	backoff := 10 * time.Millisecond
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			l.log.Warn("producer input: accept failed, retrying", "input", l.what, "error", err, "in", backoff)
			select {
			case <-l.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		pc := newProducerConn(c)
		if !l.admit(pc) {
			_ = c.Close()
			continue
		}
		select {
		case l.conns <- pc:
			// Next stamps the time its first frame is awaited from (the
			// time pc spent handed over does not count) before admit
			// judges it.
			<-pc.received
		case <-l.done:
			_ = c.Close()
			return
		}
	}
}

// admit decides whether pc becomes the active producer: at once when there
// is none; in place of the active one when that has been waiting for a
// frame for the grace (waiting up to the grace to see whether it is only
// between two frames, or ends); never while it streams (it delivers a frame
// within the grace, or its frames are being encoded).
func (l *listener) admit(pc *producerConn) bool {
	for {
		l.mu.Lock()
		a := l.active
		if a == nil {
			l.active = pc
			l.mu.Unlock()
			return true
		}
		l.mu.Unlock()
		frames, since := a.frames.Load(), a.waitSince.Load()
		if since == 0 { // not reading: its frames are being encoded
			l.refused(pc, a)
			return false
		}
		silent := time.Since(time.Unix(0, since))
		if silent >= l.grace {
			l.mu.Lock()
			taken := l.active == a
			if taken {
				l.active = pc
			}
			l.mu.Unlock()
			if !taken {
				continue
			}
			l.log.Warn("producer input: a new producer takes over from a silent one", "input", l.what,
				"remote", pc.remote, "replaced", a.remote, "no_complete_frame_for", silent.Round(time.Millisecond))
			a.replace(pc.remote, silent)
			return true
		}
		timer := time.NewTimer(l.grace - silent)
		select {
		case <-a.gone:
		case <-a.delivered: // refused at once when it streams
		case <-timer.C:
		case <-l.done:
			timer.Stop()
			return false
		}
		timer.Stop()
		select {
		case <-a.gone: // ended meanwhile: pc may go in
			continue
		default:
		}
		if a.frames.Load() != frames { // it delivered a frame: it streams
			l.refused(pc, a)
			return false
		}
	}
}

// refused logs a refused connection, at most once a second with the count
// of those not logged since (a flood of connections must not flood the
// log).
func (l *listener) refused(pc, active *producerConn) {
	l.logs.Log(l.log, slog.LevelWarn, "refused", "producer input: refused a second producer while one is streaming",
		"input", l.what, "remote", pc.remote, "streaming", active.remote)
}

func (l *listener) Next(ctx context.Context) (input, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.done:
		return nil, io.EOF
	case pc := <-l.conns:
		pc.waitSince.Store(time.Now().UnixNano())
		close(pc.received)
		l.log.Info("producer connected", "input", l.what, "remote", pc.remote)
		in, err := openReader(pc, func() { _ = pc.Close() }, l.o)
		if err != nil {
			l.release(pc)
			return nil, err
		}
		return &connInput{input: in, l: l, pc: pc}, nil
	}
}

// release closes a producer's connection and, unless another producer took
// over from it, lets the next one in.
func (l *listener) release(pc *producerConn) {
	_ = pc.Close()
	l.mu.Lock()
	if l.active == pc {
		l.active = nil
	}
	l.mu.Unlock()
	pc.goneOnce.Do(func() { close(pc.gone) })
}

func (l *listener) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	active := l.active
	l.mu.Unlock()
	close(l.done)
	_ = l.ln.Close()
	if active != nil {
		_ = active.Close()
	}
	l.wg.Wait()
	if l.unixFile != nil {
		if fi, err := os.Lstat(l.unix); err == nil && os.SameFile(fi, l.unixFile) {
			_ = os.Remove(l.unix)
		}
	}
}

// maxSocketPath is the longest path of a Unix socket: sun_path holds 108
// bytes with the terminating NUL on Linux (unix(7)), 104 on the BSDs.
const maxSocketPath = 107

// claimSocketPath makes way for a listening socket at path: a socket file
// left by an earlier run (nothing accepts on it: connecting is refused) is
// removed; a socket a running program listens on (another serve with the
// same --input) and any other file are not touched, and are an error.
func claimSocketPath(path string) error {
	if len(path) > maxSocketPath {
		// bind(2) would say only "invalid argument".
		return fmt.Errorf("the path is %d bytes long, longer than a Unix socket's path can be (%d, unix(7)): "+
			"choose a shorter one", len(path), maxSocketPath)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil // absent (any other problem is Listen's to report)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("%s is in use: another program (another skyline serve?) listens on it; "+
			"choose another path or stop that program", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s exists and cannot be told stale (%v): not replaced", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the stale socket %s: %w", path, err)
	}
	return nil
}

// producerConn is a producer's connection: it counts the bytes of the frame
// being read and says since when a frame has been awaited.
type producerConn struct {
	net.Conn
	remote    string
	gone      chan struct{} // closed when released
	received  chan struct{} // closed when Next took it
	delivered chan struct{} // signalled when a frame is complete (wakes admit)
	goneOnce  sync.Once
	waitSince atomic.Int64 // Unix ns the current frame has been awaited since; 0 while one is streamed
	got       atomic.Int64 // bytes of the current frame read so far
	frames    atomic.Int64 // complete frames read
	replaced  atomic.Pointer[string]
}

func newProducerConn(c net.Conn) *producerConn {
	remote := "unix socket peer"
	if a := c.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		remote = a.String()
	} else if pid := peerPID(c); pid > 0 {
		remote = fmt.Sprintf("unix socket peer pid %d", pid)
	}
	return &producerConn{Conn: c, remote: remote, gone: make(chan struct{}), received: make(chan struct{}),
		delivered: make(chan struct{}, 1)}
}

func (p *producerConn) Read(b []byte) (int, error) {
	n, err := p.Conn.Read(b)
	p.got.Add(int64(n))
	return n, err
}

// SyscallConn lets pending see the socket's queued bytes.
func (p *producerConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := p.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// replace ends this producer's read: another producer took over after it
// was silent for silent.
func (p *producerConn) replace(by string, silent time.Duration) {
	msg := fmt.Sprintf("replaced by a new producer (%s) after %v without a complete frame", by, silent.Round(time.Millisecond))
	p.replaced.Store(&msg)
	_ = p.Close()
}

// connInput is a producer's connection: each frame must be complete within
// the producer timeout; closing it lets the next producer in.
type connInput struct {
	input
	l    *listener
	pc   *producerConn
	once sync.Once
}

// Next reads one frame with one read deadline for all of it, so that a
// producer dripping a byte at a time cannot hold the input.
func (c *connInput) Next(ctx context.Context) (skyline.Frame, error) {
	start := time.Now()
	c.pc.got.Store(0)
	c.pc.waitSince.CompareAndSwap(0, start.UnixNano()) // the first frame: since its handover
	_ = c.pc.SetReadDeadline(start.Add(c.l.timeout))
	f, err := c.input.Next(ctx)
	if err == nil {
		c.pc.waitSince.Store(0) // on error it stays: no frame came
		c.pc.frames.Add(1)
		select {
		case c.pc.delivered <- struct{}{}:
		default:
		}
		return f, nil
	}
	if msg := c.pc.replaced.Load(); msg != nil {
		return f, fmt.Errorf("producer %s: %s", c.pc.remote, *msg)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		got, frames := c.pc.got.Load(), c.pc.frames.Load()
		if frames == 0 {
			return f, fmt.Errorf("producer %s: first-frame timeout: no complete frame within %v of its connection "+
				"(--producer-timeout; %d bytes arrived): closed it", c.pc.remote, c.l.timeout, got)
		}
		return f, fmt.Errorf("producer %s: idle timeout: frame %d not complete within %v "+
			"(--producer-timeout; %d bytes of it arrived): closed it", c.pc.remote, frames+1, c.l.timeout, got)
	}
	return f, err
}

func (c *connInput) Close() { c.once.Do(func() { c.l.release(c.pc) }) }
