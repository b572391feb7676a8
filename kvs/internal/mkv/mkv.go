// Package mkv writes and reads the subset of Matroska (EBML) that Kinesis
// Video Streams PutMedia uses: an EBML header, a Segment of unknown size,
// Info, Tracks with one H.264 track, and Clusters of unknown size holding
// SimpleBlocks. The writer is used by the native KVS client, the reader by
// the local endpoint.
package mkv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Element IDs (with their length-marker bits, as written).
const (
	IDEBML               = 0x1A45DFA3
	IDEBMLVersion        = 0x4286
	IDEBMLReadVersion    = 0x42F7
	IDEBMLMaxIDLength    = 0x42F2
	IDEBMLMaxSizeLength  = 0x42F3
	IDDocType            = 0x4282
	IDDocTypeVersion     = 0x4287
	IDDocTypeReadVersion = 0x4285
	IDSegment            = 0x18538067
	IDSeekHead           = 0x114D9B74
	IDInfo               = 0x1549A966
	IDSegmentUID         = 0x73A4
	IDTimecodeScale      = 0x2AD7B1
	IDMuxingApp          = 0x4D80
	IDWritingApp         = 0x5741
	IDTracks             = 0x1654AE6B
	IDTrackEntry         = 0xAE
	IDTrackNumber        = 0xD7
	IDTrackUID           = 0x73C5
	IDTrackType          = 0x83
	IDCodecID            = 0x86
	IDCodecPrivate       = 0x63A2
	IDDefaultDuration    = 0x23E383
	IDVideo              = 0xE0
	IDPixelWidth         = 0xB0
	IDPixelHeight        = 0xBA
	IDCluster            = 0x1F43B675
	IDTimecode           = 0xE7
	IDSimpleBlock        = 0xA3
	IDBlockGroup         = 0xA0
	IDCues               = 0x1C53BB6B
	IDTags               = 0x1254C367
	IDTag                = 0x7373
	IDSimpleTag          = 0x67C8
	IDTagName            = 0x45A3
	IDTagString          = 0x4487
	IDVoid               = 0xEC
)

// UnknownSize is the size of a master element whose end is not known.
const UnknownSize = -1

// CodecH264 is the Matroska codec ID of H.264 in AVCC form.
const CodecH264 = "V_MPEG4/ISO/AVC"

// AppendID appends an element ID.
func AppendID(b []byte, id uint32) []byte {
	switch {
	case id >= 1<<24:
		return append(b, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<16:
		return append(b, byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<8:
		return append(b, byte(id>>8), byte(id))
	}
	return append(b, byte(id))
}

// AppendSize appends an EBML size; UnknownSize writes the 8-byte unknown
// marker.
func AppendSize(b []byte, n int64) []byte {
	if n < 0 {
		return append(b, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
	}
	for l := 1; l <= 8; l++ {
		if n < (1<<(7*l))-1 {
			for i := l - 1; i >= 0; i-- {
				v := byte(n >> (8 * i))
				if i == l-1 {
					v |= 0x80 >> (l - 1)
				}
				b = append(b, v)
			}
			return b
		}
	}
	panic("mkv: size too large")
}

// AppendMaster appends a master element with its children already encoded.
func AppendMaster(b []byte, id uint32, children []byte) []byte {
	b = AppendID(b, id)
	b = AppendSize(b, int64(len(children)))
	return append(b, children...)
}

// AppendUint appends an unsigned integer element.
func AppendUint(b []byte, id uint32, v uint64) []byte {
	n := 1
	for n < 8 && v>>(8*n) != 0 {
		n++
	}
	b = AppendID(b, id)
	b = AppendSize(b, int64(n))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// AppendString appends a string element.
func AppendString(b []byte, id uint32, s string) []byte {
	return AppendBytes(b, id, []byte(s))
}

// AppendBytes appends a binary element.
func AppendBytes(b []byte, id uint32, v []byte) []byte {
	b = AppendID(b, id)
	b = AppendSize(b, int64(len(v)))
	return append(b, v...)
}

// Track describes the one H.264 video track.
type Track struct {
	Width, Height int
	CodecPrivate  []byte // avcC
	// DefaultDuration of a frame in nanoseconds (0: not written).
	DefaultDuration uint64
}

// Header is the start of a PutMedia body: the EBML header, a Segment of
// unknown size, Info and Tracks. segmentUID should be 16 random bytes.
func Header(t Track, segmentUID []byte, app string) []byte {
	var ebml []byte
	ebml = AppendUint(ebml, IDEBMLVersion, 1)
	ebml = AppendUint(ebml, IDEBMLReadVersion, 1)
	ebml = AppendUint(ebml, IDEBMLMaxIDLength, 4)
	ebml = AppendUint(ebml, IDEBMLMaxSizeLength, 8)
	ebml = AppendString(ebml, IDDocType, "matroska")
	ebml = AppendUint(ebml, IDDocTypeVersion, 2)
	ebml = AppendUint(ebml, IDDocTypeReadVersion, 2)
	b := AppendMaster(nil, IDEBML, ebml)
	b = AppendID(b, IDSegment)
	b = AppendSize(b, UnknownSize)

	var info []byte
	if len(segmentUID) > 0 {
		info = AppendBytes(info, IDSegmentUID, segmentUID)
	}
	info = AppendUint(info, IDTimecodeScale, 1_000_000)
	info = AppendString(info, IDMuxingApp, app)
	info = AppendString(info, IDWritingApp, app)
	b = AppendMaster(b, IDInfo, info)

	var video []byte
	video = AppendUint(video, IDPixelWidth, uint64(t.Width))
	video = AppendUint(video, IDPixelHeight, uint64(t.Height))
	var entry []byte
	entry = AppendUint(entry, IDTrackNumber, 1)
	entry = AppendUint(entry, IDTrackUID, 1)
	entry = AppendUint(entry, IDTrackType, 1)
	entry = AppendString(entry, IDCodecID, CodecH264)
	if t.DefaultDuration > 0 {
		entry = AppendUint(entry, IDDefaultDuration, t.DefaultDuration)
	}
	entry = AppendBytes(entry, IDCodecPrivate, t.CodecPrivate)
	entry = AppendMaster(entry, IDVideo, video)
	b = AppendMaster(b, IDTracks, AppendMaster(nil, IDTrackEntry, entry))
	return b
}

// ClusterStart starts a Cluster of unknown size at absolute timecode tc (ms).
func ClusterStart(b []byte, tc int64) []byte {
	b = AppendID(b, IDCluster)
	b = AppendSize(b, UnknownSize)
	return AppendUint(b, IDTimecode, uint64(tc))
}

// EndOfFragmentTag is the tag name that ends the open fragment without
// starting a new one (the producer SDK's EoFR: EOFR_METADATA_NAME in
// amazon-kinesis-video-streams-pic src/client/src/Stream.h).
const EndOfFragmentTag = "AWS_KINESISVIDEO_END_OF_FRAGMENT"

// AppendEndOfFragment appends the Tags element the producer SDK sends to
// close the open fragment (an EoFR frame: a SimpleTag named
// EndOfFragmentTag with an empty value, mkvgenGenerateTagsChain in the PIC).
// It ends the unknown-size Cluster before it.
func AppendEndOfFragment(b []byte) []byte {
	st := AppendString(nil, IDTagName, EndOfFragmentTag)
	st = AppendString(st, IDTagString, "")
	tag := AppendMaster(nil, IDSimpleTag, st)
	return AppendMaster(b, IDTags, AppendMaster(nil, IDTag, tag))
}

// AppendSimpleBlock appends a SimpleBlock of track 1 at rel ms from the
// cluster's timecode.
func AppendSimpleBlock(b []byte, rel int16, key bool, data []byte) []byte {
	b = AppendID(b, IDSimpleBlock)
	b = AppendSize(b, int64(4+len(data)))
	flags := byte(0)
	if key {
		flags = 0x80
	}
	b = append(b, 0x81, byte(uint16(rel)>>8), byte(uint16(rel)), flags)
	return append(b, data...)
}

// ---- reading ----

// ErrInvalid reports malformed EBML.
var ErrInvalid = errors.New("mkv: invalid EBML")

// Reader reads elements from a stream, keeping the raw bytes of each header.
type Reader struct {
	r   io.Reader
	Pos int64
	buf [8]byte
}

// NewReader reads from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// ElementHeader is an element's ID and size (UnknownSize when unknown) and
// its raw bytes.
type ElementHeader struct {
	ID   uint32
	Size int64
	Raw  []byte
}

func (r *Reader) readByte() (byte, error) {
	if _, err := io.ReadFull(r.r, r.buf[:1]); err != nil {
		return 0, err
	}
	r.Pos++
	return r.buf[0], nil
}

// Next reads an element header. io.EOF at a clean element boundary.
func (r *Reader) Next() (ElementHeader, error) {
	var h ElementHeader
	first, err := r.readByte()
	if err != nil {
		return h, err
	}
	l := 1
	for l <= 4 && first&(0x80>>(l-1)) == 0 {
		l++
	}
	if l > 4 {
		return h, fmt.Errorf("%w: bad ID at %d", ErrInvalid, r.Pos-1)
	}
	raw := []byte{first}
	id := uint32(first)
	for i := 1; i < l; i++ {
		c, err := r.readByte()
		if err != nil {
			return h, noEOF(err)
		}
		raw = append(raw, c)
		id = id<<8 | uint32(c)
	}
	first, err = r.readByte()
	if err != nil {
		return h, noEOF(err)
	}
	raw = append(raw, first)
	l = 1
	for l <= 8 && first&(0x80>>(l-1)) == 0 {
		l++
	}
	if l > 8 {
		return h, fmt.Errorf("%w: bad size at %d", ErrInvalid, r.Pos-1)
	}
	v := uint64(first & (0xFF >> l))
	allOnes := v == uint64(0xFF>>l)
	for i := 1; i < l; i++ {
		c, err := r.readByte()
		if err != nil {
			return h, noEOF(err)
		}
		raw = append(raw, c)
		v = v<<8 | uint64(c)
		allOnes = allOnes && c == 0xFF
	}
	h.ID, h.Raw = id, raw
	if allOnes {
		h.Size = UnknownSize
	} else {
		if v > math.MaxInt32*16 {
			return h, fmt.Errorf("%w: element 0x%X too large (%d bytes)", ErrInvalid, id, v)
		}
		h.Size = int64(v)
	}
	return h, nil
}

// Body reads an element's body (known size, at most max bytes).
func (r *Reader) Body(h ElementHeader, max int64) ([]byte, error) {
	if h.Size < 0 || h.Size > max {
		return nil, fmt.Errorf("%w: element 0x%X size %d (max %d)", ErrInvalid, h.ID, h.Size, max)
	}
	b := make([]byte, h.Size)
	n, err := io.ReadFull(r.r, b)
	r.Pos += int64(n)
	if err != nil {
		return nil, noEOF(err)
	}
	return b, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Children parses the elements inside a master element's body.
func Children(b []byte) ([]Child, error) {
	var out []Child
	r := NewReader(&sliceReader{b: b})
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		body, err := r.Body(h, int64(len(b)))
		if err != nil {
			return nil, err
		}
		out = append(out, Child{ID: h.ID, Data: body})
	}
}

// Child is one parsed element.
type Child struct {
	ID   uint32
	Data []byte
}

// Uint decodes an unsigned integer element's body.
func (c Child) Uint() uint64 {
	var v uint64
	for _, x := range c.Data {
		v = v<<8 | uint64(x)
	}
	return v
}

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// Block is a parsed SimpleBlock.
type Block struct {
	Track    uint64
	Rel      int16
	Keyframe bool
	Data     []byte
}

// ParseSimpleBlock parses a SimpleBlock body.
func ParseSimpleBlock(b []byte) (Block, error) {
	if len(b) < 4 {
		return Block{}, fmt.Errorf("%w: short SimpleBlock", ErrInvalid)
	}
	l := 1
	for l <= 8 && b[0]&(0x80>>(l-1)) == 0 {
		l++
	}
	if l > 4 || len(b) < l+3 {
		return Block{}, fmt.Errorf("%w: bad SimpleBlock track number", ErrInvalid)
	}
	track := uint64(b[0] & (0xFF >> l))
	for i := 1; i < l; i++ {
		track = track<<8 | uint64(b[i])
	}
	rel := int16(binary.BigEndian.Uint16(b[l:]))
	flags := b[l+2]
	if flags&0x06 != 0 {
		return Block{}, fmt.Errorf("%w: laced SimpleBlock not supported", ErrInvalid)
	}
	return Block{Track: track, Rel: rel, Keyframe: flags&0x80 != 0, Data: b[l+3:]}, nil
}
