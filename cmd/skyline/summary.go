package main

import (
	"fmt"
	"io"

	"github.com/skyline-go/skyline"
)

// summarize prints one line per --out destination (what it took, what it
// lost) and returns an error naming the destinations that delivered
// nothing of a stream that had frames: one that lost everything, a push that
// never connected, a KVS stream whose fragments were all given up. The RTSP
// server and the browser page are not judged: having no viewer is fine.
func summarize(w io.Writer, st skyline.Stats, judged map[string]bool) error {
	var failed []string
	for _, d := range st.Destinations {
		if !judged[d.Name] {
			continue
		}
		verdict := "ok"
		if st.Encoded > 0 && d.Written == 0 || d.Written > 0 && d.Lost >= d.Written {
			verdict = "FAILED: delivered nothing"
			failed = append(failed, d.Name)
		} else if d.Lost > 0 {
			verdict = "incomplete"
		}
		fmt.Fprintf(w, "out:     %s: %d access units written, %d lost: %s\n", d.Name, d.Written, d.Lost, verdict)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d destination(s) delivered nothing: %v (see the warnings above)", len(failed), failed)
	}
	return nil
}
