package webrtc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/whepclient"
	"github.com/skyline-go/skyline/webrtc"
)

// TestHoldOfferUntilFirstPicture (issue 13, item 1): a WHEP offer posted
// before the stream's first picture waits for it, and is answered with the
// stream's real H.264 profile (x264's High, not a guess), then plays
// consecutive frames.
func TestHoldOfferUntilFirstPicture(t *testing.T) {
	srv := newServer(t, webrtc.ServerConfig{})
	st, err := srv.AddStream("held", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		c   *whepclient.Client
		err error
	}
	dialed := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := whepclient.Dial(ctx, st.WHEPURL(), whepclient.Options{})
		dialed <- result{c, err}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for st.Stats().HeldOffers == 0 {
		select {
		case r := <-dialed:
			t.Fatalf("the offer was answered before the stream had a picture: %v", r.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the offer was never held")
		}
		time.Sleep(5 * time.Millisecond)
	}
	sl := startSkyLine(t, smallW, smallH, smallFPS, nil, st)
	startFeeder(t, sl, smallW, smallH, smallFPS)
	r := <-dialed
	if r.err != nil {
		t.Fatalf("held offer: %v", r.err)
	}
	t.Cleanup(r.c.Close)
	if !strings.Contains(r.c.Answer(), "profile-level-id=64") {
		t.Errorf("the answer does not name the stream's High profile:\n%s", r.c.Answer())
	}
	pics := decodeN(t, r.c, smallW, smallH, 30, 30*time.Second)
	checkConsecutive(t, "held", pics)
}

// TestHoldOfferTimeout: with no picture, an offer is answered 503 with the
// reason after ServerConfig.HoldTimeout.
func TestHoldOfferTimeout(t *testing.T) {
	srv := newServer(t, webrtc.ServerConfig{HoldTimeout: 300 * time.Millisecond})
	st, err := srv.AddStream("none", webrtc.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Now()
	_, err = whepclient.Dial(ctx, st.WHEPURL(), whepclient.Options{})
	var he *whepclient.HTTPError
	if !errors.As(err, &he) || he.Status != 503 || !strings.Contains(he.Body, "no picture yet") {
		t.Fatalf("offer with no picture: %v, want 503 with a reason", err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("answered after %v, before the hold timeout", d)
	}
	t.Log(err)
}
