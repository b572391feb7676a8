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
	"time"
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
// time: a connection that arrives while a producer is streaming is refused
// (closed at once, with a warning), so that two programs never interleave
// their frames; the producer retries once the first has gone.
type listener struct {
	o     *serveOptions
	log   *slog.Logger
	ln    net.Listener
	what  string
	unix  string // socket file to remove at Close
	conns chan net.Conn
	done  chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	busy   bool     // a producer is streaming (or handed over)
	active net.Conn // its connection
	closed bool
}

func listenProducers(o *serveOptions, log *slog.Logger) (*listener, error) {
	network, addr, _ := strings.Cut(o.input, ":")
	if addr == "" {
		return nil, fmt.Errorf("--input %s: want unix:/path/to.sock or tcp:HOST:PORT", o.input)
	}
	l := &listener{o: o, log: log, what: o.input, conns: make(chan net.Conn), done: make(chan struct{})}
	if network == "unix" {
		// A socket file left by an earlier run is replaced; any other file
		// is not touched.
		if fi, err := os.Lstat(addr); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, fmt.Errorf("--input %s: %s exists and is not a socket", o.input, addr)
			}
			_ = os.Remove(addr)
		}
		l.unix = addr
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("--input %s: %w", o.input, err)
	}
	l.ln = ln
	if network == "tcp" {
		l.what = "tcp:" + ln.Addr().String()
	}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

func (l *listener) Keep() bool { return true }

func (l *listener) Describe() string { return l.what }

// accept owns the listening socket: it hands each connection to Next when
// no producer is streaming, refuses it otherwise, and retries accept errors
// with backoff (a full descriptor table must not end the input for good).
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
		l.mu.Lock()
		refuse := l.busy
		if !refuse {
			l.busy = true
		}
		l.mu.Unlock()
		if refuse {
			l.log.Warn("producer input: refused a second producer while one is streaming", "input", l.what,
				"remote", c.RemoteAddr().String())
			_ = c.Close()
			continue
		}
		select {
		case l.conns <- c:
		case <-l.done:
			_ = c.Close()
			return
		}
	}
}

func (l *listener) Next(ctx context.Context) (input, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.done:
		return nil, io.EOF
	case c := <-l.conns:
		l.mu.Lock()
		l.active = c
		l.mu.Unlock()
		l.log.Info("producer connected", "input", l.what, "remote", c.RemoteAddr().String())
		in, err := openReader(c, func() { _ = c.Close() }, l.o)
		if err != nil {
			l.release(c)
			return nil, err
		}
		return &connInput{input: in, l: l, c: c}, nil
	}
}

// release closes a producer's connection and lets the next one in.
func (l *listener) release(c net.Conn) {
	_ = c.Close()
	l.mu.Lock()
	if l.active == c {
		l.active = nil
	}
	l.busy = false
	l.mu.Unlock()
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
	if l.unix != "" {
		_ = os.Remove(l.unix)
	}
}

// connInput is a producer's connection: closing it lets the next one in.
type connInput struct {
	input
	l    *listener
	c    net.Conn
	once sync.Once
}

func (c *connInput) Close() { c.once.Do(func() { c.l.release(c.c) }) }
