package kvs_test

import (
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
