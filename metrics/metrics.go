// Package metrics exports the counters of one or more SkyLines to
// Prometheus: frames accepted, dropped and encoded, the encode latency
// histogram, output bytes and bitrate, the state of the SkyLine and of each
// destination, viewers per RTSP path, and the acknowledgements and errors
// destinations report (KVS fragment acks, for example).
//
//	c := metrics.New()
//	cfg := skyline.Config{OnEvent: c.OnEvent("cam1", nil)} // acks and errors
//	st, _ := srv.AddStream("/cam1", rtsp.StreamOptions{})
//	sl, _ := skyline.New(cfg, st)
//	c.Add("cam1", sl, st)                                  // st: viewers of /cam1
//	ms, _ := metrics.Serve(":9090", c)                     // GET /metrics
//	defer ms.Close()
//
// Everything but the event counters is read from SkyLine.Stats and
// rtsp.Stream.Viewers when Prometheus scrapes, so the collector costs
// nothing between scrapes.
package metrics

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyline-go/skyline"
)

// ViewerCounter is a stream that counts its viewers (*rtsp.Stream).
type ViewerCounter interface {
	Path() string
	Viewers() int
}

// Collector is a prometheus.Collector for any number of SkyLines, each
// known by a name (the "skyline" label). Safe for concurrent use.
type Collector struct {
	mu      sync.Mutex
	sources []*source
	events  eventMap
}

type source struct {
	name    string
	sl      *skyline.SkyLine
	streams []ViewerCounter
	// output bitrate, over at least bitrateWindow between scrapes
	prevBytes uint64
	prevAt    time.Time
	bitrate   float64
}

type eventKey struct{ skyline, destination string }

type eventCounts struct{ acks, errors, downs uint64 }

// bitrateWindow is the shortest interval the bitrate gauge is computed
// over; scrapes closer together repeat the last value.
const bitrateWindow = time.Second

// New returns an empty Collector.
func New() *Collector {
	return &Collector{events: eventMap{}}
}

// Add starts collecting sl under name, with the viewers of streams (the
// rtsp.Streams among its destinations). The name must be unique.
func (c *Collector) Add(name string, sl *skyline.SkyLine, streams ...ViewerCounter) error {
	if sl == nil {
		return errors.New("metrics: nil SkyLine")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sources {
		if s.name == name {
			return fmt.Errorf("metrics: a SkyLine named %q is already collected", name)
		}
	}
	c.sources = append(c.sources, &source{name: name, sl: sl, streams: streams})
	return nil
}

// Remove stops collecting the SkyLine named name (its event counters stay).
func (c *Collector) Remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.sources {
		if s.name == name {
			c.sources = append(c.sources[:i], c.sources[i+1:]...)
			return
		}
	}
}

// OnEvent returns a Config.OnEvent callback that counts the events of the
// SkyLine named name — acknowledgements (skyline.EventAck), errors
// (skyline.EventError) and failures (skyline.EventDestinationDown) by
// destination — then passes each event to next (may be nil).
func (c *Collector) OnEvent(name string, next func(skyline.Event)) func(skyline.Event) {
	return func(e skyline.Event) {
		switch e.Kind {
		case skyline.EventAck, skyline.EventError, skyline.EventDestinationDown:
			c.mu.Lock()
			k := eventKey{name, e.Destination}
			n := c.events[k]
			if n == nil {
				n = &eventCounts{}
				c.events[k] = n
			}
			switch e.Kind {
			case skyline.EventAck:
				n.acks++
			case skyline.EventError:
				n.errors++
			default:
				n.downs++
			}
			c.mu.Unlock()
		}
		if next != nil {
			next(e)
		}
	}
}

var (
	labelsSL   = []string{"skyline"}
	labelsDest = []string{"skyline", "destination"}

	descAccepted = prometheus.NewDesc("skyline_frames_accepted_total",
		"Frames Put handed to the pipeline (frames in).", labelsSL, nil)
	descDropped = prometheus.NewDesc("skyline_frames_dropped_total",
		"Frames refused or discarded because the encoder was behind.", labelsSL, nil)
	descEncoded = prometheus.NewDesc("skyline_frames_encoded_total",
		"Access units out of the encoder.", labelsSL, nil)
	descBytes = prometheus.NewDesc("skyline_encoded_bytes_total",
		"Bytes of the access units out of the encoder.", labelsSL, nil)
	descBitrate = prometheus.NewDesc("skyline_output_bitrate_bits_per_second",
		"Output bitrate between the last two scrapes at least a second apart.", labelsSL, nil)
	descLatency = prometheus.NewDesc("skyline_encode_latency_seconds",
		"Time from Put to the access unit leaving the encoder.", labelsSL, nil)
	descState = prometheus.NewDesc("skyline_state",
		"1 for the SkyLine's current state, 0 for the others.", []string{"skyline", "state"}, nil)
	descUp = prometheus.NewDesc("skyline_destination_up",
		"1 while the destination takes the stream, 0 while it is down or not streaming.", labelsDest, nil)
	descWritten = prometheus.NewDesc("skyline_destination_written_total",
		"Access units the destination took.", labelsDest, nil)
	descLost = prometheus.NewDesc("skyline_destination_lost_total",
		"Access units the destination missed (overflow, down, waiting for a keyframe).", labelsDest, nil)
	descAcks = prometheus.NewDesc("skyline_destination_acks_total",
		"Acknowledgements the destination reported (KVS fragments).", labelsDest, nil)
	descErrors = prometheus.NewDesc("skyline_destination_errors_total",
		"Errors the destination reported: kind=error (it went on), kind=down (it failed and is retried).",
		[]string{"skyline", "destination", "kind"}, nil)
	descViewers = prometheus.NewDesc("skyline_rtsp_viewers",
		"RTSP viewers playing the path now.", []string{"skyline", "path"}, nil)
)

var states = []skyline.State{skyline.StateStopped, skyline.StateStartWarmup, skyline.StateWarmup,
	skyline.StateStreaming, skyline.StateError}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAccepted, descDropped, descEncoded, descBytes, descBitrate,
		descLatency, descState, descUp, descWritten, descLost, descAcks, descErrors, descViewers} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	seen := map[eventKey]bool{}
	for _, s := range c.sources {
		st := s.sl.Stats()
		counter := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
		}
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
		counter(descAccepted, st.Accepted, s.name)
		counter(descDropped, st.Dropped, s.name)
		counter(descEncoded, st.Encoded, s.name)
		counter(descBytes, st.EncodedBytes, s.name)
		if s.prevAt.IsZero() {
			s.prevAt, s.prevBytes = now, st.EncodedBytes
		} else if dt := now.Sub(s.prevAt); dt >= bitrateWindow {
			s.bitrate = float64(st.EncodedBytes-s.prevBytes) * 8 / dt.Seconds()
			s.prevAt, s.prevBytes = now, st.EncodedBytes
		}
		gauge(descBitrate, s.bitrate, s.name)
		ch <- latencyHistogram(st.EncodeLatency, s.name)
		cur := s.sl.State()
		for _, x := range states {
			gauge(descState, boolValue(x == cur), s.name, x.String())
		}
		for _, d := range st.Destinations {
			gauge(descUp, boolValue(d.Up), s.name, d.Name)
			counter(descWritten, d.Written, s.name, d.Name)
			counter(descLost, d.Lost, s.name, d.Name)
			k := eventKey{s.name, d.Name}
			seen[k] = true
			c.events.write(ch, k)
		}
		for _, v := range s.streams {
			gauge(descViewers, float64(v.Viewers()), s.name, v.Path())
		}
	}
	for k := range c.events {
		if !seen[k] { // events of a destination Stats does not list, or of a removed SkyLine
			c.events.write(ch, k)
		}
	}
}

type eventMap map[eventKey]*eventCounts

// write sends the event counters of k (zeros when none were counted).
func (m eventMap) write(ch chan<- prometheus.Metric, k eventKey) {
	var n eventCounts
	if p := m[k]; p != nil {
		n = *p
	}
	ch <- prometheus.MustNewConstMetric(descAcks, prometheus.CounterValue, float64(n.acks), k.skyline, k.destination)
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(n.errors), k.skyline, k.destination, "error")
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(n.downs), k.skyline, k.destination, "down")
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// latencyHistogram converts the core's histogram (per-bucket counts) to
// Prometheus's (cumulative, in seconds).
func latencyHistogram(h skyline.LatencyHistogram, name string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, b := range h.Bounds {
		cum += h.Counts[i]
		buckets[b.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(descLatency, h.Count, h.Sum.Seconds(), buckets, name)
}
