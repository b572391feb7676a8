package main

import (
	"errors"
	"log/slog"

	"github.com/skyline-go/skyline"
)

// newKVSOut builds a kvs://REGION/STREAM destination.
func newKVSOut(spec string, log *slog.Logger) (skyline.Destination, error) {
	return nil, errors.New("--out " + spec + ": Kinesis Video Streams is not built into this skyline yet")
}
