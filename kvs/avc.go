package kvs

import (
	"encoding/binary"
	"errors"
)

// NAL unit types used here.
const (
	nalSPS = 7
	nalPPS = 8
	nalAUD = 9
)

// avcC builds an AVCDecoderConfigurationRecord (ISO 14496-15) from one SPS
// and one PPS: the Matroska CodecPrivate of an H.264 track.
func avcC(sps, pps []byte) ([]byte, error) {
	if len(sps) < 4 || len(pps) < 1 {
		return nil, errors.New("kvs: SPS or PPS too short")
	}
	b := []byte{1, sps[1], sps[2], sps[3], 0xFF, 0xE1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
	b = append(b, sps...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
	b = append(b, pps...)
	// High profiles carry chroma format and bit depths (4:2:0, 8 bit).
	switch sps[1] {
	case 100, 110, 122, 144:
		b = append(b, 0xFC|1, 0xF8, 0xF8, 0)
	}
	return b, nil
}

// toAVCC converts NAL units into 4-byte length-prefixed form, leaving out
// access unit delimiters. It also returns the SPS and PPS it saw.
func toAVCC(nalus [][]byte) (out, sps, pps []byte) {
	n := 0
	for _, u := range nalus {
		n += 4 + len(u)
	}
	out = make([]byte, 0, n)
	for _, u := range nalus {
		if len(u) == 0 {
			continue
		}
		switch u[0] & 0x1F {
		case nalAUD:
			continue
		case nalSPS:
			sps = u
		case nalPPS:
			pps = u
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(u)))
		out = append(out, u...)
	}
	return out, sps, pps
}
