package skyline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Masked is what every secret shows instead of its value.
const Masked = "****"

// Secret is a value that must never be printed: a password, an RTMP stream
// key, an SRT passphrase, an AWS secret key or session token. Every way of
// showing it (String, GoString, Format with any verb, LogValue, MarshalJSON,
// MarshalText) gives "****"; Reveal gives the value, for the one place that
// hands it to a server or a GStreamer element. The value is held behind a
// pointer, so that a struct printed with %+v, which cannot call the methods
// of its unexported fields, shows an address, not the value. The zero
// Secret is empty.
type Secret struct{ p *string }

// NewSecret wraps a value.
func NewSecret(v string) Secret {
	if v == "" {
		return Secret{}
	}
	return Secret{&v}
}

// Reveal is the value. Call it only where the value is used (connecting,
// building a pipeline), never to show it.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.p == nil }

// String is "****" (or "" for the empty secret).
func (s Secret) String() string {
	if s.p == nil {
		return ""
	}
	return Masked
}

// GoString is used by %#v.
func (s Secret) GoString() string { return fmt.Sprintf("skyline.Secret(%q)", s.String()) }

// Format prints the mask for every verb (%v, %s, %q, %x, %d ...).
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.String())
	case 'v':
		if f.Flag('#') {
			_, _ = io.WriteString(f, s.GoString())
			return
		}
		_, _ = io.WriteString(f, s.String())
	default:
		_, _ = io.WriteString(f, s.String())
	}
}

// LogValue keeps the value out of log/slog records.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes the mask as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText writes the mask.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalJSON reads a JSON string (a secret in a configuration message);
// null is the empty secret.
func (s *Secret) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = Secret{}
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return errors.New("skyline: a secret must be a JSON string") // never quote the input
	}
	*s = NewSecret(v)
	return nil
}

// SecretHolder is implemented by destinations whose settings hold secrets
// (NewPush, NewGstSink, rtsp.Publisher, kvs sinks). A SkyLine masks them in
// every error, event and log line about the destination; its Name must
// already be free of them.
type SecretHolder interface {
	Secrets() []Secret
}

// IsSecretName reports whether a property, query or field name holds a
// secret: names with pass, secret, token, credential, auth, signature,
// cookie or header in them (password, passphrase, session-token,
// X-Amz-Signature, extra-headers ...), pw and pwd (user-pw), streamid (SRT
// access control, which carries user names and tokens), and names ending in
// key (key, stream-key, access-key, secret-key, apikey; not key-int-max).
func IsSecretName(name string) bool {
	n := strings.ToLower(name)
	parts := strings.FieldsFunc(n, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') })
	if len(parts) == 0 {
		return false
	}
	for _, p := range parts {
		for _, w := range []string{"pass", "secret", "token", "credential", "auth", "signature", "pwd", "cookie", "header"} {
			if strings.Contains(p, w) {
				return true
			}
		}
		if p == "pw" || p == "sig" || p == "streamid" {
			return true
		}
	}
	return strings.HasSuffix(parts[len(parts)-1], "key")
}

// URLSecrets returns the secrets of a destination URL, well formed or not:
// the password of its user information, the stream key (the last path
// element) of rtmp:// and rtmps://, and the values of query parameters
// named like secrets (passphrase, streamid, key, token ...; see
// IsSecretName), each as written and percent-decoded.
func URLSecrets(raw string) []Secret {
	var out []Secret
	add := func(v string) {
		if v == "" {
			return
		}
		out = append(out, NewSecret(v))
		if d, err := url.PathUnescape(v); err == nil && d != v {
			out = append(out, NewSecret(d))
		}
		if d, err := url.QueryUnescape(v); err == nil && d != v {
			out = append(out, NewSecret(d))
		}
	}
	p := splitURL(raw)
	if p == nil {
		return nil
	}
	add(p.password)
	add(p.key)
	for _, q := range p.query {
		if q.secret {
			add(q.value)
		} else if strings.Contains(q.value, "://") {
			out = append(out, URLSecrets(q.value)...)
		}
	}
	return out
}

// RedactURL returns a URL fit to show: the password, the rtmp(s) stream key
// and secret query values replaced by "****". It never needs the URL to be
// well formed (a URL url.Parse refuses is redacted the same way), so it is
// what error messages about a bad URL quote.
func RedactURL(raw string) string {
	p := splitURL(raw)
	if p == nil {
		return raw
	}
	return p.redacted()
}

// RedactLaunch returns gst-launch text fit to show: the values of
// properties named like secrets (access-key, secret-key, session-token,
// password, passphrase, user-pw, ...; see IsSecretName) and the secrets of
// every URL in it (see RedactURL) are replaced by "****".
func RedactLaunch(text string) string {
	text = quotedText.ReplaceAllStringFunc(text, func(q string) string { // a quoted URL may hold spaces
		if inner := q[1 : len(q)-1]; quotedURL.MatchString(inner) {
			return `"` + RedactURL(inner) + `"`
		}
		return q
	})
	text = urlInText.ReplaceAllStringFunc(text, RedactURL)
	return secretProp.ReplaceAllStringFunc(text, func(m string) string {
		i := strings.IndexByte(m, '=')
		if !IsSecretName(m[:i]) || strings.HasPrefix(m[i+1:], Masked) { // masked already (a URL's query)
			return m
		}
		return m[:i+1] + Masked
	})
}

// LaunchSecrets returns the values of secret properties and the URL
// secrets in gst-launch text (what RedactLaunch hides), for masking them
// wherever else they may appear (an element's error quoting a value).
func LaunchSecrets(text string) []Secret {
	var out []Secret
	for _, q := range quotedText.FindAllString(text, -1) {
		if inner := q[1 : len(q)-1]; quotedURL.MatchString(inner) {
			out = append(out, URLSecrets(inner)...)
		}
	}
	for _, u := range urlInText.FindAllString(text, -1) {
		out = append(out, URLSecrets(u)...)
	}
	for _, m := range secretProp.FindAllString(text, -1) {
		i := strings.IndexByte(m, '=')
		if v := strings.Trim(m[i+1:], `"'`); IsSecretName(m[:i]) && v != "" {
			out = append(out, NewSecret(v))
			if u := strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(v); u != v {
				out = append(out, NewSecret(u))
			}
		}
	}
	return out
}

// Redact returns text (an error message, a log line, a name) with every
// secret hidden: the given secrets wherever they occur, and whatever
// RedactLaunch recognises (secret properties, URL credentials).
func Redact(text string, secrets ...Secret) string {
	text = RedactLaunch(text)
	if len(secrets) == 0 {
		return text
	}
	vals := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if v := s.Reveal(); v != "" && v != Masked {
			vals = append(vals, v)
		}
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) }) // longest first
	for _, v := range vals {
		text = strings.ReplaceAll(text, v, Masked)
	}
	return text
}

// RedactError is err with its message passed through Redact. An error
// whose message shows no secret is returned as it is (errors.As works);
// otherwise errors.Is still matches what err wraps, but the original
// (unredacted) error is not reachable through the result. nil stays nil.
func RedactError(err error, secrets ...Secret) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	masked := Redact(msg, secrets...)
	if masked == msg {
		return err
	}
	return &redactedError{msg: masked, orig: err}
}

type redactedError struct {
	msg  string
	orig error
}

func (e *redactedError) Error() string                { return e.msg }
func (e *redactedError) Is(target error) bool         { return errors.Is(e.orig, target) }
func (e *redactedError) LogValue() slog.Value         { return slog.StringValue(e.msg) }
func (e *redactedError) MarshalText() ([]byte, error) { return []byte(e.msg), nil }

// URLProblem says why url.Parse refused a URL without quoting it: its
// error holds the whole URL, and a part of it (the "port" of a URL whose
// password has a '/') may be a secret.
func URLProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := strings.TrimPrefix(quotedText.ReplaceAllString(err.Error(), ""), "net/url: ")
	return strings.Join(strings.Fields(msg), " ")
}

// SecretsOf returns a destination's secrets (nil unless it is a
// SecretHolder).
func SecretsOf(d Destination) []Secret {
	if h, ok := d.(SecretHolder); ok {
		return h.Secrets()
	}
	return nil
}

var (
	// urlInText finds URLs inside launch text or messages; a quoted value
	// ends at its quote, an unquoted one at white space or '!'.
	urlInText  = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'!]*`)
	quotedText = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	quotedURL  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	// secretProp finds name=value assignments (value quoted or not).
	secretProp = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_.-]*=("(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s!,;]+)`)
)

// urlParts is a URL split by hand, so that malformed URLs (which url.Parse
// refuses, quoting them whole in its error) are redacted too.
type urlParts struct {
	scheme, user, password, host, path, key, fragment string
	hasUser, hasPassword, hasQuery                    bool
	query                                             []queryPart
}

type queryPart struct {
	name, value string
	hasValue    bool
	secret      bool
}

func splitURL(raw string) *urlParts {
	i := strings.Index(raw, "://")
	if i <= 0 || strings.ContainsAny(raw[:i], " /?#@") {
		return nil
	}
	p := &urlParts{scheme: raw[:i]}
	rest := raw[i+3:]
	// User information ends at the last '@' before the query: a password
	// with '/' or '#' in it makes the URL invalid, but is still a password.
	// Past the query, an '@' counts only when the URL is not valid (a '?'
	// in the password).
	head := rest
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		head = rest[:q]
	}
	at := strings.LastIndexByte(head, '@')
	if at < 0 && strings.Contains(rest, "@") {
		if _, err := url.Parse(raw); err != nil {
			at = strings.LastIndexByte(rest, '@')
		}
	}
	if at >= 0 {
		p.hasUser = true
		p.user, p.password, p.hasPassword = strings.Cut(rest[:at], ":")
		rest = rest[at+1:]
	}
	if f := strings.IndexByte(rest, '#'); f >= 0 {
		p.fragment, rest = rest[f+1:], rest[:f]
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		p.hasQuery = true
		for _, kv := range strings.Split(rest[q+1:], "&") {
			k, v, has := strings.Cut(kv, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			p.query = append(p.query, queryPart{name: k, value: v, hasValue: has, secret: IsSecretName(name)})
		}
		rest = rest[:q]
	}
	if s := strings.IndexByte(rest, '/'); s >= 0 {
		p.host, p.path = rest[:s], rest[s:]
	} else {
		p.host = rest
	}
	if strings.HasPrefix(strings.ToLower(p.scheme), "rtmp") { // rtmp, rtmps, rtmpt ...
		// The last path element of an RTMP URL is the stream key.
		if s := strings.LastIndexByte(p.path, '/'); s >= 0 && s+1 < len(p.path) {
			p.key = p.path[s+1:]
			p.path = p.path[:s+1]
		}
	}
	return p
}

func (p *urlParts) redacted() string {
	var b strings.Builder
	b.WriteString(p.scheme)
	b.WriteString("://")
	if p.hasUser {
		b.WriteString(p.user)
		if p.hasPassword {
			b.WriteString(":" + Masked)
		}
		b.WriteString("@")
	}
	b.WriteString(p.host)
	b.WriteString(p.path)
	if p.key != "" {
		b.WriteString(Masked)
	}
	if p.hasQuery {
		b.WriteString("?")
		for i, q := range p.query {
			if i > 0 {
				b.WriteString("&")
			}
			b.WriteString(q.name)
			if q.hasValue {
				b.WriteString("=")
				switch {
				case q.secret && q.value != "":
					b.WriteString(Masked)
				case strings.Contains(q.value, "://"): // an endpoint=URL with a password
					b.WriteString(RedactURL(q.value))
				default:
					b.WriteString(q.value)
				}
			}
		}
	}
	if p.fragment != "" {
		b.WriteString("#" + Masked) // a fragment in a destination URL is most likely a cut password
	}
	return b.String()
}
