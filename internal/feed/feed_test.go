package feed

import (
	"testing"

	"github.com/skyline-go/skyline"
)

func TestFeed(t *testing.T) {
	var f Feed
	f.RequestKeyframe() // no session: no-op
	f.Emit(skyline.Event{})
	keys, events := 0, 0
	f.Attach(skyline.StreamInfo{RequestKeyframe: func() { keys++ }, Emit: func(skyline.Event) { events++ }})
	f.RequestKeyframe()
	f.Emit(skyline.Event{Kind: skyline.EventViewerJoined})
	f.Detach()
	f.RequestKeyframe()
	f.Emit(skyline.Event{})
	if keys != 1 || events != 1 {
		t.Fatalf("keys %d events %d, want 1 and 1", keys, events)
	}
}
