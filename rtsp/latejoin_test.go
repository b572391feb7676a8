package rtsp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/internal/testpattern"
	"github.com/skyline-go/skyline/rtsp"
)

// TestLateJoin: a viewer joining 5 s into a stream with a 2 s keyframe
// interval decodes its first picture within 300 ms of PLAY.
func TestLateJoin(t *testing.T) {
	srv := newServer(t, rtsp.ServerConfig{})
	sl := startSkyLine(t, srv, "/late", smallW, smallH, smallFPS, skyline.Encoder{KeyframeInterval: 2 * time.Second})
	f := startFeeder(t, sl, smallW, smallH, smallFPS, 0)
	url := srv.Stream("/late").URL()
	// 5 s into the stream: the next regular keyframe is up to 2 s away.
	waitFor(t, 30*time.Second, "150 frames", func() bool { return f.put.Load() >= 150 })

	// The decoder is started before PLAY, waiting for the stream on stdin.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-nostdin", "-f", "h264", "-i", "pipe:0",
		"-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1")
	cmd.Stdin = nil
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	defer cancel()

	firstKey := make(chan au, 1)
	v := play(t, url, viewerOpts{keep: true, onAU: func(a au) {
		if a.key {
			select {
			case firstKey <- a:
			default:
			}
		}
	}})
	var key au
	select {
	case key = <-firstKey:
	case <-time.After(5 * time.Second):
		t.Fatal("no keyframe within 5 s of PLAY")
	}
	if _, err := in.Write(annexB(key.nalus)); err != nil {
		t.Fatal(err)
	}
	in.Close()
	buf := make([]byte, smallW*smallH*3)
	if _, err := io.ReadFull(out, buf); err != nil {
		t.Fatalf("decoding the first keyframe: %v", err)
	}
	decoded := time.Now()
	num, ok := testpattern.ReadBGR(buf, smallW, smallH)
	toKey, toPicture := key.at.Sub(v.playAt), decoded.Sub(v.playAt)
	t.Logf("PLAY -> first keyframe %v, -> decoded picture %v (frame %d)", toKey, toPicture, num)
	if !ok || num < 150 {
		t.Errorf("first decoded picture carries number %d (readable %v)", num, ok)
	}
	if toPicture > 300*time.Millisecond {
		t.Errorf("first picture %v after PLAY, want <= 300 ms", toPicture)
	}
	f.Stop()
}

// TestRTSPS: a self-signed certificate; ffprobe and ffmpeg play rtsps://.
func TestRTSPS(t *testing.T) {
	cert, key := selfSigned(t)
	srv := newServer(t, rtsp.ServerConfig{CertFile: cert, KeyFile: key})
	sl := startSkyLine(t, srv, "/secure", smallW, smallH, smallFPS, skyline.Encoder{})
	f := startFeeder(t, sl, smallW, smallH, smallFPS, 0)
	url := srv.Stream("/secure").URL()
	if url[:8] != "rtsps://" {
		t.Fatalf("URL %s, want rtsps://", url)
	}
	waitFor(t, 20*time.Second, "the first keyframe", func() bool { return srv.Stream("/secure").Stats().AccessUnits > 0 })
	checkProbe(t, probe(t, url, "tcp"), smallW, smallH)
	decodeFrames(t, url, []string{"-rtsp_transport", "tcp"}, f.fr, 20)
	// A plain-RTSP client cannot talk to it.
	if _, err := describe("rtsp://"+url[8:], nil); err == nil {
		t.Error("plain RTSP accepted by an RTSPS server")
	}
	f.Stop()
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
