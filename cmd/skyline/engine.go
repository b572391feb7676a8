package main

// skyline engine: SkyLine driven by another process (the Python package
// python/skyline) over a small protocol.
//
// Control: one JSON object per line. Requests arrive on stdin; replies and
// events leave on stdout; logs (slog JSON) go to stderr. A request with an
// "id" gets exactly one reply {"id":N,"ok":true,...} or
// {"id":N,"ok":false,"error":"..."}; a request without one (frame) gets none.
//
//	{"id":1,"op":"hello"}                                  -> pid, version
//	{"id":2,"op":"server","port":8554,"udp":true}          configure the RTSP server (not listening yet)
//	{"id":3,"op":"listen"} / {"id":4,"op":"unlisten"}      RTSPServer.start / stop -> "port" (the bound port)
//	{"id":5,"op":"add","stream":"s1","kind":"rtsp","path":"/a","name":"RTSPSkyLine","options":{...}}
//	{"id":6,"op":"add","stream":"s2","kind":"kvs","kvs":{"region":..,"stream":..,...},"options":{...}}
//	{"id":7,"op":"start","stream":"s1","fps":30,"width":640,"height":480,
//	        "session":1,"ring":"/dev/shm/...","slots":4,"slot_size":N}  -> "state"
//	{"op":"frame","stream":"s1","slot":2}                  a frame is in slot 2 (no reply)
//	{"id":8,"op":"stop","stream":"s1"} / "state" / "stats" / "remove"
//
// Events: {"ev":"state","stream":"s1","session":1,"state":"ERROR","error":"..."}
// whenever a stream's SkyLine changes state (ERROR carries the cause).
//
// Frames: the parent creates the ring file (in /dev/shm), the engine maps it
// at "start" and unlinks it, so nothing is left behind by a crash. Layout,
// little endian: a 64-byte file header ("SKYRING1", u32 version=1, u32
// slots, u64 slot_size), then slots of 64-byte header + slot_size bytes:
//
//	off 0 u32 state (0 free, 1 full)  4 u32 format (1 BGR, 2 GRAY, 3 BGRA)
//	8 u32 width  12 u32 height  16 u32 stride (bytes)  24 u64 size (bytes)
//	32 u64 sequence  40 i64 capture time (Unix ns, 0 = when the engine takes it)
//
// The parent fills a free slot (pixels, then the header, state=1 last) and
// sends a frame line; the engine hands the pixels to SkyLine.Put (which
// copies them) and stores state=0. A full ring makes the parent refuse the
// frame, so no queue grows without bound.
//
// Lifetime: the engine exits when stdin reaches EOF (the parent closed it
// or died) or its parent process changes, closing every SkyLine (a clean
// end of stream) and the servers.

import (
	"bufio"
	"context"
	byteorder "encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/kvs"
	"github.com/skyline-go/skyline/rtsp"
	"github.com/skyline-go/skyline/webrtc"
)

// engineMsg is every request's fields.
type engineMsg struct {
	ID      int64         `json:"id"`
	Op      string        `json:"op"`
	Stream  string        `json:"stream"`
	Port    int           `json:"port"`
	UDP     *bool         `json:"udp"`
	Kind    string        `json:"kind"`
	Path    string        `json:"path"`
	Name    string        `json:"name"`
	Options engineOptions `json:"options"`
	KVS     *engineKVS    `json:"kvs"`
	FPS     float64       `json:"fps"`
	Width   int           `json:"width"`
	Height  int           `json:"height"`
	Session int64         `json:"session"`
	Ring    string        `json:"ring"`
	Slots   int           `json:"slots"`
	SlotSz  int           `json:"slot_size"`
	Slot    int           `json:"slot"`
}

// engineOptions are SkyLine's own options (Python keyword arguments).
type engineOptions struct {
	Encoder          string            `json:"encoder"`
	Bitrate          int               `json:"bitrate"`
	Profile          string            `json:"profile"`
	Preset           string            `json:"preset"`
	KeyframeInterval float64           `json:"keyframe_interval"`
	Properties       map[string]string `json:"encoder_properties"`
	QueueSize        int               `json:"queue_size"`
	Drop             string            `json:"drop"`
	Timestamps       string            `json:"timestamps"`
	Outputs          []string          `json:"outputs"`
	Web              string            `json:"web"`
}

// engineKVS is a KVS destination; the credentials come from the Python
// credential handler (inline keys, the environment, or kvssink's file).
type engineKVS struct {
	Region         string         `json:"region"`
	Stream         string         `json:"stream"`
	Endpoint       string         `json:"endpoint"`
	Backend        string         `json:"backend"`
	Create         bool           `json:"create"`
	Handler        string         `json:"handler"` // inline, environment, file
	AccessKey      string         `json:"access_key"`
	SecretKey      skyline.Secret `json:"secret_key"`
	CredentialPath string         `json:"credential_path"`
}

type engine struct {
	log     *slog.Logger
	outMu   sync.Mutex
	out     *bufio.Writer
	srvCfg  rtsp.ServerConfig
	srv     *rtsp.Server
	webs    map[string]*webrtc.Server
	streams map[string]*engineStream
	wg      sync.WaitGroup
}

func engineMain(args []string) int {
	fs := flag.NewFlagSet("engine", flag.ContinueOnError)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(os.Stderr, "skyline engine: --log-level:", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	e := &engine{log: log, out: bufio.NewWriter(os.Stdout), webs: map[string]*webrtc.Server{},
		streams: map[string]*engineStream{}}
	signal.Ignore(syscall.SIGPIPE, syscall.SIGINT) // the parent owns Ctrl-C; EOF ends us
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	lines := make(chan []byte)
	go readLines(os.Stdin, lines)
	ppid := os.Getppid()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				e.shutdown()
				return 0
			}
			e.handle(line)
		case <-tick.C:
			if os.Getppid() != ppid { // the parent died and we were re-parented
				log.Warn("parent process gone: exiting")
				e.shutdown()
				return 0
			}
		case <-term:
			e.shutdown()
			return 0
		}
	}
}

func readLines(r io.Reader, out chan<- []byte) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		out <- append([]byte(nil), sc.Bytes()...)
	}
	close(out)
}

// send writes one reply or event line.
func (e *engine) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		e.log.Error("engine: encoding a reply", "error", err)
		return
	}
	e.outMu.Lock()
	defer e.outMu.Unlock()
	_, _ = e.out.Write(append(b, '\n'))
	_ = e.out.Flush()
}

func (e *engine) reply(id int64, err error, kv ...any) {
	if id == 0 {
		return
	}
	m := map[string]any{"id": id, "ok": err == nil}
	if err != nil {
		m["error"] = err.Error()
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	e.send(m)
}

func (e *engine) handle(line []byte) {
	var m engineMsg
	if err := json.Unmarshal(line, &m); err != nil {
		e.log.Warn("engine: malformed request", "error", err)
		return
	}
	switch m.Op {
	case "hello":
		e.reply(m.ID, nil, "pid", os.Getpid(), "version", moduleVersion())
	case "server":
		e.reply(m.ID, e.configure(m))
	case "listen":
		port, err := e.listen()
		e.reply(m.ID, err, "port", port)
	case "unlisten":
		if e.srv != nil {
			e.srv.Close()
		}
		e.reply(m.ID, nil)
	case "add":
		e.reply(m.ID, e.add(m))
	case "start", "stop", "frame", "state", "stats", "remove":
		st := e.streams[m.Stream]
		if st == nil {
			e.reply(m.ID, fmt.Errorf("no stream %q", m.Stream))
			return
		}
		if m.Op == "remove" {
			delete(e.streams, m.Stream)
		}
		st.reqs <- m // bounded; the parent sends at most slots frames plus a few requests
	default:
		e.reply(m.ID, fmt.Errorf("unknown op %q", m.Op))
	}
}

func (e *engine) configure(m engineMsg) error {
	if e.srv != nil {
		return errors.New("RTSP server already configured")
	}
	if m.Port < 0 || m.Port > 65535 {
		return fmt.Errorf("port %d: want 0..65535", m.Port)
	}
	e.srvCfg = rtsp.ServerConfig{Address: ":" + strconv.Itoa(m.Port), Logger: e.log}
	if m.UDP != nil && !*m.UDP {
		e.srvCfg.DisableUDP, e.srvCfg.DisableMulticast = true, true
	} else if err := udpFree(rtsp.DefaultUDPPort, rtsp.DefaultMulticastPort); err != nil {
		// The server is built before it listens (streams are added first):
		// decide now, as skyline serve does when its UDP ports are taken.
		e.log.Warn("RTSP over UDP is off (its default ports are in use): serving TCP only", "error", err)
		e.srvCfg.DisableUDP, e.srvCfg.DisableMulticast = true, true
	}
	srv, err := rtsp.NewServer(e.srvCfg)
	if err != nil {
		return err
	}
	e.srv = srv
	return nil
}

// udpFree checks that the UDP ports the RTSP server would bind are free.
func udpFree(ports ...int) error {
	for _, p := range ports {
		for _, q := range []int{p, p + 1} {
			c, err := net.ListenPacket("udp", ":"+strconv.Itoa(q))
			if err != nil {
				return err
			}
			_ = c.Close()
		}
	}
	return nil
}

// listen starts the RTSP server (RTSPServer.start).
func (e *engine) listen() (int, error) {
	if e.srv == nil {
		return 0, errors.New("no RTSP server configured")
	}
	if err := e.srv.Start(); err != nil {
		return 0, fmt.Errorf("RTSP server on port %d: %w", e.srvPort(), err)
	}
	return e.srvPort(), nil
}

func (e *engine) srvPort() int {
	if e.srv != nil {
		if a := e.srv.Addr(); a != nil {
			if p, err := strconv.Atoi(portOf(a.String())); err == nil {
				return p
			}
		}
	}
	_, p, _ := cutLast(e.srvCfg.Address, ":")
	n, _ := strconv.Atoi(p)
	return n
}

func portOf(addr string) string { _, p, _ := cutLast(addr, ":"); return p }

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

func (e *engine) add(m engineMsg) error {
	if m.Stream == "" || e.streams[m.Stream] != nil {
		return fmt.Errorf("stream id %q: empty or in use", m.Stream)
	}
	st := &engineStream{e: e, id: m.Stream, kind: m.Kind, reqs: make(chan engineMsg, 256), log: e.log.With("stream", m.Stream)}
	if err := st.build(m); err != nil {
		return err
	}
	e.streams[m.Stream] = st
	e.wg.Add(1)
	go st.run()
	return nil
}

func (e *engine) shutdown() {
	for id, st := range e.streams {
		st.reqs <- engineMsg{Op: "remove"}
		delete(e.streams, id)
	}
	e.wg.Wait()
	if e.srv != nil {
		e.srv.Close()
	}
	for _, w := range e.webs {
		w.Close()
	}
}

// engineStream owns one SkyLine and its ring; run handles its requests in
// order, so a frame line is handled after the start that precedes it.
type engineStream struct {
	e    *engine
	id   string
	kind string
	path string
	log  *slog.Logger
	sl   *skyline.SkyLine
	reqs chan engineMsg
	ring *shmRing
	web  *webrtc.Server // the browser page's server (web option), or nil
	webP string         // this stream's path on it

	session atomic.Int64
	lost    uint64 // frames the ring held that SkyLine refused
	retried uint64 // Puts refused (ErrQueueFull, in Stats.Dropped) and tried again: not a loss
	bad     uint64 // frame lines naming a slot that was not full or malformed
}

func (st *engineStream) build(m engineMsg) error {
	o := m.Options
	cfg := skyline.Config{Logger: st.log, Name: m.Name, NoDotEnv: true, QueueSize: o.QueueSize,
		Encoder: skyline.Encoder{Element: o.Encoder, Bitrate: o.Bitrate, Profile: o.Profile, Preset: o.Preset,
			KeyframeInterval: time.Duration(o.KeyframeInterval * float64(time.Second)), Properties: o.Properties}}
	switch o.Drop { // explicit: the library's zero values are DropNone and TimestampsAuto
	case "", "newest":
		cfg.Drop = skyline.DropNewest
	case "oldest":
		cfg.Drop = skyline.DropOldest
	default:
		return fmt.Errorf("drop %q: want newest or oldest", o.Drop)
	}
	switch o.Timestamps {
	case "", "capture":
		cfg.Timestamps = skyline.TimestampsCapture
	case "fixed":
		cfg.Timestamps = skyline.TimestampsFixedRate
	default:
		return fmt.Errorf("timestamps %q: want capture or fixed", o.Timestamps)
	}
	cfg.OnEvent = func(ev skyline.Event) {
		if ev.Kind != skyline.EventState {
			return
		}
		msg := map[string]any{"ev": "state", "stream": st.id, "session": st.session.Load(), "state": ev.State.String()}
		if ev.State == skyline.StateError && st.sl != nil {
			if err := st.sl.Err(); err != nil {
				msg["error"] = err.Error()
			}
		}
		st.e.send(msg)
	}
	var dests []skyline.Destination
	var cleanup []func()
	fail := func(err error) error {
		for _, c := range cleanup {
			c()
		}
		return err
	}
	switch m.Kind {
	case "rtsp":
		if st.e.srv == nil {
			return errors.New("no RTSP server configured")
		}
		rs, err := st.e.srv.AddStream(m.Path, rtsp.StreamOptions{})
		if err != nil {
			return err
		}
		st.path = rs.Path()
		cleanup = append(cleanup, func() { _ = st.e.srv.RemoveStream(st.path) })
		dests = append(dests, rs)
	case "kvs":
		d, err := newEngineKVS(m.KVS, st.log)
		if err != nil {
			return err
		}
		dests = append(dests, d)
	default:
		return fmt.Errorf("kind %q: want rtsp or kvs", m.Kind)
	}
	for _, spec := range o.Outputs {
		d, err := parseOut(spec, st.log)
		if err != nil {
			return fail(err)
		}
		dests = append(dests, d)
	}
	if o.Web != "" {
		ws, err := st.e.webStream(o.Web, webPath(m))
		if err != nil {
			return fail(fmt.Errorf("web %s: %w", o.Web, err))
		}
		st.web, st.webP = st.e.webs[o.Web], ws.Path()
		cleanup = append(cleanup, func() { _ = st.web.RemoveStream(st.webP) })
		dests = append(dests, ws)
	}
	sl, err := skyline.New(cfg, dests...)
	if err != nil {
		return fail(err)
	}
	st.sl = sl
	return nil
}

func webPath(m engineMsg) string {
	if m.Path != "" {
		return m.Path
	}
	if m.KVS != nil {
		return "/" + m.KVS.Stream
	}
	return "/" + m.Stream
}

func (e *engine) webStream(addr, path string) (*webrtc.Stream, error) {
	srv := e.webs[addr]
	if srv == nil {
		var err error
		if srv, err = webrtc.NewServer(webrtc.ServerConfig{Address: addr, Logger: e.log}); err != nil {
			return nil, err
		}
		if err := srv.Start(); err != nil {
			return nil, err
		}
		e.webs[addr] = srv
	}
	return srv.AddStream(path, webrtc.StreamOptions{})
}

// newEngineKVS maps the Python credential handlers onto the KVS
// destination: inline keys become static credentials, environment uses the
// standard AWS chain (the engine inherited the variables), file reads
// kvssink's credential-path file on every retrieval.
func newEngineKVS(k *engineKVS, log *slog.Logger) (skyline.Destination, error) {
	if k == nil {
		return nil, errors.New("kvs: no settings")
	}
	cfg := kvs.Config{Region: k.Region, Stream: k.Stream, Endpoint: k.Endpoint, CreateStream: k.Create, Logger: log}
	switch k.Backend {
	case "", "native":
	case "kvssink":
		cfg.Backend = kvs.BackendKVSSink
	default:
		return nil, fmt.Errorf("kvs backend %q: want native or kvssink", k.Backend)
	}
	switch k.Handler {
	case "inline":
		cfg.Credentials = credentials.NewStaticCredentialsProvider(k.AccessKey, k.SecretKey.Reveal(), "")
		cfg.KVSSink.Credentials = kvs.CredentialsInline
	case "environment", "":
		cfg.KVSSink.Credentials = kvs.CredentialsEnvironment
	case "file":
		cfg.Credentials = credentialFile(k.CredentialPath)
		cfg.KVSSink.Credentials = kvs.CredentialsFile
		cfg.KVSSink.CredentialPath = k.CredentialPath + ".kvssink"
	default:
		return nil, fmt.Errorf("kvs credentials handler %q: want inline, environment or file", k.Handler)
	}
	cfg.OnEvent = func(ev kvs.Event) {
		if ev.Type == kvs.EventError {
			log.Warn("kvs", "error", ev.Err, "retry_in", ev.Backoff)
		}
	}
	return kvs.New(cfg)
}

// credentialFile reads kvssink's credential-path format:
// CREDENTIALS<TAB>akid<TAB>secret, or CREDENTIALS<TAB>akid<TAB>expiry<TAB>secret<TAB>token
// with the expiry as YYYY-MM-DDTHH:MM:SSZ.
type credentialFile string

func (p credentialFile) Retrieve(context.Context) (aws.Credentials, error) {
	return p.read()
}

func (p credentialFile) read() (aws.Credentials, error) {
	b, err := os.ReadFile(string(p))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("credentials file: %w", err)
	}
	var f []string
	for _, line := range splitLines(string(b)) {
		if fs := splitTabs(line); len(fs) > 0 && fs[0] == "CREDENTIALS" {
			f = fs
		}
	}
	switch len(f) {
	case 3:
		return aws.Credentials{AccessKeyID: f[1], SecretAccessKey: f[2], Source: "kvssink credential file"}, nil
	case 5:
		exp, err := time.Parse("2006-01-02T15:04:05Z", f[2])
		if err != nil {
			return aws.Credentials{}, fmt.Errorf("credentials file %s: expiry %q: %v", string(p), f[2], err)
		}
		return aws.Credentials{AccessKeyID: f[1], SecretAccessKey: f[3], SessionToken: f[4], CanExpire: true,
			Expires: exp, Source: "kvssink credential file"}, nil
	}
	return aws.Credentials{}, fmt.Errorf("credentials file %s: no CREDENTIALS line with 2 or 4 tab-separated fields", string(p))
}

func splitLines(s string) []string { return splitOn(s, '\n') }
func splitTabs(s string) []string  { return splitOn(s, '\t') }

func splitOn(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == sep {
			f := s[start:i]
			if len(f) > 0 && f[len(f)-1] == '\r' {
				f = f[:len(f)-1]
			}
			out = append(out, f)
			start = i + 1
		}
	}
	return out
}

func (st *engineStream) run() {
	defer st.e.wg.Done()
	for m := range st.reqs {
		switch m.Op {
		case "start":
			st.start(m)
		case "frame":
			st.frame(m.Slot)
		case "stop":
			err := st.sl.Stop()
			st.ring.close() // up to 64 slots of a 4K frame: not held while stopped
			st.ring = nil
			st.e.reply(m.ID, err, "state", st.sl.State().String())
		case "state":
			errText := ""
			if err := st.sl.Err(); err != nil {
				errText = err.Error()
			}
			st.e.reply(m.ID, nil, "state", st.sl.State().String(), "error", errText)
		case "stats":
			st.e.reply(m.ID, nil, "stats", st.stats())
		case "remove":
			err := st.sl.Close()
			if st.kind == "rtsp" && st.e.srv != nil {
				_ = st.e.srv.RemoveStream(st.path)
			}
			if st.web != nil { // its path is free again, its page gone
				_ = st.web.RemoveStream(st.webP)
			}
			st.ring.close()
			st.e.reply(m.ID, err)
			return
		}
	}
}

func (st *engineStream) start(m engineMsg) {
	st.session.Store(m.Session)
	if m.Ring != "" {
		r, err := openRing(m.Ring, m.Slots, m.SlotSz)
		if err != nil {
			st.e.reply(m.ID, err, "state", st.sl.State().String())
			return
		}
		st.ring.close()
		st.ring = r
	}
	err := st.sl.Start(skyline.Params{FPS: m.FPS, Width: m.Width, Height: m.Height})
	errText := ""
	if err == nil {
		if e := st.sl.Err(); e != nil {
			errText = e.Error()
		}
	}
	st.e.reply(m.ID, err, "state", st.sl.State().String(), "error_text", errText)
}

// frame hands the pixels of a slot to SkyLine.Put and frees the slot. A
// full encoder queue is waited out (up to 1 s): the ring is the queue the
// parent sees, and what it accepted is not dropped lightly.
func (st *engineStream) frame(i int) {
	r := st.ring
	if r == nil || i < 0 || i >= r.slots {
		st.bad++
		return
	}
	hdr, data := r.slot(i)
	state := (*uint32)(unsafe.Pointer(&hdr[0]))
	if atomic.LoadUint32(state) != 1 {
		st.bad++
		return
	}
	defer atomic.StoreUint32(state, 0)
	f, err := r.frame(hdr, data)
	if err != nil {
		st.bad++
		st.log.Warn("engine: bad slot header", "slot", i, "error", err)
		return
	}
	for wait := 0; ; wait++ {
		ok, err := st.sl.Put(f)
		if ok {
			return
		}
		if !errors.Is(err, skyline.ErrQueueFull) || wait >= 1000 {
			st.lost++
			return
		}
		st.retried++
		time.Sleep(time.Millisecond)
	}
}

func (st *engineStream) stats() map[string]any {
	s := st.sl.Stats()
	dests := make([]map[string]any, len(s.Destinations))
	for i, d := range s.Destinations {
		dests[i] = map[string]any{"name": d.Name, "written": d.Written, "lost": d.Lost, "up": d.Up}
	}
	dropped := s.Dropped - min(s.Dropped, st.retried) // the refusals frame waited out lost nothing
	return map[string]any{"accepted": s.Accepted, "dropped": dropped, "encoded": s.Encoded, "written": s.Written,
		"encoded_bytes": s.EncodedBytes, "encoder": s.Encoder, "destinations": dests,
		"engine_lost": st.lost, "engine_bad_slots": st.bad, "state": st.sl.State().String()}
}

// shmRing is the parent's ring of frame slots, mapped shared.
type shmRing struct {
	mem      []byte
	slots    int
	slotSize int
}

const (
	ringHeader = 64
	slotHeader = 64
	ringMagic  = "SKYRING1"
)

func openRing(path string, slots, slotSize int) (*shmRing, error) {
	if slots < 1 || slots > 64 || slotSize < 1 || slotSize%64 != 0 || slotSize > 4*skyline.MaxDimension*skyline.MaxDimension {
		return nil, fmt.Errorf("ring %s: %d slots of %d bytes: want 1..64 slots, a multiple of 64 bytes", path, slots, slotSize)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	defer f.Close()
	_ = os.Remove(path) // mapped below; nothing stays in /dev/shm after a crash
	size := ringHeader + slots*(slotHeader+slotSize)
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	if fi.Size() != int64(size) {
		return nil, fmt.Errorf("ring %s: size %d, want %d (%d slots of %d bytes)", path, fi.Size(), size, slots, slotSize)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("ring %s: mmap: %w", path, err)
	}
	if string(mem[:8]) != ringMagic || byteorder.LittleEndian.Uint32(mem[12:]) != uint32(slots) ||
		byteorder.LittleEndian.Uint64(mem[16:]) != uint64(slotSize) {
		_ = syscall.Munmap(mem)
		return nil, fmt.Errorf("ring %s: header does not match (magic, slots, slot size)", path)
	}
	return &shmRing{mem: mem, slots: slots, slotSize: slotSize}, nil
}

func (r *shmRing) close() {
	if r != nil && r.mem != nil {
		_ = syscall.Munmap(r.mem)
		r.mem = nil
	}
}

func (r *shmRing) slot(i int) (hdr, data []byte) {
	off := ringHeader + i*(slotHeader+r.slotSize)
	return r.mem[off : off+slotHeader], r.mem[off+slotHeader : off+slotHeader+r.slotSize]
}

func (r *shmRing) frame(hdr, data []byte) (skyline.Frame, error) {
	le := byteorder.LittleEndian
	var f skyline.Frame
	switch le.Uint32(hdr[4:]) {
	case 1:
		f.Format = skyline.FormatBGR
	case 2:
		f.Format = skyline.FormatGray
	case 3:
		f.Format = skyline.FormatBGRA
	default:
		return f, fmt.Errorf("format %d: want 1 (BGR), 2 (GRAY) or 3 (BGRA)", le.Uint32(hdr[4:]))
	}
	f.Width, f.Height, f.Stride = int(le.Uint32(hdr[8:])), int(le.Uint32(hdr[12:])), int(le.Uint32(hdr[16:]))
	size := le.Uint64(hdr[24:])
	if size > uint64(len(data)) {
		return f, fmt.Errorf("size %d > slot size %d", size, len(data))
	}
	f.Data = data[:size]
	if ns := int64(le.Uint64(hdr[40:])); ns != 0 {
		f.Time = time.Unix(0, ns)
	}
	return f, nil // Put checks width, height and stride against Data
}
