package kvs_test

import (
	"testing"
	"time"

	"github.com/skyline-go/skyline/kvs"
)

func TestParseURL(t *testing.T) {
	c, err := kvs.ParseURL("kvs://us-east-1/demo?create=1&fragment=4s&backend=kvssink&retry-bytes=1000&retry-duration=30s&endpoint=http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "us-east-1" || c.Stream != "demo" || !c.CreateStream || c.FragmentDuration != 4*time.Second ||
		c.Backend != kvs.BackendKVSSink || c.RetryBufferBytes != 1000 || c.RetryBufferDuration != 30*time.Second || c.Endpoint != "http://127.0.0.1:1" {
		t.Fatalf("%+v", c)
	}
	if c, err := kvs.ParseURL("kvs:///cam"); err != nil || c.Region != "" || c.Stream != "cam" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{"rtsp://x/y", "kvs://us-east-1/", "kvs://r/a/b", "kvs://r/s?backend=x", "kvs://r/s?nope=1", "kvs://r/s?fragment=x", "kvs://r/s?create=maybe"} {
		if _, err := kvs.ParseURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
