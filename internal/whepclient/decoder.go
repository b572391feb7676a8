package whepclient

import (
	"fmt"
	"sync"
	"time"

	"github.com/skyline-go/skyline/internal/gst"
)

// Picture is one decoded picture.
type Picture struct {
	BGR           []byte
	Width, Height int
	Decoded       time.Time
	PTS           time.Duration
}

// Decoder decodes H.264 access units in-process with GStreamer
// (avdec_h264) to BGR pictures.
type Decoder struct {
	p    *gst.Pipeline
	src  *gst.AppSrc
	sink *gst.AppSink
	out  chan Picture
	wg   sync.WaitGroup
	stop chan struct{}
	once sync.Once
	t0   time.Time
}

// NewDecoder starts a decoder; Pictures delivers its output (a full
// channel blocks the decoder). It decodes with one thread, so that no
// frame-threading delay is added (what a browser's decoder does too).
func NewDecoder() (*Decoder, error) {
	if err := gst.Init(); err != nil {
		return nil, err
	}
	p, err := gst.ParseLaunch("appsrc name=src ! h264parse ! avdec_h264 max-threads=1 ! videoconvert ! video/x-raw,format=BGR ! appsink name=out sync=false")
	if err != nil {
		return nil, err
	}
	d := &Decoder{p: p, src: gst.AsAppSrc(p.ByName("src")), sink: gst.AsAppSink(p.ByName("out")),
		out: make(chan Picture, 512), stop: make(chan struct{})}
	if err := d.src.SetCaps("video/x-h264,stream-format=byte-stream,alignment=au", 0); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.SetState(gst.StatePlaying); err != nil {
		p.Close()
		return nil, fmt.Errorf("decoder: %w", err)
	}
	d.wg.Add(1)
	go d.pull()
	return d, nil
}

// Push decodes one access unit.
func (d *Decoder) Push(au []byte, key bool) error {
	if d.t0.IsZero() {
		d.t0 = time.Now()
	}
	return d.src.PushBytes(au, time.Since(d.t0), -1, -1, key)
}

// Pictures delivers the decoded pictures; it is closed by Close.
func (d *Decoder) Pictures() <-chan Picture { return d.out }

func (d *Decoder) pull() {
	defer d.wg.Done()
	defer close(d.out)
	for {
		select {
		case <-d.stop:
			return
		default:
		}
		smp, eos := d.sink.Pull(100 * time.Millisecond)
		if eos {
			return
		}
		if smp == nil {
			continue
		}
		pic := Picture{BGR: smp.Data, Width: smp.Width, Height: smp.Height, Decoded: time.Now(), PTS: smp.PTS}
		select {
		case d.out <- pic:
		case <-d.stop:
			return
		}
	}
}

// Close stops the decoder.
func (d *Decoder) Close() {
	d.once.Do(func() {
		close(d.stop)
		d.wg.Wait()
		d.p.Close()
	})
}
