package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/skyline-go/skyline/webrtc"
)

// webOptions are the flags of the browser preview (--web).
type webOptions struct {
	addr             string
	udpPort, tcpPort int
	stun             string
}

func addWebFlags(fs *flag.FlagSet, o *webOptions) {
	fs.StringVar(&o.addr, "web", "", "serve the stream to browsers (WebRTC/WHEP) at this HTTP address, e.g. :8889: page http://ADDR/PATH/, WHEP http://ADDR/PATH/whep (same --user/--pass as RTSP)")
	fs.IntVar(&o.udpPort, "web-udp-port", 0, "carry every browser's media on this one UDP port (default: ephemeral ports)")
	fs.IntVar(&o.tcpPort, "web-tcp-port", 0, "also offer ICE over TCP on this port, for networks that block UDP")
	fs.StringVar(&o.stun, "web-stun", "", "comma-separated STUN URLs (stun:host:port) for browsers behind NAT")
}

func (o *webOptions) check() error {
	if o.addr == "" && (o.udpPort != 0 || o.tcpPort != 0 || o.stun != "") {
		return errors.New("--web-udp-port, --web-tcp-port and --web-stun need --web ADDR")
	}
	return nil
}

// startWeb starts the WebRTC server and its stream when --web is given;
// stop closes it (safe to call when nothing was started).
func startWeb(o *serveOptions, log *slog.Logger) (st *webrtc.Stream, stop func(), err error) {
	stop = func() {}
	if o.web.addr == "" {
		return nil, stop, nil
	}
	cfg := webrtc.ServerConfig{Address: o.web.addr, User: o.user, Pass: o.pass, CertFile: o.tlsCert, KeyFile: o.tlsKey,
		UDPPort: o.web.udpPort, TCPPort: o.web.tcpPort, Logger: log}
	if o.web.stun != "" {
		cfg.ICEServers = []webrtc.ICEServer{{URLs: strings.Split(o.web.stun, ",")}}
	}
	srv, err := webrtc.NewServer(cfg)
	if err != nil {
		return nil, stop, fmt.Errorf("--web: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, stop, fmt.Errorf("--web: %w", err)
	}
	if st, err = srv.AddStream(o.path, webrtc.StreamOptions{Offline: o.card()}); err != nil {
		srv.Close()
		return nil, stop, fmt.Errorf("--web: %w", err)
	}
	return st, srv.Close, nil
}

// printWeb prints where to watch in a browser.
func printWeb(st *webrtc.Stream) {
	if st != nil {
		fmt.Printf("browser: %s   (WebRTC; WHEP endpoint %s)\n", st.URL(), st.WHEPURL())
	}
}
