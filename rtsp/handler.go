package rtsp

import (
	"errors"
	"log/slog"
	"net/url"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
)

// handler answers gortsplib's server callbacks for one Server.
type handler struct{ s *Server }

func (h *handler) lookup(path string) *Stream {
	p, err := normalizePath(path)
	if err != nil {
		return nil
	}
	st, _ := h.s.streams.Get(p)
	return st
}

// resolve finds the stream of a request and checks credentials. It returns
// the stream, or the response to send.
func (h *handler) resolve(conn *gortsplib.ServerConn, req *base.Request, path string) (*gortsplib.ServerStream, *Stream, *base.Response, error) {
	st := h.lookup(path)
	if st == nil {
		// Do not tell strangers which paths exist.
		if res, err := authorize(conn, req, h.s.credentials()); res != nil {
			return nil, nil, res, err
		}
		return nil, nil, &base.Response{StatusCode: base.StatusNotFound, StatusMessage: "Not Found (no stream at this path)"}, nil
	}
	if res, err := authorize(conn, req, st.credentials()); res != nil {
		return nil, nil, res, err
	}
	ss, why := st.holdServerStream(h.s.closingCh())
	if ss == nil {
		if why == "stream removed" {
			return nil, nil, &base.Response{StatusCode: base.StatusNotFound, StatusMessage: "Not Found (stream removed)"}, nil
		}
		return nil, nil, &base.Response{StatusCode: base.StatusServiceUnavailable,
			StatusMessage: "Service Unavailable (" + why + ", retry shortly)"}, nil
	}
	return ss, st, nil, nil
}

func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	ss, _, res, err := h.resolve(ctx.Conn, ctx.Request, ctx.Path)
	if res != nil {
		return res, nil, err
	}
	return &base.Response{StatusCode: base.StatusOK}, ss, nil
}

func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	ss, st, res, err := h.resolve(ctx.Conn, ctx.Request, ctx.Path)
	if res != nil {
		return res, nil, err
	}
	if ctx.Transport != nil && ctx.Transport.Protocol == gortsplib.ProtocolUDPMulticast {
		if ss = st.multicastStream(ss); ss == nil {
			return &base.Response{StatusCode: base.StatusServiceUnavailable,
				StatusMessage: "Service Unavailable (stream restarting, retry shortly)"}, nil, nil
		}
	}
	v := viewerOf(ctx.Session)
	if v != nil && v.st != st {
		return &base.Response{StatusCode: base.StatusBadRequest, StatusMessage: "Bad Request (one path per session)"}, nil, nil
	}
	if v == nil {
		addr := ctx.Conn.NetConn().RemoteAddr().String()
		if !h.s.sessions.take(addr) {
			h.s.sessions.logs.Log(h.s.log, slog.LevelWarn, "sessions",
				"refused a SETUP: too many sessions from this address (MaxConnectionsPerClient)",
				"remote", addr, "max_connections_per_client", h.s.cfg.MaxConnectionsPerClient,
				"refused_total", h.s.sessions.refused.Load())
			return &base.Response{StatusCode: base.StatusServiceUnavailable,
				StatusMessage: "Service Unavailable (too many sessions from this address)"}, nil, nil
		}
		st.addViewer(ctx.Session, addr, ss)
	}
	// gortsplib (5.6.5) delays its SETUP response by 1 s for any client
	// whose User-Agent starts with "GStreamer", a workaround for
	// rtspclientsink, which publishes. This server only plays, and the
	// delay would cost every rtspsrc (and OpenCV) viewer a second before
	// its first picture: hide the header from that check.
	delete(ctx.Request.Header, "User-Agent")
	return &base.Response{StatusCode: base.StatusOK}, ss, nil
}

func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	if v := viewerOf(ctx.Session); v != nil {
		v.markPlay()
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnPause answers PAUSE (RFC 2326 10.6): gortsplib stops the session's
// delivery on a 200, and the next PLAY resumes it at a keyframe.
func (h *handler) OnPause(ctx *gortsplib.ServerHandlerOnPauseCtx) (*base.Response, error) {
	if v := viewerOf(ctx.Session); v != nil {
		v.pause()
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnResponse runs after the session handled the request, just before the
// response is written: after a PLAY the session already receives packets,
// so this is when to ask for the viewer's keyframe.
func (h *handler) OnResponse(sc *gortsplib.ServerConn, res *base.Response) {
	if res.StatusCode != base.StatusOK {
		return
	}
	if cb, ok := res.Header["Content-Base"]; ok && len(cb) == 1 {
		res.Header["Content-Base"] = base.HeaderValue{contentBase(cb[0])}
	}
	if v := viewerOf(sc.Session()); v != nil {
		v.started()
	}
}

func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	if v := viewerOf(ctx.Session); v != nil {
		v.gone(ctx.Error)
	}
}

func (h *handler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	if ctx.Error != nil && !errors.As(ctx.Error, new(liberrors.ErrServerTerminated)) {
		h.s.log.Debug("connection closed", "remote", ctx.Conn.NetConn().RemoteAddr().String(), "reason", ctx.Error.Error())
	}
}

func (h *handler) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	v := viewerOf(ctx.Session)
	if v == nil {
		return
	}
	if errors.As(ctx.Error, new(liberrors.ErrServerWriteQueueFull)) {
		v.droppedPacket()
		return
	}
	h.s.log.Debug("write to viewer failed", "remote", v.addr, "error", ctx.Error.Error())
}

// contentBase rewrites the Content-Base of a DESCRIBE response, which
// gortsplib makes the request URL plus "/", into the stream's canonical
// URL: the path decoded and normalised (no trailing or doubled slash), one
// "/" at the end, no query and no user information. Every player resolves
// the control URL of the track ("trackID=0") and sends PLAY against this
// base, so SETUP and PLAY carry the same path whatever form the viewer was
// given: "rtsp://h/cam/" (GStreamer's rtspsrc then sent PLAY to ".../cam//"
// and got 400), "rtsp://h/cam?token=x" (a query would end up in the middle
// of ffmpeg's SETUP URL), "rtsp://h/c%61m" or "rtsp://user:pass@h/cam".
// The query is not needed: the server ignores it (RFC 2326 C.1.1 lets the
// server choose the base).
func contentBase(v string) string {
	u, err := url.Parse(v)
	if err != nil {
		return v
	}
	p, err := normalizePath(u.Path)
	if err != nil {
		return v
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment = nil, "", false, ""
	u.Path, u.RawPath = p+"/", ""
	return u.String()
}
