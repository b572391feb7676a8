package skyline_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/mediatest"
	"github.com/skyline-go/skyline/rtsp"
)

// TestEventSequence follows one life: start -> a viewer joins -> a
// destination fails -> it is retried -> it recovers -> the viewer leaves ->
// stop, and checks the exact sequence of events the program receives.
func TestEventSequence(t *testing.T) {
	const w, h = 160, 120
	// The failing destination streams MPEG-TS to a TCP receiver of the test,
	// which drops the connection and later accepts a new one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	drain := func(c net.Conn) {
		go func() {
			buf := make([]byte, 64<<10)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	port := ln.Addr().(*net.TCPAddr).Port
	tcp, err := skyline.NewGstSink(fmt.Sprintf("mpegtsmux ! tcpclientsink host=127.0.0.1 port=%d", port))
	if err != nil {
		t.Fatal(err)
	}

	srv, err := rtsp.NewServer(rtsp.ServerConfig{Address: "127.0.0.1:0", DisableUDP: true, DisableMulticast: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	view, err := srv.AddStream("/ev", rtsp.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}

	events := newEventLog()
	sl, err := skyline.New(skyline.Config{NoDotEnv: true, QueueSize: 64, OnEvent: events.add,
		RetryMin: 100 * time.Millisecond, RetryMax: 200 * time.Millisecond}, view, tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if err := sl.Start(skyline.Params{FPS: 30, Width: w, Height: h}); err != nil {
		t.Fatal(err)
	}
	conn1 := <-conns
	drain(conn1)

	// A producer at 30 fps until the end of the test.
	ctx, cancel := context.WithCancel(context.Background())
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := sl.Put(bgr(w, h, i)); err != nil {
				t.Error(err)
				return
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()

	// A viewer joins (a real client, decoding until cancelled).
	vctx, vcancel := context.WithCancel(context.Background())
	viewerDone := make(chan error, 1)
	go func() {
		viewerDone <- mediatest.Decode(vctx, view.URL(), w, h, []string{"-rtsp_transport", "tcp"}, nil,
			func(int, []byte) error { return nil })
	}()
	events.wait(t, "viewer-joined", 30*time.Second, kindIs(skyline.EventViewerJoined, view.Name()))

	// The TCP destination fails, is retried and recovers.
	_ = conn1.Close()
	events.wait(t, "destination-recovered", 30*time.Second, kindIs(skyline.EventDestinationRecovered, tcp.Name()))
	conn2 := <-conns
	drain(conn2)

	// The viewer leaves; then stop.
	vcancel()
	<-viewerDone
	events.wait(t, "viewer-left", 30*time.Second, kindIs(skyline.EventViewerLeft, view.Name()))
	cancel()
	<-produced
	if err := sl.Stop(); err != nil {
		t.Fatal(err)
	}
	_ = conn2.Close()
	events.wait(t, "stopped", 10*time.Second, func(e skyline.Event) bool { return e.Kind == skyline.EventState && e.State == skyline.StateStopped })

	type step struct {
		kind skyline.EventKind
		dest string
		st   skyline.State
	}
	want := []step{
		{skyline.EventDestinationUp, view.Name(), 0},
		{skyline.EventDestinationUp, tcp.Name(), 0},
		{skyline.EventState, "", skyline.StateStreaming},
		{skyline.EventViewerJoined, view.Name(), 0},
		{skyline.EventDestinationDown, tcp.Name(), 0},
		{skyline.EventDestinationRetrying, tcp.Name(), 0},
		{skyline.EventDestinationRecovered, tcp.Name(), 0},
		{skyline.EventViewerLeft, view.Name(), 0},
		{skyline.EventState, "", skyline.StateStopped},
	}
	var got []step
	for _, e := range events.all() {
		if e.Kind == skyline.EventDropped { // counts, not part of the life story
			continue
		}
		got = append(got, step{e.Kind, e.Destination, map[bool]skyline.State{true: e.State}[e.Kind == skyline.EventState]})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events:\n got %v\nwant %v", got, want)
	}
}
