// Package urlport checks the port of a destination URL before anything
// dials it: a port outside 1..65535 (srt://host:99999) can never connect,
// and is better refused when the destination is made than retried forever.
package urlport

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Check returns an error when u's port is not a number in 1..65535, or when
// required and u has none. The error names the port, never the rest of the
// URL (which may hold secrets).
func Check(u *url.URL, required bool) error {
	p := u.Port()
	if p == "" {
		if required || strings.HasSuffix(u.Host, ":") {
			return fmt.Errorf("%s:// needs a port (%s://HOST:PORT)", u.Scheme, u.Scheme)
		}
		return nil
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1..65535", p)
	}
	return nil
}
