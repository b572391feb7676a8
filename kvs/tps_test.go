package kvs_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/skyline-go/skyline/kvs"
	"github.com/skyline-go/skyline/kvs/kvslocal"
)

// holdPutMedia opens a PutMedia connection to a stream and keeps it open
// (another producer on the same stream) until the returned func is called.
func holdPutMedia(t *testing.T, srv *kvslocal.Server, stream string) func() {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", srv.URL()+"/putMedia", pr)
	req.Header.Set("x-amzn-stream-name", stream)
	req.Header.Set("x-amzn-fragment-timecode-type", "ABSOLUTE")
	req.Header.Set("x-amzn-producer-start-timestamp", "1700000000.000")
	creds := aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}
	const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, emptySHA256, "kinesisvideo", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	respc := make(chan *http.Response, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			respc <- nil
			return
		}
		respc <- resp
	}()
	resp := <-respc
	if resp == nil || resp.StatusCode != 200 {
		t.Fatalf("holding connection: %v", resp)
	}
	return func() {
		_ = pw.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
	}
}

// slowPath is a TCP proxy in front of the local endpoint that delays every
// third connection by 100 ms before it reaches the endpoint: network
// jitter, which brings requests sent at even intervals closer together on
// arrival.
func slowPath(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func(c net.Conn, slow bool) {
				defer wg.Done()
				defer c.Close()
				if slow {
					time.Sleep(100 * time.Millisecond)
				}
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{})
				go func() { _, _ = io.Copy(c, u); c.Close(); close(done) }()
				_, _ = io.Copy(u, c)
				u.Close()
				<-done
			}(c, i%3 == 0)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// A client whose PutMedia requests are refused over and over (another
// connection holds the stream: ConnectionLimitExceededException) never
// makes more than 5 PutMedia requests per second, whatever its backoff
// and the network's jitter:
// the endpoint, which counts refused requests too as AWS does, never
// answers ClientLimitExceededException. Once the stream is free, every
// frame arrives.
func TestNativePutMediaRateUnderRefusals(t *testing.T) {
	const w, h, fps, n = 160, 120, 15, 90
	srv := startLocal(t, kvslocal.Config{})
	ev := newEvents()
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	cfg := nativeConfig(srv, clock, ev)
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, time.Millisecond
	dst, err := kvs.NewNative(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetDataEndpoint(slowPath(t, srv.Addr()))
	release := holdPutMedia(t, srv, "cam1") // creates the stream too
	defer func() { release() }()
	s := newStream(t, dst, w, h, fps, clock, n)
	s.put(n / 2)
	ev.wait(t, "20 refused connections", time.Minute, func([]kvs.Event) bool {
		return srv.Refused("cam1", "ConnectionLimitExceededException") >= 20
	})
	if r := srv.Refused("cam1", "ClientLimitExceededException"); r != 0 {
		t.Fatalf("%d PutMedia requests refused for exceeding 5 per second (%d refused for the held connection)",
			r, srv.Refused("cam1", "ConnectionLimitExceededException"))
	}
	release()
	release = func() {}
	s.put(n)
	if err := s.sl.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := dst.Stats(); st.FragmentsDropped != 0 || st.Persisted != st.Fragments {
		t.Fatalf("stats %+v", st)
	}
}
