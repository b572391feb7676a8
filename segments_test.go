package skyline_test

import (
	"context"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
)

// TestSegmentedKeep: with keep > 0 only the newest keep segments stay on
// disk, each playable on its own, and segments start at keyframes.
func TestSegmentedKeep(t *testing.T) {
	dir := t.TempDir()
	seg, err := skyline.NewSegmentedFile(filepath.Join(dir, "k-%03d.mov"), time.Second, 2)
	if err != nil {
		t.Fatal(err)
	}
	const w, h = 160, 120
	sl := newTestSkyLine(t, newClock(30), skyline.Config{Encoder: skyline.Encoder{KeyframeInterval: time.Second}}, seg)
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 150; i++ { // 5 s: segments 0..4
		mustPut(t, sl, bgr(w, h, i), true)
	}
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "k-*.mov"))
	sort.Strings(files)
	if len(files) != 2 || filepath.Base(files[0]) != "k-003.mov" || filepath.Base(files[1]) != "k-004.mov" {
		t.Fatalf("files %v, want k-003.mov and k-004.mov", files)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, f := range files {
		st, err := mediatest.Probe(ctx, f)
		if err != nil || st.Frames != 30 {
			t.Errorf("%s: %+v, %v; want 30 frames", filepath.Base(f), st, err)
		}
	}
}
