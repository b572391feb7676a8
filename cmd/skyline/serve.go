package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/rtsp"
)

type serveOptions struct {
	input, pixFmt, size string
	format              string // raw or framed
	timestamps          string // auto, fixed or arrival
	fps                 float64
	w, h                int
	listen, path        string
	encoder, preset     string
	profile             string
	bitrate             int
	keyint              time.Duration
	user, pass          string
	tlsCert, tlsKey     string
	udpPort             int
	noUDP               bool
	frames              int
	logLevel            string
	status              string
	outs                outFlags
	noRTSP              bool
	web                 webOptions
	metrics             string
	keepServing         bool
	offlineCard         bool
	producerTimeout     time.Duration
}

func serve(args []string) int {
	o := &serveOptions{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&o.input, "input", "testsrc", "frames from: testsrc, stdin, file:PATH (a video file), v4l2:DEVICE (a camera), "+
		"unix:PATH or tcp:ADDR (listen: each connection is a producer sending raw frames as on stdin; one at a time: a second is refused, "+
		"unless the first has sent no complete frame for a second (or 2 frame periods), then it takes over)")
	fs.BoolVar(&o.keepServing, "keep-serving", false, "stay up when the input ends, showing the offline card (stdin resumes when new data arrives, e.g. a new writer of a named pipe); listening inputs always do")
	fs.DurationVar(&o.producerTimeout, "producer-timeout", 10*time.Second, "unix: and tcp: inputs: a producer that does not complete "+
		"a frame within this time (the first from its connection; at least 3 frame periods at --fps) is closed, its session ends "+
		"(offline card) and the next producer may connect; stdin is not bounded (a writer that holds the pipe and pauses is waited for)")
	fs.BoolVar(&o.offlineCard, "offline-card", true, "while no producer streams (before the first frame, between producers), play a card with the path, state and time: viewers stay connected (--offline-card=false: a viewer waits up to 10 s for the first picture, then is refused)")
	fs.StringVar(&o.pixFmt, "pix-fmt", "bgr24", "stdin pixel format: bgr24 (OpenCV), rgb24, bgra, rgba, gray, i420")
	fs.StringVar(&o.format, "format", "raw", "stdin framing: raw (frames back to back, --size and --pix-fmt), "+
		"framed (a header before each frame gives its capture time, size and pixel format; see README)")
	fs.StringVar(&o.timestamps, "timestamps", "auto", "frame timestamps: auto (capture time or time read, but at least 1/fps "+
		"apart: a file piped faster than real time keeps its length, a live producer real time; framed input: "+
		"the capture times), fixed (frame n at n/fps), arrival (the time each frame is read)")
	fs.StringVar(&o.size, "size", "", "stdin frame size WIDTHxHEIGHT (required for stdin; testsrc default 1280x720)")
	fs.Float64Var(&o.fps, "fps", 30, "frame rate of the input")
	fs.StringVar(&o.listen, "listen", ":8554", "RTSP listen address")
	fs.StringVar(&o.path, "path", "/skyline", "RTSP path of the stream")
	fs.StringVar(&o.encoder, "encoder", "", "GStreamer H.264 encoder element (default x264enc)")
	fs.StringVar(&o.preset, "preset", "", "x264 speed preset (default superfast)")
	fs.StringVar(&o.profile, "profile", "", "H.264 profile: baseline, constrained-baseline, main or high (default: the encoder's, High for x264); baseline plays in every browser (Firefox may decode Constrained Baseline only)")
	fs.IntVar(&o.bitrate, "bitrate", 0, "bitrate in kbit/s (default: scaled to the picture, 2488 at 720p30)")
	fs.DurationVar(&o.keyint, "keyframe-interval", 2*time.Second, "time between keyframes")
	fs.StringVar(&o.user, "user", "", "require this RTSP user (with --pass)")
	fs.StringVar(&o.pass, "pass", "", "RTSP password (default: $SKYLINE_RTSP_PASS; '${NAME}' and '${file:PATH}' are expanded)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate (PEM) for RTSPS")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS key (PEM) for RTSPS")
	fs.IntVar(&o.udpPort, "udp-port", 0, "RTP port of the UDP transport (RTCP +1; default 8000)")
	fs.BoolVar(&o.noUDP, "no-udp", false, "serve RTSP over TCP only")
	fs.IntVar(&o.frames, "frames", 0, "stop after this many frames (0: until the input ends or Ctrl-C)")
	fs.StringVar(&o.logLevel, "log-level", "warn", "debug, info, warn or error")
	fs.StringVar(&o.status, "status", "auto", "live status line: auto (on a terminal), always, never")
	fs.Var(&o.outs, "out", outHelp+".\n"+secretsHelp)
	fs.BoolVar(&o.noRTSP, "no-rtsp", false, "do not run the RTSP server (stream only to --out destinations)")
	addWebFlags(fs, &o.web)
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. :9090)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "skyline serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "skyline serve:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runServe(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "skyline serve:", err)
		if errors.As(err, new(flagError)) {
			return 2
		}
		return 1
	}
	return 0
}

func (o *serveOptions) check() error {
	if o.pass == "" {
		o.pass = os.Getenv("SKYLINE_RTSP_PASS")
	} else if pass, _, err := expandSecrets("--pass", o.pass); err != nil {
		return err
	} else {
		o.pass = pass
	}
	if (o.user == "") != (o.pass == "") {
		return errors.New("--user and --pass go together")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if !(o.fps > 0 && o.fps <= skyline.MaxFPS) { // NaN fails every comparison
		return fmt.Errorf("--fps %v: want 0 < fps <= %d", o.fps, skyline.MaxFPS)
	}
	if o.producerTimeout <= 0 {
		return fmt.Errorf("--producer-timeout %v: want a duration > 0, e.g. 10s", o.producerTimeout)
	}
	if o.frames < 0 {
		return fmt.Errorf("--frames %d: want 0 (no limit) or a number of frames", o.frames)
	}
	switch o.format {
	case "raw", "framed":
	default:
		return fmt.Errorf("--format %q: want raw or framed", o.format)
	}
	switch o.timestamps {
	case "auto", "fixed", "arrival":
	default:
		return fmt.Errorf("--timestamps %q: want auto, fixed or arrival", o.timestamps)
	}
	switch {
	case o.size != "":
		w, h, err := parseSize(o.size)
		if err != nil {
			return err
		}
		o.w, o.h = w, h
	case (o.input == "stdin" || o.input == "-") && o.format == "raw":
		return errors.New("--input stdin needs --size WIDTHxHEIGHT (and --pix-fmt, --fps), or --format framed")
	case (strings.HasPrefix(o.input, "unix:") || strings.HasPrefix(o.input, "tcp:")) && o.format == "raw":
		return fmt.Errorf("--input %s needs --size WIDTHxHEIGHT (and --pix-fmt, --fps), or --format framed", o.input)
	default:
		o.w, o.h = 1280, 720
	}
	switch o.profile {
	case "", "baseline", "constrained-baseline", "main", "high":
	default:
		return fmt.Errorf("--profile %q: want baseline, constrained-baseline, main or high", o.profile)
	}
	switch o.status {
	case "auto", "always", "never":
	default:
		return fmt.Errorf("--status %q: want auto, always or never", o.status)
	}
	if o.noRTSP && len(o.outs) == 0 && o.web.addr == "" {
		return errors.New("--no-rtsp needs at least one --out destination (or --web)")
	}
	return o.web.check()
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func runServe(ctx context.Context, o *serveOptions) error {
	log, err := newLogger(o.logLevel)
	if err != nil {
		return refuse(err)
	}
	// Destinations that cannot work are refused before anything starts.
	var outs []skyline.Destination
	var files []fileOut
	for _, spec := range o.outs {
		d, err := parseOut(spec, log)
		if err != nil {
			return refuse(err)
		}
		outs = append(outs, d)
		if strings.HasPrefix(spec, "file:") {
			// The destination's name has the path with ${NAME} and
			// ${file:PATH} expanded; spec shows them as written.
			f := fileOut{spec: spec, path: strings.TrimPrefix(d.Name(), "file:")}
			if err := f.checkWritable(); err != nil {
				return refuse(err)
			}
			files = append(files, f)
		}
	}
	if err := sameFile(files); err != nil {
		return refuse(err)
	}
	meter := &meter{}
	dests := []skyline.Destination{meter}
	var stream *rtsp.Stream
	if !o.noRTSP {
		srv, err := startServer(o, log)
		if err != nil {
			return err
		}
		defer srv.Close()
		if stream, err = srv.AddStream(o.path, rtsp.StreamOptions{Offline: o.card()}); err != nil {
			return err
		}
		dests = append(dests, stream)
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		go func() { // the server stopped serving by itself: stop, exit 1
			select {
			case err := <-srv.Failed():
				cancel(err)
			case <-ctx.Done():
			}
		}()
	}
	web, stopWeb, err := startWeb(o, log)
	if err != nil {
		return err
	}
	defer stopWeb()
	if web != nil {
		dests = append(dests, web)
	}
	dests = append(dests, outs...)
	mc := newServeMetrics(o.metrics)
	sl, err := skyline.New(skyline.Config{
		Logger: log, Name: "SkyLine",
		Encoder:    o.encoderConfig(),
		OnEvent:    mc.onEvent(func(e skyline.Event) { logEvent(log, e) }),
		Timestamps: o.timestampMode(),
	}, dests...)
	if err != nil {
		return err
	}
	defer sl.Close()
	if err := mc.start(sl, stream); err != nil {
		return err
	}
	defer mc.close()

	if o.input == "stdin" || o.input == "-" {
		interruptibleStdin()
	}
	prods, err := openProducers(o, log)
	if err != nil {
		return err
	}
	defer prods.Close()
	// Where to watch: at once when producers come and go (the card plays
	// meanwhile), else once the input's first frame started the stream.
	announce := sync.OnceFunc(func() {
		if stream != nil {
			fmt.Printf("SkyLine: streaming %s at %s\n", prods.Describe(), stream.URL())
			fmt.Printf("watch:   ffplay -rtsp_transport tcp -probesize 32 -flags low_delay %s\n", stream.URL())
		} else {
			fmt.Printf("SkyLine: streaming %s\n", prods.Describe())
		}
		printWeb(web)
		for _, d := range dests[1:] {
			if d != stream && d != web {
				fmt.Printf("out:     %s\n", d.Name())
			}
		}
	})
	if prods.Keep() {
		announce()
	}

	var c pumpCounters
	done := make(chan error, 1)
	go func() { done <- runProducers(ctx, prods, sl, o, files, &c, log, announce) }()
	var pumpErr error
	if showStatus(o.status) {
		viewers := func() (n int) { // RTSP and browser viewers
			if stream != nil {
				n += stream.Viewers()
			}
			if web != nil {
				n += web.Viewers()
			}
			return n
		}
		served := map[string]bool{} // shown as viewers, not as destinations
		if stream != nil {
			served[stream.Name()] = true
		}
		if web != nil {
			served[web.Name()] = true
		}
		pumpErr = statusLoop(ctx, prods, done, sl, viewers, served, meter, &c)
	} else {
		select {
		case pumpErr = <-done:
		case <-ctx.Done():
			prods.Close() // unblocks a read of stdin or a connection
			pumpErr = <-done
		}
	}
	prods.Close()
	stopErr := sl.Stop()
	st := sl.Stats()
	// Dropped: frames really lost. A pipe's or file's frames that the
	// encoder could not take at once were retried, not lost.
	dropped := uint64(c.lost.Load())
	if st.Accepted > st.Encoded {
		dropped += st.Accepted - st.Encoded // accepted, then lost in the encoder
	}
	fmt.Printf("SkyLine: stopped after %d frames (%d encoded, %d dropped)\n", st.Accepted, st.Encoded, dropped)
	judged := map[string]bool{}
	for _, d := range dests[1:] {
		if d != stream && d != web {
			judged[d.Name()] = true
		}
	}
	outErr := summarize(os.Stdout, st, judged)
	if err := context.Cause(ctx); errors.Is(err, rtsp.ErrServerFailed) {
		return errors.Join(err, outErr)
	}
	if pumpErr != nil && !errors.Is(pumpErr, context.Canceled) {
		return errors.Join(pumpErr, outErr)
	}
	return errors.Join(stopErr, outErr)
}

// encoderConfig is the encoder the flags ask for (the stream's and the
// offline card's).
func (o *serveOptions) encoderConfig() skyline.Encoder {
	return skyline.Encoder{Element: o.encoder, Preset: o.preset, Profile: o.profile, Bitrate: o.bitrate, KeyframeInterval: o.keyint}
}

// card is the offline card of the served streams (nil with
// --offline-card=false), at the input's size.
func (o *serveOptions) card() *skyline.OfflineCard {
	if !o.offlineCard {
		return nil
	}
	return &skyline.OfflineCard{Width: max(o.w&^1, 16), Height: max(o.h&^1, 16), Encoder: o.encoderConfig()}
}

// runProducers streams each producer in a session of its own (Start with
// its first frame's size, Stop at its end) until there are no more, the
// frame limit is reached or ctx is cancelled. With a single input (no
// --keep-serving) its end or error is the program's; otherwise a
// producer's error is logged and the next one is awaited.
func runProducers(ctx context.Context, prods producers, sl *skyline.SkyLine, o *serveOptions, files []fileOut, c *pumpCounters, log *slog.Logger, started func()) error {
	for {
		in, err := prods.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		err = runSession(ctx, in, sl, o, files, c, started)
		in.Close()
		if !prods.Keep() {
			return err
		}
		if err != nil && ctx.Err() != nil {
			// Ctrl-C as a producer ended in error (its connection timed out,
			// say): the producer's error is not the program's. Ctrl-C
			// itself (the session's context.Canceled) is no error at all.
			if !errors.Is(err, context.Canceled) {
				log.Warn("producer ended with an error", "input", prods.Describe(), "error", err)
			}
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Warn("producer ended with an error; waiting for the next one", "input", prods.Describe(), "error", err)
		} else {
			log.Info("producer ended; waiting for the next one", "input", prods.Describe())
		}
		if err := sl.Stop(); err != nil {
			log.Warn("stopping after the producer", "error", err)
		}
		if o.frames > 0 && c.read.Load() >= int64(o.frames) {
			return nil
		}
	}
}

// runSession streams one producer's frames; started is called once the
// stream started. A size that a recording cannot take is refused.
func runSession(ctx context.Context, in input, sl *skyline.SkyLine, o *serveOptions, files []fileOut, c *pumpCounters, started func()) error {
	first, err := in.Next(ctx)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("the input ended before the first frame")
		}
		return err
	}
	params := skyline.Params{FPS: o.fps, Width: max(first.Width&^1, 2), Height: max(first.Height&^1, 2)}
	if o.format == "framed" && o.size != "" {
		// --size is the stream's size, the offline card's too: every
		// producer's frames are scaled to it, so viewers opened on the card
		// stay connected (a new size would end their RTSP sessions).
		params.Width, params.Height = max(o.w&^1, 2), max(o.h&^1, 2)
	}
	for _, f := range files {
		if err := f.checkSize(params.Width, params.Height); err != nil {
			return refuse(err)
		}
	}
	if err := sl.Start(params); err != nil {
		return err
	}
	started()
	limit := 0
	if o.frames > 0 {
		limit = max(o.frames-int(c.read.Load()), 1)
	}
	// The first frame, read before the stream started, counts as read when
	// it started: the time Start took is not a gap between two frames.
	at := time.Now()
	p := &pumper{in: in, sl: sl, limit: limit, stamp: o.newStamper(at), c: c}
	return p.run(ctx, first, at)
}

// startServer starts the RTSP server. When the default UDP ports are taken
// (and --udp-port was not given) it serves TCP only, with a warning, rather
// than not at all.
func startServer(o *serveOptions, log *slog.Logger) (*rtsp.Server, error) {
	cfg := rtsp.ServerConfig{
		Address: o.listen, User: o.user, Pass: o.pass, CertFile: o.tlsCert, KeyFile: o.tlsKey,
		UDPPort: o.udpPort, DisableUDP: o.noUDP, DisableMulticast: o.noUDP, Logger: log,
	}
	srv, err := rtsp.NewServer(cfg)
	if err != nil {
		return nil, err
	}
	err = srv.Start()
	if err == nil || o.noUDP || o.udpPort != 0 {
		return srv, err
	}
	cfg.DisableUDP, cfg.DisableMulticast = true, true
	if srv, err2 := rtsp.NewServer(cfg); err2 == nil && srv.Start() == nil {
		log.Warn("RTSP over UDP is off (its default ports are in use; choose others with --udp-port): serving TCP only", "error", err)
		return srv, nil
	}
	return nil, err
}

// pumper moves frames from the input to the SkyLine until the input ends,
// the frame limit is reached or ctx is cancelled.
type pumper struct {
	in    input
	sl    *skyline.SkyLine
	limit int
	stamp *stamper
	c     *pumpCounters
}

// pumpCounters count across producers, for the status line and the summary.
type pumpCounters struct {
	read atomic.Int64 // frames read
	lost atomic.Int64 // frames a live input gave up (the encoder was behind)
}

// early tells whether the frame just read was already waiting (see pending).
func (p *pumper) early() bool {
	e, ok := p.in.(interface{ Early() bool })
	return ok && e.Early()
}

func (p *pumper) run(ctx context.Context, f skyline.Frame, readAt time.Time) error {
	for n := 0; ; n++ {
		p.c.read.Add(1)
		p.stamp.stamp(&f, readAt, p.early())
		for {
			ok, err := p.sl.Put(f)
			if ok {
				break
			}
			switch {
			case errors.Is(err, skyline.ErrQueueFull), errors.Is(err, skyline.ErrOpening):
				if p.in.Live() { // a live source drops (counted); a file or pipe waits
					p.c.lost.Add(1)
					break
				}
				select { // the encoder is behind: wait for room, never lose a frame
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Millisecond):
				}
				continue
			case errors.Is(err, skyline.ErrStreamFailed):
				return fmt.Errorf("the stream failed: %w", p.sl.Err())
			default:
				return err
			}
			break
		}
		if p.limit > 0 && n+1 >= p.limit {
			return nil
		}
		var err error
		f, err = p.in.Next(ctx)
		readAt = time.Now()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func showStatus(mode string) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	st, err := os.Stdout.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// statusLoop prints a live status line every second until the pump ends
// (on Ctrl-C it closes the producers, which ends it).
func statusLoop(ctx context.Context, prods producers, done <-chan error, sl *skyline.SkyLine, viewers func() int, served map[string]bool, m *meter, c *pumpCounters) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	lastRead, lastEnc, lastBytes := int64(0), uint64(0), int64(0)
	stop := ctx.Done()
	for {
		select {
		case err := <-done:
			fmt.Print("\r\033[K")
			return err
		case <-stop:
			prods.Close()
			stop = nil
		case now := <-tick.C:
			dt := now.Sub(last).Seconds()
			st := sl.Stats()
			r, b := c.read.Load(), m.bytes.Load()
			line := fmt.Sprintf("in %5.1f fps | out %5.1f fps | %6.0f kbit/s | dropped %d | viewers %d",
				float64(r-lastRead)/dt, float64(st.Encoded-lastEnc)/dt, float64(b-lastBytes)*8/1000/dt,
				c.lost.Load(), viewers())
			for _, d := range st.Destinations[1:] { // [0] is the meter
				if served[d.Name] {
					continue
				}
				state := "up"
				if !d.Up {
					state = "DOWN"
				}
				line += fmt.Sprintf(" | %s %s", shortName(d.Name), state)
			}
			fmt.Print("\r\033[K" + line)
			last, lastRead, lastEnc, lastBytes = now, r, st.Encoded, b
		}
	}
}

// logEvent logs what the status line cannot show.
func logEvent(log *slog.Logger, e skyline.Event) {
	switch e.Kind {
	case skyline.EventDestinationDown, skyline.EventError:
		log.Warn(string(e.Kind), "destination", e.Destination, "error", e.Err)
	case skyline.EventDestinationRecovered, skyline.EventViewerJoined, skyline.EventViewerLeft:
		log.Info(string(e.Kind), "destination", e.Destination, "viewer", e.Viewer)
	}
}

// meter is a Receiver that counts the encoded bytes for the status line.
type meter struct{ bytes atomic.Int64 }

func (m *meter) Name() string                  { return "meter" }
func (m *meter) Open(skyline.StreamInfo) error { return nil }
func (m *meter) WriteAccessUnit(au *skyline.AccessUnit) error {
	m.bytes.Add(int64(len(au.Data)))
	return nil
}
func (m *meter) Close() {}
