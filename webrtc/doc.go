// Package webrtc lets a browser watch a SkyLine stream (SPEC B12): a
// WebRTC server on pion/webrtc that speaks WHEP (RFC 9725) and serves a
// minimal player page, from the SkyLine's one encode.
//
// One Server listens on one HTTP(S) address (default ":8889") and serves
// any number of Streams, each at a path. A Stream is a skyline.Receiver:
// give it to skyline.New as a destination (next to an RTSP stream, files,
// KVS...), or use NewSkyLine.
//
//	srv, _ := webrtc.NewServer(webrtc.ServerConfig{})
//	_ = srv.Start()
//	defer srv.Close()
//	st, _ := srv.AddStream("/cam", webrtc.StreamOptions{})
//	sl, _ := skyline.New(skyline.Config{}, st, rtspStream)
//	_ = sl.Start(skyline.Params{FPS: 30, Width: 1280, Height: 720})
//	fmt.Println(st.URL()) // http://127.0.0.1:8889/cam/ : open it in a browser
//
// For a stream at /cam:
//   - GET /cam/ is the player page: WHEP in plain JavaScript, a <video>
//     element, and the latency shown (the time from Put to display,
//     measured per picture with requestVideoFrameCallback's RTP timestamp
//     against the server's clock, GET /cam/clock).
//   - POST /cam/whep with an SDP offer (Content-Type application/sdp)
//     answers 201 Created with the SDP answer, carrying every candidate
//     (no trickle ICE needed), and the session's URL in Location; DELETE on
//     that URL ends the session. PATCH (trickle ICE) answers 405.
//   - GET / lists the streams.
//
// Before the first picture: an offer that arrives before the stream's
// first keyframe waits for it (so that the answer names the stream's real
// profile), up to ServerConfig.HoldTimeout (default 10 s), then gets "503"
// with the reason; the page retries every 2 s. With StreamOptions.Offline
// the path is always available: while it has no live picture it plays an
// offline card (path, state, clock; skyline.OfflineCard), and the page
// goes from the card to the live stream and back in the same session,
// with no reload.
//
// Media: the access units are packetised once (RTP, H.264 packetization
// mode 1, 1200-byte packets, SPS/PPS in-band before each keyframe), with
// timestamps from their PTS, and fanned out to each viewer through a
// bounded queue of its own (ServerConfig.ViewerQueue): a slow viewer loses
// pictures and resumes at a keyframe, never delaying the others or the
// SkyLine. A viewer starts at a keyframe, which is requested when it
// connects and whenever a viewer sends a PLI or FIR. NACKs are answered
// from pion's retransmission buffer.
//
// The H.264 variants accepted are constrained baseline, baseline, main and
// high (packetization-mode 1). The answer lists one variant of the offer
// whose decoders play the stream's SPS profile (a High 4:4:4 decoder plays
// High; a Constrained Baseline one plays only (constrained) baseline); an
// offer with none, such as Firefox's Constrained-Baseline-only offer for
// SkyLine's default High stream, is refused with 406 Not Acceptable and
// the reason, which the page shows. For the widest compatibility set
// skyline.Encoder{Profile: "baseline"} (skyline serve --profile baseline).
//
// Limits: at most MaxSessions WHEP sessions (default 100, connected,
// still connecting or held for the first picture: 503 at once beyond, the
// sessions playing are not affected); at most MaxConnections HTTP
// connections (1000), MaxConnectionsPerClient per client IP address (100),
// beyond which a connection is closed at once with a warning; accept
// errors (a full descriptor table) are logged and retried, and an offer
// whose session cannot open its sockets then gets 503 with the reason (a
// warning logged), never an answer no viewer can reach. A request must
// arrive within ReadTimeout (10 s: a silent or trickling client is cut),
// with headers up to MaxHeaderBytes (431 beyond) and an offer up to
// MaxOfferBytes (413); an idle keep-alive connection is closed after
// IdleTimeout (60 s).
//
// Networks: by default the server offers host candidates (loopback
// included) on ephemeral UDP ports, which needs no external service on a
// LAN or the same machine. ServerConfig adds STUN/TURN servers (also given
// to the page), one fixed UDP port for every viewer (UDPPort), ICE over
// TCP (TCPPort) and the addresses to advertise behind a 1:1 NAT
// (AdvertiseIPs).
//
// Security: with User/Pass (server-wide or per stream, as in the rtsp
// package) the page, the clock and the WHEP endpoints require HTTP basic
// authentication (401 otherwise); use HTTPS (CertFile/KeyFile) beyond a
// trusted network. Browsers reuse the credentials typed for the page for
// its WHEP requests. Cross-origin WHEP clients are allowed only from
// ServerConfig.AllowOrigins (CORS). Passwords never appear in logs.
//
// Events: EventViewerJoined when a viewer's peer connection connects and
// EventViewerLeft when it ends, through StreamInfo.Emit. pion's own logs go
// to the configured slog logger one level down (pion's errors as
// warnings, its warnings as info, the rest at debug level).
package webrtc
