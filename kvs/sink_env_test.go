package kvs_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/skyline-go/skyline/kvs"
)

// kvssink gets CreateStream and RetentionHours (allow-create-stream,
// retention-period), and explicit credentials and region win over the
// AWS_* environment kvssink would otherwise prefer: the generated pipeline
// text and the environment show it.
func TestSinkCreateRetentionAndEnvironment(t *testing.T) {
	cases := []struct {
		name    string
		handler kvs.CredentialHandler
		create  bool
		hours   int
		envKeys string // AWS_ACCESS_KEY_ID in the environment
		wantEnv map[string]string
		unset   []string
		kept    []string
	}{
		{name: "file handler, other keys in the environment", handler: kvs.CredentialsFile, create: false, hours: 48, envKeys: "AKIDFROMENVIRONMENT1",
			unset: []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}},
		{name: "inline handler, token in the environment", handler: kvs.CredentialsInline, create: true, hours: 2, envKeys: testAK,
			unset: []string{"AWS_SESSION_TOKEN"}, kept: []string{"AWS_ACCESS_KEY_ID"}},
		{name: "file handler, the same keys in the environment", handler: kvs.CredentialsFile, create: true, hours: 24, envKeys: testAK,
			unset: []string{"AWS_SESSION_TOKEN"}, kept: []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", c.envKeys)
			sk := testSK
			if c.envKeys != testAK {
				sk = "environment/secret/000000000000000"
			}
			t.Setenv("AWS_SECRET_ACCESS_KEY", sk)
			t.Setenv("AWS_SESSION_TOKEN", "environment-session-token")
			t.Setenv("AWS_DEFAULT_REGION", "us-west-2")
			t.Setenv("CONTROL_PLANE_URI", "")
			cfg := sinkConfig(t, c.handler, credentials.NewStaticCredentialsProvider(testAK, testSK, ""), newTestClock(time.Now()))
			cfg.CreateStream, cfg.RetentionHours = c.create, c.hours
			cfg.Endpoint = "http://127.0.0.1:4566"
			s, err := kvs.NewSink(cfg)
			if err != nil {
				t.Fatal(err)
			}
			launch := s.Launch()
			for _, want := range []string{" aws-region=eu-west-1 ", " allow-create-stream=" + map[bool]string{true: "true", false: "false"}[c.create] + " ",
				" retention-period=" + map[int]string{48: "48", 2: "2", 24: "24"}[c.hours] + " "} {
				if !strings.Contains(launch+" ", want) {
					t.Errorf("launch %q lacks %q", s.MaskedLaunch(), want)
				}
			}
			if got := os.Getenv("AWS_DEFAULT_REGION"); got != "eu-west-1" {
				t.Errorf("AWS_DEFAULT_REGION %q: the configured region must win", got)
			}
			if got := os.Getenv("CONTROL_PLANE_URI"); got != "http://127.0.0.1:4566" {
				t.Errorf("CONTROL_PLANE_URI %q", got)
			}
			env := s.Environment()
			for _, k := range c.unset {
				if _, ok := os.LookupEnv(k); ok {
					t.Errorf("%s still set: kvssink would prefer it", k)
				}
				if v, ok := env[k]; !ok || v != "" {
					t.Errorf("Environment() does not report %s unset: %v", k, env)
				}
			}
			for _, k := range c.kept {
				if os.Getenv(k) == "" {
					t.Errorf("%s unset although it holds the configured credentials", k)
				}
			}
			if env["AWS_DEFAULT_REGION"] != "eu-west-1" {
				t.Errorf("Environment() %v", env)
			}
		})
	}
}

// The file handler over the SDK's credentials cache: the file is rewritten
// only when the credentials change (not every second with the same keys
// once inside the refresh window), and the expiry it declares never passes
// the credentials' own.
func TestFileCredentialsWithCache(t *testing.T) {
	start := time.Now().Add(24 * time.Hour).Truncate(time.Second)
	clock := newTestClock(start)
	p, cache := cachedTempCredentials(clock, 15*time.Minute)
	ev := newEvents()
	cfg := sinkConfig(t, kvs.CredentialsFile, cache, clock)
	cfg.OnEvent = ev.add
	s, err := kvs.NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writes := uint64(1)
	for now := start; now.Before(start.Add(50 * time.Minute)); now = now.Add(time.Second) {
		clock.Set(now)
		s.BeforePut(now)
		s.Wait()
		st := s.Stats()
		if st.CredentialRefreshes == writes {
			continue
		}
		writes = st.CredentialRefreshes
		text, _ := readFile(t, s.CredentialPath())
		f := strings.Split(strings.TrimSpace(text), "\t")
		declared, err := time.Parse("2006-01-02T15:04:05Z", f[2])
		if err != nil {
			t.Fatal(err)
		}
		p.mu.Lock()
		var real time.Time
		for _, c := range p.issued {
			if c.AccessKeyID == f[1] {
				real = c.Expires
			}
		}
		p.mu.Unlock()
		if declared.After(real) {
			t.Fatalf("at %v the file declares %s valid until %v, it expires at %v", now.Sub(start), f[1], declared, real)
		}
	}
	st := s.Stats()
	t.Logf("%d credentials issued, %d file writes, %d errors", p.count(), st.CredentialRefreshes, st.Errors)
	if p.count() < 4 || st.CredentialRefreshes != uint64(p.count()) || st.Errors != 0 {
		t.Fatalf("%d credentials issued, %d file writes: want one write per new credentials", p.count(), st.CredentialRefreshes)
	}
}

// The file handler over the SDK's credentials cache (the standard chain):
// at every second the file holds credentials whose declared expiry is
// still ahead. kvssink re-reads the file when its credentials near their
// declared expiry and refuses an expiry in the past
// (STATUS_IOT_EXPIRATION_OCCURS_IN_PAST, convertTimestampToEpoch in
// amazon-kinesis-video-streams-producer-c src/source/Common/Util.c), so a
// file that declares its credentials expired while the cache still hands
// out the same ones leaves kvssink without credentials.
func TestFileCredentialsReadableWithCache(t *testing.T) {
	start := time.Now().Add(24 * time.Hour).Truncate(time.Second)
	clock := newTestClock(start)
	p, cache := cachedTempCredentials(clock, 15*time.Minute)
	cfg := sinkConfig(t, kvs.CredentialsFile, cache, clock)
	s, err := kvs.NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for now := start; now.Before(start.Add(50 * time.Minute)); now = now.Add(time.Second) {
		clock.Set(now)
		s.BeforePut(now)
		s.Wait()
		text, _ := readFile(t, s.CredentialPath())
		f := strings.Split(strings.TrimSpace(text), "\t")
		declared, err := time.Parse("2006-01-02T15:04:05Z", f[2])
		if err != nil {
			t.Fatal(err)
		}
		if declared.Before(now) {
			t.Fatalf("at %v the file declares %s expired since %v: kvssink cannot read it (%d credentials issued)",
				now.Sub(start), f[1], now.Sub(declared), p.count())
		}
	}
	if st := s.Stats(); st.Errors != 0 || p.count() < 4 {
		t.Fatalf("stats %+v, %d credentials issued", st, p.count())
	}
}
