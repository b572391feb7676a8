package webrtc_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// onlyConstrainedBaseline makes the page's peer connection offer H.264
// Constrained Baseline only (profile-level-id 42e01f), as Firefox may: the
// standard setCodecPreferences on each transceiver the page adds.
const onlyConstrainedBaseline = `(() => {
  const add = RTCPeerConnection.prototype.addTransceiver;
  RTCPeerConnection.prototype.addTransceiver = function (...args) {
    const tr = add.apply(this, args);
    const cb = RTCRtpReceiver.getCapabilities("video").codecs.filter(c =>
      c.mimeType === "video/H264" && /profile-level-id=42e01f/.test(c.sdpFmtpLine) && /packetization-mode=1/.test(c.sdpFmtpLine));
    tr.setCodecPreferences(cb);
    return tr;
  };
})();`

// openWith opens url in a new tab after installing script in it.
func (b *browser) openWith(t *testing.T, url, script string) string {
	t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call(t, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target, 30*time.Second)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	b.call(t, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att, 30*time.Second)
	b.call(t, att.SessionID, "Page.enable", map[string]any{}, nil, 30*time.Second)
	b.call(t, att.SessionID, "Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": script}, nil, 30*time.Second)
	b.call(t, att.SessionID, "Page.navigate", map[string]any{"url": url}, nil, 30*time.Second)
	return att.SessionID
}

// waitStateText resolves with the page's state line once it contains
// want, or whatever it shows after timeoutMs.
const waitStateText = `new Promise(resolve => {
  const t0 = performance.now();
  const check = () => {
    const el = document.getElementById("state");
    const text = el ? el.textContent : "";
    if (text.includes(%q) || performance.now() - t0 > %d) return resolve(text);
    setTimeout(check, 50);
  };
  check();
})`

// TestChromiumProfileRefused: headless Chromium offering Constrained
// Baseline only is refused for a High stream, and the page shows why; for
// a baseline stream the same browser plays.
func TestChromiumProfileRefused(t *testing.T) {
	b := startChromium(t)
	t.Run("high", func(t *testing.T) {
		st := startProfileStream(t, "")
		sess := b.openWith(t, st.URL(), onlyConstrainedBaseline)
		var text string
		b.eval(t, sess, fmt.Sprintf(waitStateText, "cannot decode the stream", 30000), &text, 60*time.Second)
		if !strings.Contains(text, "406") || !strings.Contains(text, "cannot decode the stream") ||
			!strings.Contains(text, "High (64") || !strings.Contains(text, "--profile baseline") {
			t.Fatalf("the page shows %q, want the reason of the 406", text)
		}
		t.Logf("the page shows: %s", text)
	})
	t.Run("baseline", func(t *testing.T) {
		st := startProfileStream(t, "baseline")
		sess := b.openWith(t, st.URL(), onlyConstrainedBaseline)
		var ps pageState
		b.eval(t, sess, fmt.Sprintf(waitPlaying, 30, 60000), &ps, 90*time.Second)
		if ps.Frames < 30 || ps.VideoW != smallW {
			t.Fatalf("a baseline stream in a Constrained-Baseline-only page: state %q error %q, %d pictures", ps.State, ps.Error, ps.Frames)
		}
	})
}
