package kvs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/kvs"
)

// tempProvider issues temporary credentials number n = 1, 2, ... that
// expire ttl after the clock's time of issue.
type tempProvider struct {
	mu     sync.Mutex
	clock  *testClock
	ttl    time.Duration
	issued []aws.Credentials
}

func (p *tempProvider) Retrieve(context.Context) (aws.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.issued) + 1
	c := aws.Credentials{
		AccessKeyID:     fmt.Sprintf("ASIATEMP%012d", n),
		SecretAccessKey: fmt.Sprintf("tempsecret/%d/abcdefghijklmnopqrstuvwxyz", n),
		SessionToken:    fmt.Sprintf("FwoGZXIvYXdzEtemptoken%dZZZ", n),
		CanExpire:       true,
		Expires:         p.clock.Now().Add(p.ttl),
		Source:          "test",
	}
	p.issued = append(p.issued, c)
	return c, nil
}

func (p *tempProvider) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.issued)
}

func (p *tempProvider) lookup(akid string) (aws.Credentials, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.issued {
		if c.AccessKeyID == akid {
			return c, true
		}
	}
	return aws.Credentials{}, false
}

func sinkConfig(t *testing.T, h kvs.CredentialHandler, creds aws.CredentialsProvider, clock *testClock) kvs.Config {
	return kvs.Config{Region: "eu-west-1", Stream: "cam-sink", Backend: kvs.BackendKVSSink, Credentials: creds, Clock: clock,
		KVSSink: kvs.SinkOptions{Credentials: h, CredentialPath: filepath.Join(t.TempDir(), "kvs.cred")}}
}

func readFile(t *testing.T, path string) (string, os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), st.Mode().Perm()
}

func TestFileCredentialsTemporary(t *testing.T) {
	clock := newTestClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	p := &tempProvider{clock: clock, ttl: 15 * time.Minute}
	ev := newEvents()
	var logs logBuffer
	cfg := sinkConfig(t, kvs.CredentialsFile, p, clock)
	cfg.OnEvent = ev.add
	cfg.Logger = logs.logger()
	defer func() {
		var secrets []string
		for _, c := range p.issued {
			secrets = append(secrets, c.SecretAccessKey, c.SessionToken)
		}
		noSecrets(t, logs.String(), ev.snapshot(), secrets...)
	}()
	s, err := kvs.NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Issued at 12:00, expires 12:15: refresh planned 12:13, file expiry 12:14.
	got, mode := readFile(t, s.CredentialPath())
	want := "CREDENTIALS\tASIATEMP000000000001\t2026-03-01T12:14:00Z\ttempsecret/1/abcdefghijklmnopqrstuvwxyz\tFwoGZXIvYXdzEtemptoken1ZZZ\n"
	if got != want || mode != 0o600 {
		t.Fatalf("file %q mode %v\nwant %q mode 0600", got, mode, want)
	}
	if nr := s.NextRefresh(); !nr.Equal(time.Date(2026, 3, 1, 12, 13, 0, 0, time.UTC)) {
		t.Fatalf("next refresh %v, want 12:13:00", nr)
	}
	// Every frame before the planned refresh: nothing happens.
	for ts := clock.Now(); ts.Before(s.NextRefresh()); ts = ts.Add(10 * time.Second) {
		s.BeforePut(ts)
	}
	s.Wait()
	if p.count() != 1 {
		t.Fatalf("%d retrievals before the refresh time, want 1", p.count())
	}
	// At 12:13 the frame triggers the refresh.
	clock.Set(time.Date(2026, 3, 1, 12, 13, 0, 0, time.UTC))
	s.BeforePut(clock.Now())
	s.Wait()
	ev.wait(t, "credentials refreshed twice", 5*time.Second, func(e []kvs.Event) bool { return count(e, kvs.EventCredentialsRefreshed) >= 2 })
	got, mode = readFile(t, s.CredentialPath())
	want = "CREDENTIALS\tASIATEMP000000000002\t2026-03-01T12:27:00Z\ttempsecret/2/abcdefghijklmnopqrstuvwxyz\tFwoGZXIvYXdzEtemptoken2ZZZ\n"
	if got != want || mode != 0o600 || p.count() != 2 {
		t.Fatalf("after refresh: file %q mode %v, %d retrievals\nwant %q", got, mode, p.count(), want)
	}
	if nr := s.NextRefresh(); !nr.Equal(time.Date(2026, 3, 1, 12, 26, 0, 0, time.UTC)) {
		t.Fatalf("next refresh %v, want 12:26:00", nr)
	}
	if st := s.Stats(); st.CredentialRefreshes != 2 {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(s.Launch(), "credential-path="+s.CredentialPath()) {
		t.Fatalf("launch %q lacks the credential path", s.Launch())
	}
}

func TestFileCredentialsStatic(t *testing.T) {
	clock := newTestClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s, err := kvs.NewSink(sinkConfig(t, kvs.CredentialsFile, staticCreds(), clock))
	if err != nil {
		t.Fatal(err)
	}
	got, mode := readFile(t, s.CredentialPath())
	if want := "CREDENTIALS\t" + testAK + "\t" + testSK + "\n"; got != want || mode != 0o600 {
		t.Fatalf("file %q mode %v, want %q 0600", got, mode, want)
	}
	if !s.NextRefresh().IsZero() {
		t.Fatalf("static credentials planned a refresh at %v", s.NextRefresh())
	}
	s.BeforePut(clock.Now().Add(100 * time.Hour))
	s.Wait()
	if st := s.Stats(); st.CredentialRefreshes != 1 {
		t.Fatalf("static credentials rewritten: %+v", st)
	}
}

// A file that already exists with a wider mode is replaced by a 0600 one.
func TestFileCredentialsMode(t *testing.T) {
	clock := newTestClock(time.Now())
	cfg := sinkConfig(t, kvs.CredentialsFile, staticCreds(), clock)
	if err := os.WriteFile(cfg.KVSSink.CredentialPath, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := kvs.NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, mode := readFile(t, s.CredentialPath()); mode != 0o600 {
		t.Fatalf("mode %v", mode)
	}
}

func TestInlineRefusesTemporary(t *testing.T) {
	clock := newTestClock(time.Now())
	p := &tempProvider{clock: clock, ttl: time.Hour}
	_, err := kvs.NewSink(sinkConfig(t, kvs.CredentialsInline, p, clock))
	if err == nil || !errors.Is(err, skyline.ErrInvalidConfig) || !strings.Contains(err.Error(), "refuses temporary credentials") {
		t.Fatalf("err = %v, want a refusal of temporary credentials", err)
	}
	if strings.Contains(err.Error(), "tempsecret") || strings.Contains(err.Error(), "temptoken") || strings.Contains(err.Error(), "ASIATEMP000000000001") {
		t.Fatalf("error text carries a secret: %v", err)
	}
}

func TestInlineStatic(t *testing.T) {
	s, err := kvs.NewSink(sinkConfig(t, kvs.CredentialsInline, staticCreds(), newTestClock(time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	want := "video/x-h264,stream-format=avc,alignment=au ! kvssink name=kvssink stream-name=cam-sink aws-region=eu-west-1 " +
		"storage-size=64 framerate=30 fragment-duration=2000 restart-on-error=true allow-create-stream=false retention-period=24 access-key=" + testAK + " secret-key=" + testSK
	if got := s.Launch(); got != want {
		t.Fatalf("launch\n got %s\nwant %s", got, want)
	}
	masked := s.MaskedLaunch()
	if strings.Contains(masked, testSK) || strings.Contains(masked, testAK) || !strings.Contains(masked, "secret-key=****") {
		t.Fatalf("masked launch %s", masked)
	}
}

func TestEnvironmentHandler(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
	}
	clock := newTestClock(time.Now())
	p := &tempProvider{clock: clock, ttl: time.Hour}
	s, err := kvs.NewSink(sinkConfig(t, kvs.CredentialsEnvironment, p, clock))
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") != "ASIATEMP000000000001" || os.Getenv("AWS_SECRET_ACCESS_KEY") != "tempsecret/1/abcdefghijklmnopqrstuvwxyz" ||
		os.Getenv("AWS_SESSION_TOKEN") != "FwoGZXIvYXdzEtemptoken1ZZZ" {
		t.Fatal("credentials not exported")
	}
	if strings.Contains(s.Launch(), "credential-path") || strings.Contains(s.Launch(), "access-key") {
		t.Fatalf("environment handler launch %s", s.Launch())
	}
}

func TestSinkPipelineText(t *testing.T) {
	cfg := sinkConfig(t, kvs.CredentialsFile, staticCreds(), newTestClock(time.Now()))
	cfg.FragmentDuration = 4 * time.Second
	cfg.KVSSink.StorageSizeMB = 512
	cfg.KVSSink.Framerate = 15
	cfg.KVSSink.Properties = map[string]string{"max-latency": "0", "session-token": "x"}
	s, err := kvs.NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := "video/x-h264,stream-format=avc,alignment=au ! kvssink name=kvssink stream-name=cam-sink aws-region=eu-west-1 " +
		"storage-size=512 framerate=15 fragment-duration=4000 restart-on-error=true allow-create-stream=false retention-period=24 credential-path=" + cfg.KVSSink.CredentialPath +
		" max-latency=0 session-token=x"
	if got := s.Launch(); got != want {
		t.Fatalf("launch\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(s.MaskedLaunch(), "session-token=****") {
		t.Fatalf("masked %s", s.MaskedLaunch())
	}
	if el := s.Elements(); len(el) != 1 || el[0] != "kvssink" || !s.NeedsPluginPath() {
		t.Fatalf("elements %v", el)
	}
	var d kvs.Destination = s
	if _, ok := d.(skyline.GstDestination); !ok {
		t.Fatal("Sink is not a GstDestination")
	}
	if _, err := kvs.New(kvs.Config{Stream: "x", Backend: kvs.BackendKVSSink, KVSSink: kvs.SinkOptions{Properties: map[string]string{"a b": "c"}}}); err == nil {
		t.Fatal("bad property name accepted")
	}
}

// kvssink is not installed here: skyline.New fails with the documented
// error.
func TestSinkMissingElement(t *testing.T) {
	t.Setenv("GST_PLUGIN_PATH", t.TempDir())
	s, err := kvs.NewSink(sinkConfig(t, kvs.CredentialsFile, staticCreds(), newTestClock(time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	_, err = skyline.New(skyline.Config{NoDotEnv: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, s)
	var me *skyline.MissingElementsError
	if !errors.As(err, &me) || !errors.Is(err, skyline.ErrMissingElement) {
		t.Fatalf("err = %v, want a MissingElementsError", err)
	}
	for _, want := range []string{"kvssink", "producer SDK", "GST_PLUGIN_PATH", "native KVS backend"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(logs.String(), testSK) {
		t.Fatal("secret in logs")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []kvs.Config{
		{},
		{Stream: "a b"},
		{Stream: "ok", FragmentDuration: 20 * time.Second},
		{Stream: "ok", FragmentDuration: 500 * time.Millisecond}, // KVS's minimum fragment is 1 s
		{Stream: "ok", FragmentDuration: 999 * time.Millisecond},
		{Stream: "ok", Backend: 7},
		{Stream: "ok", MinBackoff: time.Second, MaxBackoff: time.Millisecond},
	} {
		c.Region, c.Credentials = "us-east-1", staticCreds()
		if _, err := kvs.New(c); !errors.Is(err, skyline.ErrInvalidConfig) {
			t.Errorf("%+v: err = %v", c, err)
		}
	}
}

// The per-frame refresh check of the file handler: one atomic load and a
// comparison.
func BenchmarkBeforePut(b *testing.B) {
	clock := newTestClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	p := &tempProvider{clock: clock, ttl: time.Hour}
	cfg := kvs.Config{Region: "eu-west-1", Stream: "bench", Backend: kvs.BackendKVSSink, Credentials: p, Clock: clock,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		KVSSink: kvs.SinkOptions{CredentialPath: filepath.Join(b.TempDir(), "cred")}}
	s, err := kvs.NewSink(cfg)
	if err != nil {
		b.Fatal(err)
	}
	now := clock.Now()
	b.ReportAllocs()
	for b.Loop() {
		s.BeforePut(now)
	}
}
