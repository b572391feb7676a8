package kvs_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/kvs"
	"github.com/skyline-go/skyline/kvs/kvslocal"
)

// The program's skyline.Config.OnEvent sees KVS acknowledgements, in order
// with the SkyLine's own events.
func TestSkyLineEventsCarryAcks(t *testing.T) {
	const w, h, fps, n = 320, 240, 15, 90
	srv := startLocal(t, kvslocal.Config{})
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	dst, err := kvs.NewNative(kvs.Config{Region: "us-east-1", Stream: "evs", Credentials: staticCreds(),
		Endpoint: srv.URL(), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var kinds []skyline.EventKind
	persisted := 0
	sl, err := skyline.New(skyline.Config{Clock: clock, NoDotEnv: true, QueueSize: n, OnEvent: func(e skyline.Event) {
		mu.Lock()
		defer mu.Unlock()
		kinds = append(kinds, e.Kind)
		if e.Kind == skyline.EventAck && e.Destination == dst.Name() && strings.HasPrefix(e.Detail, "PERSISTED") {
			persisted++
		}
	}}, dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	s := &stream{t: t, sl: sl, w: w, h: h, fps: fps, base: clock.Now().Add(time.Millisecond), clock: clock}
	s.put(n)
	if err := sl.Close(); err != nil { // delivers the queued events
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	st := dst.Stats()
	if st.Persisted == 0 || uint64(persisted) != st.Persisted {
		t.Fatalf("%d PERSISTED events in the SkyLine's stream, %d persisted fragments; kinds %v", persisted, st.Persisted, kinds)
	}
	if kinds[0] != skyline.EventDestinationUp || kinds[len(kinds)-1] != skyline.EventState {
		t.Fatalf("order: %v", kinds)
	}
}

// A native KVS destination that cannot deliver is reported through the
// SkyLine's outlet like every destination: one EventDestinationDown (with
// ErrDestination) however many attempts fail, one
// EventDestinationRecovered when it connects, and nothing lost.
func TestSkyLineEventsDownOnceRecoveredOnce(t *testing.T) {
	const w, h, fps, n = 160, 120, 15, 60
	srv := startLocal(t, kvslocal.Config{})
	srv.SetDataEndpoint("http://127.0.0.1:1") // nothing listens there
	ev := newEvents()
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	dst, err := kvs.NewNative(nativeConfig(srv, clock, ev))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []skyline.Event
	recovered := make(chan struct{}, 1)
	sl, err := skyline.New(skyline.Config{Clock: clock, NoDotEnv: true, QueueSize: n, OnEvent: func(e skyline.Event) {
		if e.Destination == dst.Name() && (e.Kind == skyline.EventDestinationDown || e.Kind == skyline.EventDestinationRecovered) {
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
			if e.Kind == skyline.EventDestinationRecovered {
				recovered <- struct{}{}
			}
		}
	}}, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: fps, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	s := &stream{t: t, sl: sl, w: w, h: h, fps: fps, base: clock.Now().Add(time.Millisecond), clock: clock}
	s.put(30)
	ev.wait(t, "4 failed connections", time.Minute, func(e []kvs.Event) bool { return count(e, kvs.EventError) >= 4 })
	srv.SetDataEndpoint("")
	select {
	case <-recovered:
	case <-time.After(time.Minute):
		t.Fatal("no destination-recovered event")
	}
	s.put(n)
	if err := sl.Close(); err != nil { // delivers the queued events
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Kind != skyline.EventDestinationDown || got[1].Kind != skyline.EventDestinationRecovered ||
		!errors.Is(got[0].Err, skyline.ErrDestination) || !strings.Contains(got[0].Err.Error(), "127.0.0.1:1") {
		t.Fatalf("events %+v: want one down (ErrDestination, the cause) then one recovered", got)
	}
	if st := dst.Stats(); st.FragmentsDropped != 0 || st.Persisted != st.Fragments {
		t.Fatalf("stats %+v", st)
	}
	checkStored(t, srv, "cam1", s, n)
}
