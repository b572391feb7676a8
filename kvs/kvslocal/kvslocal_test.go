package kvslocal_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"go.uber.org/goleak"

	"github.com/skyline-go/skyline/kvs/internal/mkv"
	"github.com/skyline-go/skyline/kvs/kvslocal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const ak, sk = "AKIDKVSLOCALTEST0001", "kvslocal/test/secret/0123456789"

func start(t *testing.T, strict bool) *kvslocal.Server {
	t.Helper()
	srv, err := kvslocal.New(kvslocal.Config{DataDir: t.TempDir(), AccessKey: ak, SecretKey: sk, Strict: strict})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func client(srv *kvslocal.Server, secret string) *kinesisvideo.Client {
	return kinesisvideo.New(kinesisvideo.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(ak, secret, ""),
		Retryer:     aws.NopRetryer{}, HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	})
}

// The control plane through the AWS Go SDK, pointed at the endpoint.
func TestControlPlaneWithSDK(t *testing.T) {
	srv := start(t, true)
	kv := client(srv, sk)
	ctx := context.Background()
	out, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("s1"), DataRetentionInHours: aws.Int32(2)})
	if err != nil || out.StreamARN == nil || !strings.Contains(*out.StreamARN, "s1") {
		t.Fatalf("CreateStream: %v %v", out, err)
	}
	var inUse *types.ResourceInUseException
	if _, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("s1")}); !errors.As(err, &inUse) {
		t.Fatalf("second CreateStream: %v", err)
	}
	d, err := kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("s1")})
	if err != nil || *d.StreamInfo.StreamName != "s1" || d.StreamInfo.Status != types.StatusActive || *d.StreamInfo.DataRetentionInHours != 2 || d.StreamInfo.CreationTime == nil {
		t.Fatalf("DescribeStream: %+v %v", d, err)
	}
	l, err := kv.ListStreams(ctx, &kinesisvideo.ListStreamsInput{})
	if err != nil || len(l.StreamInfoList) != 1 {
		t.Fatalf("ListStreams: %+v %v", l, err)
	}
	e, err := kv.GetDataEndpoint(ctx, &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("s1"), APIName: types.APINamePutMedia})
	if err != nil || *e.DataEndpoint != srv.URL() {
		t.Fatalf("GetDataEndpoint: %+v %v", e, err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("nope")}); !errors.As(err, &nf) {
		t.Fatalf("strict DescribeStream of an unknown stream: %v", err)
	}
	// Wrong secret: a signature error with the AWS error shape.
	_, err = client(srv, "wrong").DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("s1")})
	if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") {
		t.Fatalf("bad signature: %v", err)
	}
}

func TestErrorShape(t *testing.T) {
	srv := start(t, false)
	req, _ := http.NewRequest("POST", srv.URL()+"/describeStream", strings.NewReader(`{"StreamName":"x"}`))
	creds := aws.Credentials{AccessKeyID: ak, SecretAccessKey: "bad"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "kinesisvideo", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 403 || resp.Header.Get("x-amzn-ErrorType") != "InvalidSignatureException:" || body["__type"] != "InvalidSignatureException" || body["message"] == "" {
		t.Fatalf("status %d, header %q, body %v", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
	}
	// Unsigned request.
	resp2, err := http.Post(srv.URL()+"/listStreams", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 403 || !strings.HasPrefix(resp2.Header.Get("x-amzn-ErrorType"), "MissingAuthenticationToken") {
		t.Fatalf("unsigned: %d %q", resp2.StatusCode, resp2.Header.Get("x-amzn-ErrorType"))
	}
	http.DefaultClient.CloseIdleConnections()
}

type ackLine struct {
	EventType        string
	FragmentTimecode int64
	FragmentNumber   string
	ErrorId          int
	ErrorCode        string
}

// putMedia sends body in one PutMedia request and returns the acks.
func putMedia(t *testing.T, srv *kvslocal.Server, stream string, body []byte) (int, []ackLine) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL()+"/putMedia", bytes.NewReader(body))
	req.ContentLength = -1 // chunked, as producers stream
	req.Header.Set("x-amzn-stream-name", stream)
	req.Header.Set("x-amzn-fragment-timecode-type", "ABSOLUTE")
	req.Header.Set("x-amzn-producer-start-timestamp", "1700000000.000")
	req.Header.Set("x-amzn-fragment-acknowledgment-required", "1")
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, req,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "kinesisvideo", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var acks []ackLine
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var a ackLine
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("ack %q: %v", sc.Text(), err)
		}
		acks = append(acks, a)
	}
	return resp.StatusCode, acks
}

var (
	sps = []byte{0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x02, 0x80, 0xBF, 0xE5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xF0, 0x3C, 0x58, 0xBA, 0x80}
	pps = []byte{0x68, 0xCE, 0x3C, 0x80}
)

func avcc() []byte {
	b := []byte{1, sps[1], sps[2], sps[3], 0xFF, 0xE1, 0, byte(len(sps))}
	b = append(b, sps...)
	b = append(b, 1, 0, byte(len(pps)))
	return append(b, pps...)
}

// body builds a PutMedia body: fragments[i] lists frame timecodes (the
// first is the cluster timecode and a keyframe).
func body(codec []byte, fragments ...[]int64) []byte {
	b := mkv.Header(mkv.Track{Width: 64, Height: 64, CodecPrivate: codec}, nil, "test")
	for _, f := range fragments {
		b = mkv.ClusterStart(b, f[0])
		for i, tc := range f {
			b = mkv.AppendSimpleBlock(b, int16(tc-f[0]), i == 0, []byte{0, 0, 0, 2, 0x65, 0x88})
		}
	}
	return b
}

func TestPutMediaRules(t *testing.T) {
	srv := start(t, false)
	const t0 = 1_700_000_000_000
	// Good: three fragments, acks in order.
	status, acks := putMedia(t, srv, "rules", body(avcc(), []int64{t0, t0 + 40}, []int64{t0 + 1000, t0 + 1120}, []int64{t0 + 2000}))
	var kinds []string
	for _, a := range acks {
		kinds = append(kinds, a.EventType)
	}
	want := "BUFFERING RECEIVED PERSISTED BUFFERING RECEIVED PERSISTED BUFFERING RECEIVED PERSISTED"
	if status != 200 || strings.Join(kinds, " ") != want || acks[2].FragmentTimecode != t0 || acks[5].FragmentTimecode != t0+1000 || acks[2].FragmentNumber == "" {
		t.Fatalf("status %d acks %+v", status, acks)
	}
	files, _ := srv.Files("rules")
	frs, _ := srv.Fragments("rules")
	if len(files) != 1 || len(frs) != 3 || frs[1].FrameTimecodes[1] != t0+1120 {
		t.Fatalf("files %v fragments %+v", files, frs)
	}
	if st, err := os.Stat(files[0]); err != nil || st.Size() == 0 {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		body []byte
		id   int
		code string
		tc   int64
	}{
		{"timecode lower than previous", body(avcc(), []int64{t0 + 5000}, []int64{t0 + 3000}), 4004, "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS", t0 + 3000},
		{"fragment longer than 10 s", body(avcc(), []int64{t0 + 1000, t0 + 5000, t0 + 12000}), 4002, "MAX_FRAGMENT_DURATION_REACHED", t0 + 1000},
		{"fragment shorter than 1 s", body(avcc(), []int64{t0, t0 + 400}, []int64{t0 + 500, t0 + 900}), 4002, "MIN_FRAGMENT_DURATION_REACHED", t0 + 500},
		{"no codec private", body(nil, []int64{t0 + 20000}), 4006, "INVALID_MKV_DATA", -1},
		{"not EBML", []byte("hello world, not matroska"), 4006, "INVALID_MKV_DATA", -1},
	}
	for _, c := range cases {
		time.Sleep(200 * time.Millisecond) // within the 5 PutMedia requests per second
		status, acks := putMedia(t, srv, "rules", c.body)
		last := acks[len(acks)-1]
		if status != 200 || last.EventType != "ERROR" || last.ErrorId != c.id || last.ErrorCode != c.code || last.FragmentTimecode != c.tc {
			t.Errorf("%s: status %d acks %+v, want ERROR %d %s at %d", c.name, status, acks, c.id, c.code, c.tc)
		}
	}
	// Unknown stream, strict endpoint: 404 ResourceNotFoundException.
	strict := start(t, true)
	if status, _ := putMedia(t, strict, "nope", body(avcc(), []int64{t0})); status != 404 {
		t.Fatalf("strict unknown stream: status %d", status)
	}
}

func TestMKVRoundTrip(t *testing.T) {
	b := body(avcc(), []int64{5000, 5033})
	r := mkv.NewReader(bytes.NewReader(b))
	h, err := r.Next()
	if err != nil || h.ID != mkv.IDEBML {
		t.Fatal(h, err)
	}
	if _, err := r.Body(h, 1000); err != nil {
		t.Fatal(err)
	}
	if h, err = r.Next(); err != nil || h.ID != mkv.IDSegment || h.Size != mkv.UnknownSize {
		t.Fatal(h, err)
	}
	blk, err := mkv.ParseSimpleBlock(mkv.AppendSimpleBlock(nil, -3, true, []byte{9})[2:])
	if err != nil || blk.Rel != -3 || !blk.Keyframe || blk.Track != 1 || !bytes.Equal(blk.Data, []byte{9}) {
		t.Fatal(blk, err)
	}
	for _, n := range []int64{0, 126, 127, 16382, 16383, 1 << 30} {
		sz := mkv.AppendSize(nil, n)
		r := mkv.NewReader(bytes.NewReader(append([]byte{0xEC}, sz...)))
		h, err := r.Next()
		if err != nil || h.Size != n {
			t.Fatalf("size %d: %v %v", n, h, err)
		}
	}
}
