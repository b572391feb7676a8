package skyline_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/kvs"
	"github.com/skyline-go/skyline/kvs/kvslocal"
	"github.com/skyline-go/skyline/metrics"
	"github.com/skyline-go/skyline/rtsp"
)

// The secrets of the table. Each is distinctive, and the ones with a
// character that breaks a URL ('/', '#', '?', '%', ' ') are checked part by
// part as well (a malformed URL must not show half a password).
const (
	secRTMPKey     = "RtmpStreamKey4417"
	secRTMPSPass   = "RtmpsPassword8830"
	secRTMPSKey    = "RtmpsStreamKey2291"
	secRTSPPass    = "RtspPassword5512"
	secRTSPSPass   = "RtspsPassword6673"
	secSRTPass     = "SrtPassphrase9034"
	secGstPass     = "GstPassphrase1187"
	secGstKey      = "GstLocationKey3390"
	secKVSSecret   = "KvsSecretAccessKey7741"
	secKVSToken    = "KvsSessionToken6652"
	secSlashPass   = "SlashPartOne/SlashPartTwo"
	secHashPass    = "HashPartOne#HashPartTwo"
	secQueryPass   = "QueryPartOne?QueryPartTwo"
	secPercentPass = "PercentPartOne%zzPercentPartTwo"
	secSpaceKey    = "SpacePartOne SpacePartTwo"
	secReceiver    = "ReceiverApiToken5528"
)

var allSecrets = []string{secRTMPKey, secRTMPSPass, secRTMPSKey, secRTSPPass, secRTSPSPass, secSRTPass, secGstPass,
	secGstKey, secKVSSecret, secKVSToken, secReceiver, secSlashPass, secHashPass, secQueryPass, secPercentPass, secSpaceKey}

// leaks returns every secret (or distinctive part of one, or its escaped
// form) that occurs in text.
func leaks(text string) []string {
	var found []string
	for _, s := range allSecrets {
		forms := []string{s, url.QueryEscape(s), url.PathEscape(s)}
		forms = append(forms, strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune("/#?% ", r) })...)
		for _, f := range forms {
			if len(f) >= 8 && strings.Contains(text, f) {
				found = append(found, f)
				break
			}
		}
	}
	return found
}

func noLeak(t *testing.T, what, text string) {
	t.Helper()
	if l := leaks(text); len(l) > 0 {
		t.Errorf("%s shows secret(s) %q:\n%s", what, l, text)
	}
}

// TestSecretType: every way of printing a Secret prints the mask.
func TestSecretType(t *testing.T) {
	s := skyline.NewSecret(secRTMPKey)
	type holder struct {
		Key skyline.Secret
		P   *skyline.Secret
	}
	h := holder{Key: s, P: &s}
	var out bytes.Buffer
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T %v"} {
		fmt.Fprintf(&out, f+"\n", s)
		fmt.Fprintf(&out, f+"\n", h)
		fmt.Fprintf(&out, f+"\n", []skyline.Secret{s})
	}
	fmt.Fprintln(&out, s, h, map[string]skyline.Secret{"k": s})
	j, _ := json.Marshal(h)
	out.Write(j)
	for _, hd := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		slog.New(hd).Info("secret", "key", s, "holder", h, slog.Any("ptr", &s), slog.Group("g", "k", s))
	}
	noLeak(t, "printing a Secret", out.String())
	if !strings.Contains(out.String(), skyline.Masked) {
		t.Fatalf("no mask printed:\n%s", out.String())
	}
	if s.Reveal() != secRTMPKey || skyline.NewSecret("").String() != "" {
		t.Fatal("Reveal or the empty secret")
	}
	var in struct{ Key, None skyline.Secret }
	if err := json.Unmarshal([]byte(`{"Key":"`+secRTMPKey+`","None":null}`), &in); err != nil || in.Key.Reveal() != secRTMPKey || !in.None.IsZero() {
		t.Fatalf("UnmarshalJSON: %v %v", in, err)
	}
	err := json.Unmarshal([]byte(`{"Key":["`+secRTMPKey+`"]}`), &in)
	if err == nil {
		t.Fatal("UnmarshalJSON took an array")
	}
	noLeak(t, "UnmarshalJSON's error", err.Error())
}

// TestRedactURL keeps the parts of a URL that help (scheme, host, port,
// path) and hides the secrets, for well-formed and malformed URLs alike.
func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"rtmp://a.rtmp.youtube.com/live2/" + secRTMPKey, "rtmp://a.rtmp.youtube.com/live2/****"},
		{"rtmp://host:notaport/app/" + secRTMPKey, "rtmp://host:notaport/app/****"},
		{"rtmps://bob:" + secRTMPSPass + "@host:443/app/" + secRTMPSKey, "rtmps://bob:****@host:443/app/****"},
		{"rtsp://bob:" + secRTSPPass + "@host:8554/cam", "rtsp://bob:****@host:8554/cam"},
		{"rtsp://bob:" + secSlashPass + "@host:8554/cam", "rtsp://bob:****@host:8554/cam"},
		{"rtsp://bob:" + secHashPass + "@host:8554/cam", "rtsp://bob:****@host:8554/cam"},
		{"rtsp://bob:" + secQueryPass + "@host:8554/cam", "rtsp://bob:****@host:8554/cam"},
		{"srt://host:9000?mode=caller&passphrase=" + secSRTPass + "&latency=200", "srt://host:9000?mode=caller&passphrase=****&latency=200"},
		{"srt://host:9000?passphrase=" + secPercentPass, "srt://host:9000?passphrase=****"},
		{"kvs://us-east-1/demo?endpoint=http://bob:" + secKVSSecret + "@127.0.0.1:1", "kvs://us-east-1/demo?endpoint=http://bob:****@127.0.0.1:1"},
		{"file:rec.mp4", "file:rec.mp4"},
		{"kvs://us-east-1/demo?token=" + secKVSToken + "&create=1", "kvs://us-east-1/demo?token=****&create=1"},
	} {
		if got := skyline.RedactURL(c.in); got != c.want {
			t.Errorf("RedactURL(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
		if got := skyline.Redact(c.in); got != c.want { // the same URL in free text
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
	for name, want := range map[string]bool{"password": true, "passphrase": true, "user-pw": true, "proxy-pw": true,
		"access-key": true, "secret-key": true, "session-token": true, "X-Amz-Security-Token": true, "X-Amz-Signature": true,
		"streamid": true, "key": true, "apikey": true, "stream_key": true, "extra-headers": true, "auth": true,
		"key-int-max": false, "keyframe-interval": false, "location": false, "uri": false, "user-id": false,
		"stream-name": false, "latency": false, "mode": false} {
		if skyline.IsSecretName(name) != want {
			t.Errorf("IsSecretName(%q) = %v", name, !want)
		}
	}
	launch := `flvmux ! rtmp2sink location="rtmp://h/app/` + secGstKey + `" ! x264enc key-int-max=60 ! srtsink passphrase=` + secGstPass +
		` ! kvssink secret-key="` + secKVSSecret + `" session-token=` + secKVSToken + " user-pw='" + secRTSPPass + "'"
	launch += ` ! rtmp2sink location="rtmps://bob:` + secSpaceKey + `@h/app/` + secRTMPSKey + `"`
	got := skyline.RedactLaunch(launch)
	noLeak(t, "RedactLaunch", got)
	for _, s := range skyline.LaunchSecrets(launch) {
		launch = strings.ReplaceAll(launch, s.Reveal(), "")
	}
	noLeak(t, "the text without LaunchSecrets", launch)
	if !strings.Contains(got, "key-int-max=60") || !strings.Contains(got, `location="rtmp://h/app/****"`) {
		t.Errorf("RedactLaunch hides too much or too little: %s", got)
	}
}

// secretKind is one destination kind of the secret table: start-up
// variants that must fail without showing a secret, and a destination that
// takes the stream but fails at run time (nobody listens, or the
// credentials are refused).
type secretKind struct {
	name string
	// startup variants fail (their error is scanned) or, when the URL
	// parser accepts them, give a destination whose Name is scanned.
	startup []func() (skyline.Destination, error)
	runtime func(t *testing.T, log *slog.Logger) skyline.Destination
}

func urlVariants(scheme, user, secret, rest string) []string {
	ui := ""
	if user != "" {
		ui = user + ":" + secret + "@"
	}
	return []string{
		scheme + "://" + ui + "host:notaport" + rest,
		scheme + "://" + ui + "ho st:1" + rest,
		scheme + "://" + ui + "host:1" + rest + "\n",
		scheme + "://" + ui + "host:1" + rest + "%zz",
		scheme + ":///" + ui + rest,
		scheme + "://" + ui + ":1" + rest,
	}
}

func secretKinds(closedTCP, closedUDP int) []secretKind {
	push := func(urls ...string) (out []func() (skyline.Destination, error)) {
		for _, u := range urls {
			out = append(out, func() (skyline.Destination, error) { return skyline.NewPush(u) })
		}
		return out
	}
	publisher := func(urls ...string) (out []func() (skyline.Destination, error)) {
		for _, u := range urls {
			out = append(out, func() (skyline.Destination, error) { return rtsp.NewPublisher(rtsp.PublisherConfig{URL: u}) })
		}
		return out
	}
	gstSink := func(texts ...string) (out []func() (skyline.Destination, error)) {
		for _, s := range texts {
			out = append(out, func() (skyline.Destination, error) { return skyline.NewGstSink(s) })
		}
		return out
	}
	kvsURL := func(urls ...string) (out []func() (skyline.Destination, error)) {
		for _, u := range urls {
			out = append(out, func() (skyline.Destination, error) {
				cfg, err := kvs.ParseURL(u)
				if err != nil {
					return nil, err
				}
				return kvs.New(cfg)
			})
		}
		return out
	}
	rtmpVariants := append(urlVariants("rtmp", "", "", "/app/"+secRTMPKey),
		"rtmp://host:1/app/"+secSpaceKey, "rtmpx://host:1/app/"+secRTMPKey, "rtmp:///app/"+secRTMPKey)
	rtmpsVariants := append(urlVariants("rtmps", "bob", secRTMPSPass, "/app/"+secRTMPSKey),
		"rtmps://bob:"+secSlashPass+"@host/app/"+secRTMPSKey, "rtmps://bob:"+secPercentPass+"@host/app/"+secRTMPSKey,
		"rtmps://bob:"+secHashPass+"@host:1/app/"+secRTMPSKey, "rtmps://bob:"+secQueryPass+"@host:1/app/"+secRTMPSKey)
	rtspVariants := append(urlVariants("rtsp", "bob", secRTSPPass, "/cam"),
		"rtsp://bob:"+secSlashPass+"@host/cam", "rtsp://bob:"+secPercentPass+"@host/cam", "rtsp://bob:"+secHashPass+"@host:1/cam",
		"rtsp://bob:"+secQueryPass+"@host:1/cam", "http://bob:"+secRTSPPass+"@host/cam", "rtsp://bob:"+secRTSPPass+"@/cam")
	srtVariants := append(urlVariants("srt", "", "", "?passphrase="+secSRTPass),
		"srt://host:1?passphrase="+secPercentPass, "srt://host:1?streamid="+secSpaceKey, "srtx://host:1?passphrase="+secSRTPass)
	return []secretKind{
		{name: "rtmp key", startup: push(rtmpVariants...), runtime: func(t *testing.T, log *slog.Logger) skyline.Destination {
			return must(skyline.NewPush(fmt.Sprintf("rtmp://127.0.0.1:%d/app/%s", closedTCP, secRTMPKey)))(t)
		}},
		{name: "rtmps password and key", startup: push(rtmpsVariants...), runtime: func(t *testing.T, log *slog.Logger) skyline.Destination {
			return must(skyline.NewPush(fmt.Sprintf("rtmps://bob:%s@127.0.0.1:%d/app/%s", secRTMPSPass, closedTCP, secRTMPSKey)))(t)
		}},
		{name: "rtsp password", startup: publisher(rtspVariants...), runtime: func(t *testing.T, log *slog.Logger) skyline.Destination {
			return must(rtsp.NewPublisher(rtsp.PublisherConfig{URL: fmt.Sprintf("rtsp://bob:%s@127.0.0.1:%d/cam", secRTSPPass, closedTCP), Logger: log}))(t)
		}},
		{name: "rtsps password", startup: publisher(urlVariants("rtsps", "bob", secRTSPSPass, "/cam")...), runtime: func(t *testing.T, log *slog.Logger) skyline.Destination {
			return must(rtsp.NewPublisher(rtsp.PublisherConfig{URL: fmt.Sprintf("rtsps://bob:%s@127.0.0.1:%d/cam", secRTSPSPass, closedTCP), Logger: log}))(t)
		}},
		{name: "srt passphrase", startup: push(srtVariants...), runtime: func(t *testing.T, log *slog.Logger) skyline.Destination {
			return must(skyline.NewPush(fmt.Sprintf("srt://127.0.0.1:%d?passphrase=%s&connect_timeout=500", closedUDP, secSRTPass)))(t)
		}},
		{name: "gst text with credentials", startup: gstSink(
			"mpegtsmux ! srtsink uri=srt://127.0.0.1:1 passphrase="+secGstPass+" no-such-property=1",
			"mpegtsmux ! no-such-sink passphrase="+secGstPass,
			"flvmux ! rtmp2sink location=rtmp://127.0.0.1:1/app/"+secGstKey+" ! !",
			`flvmux ! rtmp2sink location="rtmp://127.0.0.1:1/app/`+secGstKey+`" bogus=1`,
			"kvssink stream-name=x access-key=AKID secret-key="+secKVSSecret+" session-token="+secKVSToken,
		), runtime: func(t *testing.T, log *slog.Logger) skyline.Destination {
			return must(skyline.NewGstSink(fmt.Sprintf(`flvmux streamable=true ! rtmp2sink location="rtmp://127.0.0.1:%d/app/%s"`, closedTCP, secGstKey)))(t)
		}},
		{name: "gst srtsink passphrase", runtime: func(t *testing.T, log *slog.Logger) skyline.Destination {
			return must(skyline.NewGstSink(fmt.Sprintf("mpegtsmux ! srtsink uri=srt://127.0.0.1:%d?connect_timeout=500 passphrase=%s wait-for-connection=false", closedUDP, secGstPass)))(t)
		}},
		{name: "receiver whose errors quote its secret", runtime: func(*testing.T, *slog.Logger) skyline.Destination {
			return &chattyReceiver{}
		}},
		{name: "kvs secret key and session token", startup: append(kvsURL(
			"kvs://us-east-1/demo?secret-key="+secKVSSecret,
			"kvs://us-east-1/demo?session-token="+secKVSToken+"&bogus=1",
			"kvs://us-east-1/demo?endpoint=http://bob:"+secKVSSecret+"@host:x",
			"kvs://us-east-1:bad/demo?token="+secKVSToken,
			"kvs://us-east-1/demo?endpoint=http://bob:"+secKVSSecret+"@host:1&create=maybe",
		), func() (skyline.Destination, error) {
			return kvs.New(kvs.Config{Region: "us-east-1", Stream: "demo", Backend: kvs.BackendKVSSink,
				Credentials: credentials.NewStaticCredentialsProvider("AKIDSECRETTABLE", secKVSSecret, secKVSToken),
				KVSSink:     kvs.SinkOptions{Credentials: kvs.CredentialsInline}})
		}), runtime: func(t *testing.T, log *slog.Logger) skyline.Destination {
			// kvslocal accepts the access key with another secret: every
			// request is refused (signature mismatch), logged and retried.
			local, err := kvslocal.New(kvslocal.Config{DataDir: t.TempDir(), AccessKey: "AKIDSECRETTABLE", SecretKey: "another-secret",
				Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			if err := local.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = local.Close() })
			return must(kvs.New(kvs.Config{Region: "us-east-1", Stream: "demo", CreateStream: true, Endpoint: local.URL(),
				Credentials: credentials.NewStaticCredentialsProvider("AKIDSECRETTABLE", secKVSSecret, secKVSToken),
				MinBackoff:  100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, CloseTimeout: time.Second, Logger: log}))(t)
		}},
	}
}

// chattyReceiver is a Go destination (a SecretHolder) whose errors and
// events quote its secret, as a careless client library's might: the
// SkyLine masks them.
type chattyReceiver struct{ info skyline.StreamInfo }

func (r *chattyReceiver) Name() string { return "chatty" }
func (r *chattyReceiver) Secrets() []skyline.Secret {
	return []skyline.Secret{skyline.NewSecret(secReceiver)}
}
func (r *chattyReceiver) Open(info skyline.StreamInfo) error { r.info = info; return nil }
func (r *chattyReceiver) WriteAccessUnit(*skyline.AccessUnit) error {
	r.info.Emit(skyline.Event{Kind: skyline.EventError, Err: errors.New("token " + secReceiver + " refused"),
		Detail: "Authorization: Bearer " + secReceiver})
	return fmt.Errorf("POST https://api.example/v1?token=%s: 401", secReceiver)
}
func (r *chattyReceiver) Close() {}

func must[D skyline.Destination](d D, err error) func(t *testing.T) skyline.Destination {
	return func(t *testing.T) skyline.Destination {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
}

// TestSecretTable is the secret table of the library: for each destination
// kind, malformed start-up variants, then a destination that fails at run
// time, with logs at debug level, events, metrics and Stats (what a status
// line shows) run through the scanner: no secret, whole or in part.
func TestSecretTable(t *testing.T) {
	closedTCP, closedUDP := freeTCP(t), freeUDP(t)
	for _, k := range secretKinds(closedTCP, closedUDP) {
		t.Run(strings.ReplaceAll(k.name, " ", "_"), func(t *testing.T) {
			for i, f := range k.startup {
				d, err := f()
				if err == nil {
					noLeak(t, fmt.Sprintf("start-up variant %d (accepted)", i), fmt.Sprintf("%s %+v", d.Name(), d))
					continue
				}
				if !errors.Is(err, skyline.ErrInvalidConfig) && !errors.Is(err, skyline.ErrMissingElement) && !errors.Is(err, rtsp.ErrInvalidConfig) {
					t.Errorf("start-up variant %d: %v does not wrap ErrInvalidConfig", i, err)
				}
				noLeak(t, fmt.Sprintf("start-up error %d", i), fmt.Sprintf("%v | %+v | %#v", err, err, err))
			}
			if k.runtime == nil {
				return
			}
			var logs syncBuffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			d := k.runtime(t, log)
			events := newEventLog()
			col := metrics.New()
			sl := newTestSkyLine(t, newClock(30), skyline.Config{Logger: log, OnEvent: col.OnEvent("sl", events.add),
				QueueSize: 64, RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond, DrainTimeout: 2 * time.Second}, d)
			if err := col.Add("sl", sl); err != nil {
				t.Fatal(err)
			}
			srv, err := metrics.Serve("127.0.0.1:0", col)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			if err := sl.Start(skyline.Params{FPS: 30, Width: 160, Height: 120}); err != nil {
				t.Fatal(err)
			}
			failed := func(e skyline.Event) bool {
				return e.Kind == skyline.EventDestinationDown || e.Kind == skyline.EventError && e.Destination != ""
			}
			done := make(chan struct{})
			go func() { // frames until the destination has failed
				defer close(done)
				for i := 0; i < 30*20; i++ {
					n := 0
					for _, e := range events.all() {
						if failed(e) {
							n++
						}
					}
					if n >= 1 {
						return
					}
					if ok, _ := sl.Put(bgr(160, 120, i)); !ok {
						time.Sleep(5 * time.Millisecond)
					}
					time.Sleep(time.Second / 60)
				}
			}()
			<-done
			events.wait(t, "failure", time.Second, failed)
			var scraped string
			if res, err := http.Get(srv.URL()); err == nil {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				scraped = string(b)
			} else {
				t.Fatal(err)
			}
			status := fmt.Sprintf("%+v", sl.Stats())
			stopErr := sl.Stop()
			_ = sl.Close()
			var evText strings.Builder
			for _, e := range events.all() {
				fmt.Fprintf(&evText, "%+v | %v\n", e, e.Err)
			}
			if !strings.Contains(scraped, "skyline_destination_up") || !strings.Contains(status, d.Name()) {
				t.Fatalf("no destination in the metrics or Stats:\n%s\n%s", scraped, status)
			}
			noLeak(t, "Name", d.Name())
			noLeak(t, "the logs", logs.String())
			noLeak(t, "the events", evText.String())
			noLeak(t, "the metrics", scraped)
			noLeak(t, "Stats", status)
			noLeak(t, "Stop's error", fmt.Sprint(stopErr))
			noLeak(t, "the destination printed with %+v", fmt.Sprintf("%+v %#v", d, d))
			t.Logf("%s: %d log bytes, %d events; e.g. %s", d.Name(), len(logs.String()), len(events.all()), firstFailure(events.all(), failed))
		})
	}
}

func firstFailure(evs []skyline.Event, ok func(skyline.Event) bool) string {
	for _, e := range evs {
		if ok(e) {
			return fmt.Sprint(e.Err)
		}
	}
	return ""
}
