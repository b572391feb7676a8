package webrtc

import (
	"fmt"

	"github.com/skyline-go/skyline"
)

var _ skyline.Receiver = (*Stream)(nil)

// NewSkyLine is a SkyLine whose destination is a new stream at path on srv
// (cfg.Name defaults to "WebRTCSkyLine"). The stream stays on the server
// after the SkyLine is closed; remove it with srv.RemoveStream(path).
func NewSkyLine(srv *Server, path string, cfg skyline.Config) (*skyline.SkyLine, error) {
	if srv == nil {
		return nil, fmt.Errorf("%w: nil *Server", ErrInvalidConfig)
	}
	if cfg.Name == "" {
		cfg.Name = "WebRTCSkyLine"
	}
	st, err := srv.AddStream(path, StreamOptions{})
	if err != nil {
		return nil, err
	}
	sl, err := skyline.New(cfg, st)
	if err != nil {
		_ = srv.RemoveStream(st.Path())
		return nil, err
	}
	return sl, nil
}
