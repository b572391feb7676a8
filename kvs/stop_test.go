package kvs_test

import (
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/kvs"
	"github.com/skyline-go/skyline/kvs/kvslocal"
)

// Stop while the endpoint is unreachable, with the defaults of both
// SkyLine (DrainTimeout) and the destination (CloseTimeout): the fragments
// not persisted are given up, counted and reported; Stop does not detach
// the destination, and the next Start streams to it again.
func TestNativeStopDuringOutageDefaults(t *testing.T) {
	const w, h, fps = 160, 120, 15
	dir := t.TempDir()
	srv := startLocal(t, kvslocal.Config{DataDir: dir})
	addr := srv.Addr()
	ev := newEvents()
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	cfg := nativeConfig(srv, clock, ev)
	cfg.MinBackoff, cfg.MaxBackoff = 0, 0 // the defaults
	dst, err := kvs.NewNative(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, dst, w, h, fps, clock, 200)
	s.put(45)
	ev.wait(t, "a fragment persisted", time.Minute, func(e []kvs.Event) bool { return countAcks(e, kvs.AckPersisted) >= 1 })
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	s.put(90)
	start := time.Now()
	err = s.sl.Stop()
	t.Logf("Stop took %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err != nil {
		t.Errorf("Stop = %v, want the destination closed within its CloseTimeout", err)
	}
	if st := dst.Stats(); st.FragmentsDropped == 0 || count(ev.snapshot(), kvs.EventFragmentsDropped) == 0 {
		t.Errorf("stats %+v: want the fragments not persisted given up and reported", st)
	}
	if d := s.sl.Stats().Destinations[0]; d.Lost == 0 {
		t.Errorf("SkyLine shows %+v: want the frames given up counted lost", d)
	}
	startLocal(t, kvslocal.Config{DataDir: dir, Listen: addr})
	mark := len(ev.snapshot())
	if err := s.sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	s.put(135)
	ev.wait(t, "a connection in the new session", 30*time.Second, func(e []kvs.Event) bool {
		return count(e[min(mark, len(e)):], kvs.EventConnected) >= 1
	})
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
}
