package main

import (
	"fmt"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/metrics"
	"github.com/skyline-go/skyline/rtsp"
)

// serveMetrics is --metrics ADDR of serve: Prometheus metrics at
// http://ADDR/metrics. A nil *serveMetrics (no --metrics) does nothing.
type serveMetrics struct {
	addr string
	c    *metrics.Collector
	srv  *metrics.Server
}

const metricsName = "skyline"

func newServeMetrics(addr string) *serveMetrics {
	if addr == "" {
		return nil
	}
	return &serveMetrics{addr: addr, c: metrics.New()}
}

// onEvent counts acknowledgements and errors, then calls next.
func (m *serveMetrics) onEvent(next func(skyline.Event)) func(skyline.Event) {
	if m == nil {
		return next
	}
	return m.c.OnEvent(metricsName, next)
}

// start collects sl (and the viewers of stream, when serving RTSP) and
// starts the listener.
func (m *serveMetrics) start(sl *skyline.SkyLine, stream *rtsp.Stream) error {
	if m == nil {
		return nil
	}
	var streams []metrics.ViewerCounter
	if stream != nil {
		streams = append(streams, stream)
	}
	if err := m.c.Add(metricsName, sl, streams...); err != nil {
		return err
	}
	srv, err := metrics.Serve(m.addr, m.c)
	if err != nil {
		return fmt.Errorf("--metrics %s: %w", m.addr, err)
	}
	m.srv = srv
	fmt.Printf("metrics: %s\n", srv.URL())
	return nil
}

func (m *serveMetrics) close() {
	if m != nil && m.srv != nil {
		_ = m.srv.Close()
	}
}
