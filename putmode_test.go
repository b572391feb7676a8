package skyline_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
)

// TestDropNoneWaitsForRoom: with DropNone a producer far faster than the
// encoder (a queue of 1, the slow preset) loses nothing: Put waits for room.
func TestDropNoneWaitsForRoom(t *testing.T) {
	rec := &collector{name: "collector"}
	sl := newTestSkyLine(t, newClock(30), skyline.Config{QueueSize: 1, Drop: skyline.DropNone,
		Timestamps: skyline.TimestampsCapture, Encoder: skyline.Encoder{Preset: "slow"}}, rec)
	if err := sl.Start(skyline.Params{FPS: 30, Width: 640, Height: 480}); err != nil {
		t.Fatal(err)
	}
	f := bgr(640, 480, 1)
	for i := 0; i < 60; i++ {
		mustPut(t, sl, f, true)
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := sl.Stats(); st.Accepted != 60 || st.Dropped != 0 || st.Encoded != 60 || st.Written != 60 {
		t.Fatalf("stats %+v, want 60 accepted, encoded and written, none dropped", st)
	}
}

// TestPacedProducer: with a live destination (the default TimestampsPaced)
// frames Put as fast as a loop can are slowed to the declared rate and
// stamped 1/fps apart; a producer slower than the declared rate keeps its
// own timing.
func TestPacedProducer(t *testing.T) {
	const fps, n = 30, 30
	rec := &collector{name: "collector"}
	sl := newTestSkyLine(t, nil, skyline.Config{QueueSize: 64}, rec)
	if err := sl.Start(skyline.Params{FPS: fps, Width: 64, Height: 48}); err != nil {
		t.Fatal(err)
	}
	f := bgr(64, 48, 0)
	start := time.Now()
	for i := 0; i < n; i++ {
		mustPut(t, sl, f, true)
	}
	if took := time.Since(start); took < (n-1)*time.Second/fps-10*time.Millisecond {
		t.Errorf("%d frames Put in %v, want them paced at %d fps", n, took, fps)
	}
	for i := 0; i < 10; i++ { // then a slower producer: 20 fps
		time.Sleep(50 * time.Millisecond)
		mustPut(t, sl, f, true)
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	aus := rec.all()
	if len(aus) != n+10 {
		t.Fatalf("%d access units, want %d", len(aus), n+10)
	}
	// Stamped on a 1/fps grid: a Put that came late (a busy machine) keeps
	// its real time, and the next one goes back to the grid.
	if span := aus[n-1].PTS - aus[0].PTS; span < (n-1)*time.Second/fps-time.Millisecond || span > n*time.Second/fps {
		t.Errorf("%d paced frames span %v, want %v", n, span, (n-1)*time.Second/fps)
	}
	onGrid := 0
	for i := 1; i < n; i++ {
		if d := aus[i].PTS - aus[i-1].PTS; d >= time.Second/fps-time.Millisecond && d <= time.Second/fps+time.Millisecond {
			onGrid++
		}
	}
	if onGrid < (n-1)*2/3 {
		t.Errorf("%d of %d paced frames 1/%d s after the previous one, want most", onGrid, n-1, fps)
	}
	for i := n + 1; i < n+10; i++ {
		if d := aus[i].PTS - aus[i-1].PTS; d < 45*time.Millisecond {
			t.Errorf("slow frame %d: %v after the previous one, want its own ~50 ms", i, d)
		}
	}
}

// TestDefaultLosesNothing: with the default Drop (DropNone), whatever the
// destinations, a producer far faster than the encoder (a queue of 1, the
// slow preset) has every frame accepted and encoded.
func TestDefaultLosesNothing(t *testing.T) {
	file, err := skyline.NewFile(filepath.Join(t.TempDir(), "a.mkv"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &collector{name: "collector"}
	for name, dests := range map[string][]skyline.Destination{"recording": {file}, "live": {file, rec}} {
		t.Run(name, func(t *testing.T) {
			sl := newTestSkyLine(t, newClock(1000), skyline.Config{QueueSize: 1, Encoder: skyline.Encoder{Preset: "slow"}}, dests...)
			if err := sl.Start(skyline.Params{FPS: 30, Width: 320, Height: 240}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 30; i++ {
				mustPut(t, sl, bgr(320, 240, i), true)
			}
			if err := sl.Stop(); err != nil {
				t.Fatal(err)
			}
			if st := sl.Stats(); st.Accepted != 30 || st.Dropped != 0 || st.Written != 30 {
				t.Errorf("stats %+v, want 30 accepted and written, none dropped", st)
			}
		})
	}
}
