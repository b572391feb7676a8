package gst

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func rss(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func TestMain(m *testing.M) {
	if err := Init(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

func TestParseErrors(t *testing.T) {
	for _, desc := range []string{"nosuchelement ! fakesink", "fakesrc nosuchprop=1 ! fakesink", "fakesrc ! ! fakesink"} {
		if p, err := ParseLaunch(desc); err == nil {
			p.Close()
			t.Errorf("%q parsed", desc)
		}
	}
}

func TestSetProperty(t *testing.T) {
	p, err := ParseLaunch("x264enc name=enc ! fakesink")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	enc := p.ByName("enc")
	defer enc.Unref()
	if enc.FactoryName() != "x264enc" {
		t.Fatal(enc.FactoryName())
	}
	for _, kv := range [][2]string{{"bitrate", "800"}, {"tune", "zerolatency"}, {"speed-preset", "ultrafast"}} {
		if err := enc.SetProperty(kv[0], kv[1]); err != nil {
			t.Errorf("%v: %v", kv, err)
		}
	}
	for _, kv := range [][2]string{{"nope", "1"}, {"bitrate", "x"}, {"bframes", "1000"}, {"speed-preset", "ludicrous"}} {
		if err := enc.SetProperty(kv[0], kv[1]); err == nil {
			t.Errorf("%v accepted", kv)
		}
	}
}

// TestOwnershipNoLeak builds, runs and frees many pipelines, pools, buffers,
// samples and bus messages: every C allocation is released by its owner,
// so the RSS stays flat.
func TestOwnershipNoLeak(t *testing.T) {
	cycle := func() {
		p, err := ParseLaunch("appsrc name=src ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! appsink name=out sync=false")
		if err != nil {
			t.Fatal(err)
		}
		src := AsAppSrc(p.ByName("src"))
		sink := AsAppSink(p.ByName("out"))
		if err := src.Configure("video/x-raw,format=I420,width=320,height=240,framerate=30/1", 4, false); err != nil {
			t.Fatal(err)
		}
		c := NewCounter()
		src.CountBuffers("src", c)
		pool, err := NewPool(320*240*3/2, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.SetState(StatePlaying); err != nil {
			t.Fatal(err)
		}
		var b Buffer
		for i := 0; i < 5; i++ {
			if err := pool.Acquire(&b); err != nil {
				t.Fatal(err)
			}
			mem := b.MapWrite()
			mem[0] = byte(i)
			b.Unmap()
			b.SetTimes(time.Duration(i)*33*time.Millisecond, 33*time.Millisecond)
			if err := src.Push(&b); err != nil {
				t.Fatal(err)
			}
			smp, _ := sink.Pull(5 * time.Second)
			if smp == nil || len(smp.Data) != 320*240*3/2 || smp.Data[0] != byte(i) || smp.Width != 320 {
				t.Fatalf("sample %d: %+v", i, smp)
			}
		}
		src.EndOfStream()
		for {
			m, ok := p.PopMessage(5 * time.Second)
			if !ok {
				t.Fatal("no EOS")
			}
			if m.Kind == MsgEOS {
				break
			}
		}
		if c.Load() != 5 {
			t.Fatalf("counter %d", c.Load())
		}
		sink.Unref()
		src.Unref()
		p.Close()
		pool.Close()
		c.Free()
	}
	for i := 0; i < 20; i++ {
		cycle()
	}
	before := rss(t)
	for i := 0; i < 300; i++ {
		cycle()
	}
	growth := rss(t) - before
	t.Logf("RSS growth over 300 cycles: %d KB", growth>>10)
	if growth > 8<<20 {
		t.Fatalf("RSS grew %d MB over 300 pipeline cycles: something is not freed", growth>>20)
	}
}
