package webrtc

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
)

// credentials are the user and password a path requires ("" user: none).
type credentials struct{ user, pass string }

func (c credentials) required() bool { return c.user != "" }

// allows checks the request's basic authentication in constant time.
func (c credentials) allows(r *http.Request) bool {
	if !c.required() {
		return true
	}
	u, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	uok := subtle.ConstantTimeCompare([]byte(u), []byte(c.user))
	pok := subtle.ConstantTimeCompare([]byte(p), []byte(c.pass))
	return uok&pok == 1
}

// authorize answers 401 with a basic challenge and returns false when the
// request lacks the credentials.
func authorize(w http.ResponseWriter, r *http.Request, c credentials) bool {
	if c.allows(r) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="SkyLine", charset="UTF-8"`)
	http.Error(w, "401 unauthorized", http.StatusUnauthorized)
	return false
}

// cors sets the CORS headers of a request from an allowed origin.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || len(s.cfg.AllowOrigins) == 0 {
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if !slices.Contains(s.cfg.AllowOrigins, "*") && !slices.Contains(s.cfg.AllowOrigins, origin) {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Expose-Headers", "Location, Link, ETag")
}

// ServeHTTP serves, for each stream at /path: the page (GET /path/), the
// WHEP endpoint (POST /path/whep; DELETE /path/whep/SESSION ends a
// session), the clock the page measures latency with (GET /path/clock),
// and a list of the streams at /.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	p := r.URL.Path
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
		w.Header().Set("Access-Control-Max-Age", "600")
		w.Header().Set("Allow", "GET, POST, PATCH, DELETE, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if p == "/" {
		s.serveIndex(w, r)
		return
	}
	if i := strings.LastIndex(p, "/whep/"); i > 0 {
		if st := s.lookup(p[:i]); st != nil {
			s.serveSession(w, r, st, p[i+len("/whep/"):])
			return
		}
	}
	for _, name := range reserved {
		if base, ok := strings.CutSuffix(p, "/"+name); ok {
			if st := s.lookup(base); st != nil {
				if name == "whep" {
					s.serveWHEP(w, r, st)
				} else {
					s.serveClock(w, r, st)
				}
				return
			}
		}
	}
	if base, ok := strings.CutSuffix(p, "/"); ok {
		if st := s.lookup(base); st != nil {
			s.servePage(w, r, st)
			return
		}
	}
	if st := s.lookup(p); st != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		if !authorize(w, r, st.credentials()) {
			return
		}
		http.Redirect(w, r, p+"/", http.StatusMovedPermanently)
		return
	}
	if !authorize(w, r, s.credentials()) { // do not reveal which paths exist
		return
	}
	http.NotFound(w, r)
}

// serveWHEP creates a session from an SDP offer (WHEP, RFC 9725).
func (s *Server) serveWHEP(w http.ResponseWriter, r *http.Request, st *Stream) {
	if !authorize(w, r, st.credentials()) {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "405 method not allowed: POST an SDP offer", http.StatusMethodNotAllowed)
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/sdp" {
		http.Error(w, "415 unsupported media type: want application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	if r.ContentLength > MaxOfferBytes {
		http.Error(w, "413 the offer is too large (at most 64 KiB)", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOfferBytes))
	if err != nil {
		http.Error(w, "400 cannot read the offer: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := checkOffer(string(body)); err != nil {
		http.Error(w, "400 "+err.Error(), http.StatusBadRequest)
		return
	}
	// The slot is taken before the hold: offers waiting for the first
	// picture count against MaxSessions and MaxViewers, and those beyond
	// are refused at once.
	slot, err := st.reserve(r.RemoteAddr)
	if err != nil {
		http.Error(w, "503 "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer slot.release()
	if why := st.hold(r.Context(), s.cfg.HoldTimeout); why != "" {
		http.Error(w, "503 service unavailable: "+why, http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	v, answer, err := st.newViewer(ctx, string(body), r.RemoteAddr, slot)
	switch {
	case errors.Is(err, errBadOffer):
		http.Error(w, "400 "+err.Error(), http.StatusBadRequest)
		return
	case errors.Is(err, errProfile):
		st.log.Info("WHEP offer refused: the viewer cannot decode the stream's profile", "remote", r.RemoteAddr, "error", err)
		http.Error(w, "406 "+err.Error(), http.StatusNotAcceptable)
		return
	case errors.Is(err, errRemoved):
		http.NotFound(w, r)
		return
	case errors.Is(err, errResources):
		s.logLimit.Log(s.log, slog.LevelWarn, "resources", "WHEP offer refused: the server is short of resources (descriptors?)", "remote", r.RemoteAddr, "error", err)
		http.Error(w, "503 "+err.Error()+"; retry later", http.StatusServiceUnavailable)
		return
	case errors.Is(err, errTooMany), errors.Is(err, errNotServing):
		http.Error(w, "503 "+err.Error(), http.StatusServiceUnavailable)
		return
	case err != nil:
		st.log.Warn("WHEP session failed", "remote", r.RemoteAddr, "error", err)
		http.Error(w, "500 "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", st.path+"/whep/"+v.id)
	h.Set("ETag", `"`+v.id+`"`)
	for _, is := range s.cfg.ICEServers {
		for _, u := range is.URLs {
			link := "<" + u + `>; rel="ice-server"`
			if is.Username != "" {
				link += `; username="` + is.Username + `"; credential="` + is.Password + `"; credential-type="password"`
			}
			h.Add("Link", link)
		}
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// serveSession ends a session (DELETE). Trickle ICE (PATCH) is not needed:
// the answer carries every candidate, and the server learns the viewer's
// addresses from its connectivity checks.
func (s *Server) serveSession(w http.ResponseWriter, r *http.Request, st *Stream, id string) {
	if !authorize(w, r, st.credentials()) {
		return
	}
	s.mu.RLock()
	v := s.sessions[id]
	s.mu.RUnlock()
	if v == nil || v.st != st {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodDelete:
		v.close("ended by the viewer (DELETE)")
		w.WriteHeader(http.StatusOK)
	case http.MethodPatch:
		w.Header().Set("Allow", "DELETE, OPTIONS")
		http.Error(w, "405 trickle ICE is not supported: the answer carries every candidate", http.StatusMethodNotAllowed)
	default:
		w.Header().Set("Allow", "DELETE, OPTIONS")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
	}
}

// serveClock gives the page the server's clock and the RTP clock mapping.
func (s *Server) serveClock(w http.ResponseWriter, r *http.Request, st *Stream) {
	if !authorize(w, r, st.credentials()) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(st.clock())
}

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Parse(pageHTML))

type pageICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// servePage serves the player page.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request, st *Stream) {
	if !authorize(w, r, st.credentials()) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ice := []pageICEServer{}
	for _, is := range s.cfg.ICEServers {
		ice = append(ice, pageICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Password})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = pageTmpl.Execute(w, map[string]any{"Path": st.path, "ICEServers": ice})
}

var indexTmpl = template.Must(template.New("index").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>SkyLine</title></head>
<body style="font-family:sans-serif"><h1>SkyLine streams</h1><ul>
{{range .}}<li><a href="{{.}}/">{{.}}</a></li>{{else}}<li>no stream</li>{{end}}
</ul></body></html>`))

// serveIndex lists the streams (server-wide credentials).
func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	if !authorize(w, r, s.credentials()) {
		return
	}
	paths := s.streams.Paths()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexTmpl.Execute(w, paths)
}
