package kvs

import "github.com/skyline-go/skyline"

// Secrets implements skyline.SecretHolder: the inline credentials' secret
// key and session token and the values of secret properties, masked by the
// SkyLine in every error, event and log line about the sink.
func (s *Sink) Secrets() []skyline.Secret {
	out := []skyline.Secret{skyline.NewSecret(s.static.SecretAccessKey), skyline.NewSecret(s.static.SessionToken)}
	for k, v := range s.cfg.KVSSink.Properties {
		if secretProp(k) {
			out = append(out, skyline.NewSecret(v))
		}
	}
	return out
}

// String is the sink's Name: its Config holds a credentials provider (an
// AWS type that prints its keys), so it is never printed field by field.
func (s *Sink) String() string { return s.Name() }

// GoString is used by %#v; see String.
func (s *Sink) GoString() string { return "kvs.Sink(" + s.Name() + ")" }

// String is the destination's Name: its Config holds a credentials
// provider (an AWS type that prints its keys), so it is never printed field
// by field.
func (d *Native) String() string { return d.Name() }

// GoString is used by %#v; see String.
func (d *Native) GoString() string { return "kvs.Native(" + d.Name() + ")" }
