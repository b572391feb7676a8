package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
)

// TestFramedReader reads the framed format from any io.Reader: sizes,
// formats and capture times per frame; bad headers and truncated frames
// are errors that say what is wrong, never a panic or a huge allocation.
func TestFramedReader(t *testing.T) {
	now := time.Unix(1700000000, 123456789)
	var stream bytes.Buffer
	stream.Write(framedHeaderBytes(now, 4, 2, "bgr24"))
	stream.Write(bytes.Repeat([]byte{1}, 4*2*3))
	stream.Write(framedHeaderBytes(time.Unix(0, 0), 4, 4, "i420"))
	stream.Write(bytes.Repeat([]byte{2}, 4*4*3/2))
	stream.Write(framedHeaderBytes(now.Add(time.Second), 3, 1, "gray"))
	stream.Write([]byte{3, 3, 3})
	src := newFramedSource(&stream, nil)
	ctx := context.Background()
	f, err := src.Next(ctx)
	if err != nil || f.Format != skyline.FormatBGR || f.Width != 4 || f.Height != 2 || len(f.Data) != 24 || !f.Time.Equal(now) {
		t.Fatalf("frame 0: %+v, %v", f, err)
	}
	f, err = src.Next(ctx)
	if err != nil || f.Format != skyline.FormatI420 || len(f.Data) != 16 || len(f.U) != 4 || len(f.V) != 4 || !f.Time.IsZero() {
		t.Fatalf("frame 1: %+v, %v", f, err)
	}
	f, err = src.Next(ctx)
	if err != nil || f.Format != skyline.FormatGray || f.Width != 3 || !f.Time.Equal(now.Add(time.Second)) {
		t.Fatalf("frame 2: %+v, %v", f, err)
	}
	if _, err := src.Next(ctx); err != io.EOF {
		t.Fatalf("end: %v, want io.EOF", err)
	}

	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"raw frames":     {bytes.Repeat([]byte{9}, 100), "not the framed format"},
		"short header":   {[]byte("SKYF1234"), "inside the header of frame 0"},
		"unknown format": {framedHeaderBytes(now, 2, 2, "yuv9"), `pixel format "yuv9"`},
		"zero size":      {framedHeaderBytes(now, 0, 2, "bgr24"), "size 0x2"},
		"huge size":      {framedHeaderBytes(now, 1<<31, 1<<31, "bgra"), "want 1..8192"},
		"odd i420":       {framedHeaderBytes(now, 3, 2, "i420"), "even"},
		"short frame":    {append(framedHeaderBytes(now, 4, 4, "bgr24"), 1, 2, 3), "inside a frame (3 of 48 bytes)"},
	} {
		_, err := newFramedSource(bytes.NewReader(tc.data), nil).Next(ctx)
		if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
}
