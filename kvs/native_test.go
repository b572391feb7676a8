package kvs_test

import (
	"testing"
	"time"

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
		Endpoint: srv.URL(), OnEvent: func(e kvs.Event) { t.Logf("event %v %v %d %v", e.Type, e.Ack.EventType, e.Ack.FragmentTimecode, e.Err); ev.add(e) }, Clock: clock})
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
