package kvslocal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skyline-go/skyline/kvs/internal/mkv"
)

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// streamLevel is the FragmentTimecode of an ERROR acknowledgement that is
// about the request, not a fragment (AWS sends -1).
const streamLevel = -1

// ackCodes are the PutMedia acknowledgement ErrorCode names of the error
// ids (API_dataplane_PutMedia.html, Acknowledgement ErrorId).
var ackCodes = map[int]string{
	4000: "STREAM_READ_ERROR", 4001: "MAX_FRAGMENT_SIZE_REACHED", 4002: "MAX_FRAGMENT_DURATION_REACHED",
	4003: "MAX_CONNECTION_DURATION_REACHED", 4004: "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS",
	4005: "MORE_THAN_ALLOWED_TRACKS_FOUND", 4006: "INVALID_MKV_DATA", 4007: "INVALID_PRODUCER_TIMESTAMP",
	4008: "STREAM_NOT_ACTIVE", 4009: "FRAGMENT_METADATA_LIMIT_REACHED", 4010: "TRACK_NUMBER_MISMATCH",
	4011: "FRAMES_MISSING_FOR_TRACK", 5000: "INTERNAL_ERROR", 5001: "ARCHIVAL_ERROR",
}

// ack is a PutMedia acknowledgement line.
type ack struct {
	EventType        string
	FragmentTimecode int64  `json:",omitempty"`
	FragmentNumber   string `json:",omitempty"`
	ErrorId          int    `json:",omitempty"`
	ErrorCode        string `json:",omitempty"`
}

// ackFail ends a PutMedia stream with an ERROR acknowledgement.
type ackFail struct {
	id   int
	code string // "" : ackCodes[id]
	tc   int64
	msg  string
}

func fail(id int, tc int64, format string, a ...any) *ackFail {
	return &ackFail{id: id, code: ackCodes[id], tc: tc, msg: fmt.Sprintf(format, a...)}
}

func (e *ackFail) Error() string { return fmt.Sprintf("error %d (%s): %s", e.id, e.code, e.msg) }

// session is one PutMedia connection.
type session struct {
	s   *Server
	st  *stream
	wmu sync.Mutex // acknowledgement writes (the reader and the idle watcher)
	w   http.ResponseWriter
	rc  *http.ResponseController
	// lastData: Clock time (unix ns) of the last body bytes read.
	lastData atomic.Int64
	idle     atomic.Bool
	prevTC   int64 // previous fragment's timecode on this connection (-1: none)
	rd       *mkv.Reader
	header   []byte // EBML header, Segment start, Info, Tracks (raw)
	codec    []byte
	track    uint64
	scale    uint64
	file     *os.File
	fname    string

	// the fragment being received
	inFrag   bool
	tc       int64
	raw      []byte
	frames   []int64
	firstKey bool
	keys     int
	bytes    int
	num      string
}

// activity records the Clock time of every read of the body.
type activity struct {
	r  io.Reader
	ss *session
}

func (a activity) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.ss.lastData.Store(a.ss.s.cfg.Clock.Now().UnixNano())
	}
	return n, err
}

func (s *Server) putMedia(w http.ResponseWriter, r *http.Request) {
	s.count(r.URL.Path)
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		hash = emptySHA256
	}
	if e := s.verify(r, hash); e != nil {
		s.log.Warn("PutMedia refused", "error", e.typ)
		writeErr(w, e)
		return
	}
	name := r.Header.Get("x-amzn-stream-name")
	if name == "" {
		writeErr(w, errInvalid("x-amzn-stream-name is required (kvslocal does not accept x-amzn-stream-arn alone)"))
		return
	}
	if tt := r.Header.Get("x-amzn-fragment-timecode-type"); tt != "ABSOLUTE" {
		writeErr(w, errInvalid("x-amzn-fragment-timecode-type %q: kvslocal supports ABSOLUTE only", tt))
		return
	}
	if _, err := strconv.ParseFloat(r.Header.Get("x-amzn-producer-start-timestamp"), 64); err != nil {
		writeErr(w, errInvalid("x-amzn-producer-start-timestamp %q is not a number of seconds", r.Header.Get("x-amzn-producer-start-timestamp")))
		return
	}
	s.mu.Lock()
	st, e := s.lookupLocked(name, "", true)
	if e == nil && !s.cfg.Lenient {
		// At most PutMediaTPS requests per second per stream (wall clock,
		// as the service counts them), refused ones included.
		now := time.Now()
		recent := st.calls[:0]
		for _, t := range st.calls {
			if now.Sub(t) < time.Second {
				recent = append(recent, t)
			}
		}
		st.calls = append(recent, now)
		if len(recent) >= PutMediaTPS {
			e = &apiError{http.StatusBadRequest, "ClientLimitExceededException",
				fmt.Sprintf("PutMedia on %s: more than %d requests per second", name, PutMediaTPS)}
		}
	}
	if e == nil && st.active {
		e = &apiError{http.StatusBadRequest, "ConnectionLimitExceededException", "a PutMedia connection to " + name + " is already open"}
	}
	if e != nil {
		if st != nil {
			st.refused[e.typ]++
		}
		s.mu.Unlock()
		s.log.Warn("PutMedia refused", "stream", name, "error", e.typ)
		writeErr(w, e)
		return
	}
	st.active = true
	s.conns++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		st.active = false
		s.mu.Unlock()
	}()

	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	ss := &session{s: s, st: st, w: w, rc: rc, scale: 1_000_000, prevTC: -1}
	ss.lastData.Store(s.cfg.Clock.Now().UnixNano())
	ss.rd = mkv.NewReader(activity{r.Body, ss})
	stop := make(chan struct{})
	watched := make(chan struct{})
	go ss.watchIdle(stop, watched)
	err := ss.run()
	close(stop)
	<-watched
	if ss.file != nil {
		_ = ss.file.Close()
	}
	var af *ackFail
	switch {
	case ss.idle.Load():
		s.log.Info("PutMedia connection closed: idle", "stream", name, "after", s.cfg.IdleTimeout)
	case errors.As(err, &af):
		s.log.Warn("PutMedia fragment rejected", "stream", name, "error", af)
		code := af.code
		if code == "" {
			code = ackCodes[af.id]
		}
		ss.ack(ack{EventType: "ERROR", FragmentTimecode: af.tc, ErrorId: af.id, ErrorCode: code})
	case err != nil:
		s.log.Info("PutMedia connection ended", "stream", name, "error", err)
	default:
		s.log.Info("PutMedia connection finished", "stream", name)
	}
}

// watchIdle sends IDLE and ends the request when no data arrived for
// IdleTimeout of Clock time (AWS ends a PutMedia session after 30 s
// without data: limits.html, "PutMedia ... idle").
func (ss *session) watchIdle(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if ss.s.cfg.Lenient {
		<-stop
		return
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if ss.s.cfg.Clock.Now().UnixNano()-ss.lastData.Load() >= int64(ss.s.cfg.IdleTimeout) {
			ss.idle.Store(true)
			ss.ack(ack{EventType: "IDLE"})
			_ = ss.rc.SetReadDeadline(time.Now()) // the body read returns: run ends
			return
		}
	}
}

func (ss *session) ack(a ack) {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	b, _ := json.Marshal(a)
	_, _ = ss.w.Write(append(b, '\n'))
	_ = ss.rc.Flush()
}

func (s *Server) nextNumber() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fragNo++
	return strconv.FormatUint(s.fragNo, 10)
}

func invalidMKV(tc int64, format string, a ...any) error {
	return fail(4006, tc, format, a...)
}

// run reads the body: EBML header, Segment, Info, Tracks, Clusters.
func (ss *session) run() error {
	h, err := ss.rd.Next()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return invalidMKV(streamLevel, "%v", err)
	}
	if h.ID != mkv.IDEBML {
		return invalidMKV(streamLevel, "the stream does not start with an EBML header")
	}
	body, err := ss.rd.Body(h, 4096)
	if err != nil {
		return invalidMKV(streamLevel, "EBML header: %v", err)
	}
	kids, err := mkv.Children(body)
	if err != nil {
		return invalidMKV(streamLevel, "EBML header: %v", err)
	}
	doc := ""
	for _, k := range kids {
		if k.ID == mkv.IDDocType {
			doc = string(k.Data)
		}
	}
	if doc != "matroska" && doc != "webm" {
		return invalidMKV(streamLevel, "DocType %q is not matroska", doc)
	}
	ss.header = append(append(ss.header, h.Raw...), body...)
	if h, err = ss.rd.Next(); err != nil || h.ID != mkv.IDSegment {
		return invalidMKV(streamLevel, "no Segment after the EBML header")
	}
	ss.header = append(ss.header, h.Raw...)
	var next *mkv.ElementHeader
	for {
		if next != nil {
			h, next = *next, nil
		} else if h, err = ss.rd.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return readErr(err)
		}
		switch h.ID {
		case mkv.IDInfo, mkv.IDTracks:
			body, err := ss.rd.Body(h, 1<<20)
			if err != nil {
				return readErr(err)
			}
			if err := ss.segmentInfo(h, body); err != nil {
				return err
			}
		case mkv.IDCluster:
			n, err := ss.cluster(h)
			if err != nil {
				return err
			}
			next = n
		case mkv.IDEBML:
			return invalidMKV(streamLevel, "a second EBML header in one PutMedia stream")
		default:
			if h.Size < 0 {
				return invalidMKV(streamLevel, "element 0x%X of unknown size", h.ID)
			}
			if _, err := ss.rd.Body(h, MaxFragmentBytes); err != nil {
				return readErr(err)
			}
		}
	}
}

func readErr(err error) error {
	if errors.Is(err, mkv.ErrInvalid) {
		return invalidMKV(streamLevel, "%v", err)
	}
	return err // the connection broke: no ack
}

func (ss *session) segmentInfo(h mkv.ElementHeader, body []byte) error {
	kids, err := mkv.Children(body)
	if err != nil {
		return invalidMKV(streamLevel, "%v", err)
	}
	if h.ID == mkv.IDInfo {
		for _, k := range kids {
			if k.ID == mkv.IDTimecodeScale {
				ss.scale = k.Uint()
			}
		}
		if ss.scale != 1_000_000 {
			return invalidMKV(streamLevel, "TimecodeScale %d: kvslocal supports 1000000 (ms)", ss.scale)
		}
	} else {
		entries := 0
		for _, k := range kids {
			if k.ID != mkv.IDTrackEntry {
				continue
			}
			entries++
			tk, err := mkv.Children(k.Data)
			if err != nil {
				return invalidMKV(streamLevel, "%v", err)
			}
			codec := ""
			for _, t := range tk {
				switch t.ID {
				case mkv.IDTrackNumber:
					ss.track = t.Uint()
				case mkv.IDCodecID:
					codec = string(t.Data)
				case mkv.IDCodecPrivate:
					ss.codec = t.Data
				}
			}
			if codec != mkv.CodecH264 {
				return invalidMKV(streamLevel, "codec %q: kvslocal accepts %s", codec, mkv.CodecH264)
			}
		}
		if entries != 1 {
			return fail(4005, streamLevel, "%d tracks; kvslocal accepts one", entries)
		}
	}
	ss.header = append(append(ss.header, h.Raw...), body...)
	return nil
}

// cluster reads one fragment. It returns the header of the element that
// ended an unknown-size cluster, if any.
func (ss *session) cluster(h mkv.ElementHeader) (*mkv.ElementHeader, error) {
	if len(ss.codec) == 0 || ss.track == 0 {
		return nil, invalidMKV(streamLevel, "Cluster before Tracks with a CodecPrivate")
	}
	ss.inFrag, ss.tc, ss.frames, ss.bytes, ss.firstKey, ss.keys = true, -1, ss.frames[:0], 0, false, 0
	ss.raw = append(ss.raw[:0], h.Raw...)
	end := int64(-1)
	if h.Size >= 0 {
		end = ss.rd.Pos + h.Size
	}
	for end < 0 || ss.rd.Pos < end {
		c, err := ss.rd.Next()
		if err == io.EOF && end < 0 {
			break
		}
		if err != nil {
			return nil, readErr(err)
		}
		switch c.ID {
		case mkv.IDTimecode, mkv.IDSimpleBlock, mkv.IDBlockGroup, mkv.IDVoid, 0xA7, 0xAB:
		default:
			if end >= 0 {
				return nil, invalidMKV(ss.tc, "element 0x%X inside a Cluster", c.ID)
			}
			if err := ss.finish(); err != nil {
				return nil, err
			}
			return &c, nil
		}
		body, err := ss.rd.Body(c, MaxFragmentBytes)
		if err != nil {
			return nil, readErr(err)
		}
		ss.bytes += len(c.Raw) + len(body)
		if ss.bytes > MaxFragmentBytes {
			return nil, fail(4001, ss.tc, "fragment larger than 50 MB")
		}
		switch c.ID {
		case mkv.IDTimecode:
			ss.tc = int64(mkv.Child{Data: body}.Uint())
		case mkv.IDBlockGroup:
			return nil, invalidMKV(ss.tc, "BlockGroup: kvslocal accepts SimpleBlocks only")
		case mkv.IDSimpleBlock:
			if ss.tc < 0 {
				return nil, invalidMKV(streamLevel, "SimpleBlock before the Cluster Timecode")
			}
			b, err := mkv.ParseSimpleBlock(body)
			if err != nil {
				return nil, invalidMKV(ss.tc, "%v", err)
			}
			if b.Track != ss.track {
				return nil, fail(4010, ss.tc, "block of track %d, the track is %d", b.Track, ss.track)
			}
			t := ss.tc + int64(b.Rel)
			if b.Keyframe {
				ss.keys++
			}
			if len(ss.frames) == 0 {
				ss.firstKey = b.Keyframe
				if !b.Keyframe {
					return nil, invalidMKV(ss.tc, "fragment does not start with a keyframe")
				}
				if err := ss.checkStart(t); err != nil {
					return nil, err
				}
				ss.num = ss.s.nextNumber()
				ss.ack(ack{EventType: "BUFFERING", FragmentTimecode: ss.tc, FragmentNumber: ss.num})
			} else if t <= ss.frames[len(ss.frames)-1] {
				return nil, fail(4004, ss.tc, "frame timecode %d after %d", t, ss.frames[len(ss.frames)-1])
			}
			if len(ss.frames) > 0 && t-ss.frames[0] > MaxFragmentDuration.Milliseconds() {
				return nil, fail(4002, ss.tc, "fragment longer than 10 s")
			}
			ss.frames = append(ss.frames, t)
		}
		ss.raw = append(append(ss.raw, c.Raw...), body...)
	}
	return nil, ss.finish()
}

// checkStart holds a fragment's first frame to the ordering rules: after
// the previous fragment of this connection, at least MinFragmentDuration
// after its start. Across connections AWS promises no order check (Lenient
// keeps the old check against the stream's last stored frame).
func (ss *session) checkStart(t int64) error {
	if ss.prevTC >= 0 && !ss.s.cfg.Lenient {
		if ss.tc <= ss.prevTC {
			return fail(4004, ss.tc, "fragment timecode %d not after the previous fragment's %d", ss.tc, ss.prevTC)
		}
		if d := ss.tc - ss.prevTC; d < MinFragmentDuration.Milliseconds() {
			return &ackFail{id: 4002, code: "MIN_FRAGMENT_DURATION_REACHED", tc: ss.tc,
				msg: fmt.Sprintf("fragment %d ms after the previous one: the minimum fragment duration is %v", d, MinFragmentDuration)}
		}
	}
	if !ss.s.cfg.Lenient {
		return nil
	}
	ss.s.mu.Lock()
	last := ss.st.LastTimecode
	_, dup := ss.st.persisted[ss.tc]
	ss.s.mu.Unlock()
	if t <= last && !dup {
		return fail(4004, ss.tc, "fragment starts at %d, not after the previous fragment's last frame %d", t, last)
	}
	return nil
}

// finish stores a fully received fragment and acknowledges it.
func (ss *session) finish() error {
	if !ss.inFrag {
		return nil
	}
	ss.inFrag = false
	if len(ss.frames) == 0 {
		return nil // an empty cluster: nothing to store
	}
	s, st := ss.s, ss.st
	ss.prevTC = ss.tc
	s.mu.Lock()
	num, dup := st.persisted[ss.tc]
	retained := st.RetentionHours > 0
	if dup && !s.cfg.Lenient {
		st.duplicates++ // stored again, as AWS does: tests see re-sends
	}
	s.mu.Unlock()
	if dup && s.cfg.Lenient {
		// A re-sent fragment already stored: acknowledge it again, store
		// it once (Lenient only).
		ss.ack(ack{EventType: "RECEIVED", FragmentTimecode: ss.tc, FragmentNumber: num})
		ss.ack(ack{EventType: "PERSISTED", FragmentTimecode: ss.tc, FragmentNumber: num})
		return nil
	}
	num = ss.num
	ss.ack(ack{EventType: "RECEIVED", FragmentTimecode: ss.tc, FragmentNumber: num})
	dir := s.StreamDir(st.Name)
	if ss.file == nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(5000, ss.tc, "%v", err)
		}
		ss.fname = fmt.Sprintf("%015d.mkv", ss.tc)
		f, err := os.Create(filepath.Join(dir, ss.fname))
		if err != nil {
			return fail(5000, ss.tc, "%v", err)
		}
		ss.file = f
		if _, err := f.Write(ss.header); err != nil {
			return fail(5000, ss.tc, "%v", err)
		}
	}
	if _, err := ss.file.Write(ss.raw); err != nil {
		return fail(5000, ss.tc, "%v", err)
	}
	rec := Fragment{FragmentNumber: num, Timecode: ss.tc, FrameTimecodes: append([]int64(nil), ss.frames...), Keyframe: ss.firstKey,
		Keyframes: ss.keys, Bytes: len(ss.raw), File: ss.fname}
	line, _ := json.Marshal(rec)
	idx, err := os.OpenFile(filepath.Join(dir, "fragments.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err == nil {
		_, err = idx.Write(append(line, '\n'))
		_ = idx.Close()
	}
	if err != nil {
		return fail(5000, ss.tc, "%v", err)
	}
	s.mu.Lock()
	st.LastTimecode = ss.frames[len(ss.frames)-1]
	st.Fragments++
	st.persisted[ss.tc] = num
	if len(st.persisted) > 2000 {
		for k := range st.persisted {
			if k < st.LastTimecode-3_600_000 {
				delete(st.persisted, k)
			}
		}
	}
	s.saveLocked()
	s.mu.Unlock()
	// PERSISTED only when the stream keeps data: a stream without
	// retention gets RECEIVED only (API_dataplane_PutMedia.html,
	// "PERSISTED ... if the stream has a retention period").
	if retained || s.cfg.Lenient {
		ss.ack(ack{EventType: "PERSISTED", FragmentTimecode: ss.tc, FragmentNumber: num})
	}
	return nil
}
