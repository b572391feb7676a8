package kvs_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/kvs"
	"github.com/skyline-go/skyline/kvs/kvslocal"
)

// Behaviour that holds on real AWS (issue 11), against the local endpoint
// as strict as AWS.

// cachedTempCredentials is the standard chain's behaviour: the SDK's
// CredentialsCache over a provider whose credentials expire ttl after
// issue. The cache judges expiry by the wall clock; the test clock tells
// it when test time passes the expiry (Invalidate), so it hands out the
// same credentials until they expire in test time, then new ones.
func cachedTempCredentials(clock *testClock, ttl time.Duration) (*tempProvider, *aws.CredentialsCache) {
	p := &tempProvider{clock: clock, ttl: ttl}
	cache := aws.NewCredentialsCache(p)
	clock.onSet = func(t time.Time) {
		p.mu.Lock()
		expired := len(p.issued) > 0 && !t.Before(p.issued[len(p.issued)-1].Expires)
		p.mu.Unlock()
		if expired {
			cache.Invalidate()
		}
	}
	return p, cache
}

// Credentials from aws.NewCredentialsCache that expire every 90 s, over 3
// expiries in test time: one rotation per expiry (no storm), never more
// than 5 PutMedia requests per second (the endpoint refuses more), no
// error, no gap, every frame stored.
func TestNativeCredentialCacheRotation(t *testing.T) {
	const w, h, fps, n = 160, 120, 5, 1500 // 300 s
	// In the future: the cache's wall-clock check must not find the
	// credentials expired before test time does.
	clock := newTestClock(time.Now().Add(24 * time.Hour).Truncate(time.Second))
	p, cache := cachedTempCredentials(clock, 90*time.Second)
	srv := startLocal(t, kvslocal.Config{Lookup: p.lookup, Clock: clock})
	ev := newEvents()
	cfg := nativeConfig(srv, clock, ev)
	cfg.Credentials = cache
	dst, err := kvs.NewNative(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, dst, w, h, fps, clock, 100)
	s.putPaced(n, 10, 1, dst, ev)
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := dst.Stats()
	expiries := p.count() - 1
	t.Logf("stats %+v; %d credentials issued, %d PutMedia requests", st, p.count(), srv.Requests("putMedia"))
	if expiries < 3 {
		t.Fatalf("%d credential expiries in %v of test time, want >= 3", expiries, s.frameTime(n).Sub(s.base))
	}
	if st.Connections > uint64(1+expiries) || srv.Requests("putMedia") > 1+expiries || st.Connections < 2 {
		t.Fatalf("%d connections, %d PutMedia requests for %d expiries: want one rotation per expiry", st.Connections, srv.Requests("putMedia"), expiries)
	}
	if r := srv.Refused("cam1", "ClientLimitExceededException") + srv.Refused("cam1", "ConnectionLimitExceededException"); r != 0 || st.Errors != 0 {
		t.Fatalf("%d PutMedia requests refused, %d errors", r, st.Errors)
	}
	if st.Persisted != st.Fragments || st.FragmentsDropped != 0 || st.FramesDropped != 0 || srv.Duplicates("cam1") != 0 {
		t.Fatalf("stats %+v, %d duplicates: want every fragment persisted once", st, srv.Duplicates("cam1"))
	}
	frs := checkStored(t, srv, "cam1", s, n)
	var prev int64
	for _, f := range frs {
		for _, tc := range f.FrameTimecodes {
			if prev != 0 && (tc-prev < 199 || tc-prev > 201) {
				t.Fatalf("timecode gap: %d after %d", tc, prev)
			}
			prev = tc
		}
	}
}

// A stream without retention: KVS sends RECEIVED but never PERSISTED; the
// client releases fragments on RECEIVED: no loss event, no re-send, and
// Stop returns once the RECEIVED acknowledgements are in.
func TestNativeRetentionZero(t *testing.T) {
	const w, h, fps, n = 160, 120, 15, 150
	srv := startLocal(t, kvslocal.Config{})
	kv := kinesisvideo.New(kinesisvideo.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), Credentials: staticCreds(),
		Retryer: aws.NopRetryer{}, HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}})
	if _, err := kv.CreateStream(context.Background(), &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam1"), DataRetentionInHours: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	dst, err := kvs.NewNative(nativeConfig(srv, clock, ev)) // default CloseTimeout
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, dst, w, h, fps, clock, n)
	s.put(n)
	start := time.Now()
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	st := dst.Stats()
	t.Logf("stats %+v; Stop took %v", st, took)
	if took > 3*time.Second {
		t.Fatalf("Stop took %v: Close waited for acknowledgements a stream without retention never sends", took)
	}
	if st.Persisted != 0 || st.Received != st.Fragments || st.FragmentsSent != st.Fragments || st.FragmentsDropped != 0 || st.FramesDropped != 0 {
		t.Fatalf("stats %+v: want every fragment RECEIVED, sent once, none given up", st)
	}
	if c := count(ev.snapshot(), kvs.EventFragmentsDropped); c != 0 || srv.Duplicates("cam1") != 0 {
		t.Fatalf("%d loss events, %d re-sent fragments", c, srv.Duplicates("cam1"))
	}
	checkStored(t, srv, "cam1", s, n)
}

// A producer paused for 40 s mid-stream: after 20 s of silence the open
// fragment is closed (end-of-fragment tag) and PERSISTED, within 25 s of
// the pause; the connection ends cleanly; streaming resumes afterwards
// without an error or a loss.
func TestNativeIdlePause(t *testing.T) {
	const w, h, fps, n, pauseAt = 160, 120, 15, 90, 45
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	srv := startLocal(t, kvslocal.Config{Clock: clock})
	ev := newEvents()
	dst, err := kvs.NewNative(nativeConfig(srv, clock, ev))
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, dst, w, h, fps, clock, n)
	s.pauseAt, s.pause = pauseAt, 40*time.Second
	s.put(pauseAt)
	ev.wait(t, "the frames before the pause", time.Minute, func([]kvs.Event) bool { return dst.Stats().Frames == pauseAt })
	last := s.frameTime(pauseAt - 1) // the clock's time when the last frame arrived
	ev.wait(t, "the fragments before the open one persisted", time.Minute, func([]kvs.Event) bool {
		st := dst.Stats()
		return st.Persisted == st.Fragments-1
	})
	for d := time.Second; d <= 19*time.Second; d += time.Second {
		clock.Set(last.Add(d))
	}
	// The client looks at the clock every 250 ms (real time): give it a
	// few looks at 19 s of silence before concluding nothing happened.
	time.Sleep(time.Second)
	if st := dst.Stats(); st.Persisted != st.Fragments-1 {
		t.Fatalf("fragment closed before 20 s of silence: %+v", st)
	}
	clock.Set(last.Add(20500 * time.Millisecond))
	ev.wait(t, "the open fragment persisted", 10*time.Second, func([]kvs.Event) bool {
		st := dst.Stats()
		return st.Persisted == st.Fragments
	})
	if paused := clock.Now().Sub(last); paused > 25*time.Second {
		t.Fatalf("the last fragment was persisted %v after the pause", paused)
	}
	evs := ev.wait(t, "the connection's clean end", 10*time.Second, func(e []kvs.Event) bool { return count(e, kvs.EventDisconnected) >= 1 })
	for _, e := range evs {
		if e.Type == kvs.EventDisconnected && e.Err != nil {
			t.Fatalf("the connection ended with %v", e.Err)
		}
	}
	if d := s.sl.Stats().Destinations[0]; !d.Up {
		t.Errorf("during the pause the SkyLine shows %+v, want up (nothing failed)", d)
	}
	clock.Set(last.Add(39 * time.Second))
	s.put(n)
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := dst.Stats()
	t.Logf("stats %+v", st)
	if c := count(ev.snapshot(), kvs.EventError); c != 0 || st.Errors != 0 {
		t.Fatalf("%d error events after a pause", c)
	}
	if st.Connections != 2 || st.Persisted != st.Fragments || st.FragmentsDropped != 0 || st.FramesDropped != 0 {
		t.Fatalf("stats %+v: want 2 connections, every frame persisted", st)
	}
	checkStored(t, srv, "cam1", s, n)
}

// A data endpoint that fails is looked up again (GetDataEndpoint) after
// each failure instead of being kept for RediscoverInterval.
func TestNativeReloadsEndpoint(t *testing.T) {
	srv := startLocal(t, kvslocal.Config{})
	srv.SetDataEndpoint("http://127.0.0.1:1") // nothing listens there
	ev := newEvents()
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	dst, err := kvs.NewNative(nativeConfig(srv, clock, ev))
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, dst, 160, 120, 15, clock, 60)
	s.put(30)
	ev.wait(t, "3 failed connections", time.Minute, func(e []kvs.Event) bool { return count(e, kvs.EventError) >= 3 })
	if got := srv.Requests("getDataEndpoint"); got < 3 {
		t.Fatalf("%d GetDataEndpoint calls for 3 failed connections: the failing endpoint was kept", got)
	}
	srv.SetDataEndpoint("")
	ev.wait(t, "a connection", time.Minute, func(e []kvs.Event) bool { return count(e, kvs.EventConnected) >= 1 })
	s.put(60)
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := dst.Stats(); st.FragmentsDropped != 0 || st.Persisted != st.Fragments {
		t.Fatalf("stats %+v", st)
	}
	checkStored(t, srv, "cam1", s, 60)
	if s.sl.State() != skyline.StateStopped {
		t.Fatalf("state %v", s.sl.State())
	}
}

// staleAfter hands out the same temporary credentials until switchAt of
// its clock, then different ones that are already expired (a source whose
// credentials are stale, or a clock ahead of it).
type staleAfter struct {
	tempProvider
	switchAt time.Time
}

func (p *staleAfter) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p.mu.Lock()
	n := len(p.issued)
	p.mu.Unlock()
	now := p.clock.Now()
	if n == 1 && now.Before(p.switchAt) {
		return p.issued[0], nil
	}
	if n == 0 || n == 1 {
		c, err := p.tempProvider.Retrieve(ctx)
		if n == 1 {
			p.mu.Lock()
			p.issued[1].Expires = now.Add(-time.Minute)
			c = p.issued[1]
			p.mu.Unlock()
		}
		return c, err
	}
	return p.issued[1], nil
}

// New credentials that are already expired do not replace the live
// connection's: the connection, authorised at its start, goes on (the
// next connection would be refused), and the provider is asked again
// later.
func TestNativeKeepsConnectionOverExpiredCredentials(t *testing.T) {
	const w, h, fps, n = 160, 120, 5, 400 // 80 s: the first credentials expire at 90 s
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	p := &staleAfter{tempProvider: tempProvider{clock: clock, ttl: 90 * time.Second}, switchAt: clock.Now().Add(65 * time.Second)}
	srv := startLocal(t, kvslocal.Config{Lookup: p.lookup, Clock: clock})
	ev := newEvents()
	cfg := nativeConfig(srv, clock, ev)
	cfg.Credentials = p
	dst, err := kvs.NewNative(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, dst, w, h, fps, clock, 100)
	s.putPaced(n, 10, 1, dst, ev)
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := dst.Stats()
	t.Logf("stats %+v; %d credentials issued", st, p.count())
	if p.count() != 2 {
		t.Fatalf("%d credentials issued: the provider was not asked after it went stale", p.count())
	}
	if c := count(ev.snapshot(), kvs.EventError); c != 0 || st.Errors != 0 || st.Connections != 1 {
		t.Fatalf("%d error events, stats %+v: the live connection was given up for expired credentials", c, st)
	}
	checkStored(t, srv, "cam1", s, n)
}
