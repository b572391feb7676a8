// Package rtsp is SkyLine's built-in RTSP server (the original's RTSPServer
// and RTSPSkyLine, SPEC A8, B3, B8).
//
// One Server listens on one address (default ":8554") and serves any number
// of Streams, each at a mount path. A Stream is a skyline.Receiver: give it
// to skyline.New as a destination (or use NewSkyLine), and every encoded
// access unit of that SkyLine is packetised once (RTP/H.264, RFC 6184) and
// fanned out to all viewers of the path.
//
//	srv, _ := rtsp.NewServer(rtsp.ServerConfig{})
//	_ = srv.Start()
//	defer srv.Close()
//	sl, _ := rtsp.NewSkyLine(srv, "/cam", skyline.Config{})
//	defer sl.Close()
//	_ = sl.Start(skyline.Params{FPS: 30, Width: 1280, Height: 720})
//	fmt.Println(srv.URLs()) // [rtsp://127.0.0.1:8554/cam]
//	for { sl.Put(frame) }
//
// Transports: TCP (interleaved), UDP and UDP multicast (one group per
// path, shared by its multicast viewers); RTSPS when a TLS certificate is
// configured (over UDP, RTSPS uses SRTP). Authentication: basic and
// digest, server-wide or per path. PAUSE stops a viewer's delivery until
// its next PLAY, which resumes at a keyframe (ffplay pauses this way).
//
// Behaviour:
//   - The SDP carries the SPS and PPS of the encoder's first keyframe. A
//     DESCRIBE or SETUP that arrives before it (a player started together
//     with the program, during the warm-up) is held until that keyframe, up
//     to ServerConfig.HoldTimeout (default 10 s), then answered "503
//     Service Unavailable" with a reason: never refused at once, never left
//     hanging.
//   - When a viewer starts playing, the encoder is asked for a keyframe
//     (rate-limited by the SkyLine and shared by viewers joining together),
//     so the first decodable picture arrives within about one frame time
//     plus the encode, instead of at the next keyframe interval. A viewer
//     receives nothing before its first keyframe, so its first picture is
//     a clean one (GStreamer's depayloader would otherwise decode the
//     pictures before it into garbage).
//   - Viewers stay connected across Stop/Start of the SkyLine when the
//     picture size is unchanged; RTP timestamps keep increasing. A new size
//     ends their sessions, so players reconnect and get the new SDP.
//   - Always available (StreamOptions.Offline): while the path has no live
//     picture (before the first Start, during a warm-up, after Stop) it
//     plays an offline card (path, state, clock, at a low frame rate;
//     skyline.OfflineCard), so players connect at any time and stay
//     connected; the live stream replaces the card at its next keyframe in
//     the same RTP session (sequence numbers and timestamps continue, SPS
//     and PPS travel in-band with every keyframe).
//   - Every viewer has a bounded write queue (ServerConfig.WriteQueueSize).
//     A viewer that reads too slowly never delays Put, the encoder or other
//     viewers: its excess packets are dropped and counted (StreamStats), and
//     it is disconnected once a write to it blocks for WriteTimeout or it has
//     been losing packets continuously for SlowViewerTimeout.
//
// Strangers cannot shut the server. Accept errors that pass (such as "too
// many open files") are logged and retried with backoff. A connection that
// sends nothing is closed after FirstRequestTimeout (10 s), and a request
// must arrive whole within ReadTimeout (10 s) of its first byte.
// Connections are capped server-wide and per client address
// (MaxConnections, MaxConnectionsPerClient), with a log line; the
// per-client cap counts sessions as well, since a UDP session outlives its
// connection. A server
// that stops serving by itself all the same is logged, reported to each
// stream's SkyLine as an EventError wrapping ErrServerFailed, and sent on
// Server.Failed.
//
// The URL a player is given may end with a slash, carry a query string
// (ignored), percent-encode its path or carry credentials
// (rtsp://user:pass@host/path): the Content-Base of the DESCRIBE answer is
// the stream's canonical URL, so the player's SETUP and PLAY agree. Viewer
// events (EventViewerJoined/Left) and log lines carry the viewer's address
// (host:port).
//
// Passwords never appear in logs or error messages.
package rtsp
