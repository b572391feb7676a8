package skyline_test

import (
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
)

// TestEncodeLatencyAndBytes: every frame streamed has its encode latency
// observed (from Put to the encoder's output), plausibly, and the output
// bytes are counted.
func TestEncodeLatencyAndBytes(t *testing.T) {
	const w, h, n = 320, 240, 60
	sl, err := skyline.New(skyline.Config{Logger: quiet, NoDotEnv: true, QueueSize: n,
		Encoder: skyline.Encoder{Preset: "ultrafast"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	f := skyline.FrameBGR(testpattern.NewBGR(w, h, 0), w, h, 0)
	start := time.Now()
	for i := 0; i < n; i++ {
		putAll(t, sl, f)
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	st := sl.Stats()
	lat := st.EncodeLatency
	if st.Encoded != n || lat.Count != n {
		t.Fatalf("encoded %d, latency observations %d, want %d each", st.Encoded, lat.Count, n)
	}
	if lat.Sum <= 0 || lat.Sum/n > elapsed {
		t.Fatalf("mean latency %v, want > 0 and below the run's %v", lat.Sum/n, elapsed)
	}
	if len(lat.Bounds) != len(skyline.LatencyBuckets) || len(lat.Counts) != len(lat.Bounds)+1 {
		t.Fatalf("histogram shape: %d bounds, %d counts", len(lat.Bounds), len(lat.Counts))
	}
	var sum uint64
	for _, c := range lat.Counts {
		sum += c
	}
	if sum != lat.Count {
		t.Fatalf("bucket counts add to %d, want %d", sum, lat.Count)
	}
	// 60 QVGA frames of a test pattern: well above the SPS/PPS alone.
	if st.EncodedBytes < 2000 {
		t.Fatalf("encoded bytes %d", st.EncodedBytes)
	}
}
