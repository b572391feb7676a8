package rtsp

import (
	"fmt"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
)

// AuthMethod is an RTSP authentication scheme the server offers and accepts.
type AuthMethod int

const (
	// AuthBasic is HTTP basic authentication (the password travels in
	// clear text unless RTSPS is used).
	AuthBasic AuthMethod = iota + 1
	// AuthDigest is HTTP digest authentication with MD5 (what ffmpeg, VLC
	// and GStreamer speak).
	AuthDigest
	// AuthDigestSHA256 is digest authentication with SHA-256. Few players
	// support it (not ffmpeg).
	AuthDigestSHA256
)

func (m AuthMethod) String() string {
	switch m {
	case AuthBasic:
		return "basic"
	case AuthDigest:
		return "digest"
	case AuthDigestSHA256:
		return "digest-sha256"
	}
	return fmt.Sprintf("AuthMethod(%d)", int(m))
}

// DefaultAuthMethods are offered when ServerConfig.AuthMethods is empty.
var DefaultAuthMethods = []AuthMethod{AuthBasic, AuthDigest}

func verifyMethods(ms []AuthMethod) ([]auth.VerifyMethod, error) {
	if len(ms) == 0 {
		ms = DefaultAuthMethods
	}
	out := make([]auth.VerifyMethod, 0, len(ms))
	for _, m := range ms {
		switch m {
		case AuthBasic:
			out = append(out, auth.VerifyMethodBasic)
		case AuthDigest:
			out = append(out, auth.VerifyMethodDigestMD5)
		case AuthDigestSHA256:
			out = append(out, auth.VerifyMethodDigestSHA256)
		default:
			return nil, fmt.Errorf("%w: unknown AuthMethod %d", ErrInvalidConfig, int(m))
		}
	}
	return out, nil
}

// credentials are the user and password a path requires ("" user: none).
type credentials struct{ user, pass string }

func (c credentials) required() bool { return c.user != "" }

// authorize checks a request against the credentials. It returns a 401
// response and liberrors.ErrServerAuth (which makes gortsplib add the
// WWW-Authenticate challenge, or close the connection when wrong
// credentials were sent) when the request is not authorised, else nil.
func authorize(conn *gortsplib.ServerConn, req *base.Request, c credentials) (*base.Response, error) {
	if !c.required() || conn.VerifyCredentials(req, c.user, c.pass) {
		return nil, nil
	}
	return &base.Response{StatusCode: base.StatusUnauthorized}, liberrors.ErrServerAuth{}
}
