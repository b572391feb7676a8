package kvslocal_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/skyline-go/skyline/kvs/internal/mkv"
	"github.com/skyline-go/skyline/kvs/kvslocal"
)

// testSigV4 is SigV4 written from the documented algorithm
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html),
// independent of kvslocal's verifier and of the Go SDK signer (which never
// signs User-Agent, Transfer-Encoding, Expect or X-Amzn-Trace-Id, headers
// the AWS C producer does sign). headers are the signed headers, lower-case
// names with their values as sent; host must be among them.
func testSigV4(method, path string, headers map[string]string, payloadHash, akid, secret, region, amzDate string) string {
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var canon strings.Builder
	fmt.Fprintf(&canon, "%s\n%s\n\n", method, path)
	for _, n := range names {
		fmt.Fprintf(&canon, "%s:%s\n", n, strings.TrimSpace(headers[n]))
	}
	signed := strings.Join(names, ";")
	fmt.Fprintf(&canon, "\n%s\n%s", signed, payloadHash)
	h := sha256.Sum256([]byte(canon.String()))
	day := amzDate[:8]
	scope := day + "/" + region + "/kinesisvideo/aws4_request"
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(h[:])
	mac := func(k []byte, s string) []byte { m := hmac.New(sha256.New, k); m.Write([]byte(s)); return m.Sum(nil) }
	k := mac(mac(mac(mac([]byte("AWS4"+secret), day), region), "kinesisvideo"), "aws4_request")
	return fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", akid, scope, signed, hex.EncodeToString(mac(k, toSign)))
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// The test signer agrees with the Go SDK signer where both sign the same
// headers: it is a correct SigV4 implementation, not an echo of the
// verifier.
func TestTestSignerMatchesSDK(t *testing.T) {
	body := []byte(`{"StreamName":"x"}`)
	req, _ := http.NewRequest("POST", "http://127.0.0.1:1234/describeStream", bytes.NewReader(body))
	req.Header.Set("X-Amzn-Stream-Name", "x")
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, req, sha(body), "kinesisvideo", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	sdk := req.Header.Get("Authorization")
	signed := strings.Split(strings.Split(strings.Split(sdk, "SignedHeaders=")[1], ",")[0], ";")
	hs := map[string]string{}
	for _, h := range signed {
		switch h {
		case "host":
			hs[h] = req.URL.Host
		case "content-length":
			hs[h] = fmt.Sprint(req.ContentLength)
		default:
			hs[h] = req.Header.Get(h)
		}
	}
	mine := testSigV4("POST", "/describeStream", hs, sha(body), ak, sk, "us-east-1", at.Format("20060102T150405Z"))
	if mine != sdk {
		t.Fatalf("test signer\n %s\nSDK\n %s", mine, sdk)
	}
}

// kvssink-style requests, signed over the headers the C producer signs,
// are accepted; a header or body changed after signing is refused.
func TestSignatureTable(t *testing.T) {
	srv := start(t, false)
	host := strings.TrimPrefix(srv.URL(), "http://")
	const t0 = 1_700_000_000_000
	media := body(avcc(), []int64{t0, t0 + 40})
	ctl := []byte(`{"StreamName":"sig"}`)
	cases := []struct {
		name    string
		path    string
		body    []byte
		headers map[string]string // sent and signed (besides host, x-amz-date)
		after   func(r *http.Request)
		hash    string        // x-amz-content-sha256 header ("" none)
		age     time.Duration // signed this long ago
		want    int
		errType string
	}{
		{name: "control plane host;user-agent;x-amz-date", path: "/describeStream", body: ctl,
			headers: map[string]string{"user-agent": "AWS-SDK-KVS-CPP-CLIENT/3.4.1 GCC/12 Linux/6.1 x86_64"}, want: 200},
		{name: "control plane with content-type, expect and trace id", path: "/describeStream", body: ctl,
			headers: map[string]string{"user-agent": "AWS-SDK-KVS", "content-type": "application/json", "expect": "100-continue",
				"x-amzn-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793"}, want: 200},
		{name: "putMedia as kvssink signs it", path: "/putMedia", body: media, want: 200,
			headers: map[string]string{"user-agent": "AWS-SDK-KVS-CPP-CLIENT/3.4.1", "connection": "keep-alive", "transfer-encoding": "chunked",
				"x-amzn-stream-name": "sig", "x-amzn-fragment-timecode-type": "ABSOLUTE", "x-amzn-producer-start-timestamp": "1700000000.000",
				"x-amzn-fragment-acknowledgment-required": "1"}},
		{name: "putMedia with expect and a signed payload hash", path: "/putMedia", body: media, want: 200, hash: sha(nil),
			headers: map[string]string{"user-agent": "AWS-SDK-KVS", "x-amzn-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793", "transfer-encoding": "chunked",
				"x-amzn-stream-name": "sig", "x-amzn-fragment-timecode-type": "ABSOLUTE", "x-amzn-producer-start-timestamp": "1700000000.000",
				"x-amzn-fragment-acknowledgment-required": "1"}},
		{name: "user-agent changed after signing", path: "/describeStream", body: ctl,
			headers: map[string]string{"user-agent": "AWS-SDK-KVS"}, after: func(r *http.Request) { r.Header.Set("User-Agent", "other") },
			want: 403, errType: "InvalidSignatureException"},
		{name: "x-amzn header changed after signing", path: "/putMedia", body: media,
			headers: map[string]string{"transfer-encoding": "chunked", "x-amzn-stream-name": "sig", "x-amzn-fragment-timecode-type": "ABSOLUTE",
				"x-amzn-producer-start-timestamp": "1700000000.000"},
			after: func(r *http.Request) { r.Header.Set("x-amzn-producer-start-timestamp", "1700000001.000") },
			want:  403, errType: "InvalidSignatureException"},
		{name: "body changed after signing", path: "/describeStream", body: ctl,
			headers: map[string]string{"user-agent": "AWS-SDK-KVS"},
			after: func(r *http.Request) {
				b := []byte(`{"StreamName":"sih"}`)
				r.Body = io.NopCloser(bytes.NewReader(b))
			},
			want: 403, errType: "InvalidSignatureException"},
		{name: "payload hash header changed after signing", path: "/putMedia", body: media, hash: sha(nil),
			headers: map[string]string{"transfer-encoding": "chunked", "x-amzn-stream-name": "sig", "x-amzn-fragment-timecode-type": "ABSOLUTE",
				"x-amzn-producer-start-timestamp": "1700000000.000"},
			after: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", sha([]byte("x"))) },
			want:  403, errType: "InvalidSignatureException"},
		{name: "signed 6 minutes ago", path: "/describeStream", body: ctl, age: 6 * time.Minute,
			headers: map[string]string{"user-agent": "AWS-SDK-KVS"}, want: 403, errType: "InvalidSignatureException"},
		{name: "signed 6 minutes ahead", path: "/putMedia", body: media, age: -6 * time.Minute,
			headers: map[string]string{"transfer-encoding": "chunked", "x-amzn-stream-name": "sig", "x-amzn-fragment-timecode-type": "ABSOLUTE",
				"x-amzn-producer-start-timestamp": "1700000000.000"},
			want: 403, errType: "InvalidSignatureException"},
		{name: "signed 4 minutes ago", path: "/describeStream", body: ctl, age: 4 * time.Minute,
			headers: map[string]string{"user-agent": "AWS-SDK-KVS"}, want: 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			time.Sleep(250 * time.Millisecond) // within 5 PutMedia requests per second
			req, _ := http.NewRequest("POST", srv.URL()+c.path, bytes.NewReader(c.body))
			amzDate := time.Now().Add(-c.age).UTC().Format("20060102T150405Z")
			signed := map[string]string{"host": host, "x-amz-date": amzDate}
			for k, v := range c.headers {
				signed[k] = v
				switch k {
				case "transfer-encoding":
					req.TransferEncoding = []string{v}
					req.ContentLength = -1
				default:
					req.Header.Set(k, v)
				}
			}
			req.Header.Set("X-Amz-Date", amzDate)
			payload := sha(c.body)
			if c.path == "/putMedia" {
				payload = sha(nil) // the streamed body is not hashed
			}
			if c.hash != "" {
				req.Header.Set("X-Amz-Content-Sha256", c.hash)
				signed["x-amz-content-sha256"] = c.hash
				payload = c.hash
			}
			req.Header.Set("Authorization", testSigV4("POST", c.path, signed, payload, ak, sk, "us-east-1", amzDate))
			if c.after != nil {
				c.after(req)
			}
			tr := &http.Transport{} // keep-alive: the Connection header goes out as signed
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			out, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.want || c.errType != "" && resp.Header.Get("x-amzn-ErrorType") != c.errType+":" {
				t.Fatalf("status %d %q: %s; want %d %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), out, c.want, c.errType)
			}
			if c.want == 200 && c.path == "/putMedia" && !bytes.Contains(out, []byte(`"PERSISTED"`)) {
				t.Fatalf("no PERSISTED: %s", out)
			}
		})
	}
}

// openPutMedia starts a PutMedia request whose body the test writes.
func openPutMedia(t *testing.T, srv *kvslocal.Server, stream string) (*io.PipeWriter, <-chan *http.Response, <-chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", srv.URL()+"/putMedia", pr)
	req.Header.Set("x-amzn-stream-name", stream)
	req.Header.Set("x-amzn-fragment-timecode-type", "ABSOLUTE")
	req.Header.Set("x-amzn-producer-start-timestamp", "1700000000.000")
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, req, sha(nil), "kinesisvideo", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	respc, errc := make(chan *http.Response, 1), make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			errc <- err
			return
		}
		respc <- resp
	}()
	return pw, respc, errc
}

// The endpoint's limits, with AWS's error names: 6 PutMedia requests in a
// second (the 6th is refused), a second concurrent connection, a fragment
// 500 ms after the previous one.
func TestLimits(t *testing.T) {
	srv := start(t, false)
	const t0 = 1_700_000_000_000
	var statuses []int
	for i := 0; i < 6; i++ {
		st, _ := putMedia(t, srv, "tps", body(avcc(), []int64{t0}))
		statuses = append(statuses, st)
	}
	if fmt.Sprint(statuses) != "[200 200 200 200 200 400]" || srv.Refused("tps", "ClientLimitExceededException") != 1 {
		t.Fatalf("statuses %v, %d refused", statuses, srv.Refused("tps", "ClientLimitExceededException"))
	}
	// The same fragment sent 5 times is stored 5 times: no de-duplication,
	// the re-sends are counted.
	if frs, _ := srv.Fragments("tps"); len(frs) != 5 || srv.Duplicates("tps") != 4 {
		t.Fatalf("%d fragments stored, %d duplicates; want 5 and 4", len(frs), srv.Duplicates("tps"))
	}

	pw, respc, errc := openPutMedia(t, srv, "conn")
	if _, err := pw.Write(body(avcc(), []int64{t0})); err != nil {
		t.Fatal(err)
	}
	var first *http.Response
	select {
	case first = <-respc:
	case err := <-errc:
		t.Fatal(err)
	}
	defer first.Body.Close()
	time.Sleep(250 * time.Millisecond)
	req, _ := http.NewRequest("POST", srv.URL()+"/putMedia", bytes.NewReader(body(avcc(), []int64{t0})))
	req.Header.Set("x-amzn-stream-name", "conn")
	req.Header.Set("x-amzn-fragment-timecode-type", "ABSOLUTE")
	req.Header.Set("x-amzn-producer-start-timestamp", "1700000000.000")
	_ = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, req, sha(nil), "kinesisvideo", "us-east-1", time.Now())
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("x-amzn-ErrorType") != "ConnectionLimitExceededException:" {
		t.Fatalf("second connection: %d %q", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
	}
	_ = pw.Close()
	_, _ = io.Copy(io.Discard, first.Body)

	time.Sleep(250 * time.Millisecond)
	_, acks := putMedia(t, srv, "short", body(avcc(), []int64{t0, t0 + 400}, []int64{t0 + 500, t0 + 900}))
	last := acks[len(acks)-1]
	if last.EventType != "ERROR" || last.ErrorId != 4002 || last.ErrorCode != "MIN_FRAGMENT_DURATION_REACHED" || last.FragmentTimecode != t0+500 {
		t.Fatalf("500 ms fragment: acks %+v", acks)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// No data for 30 s (of the endpoint's clock): IDLE, then the request ends;
// the fragment received before is stored and acknowledged.
func TestIdleConnection(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv, err := kvslocal.New(kvslocal.Config{DataDir: t.TempDir(), AccessKey: ak, SecretKey: sk, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const t0 = 1_700_000_000_000
	pw, respc, errc := openPutMedia(t, srv, "idle")
	defer pw.Close()
	// One fragment, ended by the producer SDK's end-of-fragment tag.
	if _, err := pw.Write(mkv.AppendEndOfFragment(body(avcc(), []int64{t0, t0 + 40}))); err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	select {
	case resp = <-respc:
	case err := <-errc:
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var kinds []string
	var silent time.Duration // clock time passed since PERSISTED when IDLE came
	stop := make(chan struct{})
	defer close(stop)
	var persistedAt time.Time
	for sc.Scan() {
		var a ackLine
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, a.EventType)
		switch a.EventType {
		case "PERSISTED":
			persistedAt = clk.Now()
			go func() { // the producer stays silent: time passes, 1 s per 20 ms
				tk := time.NewTicker(20 * time.Millisecond)
				defer tk.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tk.C:
						clk.add(time.Second)
					}
				}
			}()
		case "IDLE":
			silent = clk.Now().Sub(persistedAt)
		}
	}
	if silent < 30*time.Second || silent > 40*time.Second {
		t.Fatalf("IDLE after %v of silence, want 30 s", silent)
	}
	if got := strings.Join(kinds, " "); got != "BUFFERING RECEIVED PERSISTED IDLE" {
		t.Fatalf("acks %s, want BUFFERING RECEIVED PERSISTED IDLE then the end", got)
	}
	if frs, _ := srv.Fragments("idle"); len(frs) != 1 {
		t.Fatalf("%d fragments stored", len(frs))
	}
}
