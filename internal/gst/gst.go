// Package gst is SkyLine's own thin cgo binding to GStreamer 1.22: exactly
// what the encoder pipeline needs and nothing more.
//
// Ownership rules: every C object is wrapped by one Go value with an explicit
// release method (Pipeline.Close, Element.Unref, Pool.Close, Buffer.Unref or
// handing it to AppSrc.Push). No finalizers: memory is freed when the owner
// says so, never when the Go GC gets around to it.
package gst

/*
#cgo pkg-config: gstreamer-1.0 gstreamer-app-1.0 gstreamer-video-1.0
#include "helpers.h"
#include <stdlib.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// State is a GStreamer element state.
type State int

// Element states.
const (
	StateVoidPending State = C.GST_STATE_VOID_PENDING
	StateNull        State = C.GST_STATE_NULL
	StateReady       State = C.GST_STATE_READY
	StatePaused      State = C.GST_STATE_PAUSED
	StatePlaying     State = C.GST_STATE_PLAYING
)

func (s State) String() string {
	switch s {
	case StateNull:
		return "NULL"
	case StateReady:
		return "READY"
	case StatePaused:
		return "PAUSED"
	case StatePlaying:
		return "PLAYING"
	}
	return "VOID_PENDING"
}

var (
	initMu   sync.Mutex
	initDone atomic.Bool
	initErr  error
)

// Init initialises GStreamer once per process. Environment variables that
// GStreamer reads at init (GST_PLUGIN_PATH, GST_DEBUG, GST_DEBUG_FILE) must be
// set before the first call; Initialized tells whether it is too late.
func Init() error {
	initMu.Lock()
	defer initMu.Unlock()
	if initDone.Load() {
		return initErr
	}
	var cerr *C.char
	if C.sk_init(&cerr) == 0 {
		initErr = fmt.Errorf("gstreamer init: %s", takeString(cerr))
	}
	initDone.Store(true)
	return initErr
}

// Initialized reports whether Init has already run in this process.
func Initialized() bool { return initDone.Load() }

// Version is the GStreamer library version, e.g. "GStreamer 1.22.0".
func Version() string {
	return takeString(C.sk_version())
}

// HasElement reports whether the registry has an element factory by that name.
func HasElement(name string) bool {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return C.sk_has_element(cs) != 0
}

// SetDebugThreshold sets GST_DEBUG-style levels at run time.
func SetDebugThreshold(spec string) {
	cs := C.CString(spec)
	defer C.free(unsafe.Pointer(cs))
	C.gst_debug_set_threshold_from_string(cs, C.TRUE)
}

func takeString(c *C.char) string {
	if c == nil {
		return ""
	}
	s := C.GoString(c)
	C.sk_free(unsafe.Pointer(c))
	return s
}

// Element is a reference to a GStreamer element; Unref releases it.
type Element struct{ p *C.GstElement }

// Unref releases the reference. Safe on nil.
func (e *Element) Unref() {
	if e != nil && e.p != nil {
		C.sk_unref(e.p)
		e.p = nil
	}
}

// FactoryName is the element's factory name, e.g. "x264enc".
func (e *Element) FactoryName() string { return takeString(C.sk_element_factory_name(e.p)) }

// SetProperty sets a property from its string form (as gst-launch would),
// checking that the property exists, is writable and the value is valid.
func (e *Element) SetProperty(name, value string) error {
	cn, cv := C.CString(name), C.CString(value)
	defer C.free(unsafe.Pointer(cn))
	defer C.free(unsafe.Pointer(cv))
	var cerr *C.char
	if C.sk_set_property(e.p, cn, cv, &cerr) == 0 {
		return errors.New(takeString(cerr))
	}
	return nil
}

// ForceKeyUnit asks an encoder element for a keyframe as soon as possible
// (an upstream force-key-unit event sent to its src pad).
func (e *Element) ForceKeyUnit() bool { return C.sk_force_key_unit(e.p) != 0 }

// Counter counts buffers through a pad. The caller owns it: Free it only
// after the pipeline it is attached to has been closed.
type Counter struct{ p *C.gint }

// NewCounter allocates a counter.
func NewCounter() *Counter { return &Counter{C.sk_counter_new()} }

// Free releases the counter. Safe on nil and twice.
func (c *Counter) Free() {
	if c != nil && c.p != nil {
		C.sk_counter_free(c.p)
		c.p = nil
	}
}

// Load reads the counter.
func (c *Counter) Load() int64 {
	if c == nil || c.p == nil {
		return 0
	}
	return int64(uint32(C.sk_counter_get(c.p)))
}

// CountBuffers makes c count the buffers through the element's static pad.
func (e *Element) CountBuffers(pad string, c *Counter) bool {
	cs := C.CString(pad)
	defer C.free(unsafe.Pointer(cs))
	return C.sk_counter_probe(e.p, cs, c.p) != 0
}

// CountRendered makes c count the buffers (and buffer lists) that reach
// any sink element of the pipeline, and returns how many sink pads it
// watches. A sink handles one buffer at a time per pad, so a buffer that
// arrives shows the one before it was rendered.
func (p *Pipeline) CountRendered(c *Counter) int {
	return int(C.sk_counter_probe_sinks(p.p, c.p))
}

// ScanPath adds the plugins found under path to the registry (for a
// GST_PLUGIN_PATH learnt after GStreamer was initialised).
func ScanPath(path string) {
	cs := C.CString(path)
	defer C.free(unsafe.Pointer(cs))
	C.sk_scan_path(cs)
}

// I420Layout is GStreamer's own layout of a w x h I420 picture
// (gst_video_info_set_format): the plane offsets and strides, and the
// buffer size, that elements such as videoconvert assume for a buffer
// without GstVideoMeta. ok is false when GStreamer refuses the size.
// internal/yuv computes the same layout without GStreamer; its test
// checks the two agree.
func I420Layout(w, h int) (offsets, strides [3]int, size int, ok bool) {
	var off [3]C.gsize
	var str [3]C.gint
	var sz C.gsize
	if C.sk_i420_layout(C.int(w), C.int(h), &off[0], &str[0], &sz) == 0 {
		return offsets, strides, 0, false
	}
	for i := range 3 {
		offsets[i], strides[i] = int(off[i]), int(str[i])
	}
	return offsets, strides, int(sz), true
}

// Pipeline is a top-level pipeline built from a launch description.
type Pipeline struct {
	Element
	bus *C.GstBus
}

// ParseError is a launch description GStreamer could not build.
type ParseError struct{ Msg string }

func (e *ParseError) Error() string { return "invalid pipeline: " + e.Msg }

// ParseLaunch builds a pipeline from gst-launch syntax. Any problem (unknown
// element, property or value, bad link) is an error.
func ParseLaunch(desc string) (*Pipeline, error) {
	cs := C.CString(desc)
	defer C.free(unsafe.Pointer(cs))
	var cerr *C.char
	p := C.sk_parse_launch(cs, &cerr)
	if p == nil {
		return nil, &ParseError{Msg: takeString(cerr)}
	}
	return &Pipeline{Element: Element{p}, bus: C.sk_get_bus(p)}, nil
}

// ByName returns the named element (a new reference the caller must Unref),
// or nil.
func (p *Pipeline) ByName(name string) *Element {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	e := C.sk_bin_get(p.p, cs)
	if e == nil {
		return nil
	}
	return &Element{e}
}

// SetState requests a state change and reports GStreamer's immediate answer.
func (p *Pipeline) SetState(s State) error {
	if r := C.sk_set_state(p.p, C.int(s)); r == C.GST_STATE_CHANGE_FAILURE {
		return fmt.Errorf("state change to %v failed", s)
	}
	return nil
}

// WaitState waits up to timeout for pending state changes to complete and
// returns the current state.
func (p *Pipeline) WaitState(timeout time.Duration) (State, error) {
	var cur C.int
	r := C.sk_get_state(p.p, C.gint64(timeout), &cur)
	switch r {
	case C.GST_STATE_CHANGE_FAILURE:
		return State(cur), errors.New("state change failed")
	case C.GST_STATE_CHANGE_ASYNC:
		return State(cur), ErrAsync
	}
	return State(cur), nil
}

// ErrAsync: a state change is still in progress (a live pipeline's sinks
// wait for their first buffer to complete it).
var ErrAsync = errors.New("state change still in progress")

// Close sets the pipeline to NULL and releases it. The caller must have
// stopped every goroutine that uses the pipeline's elements first.
func (p *Pipeline) Close() {
	if p.p == nil {
		return
	}
	C.sk_set_state(p.p, C.GST_STATE_NULL)
	C.sk_bus_unref(p.bus)
	p.bus = nil
	p.Unref()
}

// MessageKind is the type of a bus message.
type MessageKind int

// Bus message kinds.
const (
	MsgError   MessageKind = C.SK_MSG_ERROR
	MsgWarning MessageKind = C.SK_MSG_WARNING
	MsgEOS     MessageKind = C.SK_MSG_EOS
	MsgState   MessageKind = C.SK_MSG_STATE
	MsgWake    MessageKind = C.SK_MSG_WAKE
)

// Message is a bus message copied into Go memory.
type Message struct {
	Kind         MessageKind
	Source       string // element name
	Text, Debug  string
	FromPipeline bool
	Old, New     State
}

func (m Message) String() string {
	switch m.Kind {
	case MsgError, MsgWarning:
		s := m.Source + ": " + m.Text
		if m.Debug != "" {
			s += " (" + strings.TrimSpace(m.Debug) + ")"
		}
		return s
	case MsgState:
		return fmt.Sprintf("%s: %v -> %v", m.Source, m.Old, m.New)
	case MsgEOS:
		return "end of stream"
	}
	return "wake"
}

// PopMessage waits up to timeout (negative: forever) for an error, warning,
// EOS, state-change or wake message. ok is false on timeout.
func (p *Pipeline) PopMessage(timeout time.Duration) (m Message, ok bool) {
	var cm C.sk_msg
	if C.sk_bus_pop(p.bus, C.gint64(timeout), &cm) == 0 {
		return m, false
	}
	m = Message{
		Kind: MessageKind(cm.kind), FromPipeline: cm.from_pipeline != 0,
		Old: State(cm.old_state), New: State(cm.new_state),
		Source: C.GoString(cm.src), Text: goStringOrEmpty(cm.text), Debug: goStringOrEmpty(cm.debug),
	}
	C.sk_msg_clear(&cm)
	return m, true
}

// Wake posts a wake message so that a goroutine blocked in PopMessage returns.
func (p *Pipeline) Wake() { C.sk_bus_wake(p.bus) }

func goStringOrEmpty(c *C.char) string {
	if c == nil {
		return ""
	}
	return C.GoString(c)
}

// AppSrc is the pipeline's appsrc element.
type AppSrc struct{ Element }

// AsAppSrc views an element as an appsrc.
func AsAppSrc(e *Element) *AppSrc { return &AppSrc{*e} }

// Configure sets caps and a bounded queue of maxBuffers; when full, the
// queue drops the oldest buffer (leakyOldest) or the newest one.
func (a *AppSrc) Configure(caps string, maxBuffers int, leakyOldest bool) error {
	cs := C.CString(caps)
	defer C.free(unsafe.Pointer(cs))
	l := C.int(0)
	if leakyOldest {
		l = 1
	}
	if C.sk_appsrc_configure(a.p, cs, C.guint64(maxBuffers), l) == 0 {
		return fmt.Errorf("invalid caps %q", caps)
	}
	return nil
}

// Level is the number of buffers queued in the appsrc.
func (a *AppSrc) Level() int { return int(C.sk_appsrc_level(a.p)) }

// Push hands the buffer to the appsrc, which takes ownership in all cases.
func (a *AppSrc) Push(b *Buffer) error {
	r := C.sk_appsrc_push(a.p, b.p)
	b.p = nil
	if r != C.GST_FLOW_OK {
		return fmt.Errorf("appsrc push: flow %d", int(r))
	}
	return nil
}

// PushBytes copies data into a new buffer and pushes it. Negative times
// are "unknown".
func (a *AppSrc) PushBytes(data []byte, pts, dts, dur time.Duration, keyframe bool) error {
	if len(data) == 0 {
		return errors.New("appsrc push: empty buffer")
	}
	delta := C.int(1)
	if keyframe {
		delta = 0
	}
	r := C.sk_appsrc_push_bytes(a.p, unsafe.Pointer(&data[0]), C.gsize(len(data)), gstTime(pts), gstTime(dts), gstTime(dur), delta)
	if r != C.GST_FLOW_OK {
		return fmt.Errorf("appsrc push: flow %d", int(r))
	}
	return nil
}

// SetCaps sets the caps of a live, time-stamped appsrc that holds at most
// maxBuffers buffers (0: no bound): beyond that it drops the newest (leaky upstream), so
// nothing queues without bound in C. Callers that must count losses check
// Level before pushing.
func (a *AppSrc) SetCaps(caps string, maxBuffers int) error {
	cs := C.CString(caps)
	defer C.free(unsafe.Pointer(cs))
	if C.sk_appsrc_set_caps(a.p, cs, C.guint64(maxBuffers)) == 0 {
		return fmt.Errorf("invalid caps %q", caps)
	}
	return nil
}

func gstTime(d time.Duration) C.guint64 {
	if d < 0 {
		return clockNone
	}
	return C.guint64(d)
}

// EndOfStream queues an EOS after the buffers already pushed.
func (a *AppSrc) EndOfStream() { C.sk_appsrc_eos(a.p) }

// Pool is a pool of fixed-size buffers; Close deactivates it (buffers still
// in the pipeline are freed when the pipeline releases them).
type Pool struct{ p *C.GstBufferPool }

// NewPool makes an active pool of buffers of size bytes, preallocating min.
func NewPool(size, min int) (*Pool, error) {
	p := C.sk_pool_new(C.guint(size), C.guint(min))
	if p == nil {
		return nil, fmt.Errorf("buffer pool of %d bytes could not be created", size)
	}
	return &Pool{p}, nil
}

// Close deactivates and releases the pool.
func (p *Pool) Close() {
	if p.p != nil {
		C.sk_pool_free(p.p)
		p.p = nil
	}
}

// Buffer is a GstBuffer owned by Go until pushed or unreffed.
type Buffer struct {
	p    *C.GstBuffer
	info C.GstMapInfo
}

// Acquire takes a buffer from the pool into b (b is reused to avoid allocations).
func (p *Pool) Acquire(b *Buffer) error {
	b.p = C.sk_pool_acquire(p.p)
	if b.p == nil {
		return errors.New("buffer pool exhausted or inactive")
	}
	return nil
}

// MapWrite maps the buffer for writing and returns its memory. The slice
// aliases C memory and must not be used after Unmap.
func (b *Buffer) MapWrite() []byte {
	d := C.sk_buffer_map_write(b.p, &b.info)
	if d == nil {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(d)), int(b.info.size))
}

// Unmap ends a MapWrite.
func (b *Buffer) Unmap() { C.sk_buffer_unmap(b.p, &b.info) }

// SetTimes sets PTS and duration.
func (b *Buffer) SetTimes(pts, dur time.Duration) {
	C.sk_buffer_set_times(b.p, C.guint64(pts), C.guint64(dur))
}

// Unref releases a buffer that was not pushed. Safe to call twice.
func (b *Buffer) Unref() {
	if b.p != nil {
		C.sk_buffer_unref(b.p)
		b.p = nil
	}
}

// AppSink is the pipeline's appsink element. One goroutine pulls from it.
type AppSink struct {
	Element
	au C.sk_au // reused by every pull: handing a local to C would allocate it
}

// AsAppSink views an element as an appsink.
func AsAppSink(e *Element) *AppSink { return &AppSink{Element: *e} }

// Sample is one buffer pulled from an appsink, copied into Go memory.
type Sample struct {
	Data          []byte
	PTS, DTS, Dur time.Duration // -1 when unknown
	Keyframe      bool
	Width, Height int // raw video samples: the picture size
}

const clockNone = ^C.guint64(0)

func clockTime(t C.guint64) time.Duration {
	if t == clockNone {
		return -1
	}
	return time.Duration(t)
}

// Discard waits up to timeout for the next buffer and drops it without
// copying it, returning its size and PTS. got is false on timeout; eos
// is true at end of stream.
func (s *AppSink) Discard(timeout time.Duration) (size int, pts time.Duration, got, eos bool) {
	au := &s.au
	switch C.sk_appsink_pull(s.p, C.gint64(timeout), au) {
	case 0:
		return 0, 0, false, false
	case -1:
		return 0, 0, false, true
	}
	size, pts = int(au._map.size), clockTime(au.pts)
	C.sk_au_release(au)
	return size, pts, true, false
}

// Pull waits up to timeout for the next buffer. It returns (nil, false) on
// timeout and (nil, true) at end of stream or when the sink stopped.
func (s *AppSink) Pull(timeout time.Duration) (smp *Sample, eos bool) {
	au := &s.au
	switch C.sk_appsink_pull(s.p, C.gint64(timeout), au) {
	case 0:
		return nil, false
	case -1:
		return nil, true
	}
	smp = &Sample{
		Data: C.GoBytes(unsafe.Pointer(au._map.data), C.int(au._map.size)),
		PTS:  clockTime(au.pts), DTS: clockTime(au.dts), Dur: clockTime(au.duration),
		Keyframe: au.keyframe != 0, Width: int(au.width), Height: int(au.height),
	}
	C.sk_au_release(au)
	return smp, false
}
