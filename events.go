package skyline

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// EventKind names what happened.
type EventKind string

// Event kinds. Destinations may report their own kinds too (the kvs package
// reports acknowledgements as EventAck).
const (
	// EventState: the SkyLine changed state (Event.State, Event.From).
	EventState EventKind = "state"
	// EventDestinationUp: a destination opened and takes the stream.
	EventDestinationUp EventKind = "destination-up"
	// EventDestinationDown: a destination failed (Event.Err); the others go on.
	EventDestinationDown EventKind = "destination-down"
	// EventDestinationRetrying: a failed destination will be reopened after
	// Event.Retry (attempt Event.Attempt).
	EventDestinationRetrying EventKind = "destination-retrying"
	// EventDestinationRecovered: a failed destination works again; it
	// resumed at a keyframe.
	EventDestinationRecovered EventKind = "destination-recovered"
	// EventViewerJoined / EventViewerLeft: a viewer (Event.Viewer) of a
	// serving destination (RTSP) started or stopped watching.
	EventViewerJoined EventKind = "viewer-joined"
	EventViewerLeft   EventKind = "viewer-left"
	// EventDropped: Event.Count frames (Put) or access units (a slow
	// destination, Event.Destination) were dropped since the last such event.
	EventDropped EventKind = "dropped"
	// EventAck: a destination's acknowledgement (KVS fragments), in
	// Event.Detail.
	EventAck EventKind = "ack"
	// EventError: a destination reports an error that did not take it down.
	EventError EventKind = "error"
	// EventEncoderFallback: an encoder failed on its first frames (Event.Err)
	// and the next candidate is tried (Event.Detail: "old -> new"); the
	// failed one is not tried again by this SkyLine.
	EventEncoderFallback EventKind = "encoder-fallback"
)

// Event is something that happened to a SkyLine or its destinations.
type Event struct {
	Time        time.Time
	Kind        EventKind
	State, From State  // EventState
	Destination string // the destination's Name, when it is about one
	Viewer      string // EventViewerJoined/Left: the viewer's address
	Err         error  // EventDestinationDown, EventError
	Attempt     int    // EventDestinationRetrying: 1, 2, ...
	Retry       time.Duration
	Count       int64  // EventDropped
	Detail      string // free text (acknowledgements, reasons)
}

// eventQueue delivers events in order to a callback from its own
// goroutine, so a slow callback never blocks Put or a destination. It holds
// at most maxQueued events; beyond that the newest are counted and reported
// as one EventDropped with Detail "events".
type eventQueue struct {
	fn      func(Event)
	mu      sync.Mutex
	cond    *sync.Cond
	q       []Event
	lost    int64
	closed  bool
	stopped chan struct{}
	// goid is the delivering goroutine's id: Close called from the
	// callback must not wait for the callback to return.
	goid atomic.Uint64
}

const maxQueuedEvents = 4096

func newEventQueue(fn func(Event)) *eventQueue {
	e := &eventQueue{fn: fn, stopped: make(chan struct{})}
	e.cond = sync.NewCond(&e.mu)
	if fn == nil {
		close(e.stopped)
		return e
	}
	go e.run()
	return e
}

func (e *eventQueue) emit(ev Event) {
	if e.fn == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	if len(e.q) >= maxQueuedEvents {
		e.lost++
		return
	}
	e.q = append(e.q, ev)
	e.cond.Signal()
}

func (e *eventQueue) run() {
	defer close(e.stopped)
	e.goid.Store(goroutineID())
	for {
		e.mu.Lock()
		for len(e.q) == 0 && e.lost == 0 && !e.closed {
			e.cond.Wait()
		}
		if len(e.q) == 0 && e.lost == 0 && e.closed {
			e.mu.Unlock()
			return
		}
		batch := e.q
		e.q = nil
		lost := e.lost
		e.lost = 0
		e.mu.Unlock()
		for _, ev := range batch {
			e.fn(ev)
		}
		if lost > 0 {
			e.fn(Event{Time: time.Now(), Kind: EventDropped, Count: lost, Detail: "events"})
		}
	}
}

// close delivers what is queued, then stops the goroutine. It waits for
// that at most timeout, except when called from the callback itself
// (which ends once the callback returns). It reports whether the goroutine
// has ended.
func (e *eventQueue) close(timeout time.Duration) bool {
	e.mu.Lock()
	e.closed = true
	e.cond.Signal()
	e.mu.Unlock()
	if e.fn != nil && e.goid.Load() == goroutineID() {
		return true
	}
	timer := time.NewTimer(max(timeout, 0))
	defer timer.Stop()
	select {
	case <-e.stopped:
		return true
	case <-timer.C:
		return false
	}
}

// goroutineID is the current goroutine's id, read from its stack header
// ("goroutine 123 [running]:"). Used only to detect a re-entrant Close.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
