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

	"github.com/skyline-go/skyline/kvs/internal/mkv"
)

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

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
	code string
	tc   int64
	msg  string
}

func (e *ackFail) Error() string { return fmt.Sprintf("error %d (%s): %s", e.id, e.code, e.msg) }

// session is one PutMedia connection.
type session struct {
	s      *Server
	st     *stream
	w      http.ResponseWriter
	rc     *http.ResponseController
	rd     *mkv.Reader
	header []byte // EBML header, Segment start, Info, Tracks (raw)
	codec  []byte
	track  uint64
	scale  uint64
	file   *os.File
	fname  string

	// the fragment being received
	inFrag   bool
	tc       int64
	raw      []byte
	frames   []int64
	firstKey bool
	bytes    int
	num      string
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
	if e == nil && st.active {
		e = &apiError{http.StatusBadRequest, "ConnectionLimitExceededException", "a PutMedia connection to " + name + " is already open"}
	}
	if e != nil {
		s.mu.Unlock()
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
	ss := &session{s: s, st: st, w: w, rc: rc, rd: mkv.NewReader(r.Body), scale: 1_000_000}
	err := ss.run()
	if ss.file != nil {
		_ = ss.file.Close()
	}
	var af *ackFail
	switch {
	case errors.As(err, &af):
		s.log.Warn("PutMedia fragment rejected", "stream", name, "error", af)
		ss.ack(ack{EventType: "ERROR", FragmentTimecode: af.tc, ErrorId: af.id, ErrorCode: af.code})
	case err != nil:
		s.log.Info("PutMedia connection ended", "stream", name, "error", err)
	default:
		s.log.Info("PutMedia connection finished", "stream", name)
	}
}

func (ss *session) ack(a ack) {
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
	return &ackFail{4006, "INVALID_MKV_DATA", tc, fmt.Sprintf(format, a...)}
}

// run reads the body: EBML header, Segment, Info, Tracks, Clusters.
func (ss *session) run() error {
	h, err := ss.rd.Next()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return invalidMKV(0, "%v", err)
	}
	if h.ID != mkv.IDEBML {
		return invalidMKV(0, "the stream does not start with an EBML header")
	}
	body, err := ss.rd.Body(h, 4096)
	if err != nil {
		return invalidMKV(0, "EBML header: %v", err)
	}
	kids, err := mkv.Children(body)
	if err != nil {
		return invalidMKV(0, "EBML header: %v", err)
	}
	doc := ""
	for _, k := range kids {
		if k.ID == mkv.IDDocType {
			doc = string(k.Data)
		}
	}
	if doc != "matroska" && doc != "webm" {
		return invalidMKV(0, "DocType %q is not matroska", doc)
	}
	ss.header = append(append(ss.header, h.Raw...), body...)
	if h, err = ss.rd.Next(); err != nil || h.ID != mkv.IDSegment {
		return invalidMKV(0, "no Segment after the EBML header")
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
			return invalidMKV(0, "a second EBML header in one PutMedia stream")
		default:
			if h.Size < 0 {
				return invalidMKV(0, "element 0x%X of unknown size", h.ID)
			}
			if _, err := ss.rd.Body(h, MaxFragmentBytes); err != nil {
				return readErr(err)
			}
		}
	}
}

func readErr(err error) error {
	if errors.Is(err, mkv.ErrInvalid) {
		return invalidMKV(0, "%v", err)
	}
	return err // the connection broke: no ack
}

func (ss *session) segmentInfo(h mkv.ElementHeader, body []byte) error {
	kids, err := mkv.Children(body)
	if err != nil {
		return invalidMKV(0, "%v", err)
	}
	if h.ID == mkv.IDInfo {
		for _, k := range kids {
			if k.ID == mkv.IDTimecodeScale {
				ss.scale = k.Uint()
			}
		}
		if ss.scale != 1_000_000 {
			return invalidMKV(0, "TimecodeScale %d: kvslocal supports 1000000 (ms)", ss.scale)
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
				return invalidMKV(0, "%v", err)
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
				return invalidMKV(0, "codec %q: kvslocal accepts %s", codec, mkv.CodecH264)
			}
		}
		if entries != 1 {
			return &ackFail{4005, "MORE_THAN_ALLOWED_TRACKS_FOUND", 0, fmt.Sprintf("%d tracks; kvslocal accepts one", entries)}
		}
	}
	ss.header = append(append(ss.header, h.Raw...), body...)
	return nil
}

// cluster reads one fragment. It returns the header of the element that
// ended an unknown-size cluster, if any.
func (ss *session) cluster(h mkv.ElementHeader) (*mkv.ElementHeader, error) {
	if len(ss.codec) == 0 || ss.track == 0 {
		return nil, invalidMKV(0, "Cluster before Tracks with a CodecPrivate")
	}
	ss.inFrag, ss.tc, ss.frames, ss.bytes, ss.firstKey = true, -1, ss.frames[:0], 0, false
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
			return nil, &ackFail{4001, "FRAGMENT_SIZE_GREATER_THAN_LIMIT", ss.tc, "fragment larger than 50 MB"}
		}
		switch c.ID {
		case mkv.IDTimecode:
			ss.tc = int64(mkv.Child{Data: body}.Uint())
		case mkv.IDBlockGroup:
			return nil, invalidMKV(ss.tc, "BlockGroup: kvslocal accepts SimpleBlocks only")
		case mkv.IDSimpleBlock:
			if ss.tc < 0 {
				return nil, invalidMKV(0, "SimpleBlock before the Cluster Timecode")
			}
			b, err := mkv.ParseSimpleBlock(body)
			if err != nil {
				return nil, invalidMKV(ss.tc, "%v", err)
			}
			if b.Track != ss.track {
				return nil, &ackFail{4010, "TRACK_NUMBER_MISMATCH", ss.tc, fmt.Sprintf("block of track %d, the track is %d", b.Track, ss.track)}
			}
			t := ss.tc + int64(b.Rel)
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
				return nil, &ackFail{4004, "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS", ss.tc, fmt.Sprintf("frame timecode %d after %d", t, ss.frames[len(ss.frames)-1])}
			}
			if len(ss.frames) > 0 && t-ss.frames[0] > MaxFragmentDuration.Milliseconds() {
				return nil, &ackFail{4002, "MAX_FRAGMENT_DURATION_REACHED", ss.tc, "fragment longer than 10 s"}
			}
			ss.frames = append(ss.frames, t)
		}
		ss.raw = append(append(ss.raw, c.Raw...), body...)
	}
	return nil, ss.finish()
}

// checkStart holds a fragment's first frame to the ordering rule.
func (ss *session) checkStart(t int64) error {
	ss.s.mu.Lock()
	last := ss.st.LastTimecode
	_, dup := ss.st.persisted[ss.tc]
	ss.s.mu.Unlock()
	if t <= last && !dup {
		return &ackFail{4004, "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS", ss.tc,
			fmt.Sprintf("fragment starts at %d, not after the previous fragment's last frame %d", t, last)}
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
	s.mu.Lock()
	num, dup := st.persisted[ss.tc]
	s.mu.Unlock()
	if dup {
		// A re-sent fragment this endpoint already persisted (its ack was
		// lost): acknowledge it again, store it once.
		ss.ack(ack{EventType: "RECEIVED", FragmentTimecode: ss.tc, FragmentNumber: num})
		ss.ack(ack{EventType: "PERSISTED", FragmentTimecode: ss.tc, FragmentNumber: num})
		return nil
	}
	num = ss.num
	ss.ack(ack{EventType: "RECEIVED", FragmentTimecode: ss.tc, FragmentNumber: num})
	dir := s.StreamDir(st.Name)
	if ss.file == nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return &ackFail{5000, "INTERNAL_ERROR", ss.tc, err.Error()}
		}
		ss.fname = fmt.Sprintf("%015d.mkv", ss.tc)
		f, err := os.Create(filepath.Join(dir, ss.fname))
		if err != nil {
			return &ackFail{5000, "INTERNAL_ERROR", ss.tc, err.Error()}
		}
		ss.file = f
		if _, err := f.Write(ss.header); err != nil {
			return &ackFail{5000, "INTERNAL_ERROR", ss.tc, err.Error()}
		}
	}
	if _, err := ss.file.Write(ss.raw); err != nil {
		return &ackFail{5000, "INTERNAL_ERROR", ss.tc, err.Error()}
	}
	rec := Fragment{FragmentNumber: num, Timecode: ss.tc, FrameTimecodes: append([]int64(nil), ss.frames...), Keyframe: ss.firstKey, Bytes: len(ss.raw), File: ss.fname}
	line, _ := json.Marshal(rec)
	idx, err := os.OpenFile(filepath.Join(dir, "fragments.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err == nil {
		_, err = idx.Write(append(line, '\n'))
		_ = idx.Close()
	}
	if err != nil {
		return &ackFail{5000, "INTERNAL_ERROR", ss.tc, err.Error()}
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
	ss.ack(ack{EventType: "PERSISTED", FragmentTimecode: ss.tc, FragmentNumber: num})
	return nil
}
