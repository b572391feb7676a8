package kvs_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/skyline-go/skyline"

	"github.com/skyline-go/skyline/kvs"
	"github.com/skyline-go/skyline/kvs/kvslocal"
)

// 30 s of numbered 640x480@15 frames to the local endpoint: every fragment
// persisted, timecodes within 1 ms, the stored media decodes in order.
func TestNativeToLocal(t *testing.T) {
	const w, h, fps, n = 640, 480, 15, 450
	srv := startLocal(t, kvslocal.Config{})
	ev := newEvents()
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	dst, err := kvs.NewNative(kvs.Config{Region: "us-east-1", Stream: "cam1", Credentials: staticCreds(),
		Endpoint: srv.URL(), OnEvent: func(e kvs.Event) {
			t.Logf("event %v %v %d %v", e.Type, e.Ack.EventType, e.Ack.FragmentTimecode, e.Err)
			ev.add(e)
		}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, dst, w, h, fps, clock, n)
	s.put(n)
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := dst.Stats()
	t.Logf("stats %+v", st)
	if st.Fragments == 0 || st.Persisted != st.Fragments || st.FragmentsDropped != 0 || st.FramesDropped != 0 || st.Frames != n {
		t.Fatalf("stats %+v: want %d frames, every fragment persisted, none dropped", st, n)
	}
	if got := countAcks(ev.snapshot(), kvs.AckPersisted); uint64(got) != st.Fragments {
		t.Fatalf("%d PERSISTED events for %d fragments", got, st.Fragments)
	}
	frs := checkStored(t, srv, "cam1", s, n)
	if uint64(len(frs)) != st.Fragments {
		t.Fatalf("endpoint stored %d fragments, client cut %d", len(frs), st.Fragments)
	}
}

// At the default settings (2 s fragments, the encoder's 2 s GOP) with
// capture jitter, every stored fragment holds one keyframe: a natural
// keyframe landing a few ms before 2 s ends the fragment instead of a
// second, requested one.
func TestNativeOneKeyframePerFragment(t *testing.T) {
	const w, h, fps, n = 160, 120, 15, 300
	srv := startLocal(t, kvslocal.Config{})
	ev := newEvents()
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	dst, err := kvs.NewNative(kvs.Config{Region: "us-east-1", Stream: "cam1", Credentials: staticCreds(), Endpoint: srv.URL(), OnEvent: ev.add, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, dst, w, h, fps, clock, n)
	s.jitter = true
	s.put(n)
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	frs := checkStored(t, srv, "cam1", s, n)
	for _, f := range frs {
		if f.Keyframes != 1 {
			t.Errorf("fragment %d (%d frames) holds %d keyframes, want 1", f.Timecode, len(f.FrameTimecodes), f.Keyframes)
		}
	}
	if len(frs) < 9 {
		t.Fatalf("%d fragments for 20 s of 2 s fragments", len(frs))
	}
}

func nativeConfig(srv *kvslocal.Server, clock *testClock, ev *events) kvs.Config {
	return kvs.Config{Region: "us-east-1", Stream: "cam1", Credentials: staticCreds(), Endpoint: srv.URL(),
		OnEvent: ev.add, Clock: clock, MinBackoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond}
}

// errorsAfter counts EventError events after index i.
func errorsAfter(evs []kvs.Event, i int) []kvs.Event {
	var out []kvs.Event
	for _, ev := range evs[min(i, len(evs)):] {
		if ev.Type == kvs.EventError {
			out = append(out, ev)
		}
	}
	return out
}

// The endpoint stops for 10 s of stream time and comes back: the client
// backs off, reconnects and re-sends; no frame is lost.
func TestNativeOutage(t *testing.T) {
	const w, h, fps, n = 320, 240, 15, 450
	dir := t.TempDir()
	srv := startLocal(t, kvslocal.Config{DataDir: dir})
	addr := srv.Addr()
	ev := newEvents()
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	dst, err := kvs.NewNative(nativeConfig(srv, clock, ev))
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, dst, w, h, fps, clock, n)
	s.put(150)
	ev.wait(t, "3 fragments persisted", time.Minute, func(e []kvs.Event) bool { return countAcks(e, kvs.AckPersisted) >= 3 })
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	mark := len(ev.snapshot())
	s.put(300) // 10 s of frames while the endpoint is down
	evs := ev.wait(t, "4 failed reconnections", time.Minute, func(e []kvs.Event) bool { return len(errorsAfter(e, mark)) >= 4 })
	errs := errorsAfter(evs, mark)
	for i := 1; i < len(errs); i++ {
		if errs[i].Backoff < errs[i-1].Backoff {
			t.Fatalf("backoff decreased: %v then %v", errs[i-1].Backoff, errs[i].Backoff)
		}
	}
	if errs[len(errs)-1].Backoff <= errs[0].Backoff || dst.Err() == nil || dst.Stats().Connected {
		t.Fatalf("backoffs %v..%v, Err %v, stats %+v", errs[0].Backoff, errs[len(errs)-1].Backoff, dst.Err(), dst.Stats())
	}
	t.Logf("during the outage: %v", dst.Err())
	if d := s.sl.Stats().Destinations[0]; d.Up {
		t.Errorf("SkyLine shows the unreachable KVS endpoint up: %+v", d)
	}
	srv2 := startLocal(t, kvslocal.Config{DataDir: dir, Listen: addr})
	s.put(n)
	ev.wait(t, "a reconnection", time.Minute, func(e []kvs.Event) bool { return count(e, kvs.EventConnected) >= 2 })
	if d := s.sl.Stats().Destinations[0]; !d.Up || d.Lost != 0 {
		t.Errorf("after recovery the SkyLine shows %+v, want up with nothing lost", d)
	}
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := dst.Stats()
	t.Logf("stats %+v", st)
	if st.FragmentsDropped != 0 || st.FramesDropped != 0 || st.Connections < 2 || st.BufferedFragments != 0 || dst.Err() != nil {
		t.Fatalf("stats %+v err %v: want no loss, a reconnection and recovery", st, dst.Err())
	}
	checkStored(t, srv2, "cam1", s, n)
}

// With a retry bound shorter than the outage, the oldest fragments are
// given up, counted and reported; the rest arrives.
func TestNativeBoundTooSmall(t *testing.T) {
	const w, h, fps, n = 160, 120, 15, 450
	dir := t.TempDir()
	srv := startLocal(t, kvslocal.Config{DataDir: dir})
	addr := srv.Addr()
	ev := newEvents()
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	cfg := nativeConfig(srv, clock, ev)
	cfg.RetryBufferDuration = 3 * time.Second
	dst, err := kvs.NewNative(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, dst, w, h, fps, clock, n)
	s.put(150)
	ev.wait(t, "3 fragments persisted", time.Minute, func(e []kvs.Event) bool { return countAcks(e, kvs.AckPersisted) >= 3 })
	_ = srv.Close()
	mark := len(ev.snapshot())
	s.put(300)
	ev.wait(t, "a failed reconnection", time.Minute, func(e []kvs.Event) bool { return len(errorsAfter(e, mark)) >= 1 })
	ev.wait(t, "fragments dropped", time.Minute, func(e []kvs.Event) bool { return count(e, kvs.EventFragmentsDropped) >= 1 })
	if d := s.sl.Stats().Destinations[0]; d.Up || d.Lost == 0 {
		t.Errorf("SkyLine shows the unreachable KVS endpoint as %+v, want down with the given-up frames lost", d)
	}
	srv2 := startLocal(t, kvslocal.Config{DataDir: dir, Listen: addr})
	s.put(n)
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	evs := ev.snapshot()
	st := dst.Stats()
	t.Logf("stats %+v", st)
	var reported, reportedFrames int
	for _, e := range evs {
		if e.Type == kvs.EventFragmentsDropped {
			reported += e.Fragments
			reportedFrames += e.Frames
			if !errors.Is(e.Err, kvs.ErrGivenUp) {
				t.Fatalf("drop event error %v", e.Err)
			}
		}
	}
	if st.FragmentsDropped == 0 || uint64(reported) != st.FragmentsDropped || uint64(reportedFrames) != st.FramesDropped {
		t.Fatalf("dropped %d fragments / %d frames, reported %d / %d", st.FragmentsDropped, st.FramesDropped, reported, reportedFrames)
	}
	frs, err := srv2.Fragments("cam1")
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	last := int64(0)
	for _, f := range frs {
		for _, tc := range f.FrameTimecodes {
			if tc <= last {
				t.Fatalf("stored timecodes not increasing: %d after %d", tc, last)
			}
			last = tc
			stored++
		}
	}
	// Every frame is stored or counted as given up. A fragment evicted
	// after it was sent whose acknowledgement the outage swallowed may be
	// both (its fate is unknown to the client, so it is reported).
	if uint64(stored)+st.FramesDropped < n || stored >= n {
		t.Fatalf("stored %d + dropped %d vs %d sent: a loss was not counted", stored, st.FramesDropped, n)
	}
	t.Logf("stored %d frames, %d given up and reported", stored, st.FramesDropped)
	if d := s.sl.Stats().Destinations[0]; d.Lost != st.FramesDropped {
		t.Errorf("SkyLine counts %d lost, the KVS client gave up %d frames", d.Lost, st.FramesDropped)
	}
}

// Bad signature, unknown access key and an unknown stream on a strict
// endpoint: a clear error reaches the program, retries back off, Close
// ends in time and reports what was not delivered.
func TestNativeErrors(t *testing.T) {
	cases := []struct {
		name   string
		strict bool
		ak, sk string
		want   string
	}{
		{"bad-signature", false, testAK, "wrong/secret/key/0123456789abcdefXYZ", "InvalidSignatureException"},
		{"unknown-key", false, "AKIDUNKNOWN000000001", testSK, "UnrecognizedClientException"},
		{"unknown-stream-strict", true, testAK, testSK, "ResourceNotFoundException"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs logBuffer
			srv := startLocal(t, kvslocal.Config{Strict: c.strict, Logger: logs.logger()})
			ev := newEvents()
			clock := newTestClock(time.Unix(1_700_000_000, 0))
			cfg := nativeConfig(srv, clock, ev)
			cfg.Credentials = credentials.NewStaticCredentialsProvider(c.ak, c.sk, "")
			cfg.CloseTimeout = 300 * time.Millisecond
			cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 160*time.Millisecond
			cfg.Logger = logs.logger()
			dst, err := kvs.NewNative(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := newStream(t, dst, 160, 120, 15, clock, 100)
			s.put(45)
			evs := ev.wait(t, "5 errors", time.Minute, func(e []kvs.Event) bool { return count(e, kvs.EventError) >= 5 })
			errs := errorsAfter(evs, 0)
			for i, e := range errs {
				if !strings.Contains(e.Err.Error(), c.want) {
					t.Fatalf("error %d: %v, want %s", i, e.Err, c.want)
				}
				if i > 0 && e.Backoff < errs[i-1].Backoff {
					t.Fatalf("backoff decreased: %v", e.Backoff)
				}
			}
			if errs[4].Backoff <= errs[0].Backoff {
				t.Fatalf("no backoff growth: %v .. %v", errs[0].Backoff, errs[4].Backoff)
			}
			if err := dst.Err(); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(dst.Stats().LastError, c.want) {
				t.Fatalf("Err() = %v", err)
			}
			if s.sl.State() != skyline.StateStreaming {
				t.Fatalf("SkyLine state %v: a failing destination must not stop the stream", s.sl.State())
			}
			t.Logf("error reaching the program: %v", dst.Err())
			start := time.Now()
			if err := s.sl.Stop(); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("Stop took %v", d)
			}
			st := dst.Stats()
			if st.FragmentsDropped == 0 || st.Persisted != 0 || count(ev.snapshot(), kvs.EventFragmentsDropped) == 0 {
				t.Fatalf("stats %+v: undelivered fragments must be counted and reported", st)
			}
			noSecrets(t, logs.String(), ev.snapshot(), testSK, c.sk)
		})
	}
}

// Temporary credentials expiring every 60 s: the client rotates its
// connection with fresh ones; 200 s of stream arrive without a gap and no
// secret is logged.
func TestNativeTemporaryCredentials(t *testing.T) {
	const w, h, fps, n = 160, 120, 5, 1000
	var logs logBuffer
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	p := &tempProvider{clock: clock, ttl: 60 * time.Second}
	srv := startLocal(t, kvslocal.Config{Lookup: p.lookup, Clock: clock, Logger: logs.logger()})
	ev := newEvents()
	cfg := nativeConfig(srv, clock, ev)
	cfg.Credentials = p
	cfg.Logger = logs.logger()
	dst, err := kvs.NewNative(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := skyline.New(skyline.Config{Clock: clock, NoDotEnv: true, QueueSize: n, Logger: logs.logger()}, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	s := &stream{t: t, sl: sl, w: w, h: h, fps: fps, base: clock.Now().Add(time.Millisecond), clock: clock}
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	s.putPaced(n, 10, 1, dst, ev)
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := dst.Stats()
	t.Logf("stats %+v, %d credentials issued", st, p.count())
	if st.Connections < 4 || st.Persisted != st.Fragments || st.FragmentsDropped != 0 || st.FramesDropped != 0 {
		t.Fatalf("stats %+v: want >= 4 connections (3 refreshes), all persisted", st)
	}
	if p.count() < 4 {
		t.Fatalf("%d credentials issued, want >= 4", p.count())
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
	var secrets []string
	for _, c := range p.issued {
		secrets = append(secrets, c.SecretAccessKey, c.SessionToken)
	}
	noSecrets(t, logs.String(), ev.snapshot(), secrets...)
}

// The endpoint override the standard way: AWS_ENDPOINT_URL_KINESIS_VIDEO,
// with region and credentials from the environment too (the default
// chain), and CreateStream on a strict endpoint.
func TestEndpointFromEnvironment(t *testing.T) {
	srv := startLocal(t, kvslocal.Config{Strict: true})
	t.Setenv("AWS_ENDPOINT_URL_KINESIS_VIDEO", srv.URL())
	t.Setenv("AWS_REGION", "eu-central-1")
	t.Setenv("AWS_ACCESS_KEY_ID", testAK)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testSK)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ev := newEvents()
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	dst, err := kvs.New(kvs.Config{Stream: "from-env", CreateStream: true, OnEvent: ev.add, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := dst.(skyline.Receiver); !ok {
		t.Fatal("the native backend is not a Receiver")
	}
	s := newStream(t, dst, 160, 120, 15, clock, 60)
	s.put(60)
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := dst.Stats(); st.Persisted != st.Fragments || st.Fragments == 0 || count(ev.snapshot(), kvs.EventStreamCreated) != 1 {
		t.Fatalf("stats %+v", st)
	}
	checkStored(t, srv, "from-env", s, 60)
}

// Connections are rotated before the service's connection limit and the
// data endpoint is looked up again, without losing a frame.
func TestNativeRotationAndRediscovery(t *testing.T) {
	const w, h, fps, n = 160, 120, 5, 400 // 80 s
	srv := startLocal(t, kvslocal.Config{})
	ev := newEvents()
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	cfg := nativeConfig(srv, clock, ev)
	cfg.MaxConnectionDuration = 10 * time.Second
	cfg.RediscoverInterval = 25 * time.Second
	dst, err := kvs.NewNative(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, dst, w, h, fps, clock, n)
	s.putPaced(n, 10, 1, dst, ev)
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := dst.Stats()
	t.Logf("stats %+v; getDataEndpoint %d, putMedia %d", st, srv.Requests("getDataEndpoint"), srv.Requests("putMedia"))
	if st.Connections < 5 || st.Errors != 0 || st.FragmentsDropped != 0 || srv.Requests("getDataEndpoint") < 3 {
		t.Fatalf("stats %+v, %d getDataEndpoint: want >= 5 connections and >= 3 discoveries", st, srv.Requests("getDataEndpoint"))
	}
	checkStored(t, srv, "cam1", s, n)
}

// Fragments the service rejects for good (ERROR 4004: timecode lower than
// the stream's previous fragment, here because another producer wrote
// later media first) are given up, counted and reported, with the error id
// reaching the program.
func TestNativeRejectedFragments(t *testing.T) {
	// AWS promises no order across PutMedia requests; the lenient endpoint
	// keeps the stream-wide check that makes the 4004 here.
	srv := startLocal(t, kvslocal.Config{Lenient: true})
	// A first producer writes media one hour ahead.
	evA := newEvents()
	clockA := newTestClock(time.Unix(1_700_003_600, 0))
	a, err := kvs.NewNative(nativeConfig(srv, clockA, evA))
	if err != nil {
		t.Fatal(err)
	}
	sa := newStream(t, a, 160, 120, 15, clockA, 30)
	sa.put(30)
	if err := sa.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Persisted == 0 || st.Persisted != st.Fragments {
		t.Fatalf("first producer: %+v", st)
	}
	ev := newEvents()
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	cfg := nativeConfig(srv, clock, ev)
	cfg.MinBackoff, cfg.MaxBackoff, cfg.CloseTimeout = 20*time.Millisecond, 100*time.Millisecond, 2*time.Second
	b, err := kvs.NewNative(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sb := newStream(t, b, 160, 120, 15, clock, 60)
	sb.put(60)
	ev.wait(t, "a rejected fragment given up", time.Minute, func(e []kvs.Event) bool { return count(e, kvs.EventFragmentsDropped) >= 1 })
	if err := sb.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	var fe *kvs.FragmentError
	found := false
	for _, e := range ev.snapshot() {
		if e.Type == kvs.EventAck && e.Ack.EventType == kvs.AckError {
			found = errors.As(e.Err, &fe) && fe.Ack.ErrorID == 4004 && strings.Contains(e.Err.Error(), "lower than the previous")
		}
	}
	if !found || st.AckErrors == 0 || st.Persisted != 0 || st.FragmentsDropped != st.Fragments || st.FramesDropped != 60 {
		t.Fatalf("stats %+v, 4004 seen %v", st, found)
	}
	t.Logf("reported: %v", fe)
}

// TestNativeOutageRealTime: the endpoint is down for 10 s of wall-clock
// time mid-stream while frames keep coming at 15 fps in real time. The
// client keeps the fragments, backs off, reconnects when the endpoint
// returns, and every frame is stored.
func TestNativeOutageRealTime(t *testing.T) {
	const w, h, fps = 320, 240, 15
	const before, outage, after = 3 * fps, 10 * fps, 3 * fps
	dir := t.TempDir()
	srv := startLocal(t, kvslocal.Config{DataDir: dir})
	addr := srv.Addr()
	ev := newEvents()
	clock := newTestClock(time.Now())
	cfg := nativeConfig(srv, clock, ev)
	cfg.MaxBackoff = 2 * time.Second
	dst, err := kvs.NewNative(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, dst, w, h, fps, clock, 64)
	tick := time.NewTicker(time.Second / fps)
	defer tick.Stop()
	paced := func(n int) { // one frame per tick: real time
		for s.next < n {
			<-tick.C
			s.put(s.next + 1)
		}
	}
	paced(before)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	paced(before + outage)
	down := time.Since(t0)
	srv2 := startLocal(t, kvslocal.Config{DataDir: dir, Listen: addr})
	paced(before + outage + after)
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	st := dst.Stats()
	t.Logf("endpoint down for %v; stats %+v", down.Round(time.Millisecond), st)
	if down < 9*time.Second {
		t.Fatalf("the outage lasted %v, want 10 s", down)
	}
	if st.FragmentsDropped != 0 || st.FramesDropped != 0 || st.Connections < 2 || dst.Err() != nil {
		t.Fatalf("stats %+v err %v: want no loss and a reconnection", st, dst.Err())
	}
	if len(errorsAfter(ev.snapshot(), 0)) == 0 {
		t.Fatal("no failed attempt was reported during the outage")
	}
	checkStored(t, srv2, "cam1", s, before+outage+after)
}
