package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skyline-go/skyline/internal/testlog"
)

// The secrets of the CLI's table, one per place a secret can be given.
const (
	cliRTMPKey      = "CliRtmpStreamKey4471"
	cliRTMPSPass    = "CliRtmpsPassword0388"
	cliRTMPSKey     = "CliRtmpsStreamKey9122"
	cliRTSPPass     = "CliRtspPassword2155"
	cliRTSPSPass    = "CliRtspsPassword7366"
	cliSRTPass      = "CliSrtPassphrase4309"
	cliGstPass      = "CliGstPassphrase1178"
	cliGstKey       = "CliGstLocationKey0933"
	cliKVSSecret    = "CliKvsSecretAccessKey1477"
	cliKVSToken     = "CliKvsSessionToken5266"
	cliServerPass   = "CliRtspServerPass8021"
	cliSlashPass    = "CliSlashPartOne/CliSlashPartTwo"
	cliLocalSecret  = "CliKvsLocalOtherSecret"
	cliEnvOnlyValue = "CliValueOfAnEnvVar6120"
)

var cliSecrets = []string{cliRTMPKey, cliRTMPSPass, cliRTMPSKey, cliRTSPPass, cliRTSPSPass, cliSRTPass, cliGstPass,
	cliGstKey, cliKVSSecret, cliKVSToken, cliServerPass, cliSlashPass, cliLocalSecret, cliEnvOnlyValue}

// cliLeaks returns the secrets (whole, escaped, or a part of one split at a
// URL delimiter) that occur in text.
func cliLeaks(text string) []string {
	var found []string
	for _, s := range cliSecrets {
		forms := append([]string{s, url.QueryEscape(s)}, strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune("/#?% ", r) })...)
		for _, f := range forms {
			if strings.Contains(text, f) {
				found = append(found, f)
				break
			}
		}
	}
	return found
}

func cliNoLeak(t *testing.T, what, text string) {
	t.Helper()
	if l := cliLeaks(text); len(l) > 0 {
		t.Errorf("%s shows secret(s) %q:\n%s", what, l, text)
	}
}

// TestServeSecretTableStartup: malformed --out values of every destination
// kind, each with its secret, end in an error (exit status not 0) that
// does not show it, at debug level.
func TestServeSecretTableStartup(t *testing.T) {
	env := []string{"CLI_RTMP_KEY=" + cliRTMPKey, "CLI_EMPTY="}
	for _, out := range []string{
		"rtmp://host:notaport/app/" + cliRTMPKey,
		"rtmp://ho st/app/" + cliRTMPKey,
		"rtmp:///app/" + cliRTMPKey,
		"rtmp://host/app/" + cliRTMPKey + "%zz",
		"rtmq://host/app/" + cliRTMPKey,
		"rtmp://host:notaport/app/${CLI_RTMP_KEY}",
		"rtmp://${CLI_RTMP_KEY}:99999/app/x", // a secret in the host name
		"srt://${CLI_RTMP_KEY}.example.com:0",
		"rtsp://${CLI_RTMP_KEY}:bad/cam",
		"rtmps://bob:" + cliRTMPSPass + "@host:bad/app/" + cliRTMPSKey,
		"rtmps://bob:" + cliSlashPass + "@host/app/" + cliRTMPSKey,
		"rtsp://bob:" + cliRTSPPass + "@host:bad/cam",
		"rtsp://bob:" + cliRTSPPass + "%zz@host/cam",
		"rtsp://bob:" + cliSlashPass + "@host:1/cam",
		"rtsp://bob:" + cliRTSPPass + "@/cam",
		"rtsps://bob:" + cliRTSPSPass + "@ho st/cam",
		"rtsps://bob:" + cliRTSPSPass + "@host:99x/cam",
		"srt://host:bad?passphrase=" + cliSRTPass,
		"srt://ho st:1?passphrase=" + cliSRTPass,
		"gst:mpegtsmux ! srtsink uri=srt://127.0.0.1:1 passphrase=" + cliGstPass + " bogus=1",
		"gst:flvmux ! rtmp2sink location=rtmp://h/app/" + cliGstKey + " ! !",
		"gst:no-such-sink password=" + cliGstPass,
		"kvs://us-east-1/demo?secret-key=" + cliKVSSecret,
		"kvs://us-east-1:x/demo?session-token=" + cliKVSToken,
		"rtmp://host/app/${CLI_UNSET_VARIABLE}",
		"rtmp://host/app/${CLI_EMPTY}",
		"rtmp://host/app/${file:/nonexistent/" + cliRTMPKey + "}",
	} {
		cmd := exec.Command(binary, "serve", "--no-rtsp", "--frames", "5", "--status", "always", "--log-level", "debug", "--out", out)
		cmd.Env = append(os.Environ(), env...)
		b, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("--out %q: exit status 0:\n%s", out, b)
		}
		if len(b) == 0 {
			t.Errorf("--out %q: no error message", out)
		}
		if !strings.Contains(out, "${file:") { // a file name is shown, as it should be
			cliNoLeak(t, fmt.Sprintf("--out %q", out), string(b))
		}
	}
	// doctor --out reports every destination it is asked about, good or bad.
	args := []string{"doctor"}
	for _, out := range []string{
		"rtmp://host/app/" + cliRTMPKey, "rtmp://host:x/app/" + cliRTMPKey, "rtsp://bob:" + cliRTSPPass + "@host:1/cam",
		"srt://host:1?passphrase=" + cliSRTPass, "gst:mpegtsmux ! srtsink uri=srt://h:1 passphrase=" + cliGstPass,
		"kvs://us-east-1/demo?secret-key=" + cliKVSSecret,
	} {
		args = append(args, "--out", out)
	}
	b, _ := exec.Command(binary, args...).CombinedOutput()
	if !strings.Contains(string(b), "rtmp://host/app/****") {
		t.Errorf("doctor does not report the destinations:\n%s", b)
	}
	cliNoLeak(t, "doctor", string(b))
}

// TestServeSecretTableRuntime runs every destination kind at once, each
// failing (nobody listens; KVS refuses the credentials), with logs at debug
// level, the status line and metrics on: no secret in the output, the
// metrics or the events logged; and none of those given as ${NAME} or
// ${file:PATH} on the command line (what ps shows).
func TestServeSecretTableRuntime(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	closed := freePort(t)
	closedUDP := func() int {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}()

	// kvs-local accepts the access key with another secret: every request
	// of serve is refused (signature mismatch) and retried.
	kvsPort := freePort(t)
	local := exec.Command(binary, "kvs-local", "--listen", fmt.Sprintf("127.0.0.1:%d", kvsPort), "--data", filepath.Join(dir, "kvs"),
		"--access-key", "AKIDCLISECRETS", "--secret-key", "${file:"+file("local-secret", cliLocalSecret)+"}", "--log-level", "debug")
	var localOut testlog.Buffer
	local.Stderr = &localOut
	localStdout, err := local.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := local.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = local.Process.Kill(); _ = local.Wait() })
	sc := bufio.NewScanner(localStdout)
	if !sc.Scan() {
		t.Fatalf("kvs-local did not start: %s", localOut.String())
	}
	go func() { _, _ = io.Copy(&localOut, localStdout) }()

	metricsPort := freePort(t)
	env := []string{
		"AWS_ACCESS_KEY_ID=AKIDCLISECRETS", "AWS_SECRET_ACCESS_KEY=" + cliKVSSecret, "AWS_SESSION_TOKEN=" + cliKVSToken,
		"AWS_REGION=us-east-1", fmt.Sprintf("AWS_ENDPOINT_URL_KINESIS_VIDEO=http://127.0.0.1:%d", kvsPort),
		"CLI_RTMP_KEY=" + cliRTMPKey, "CLI_RTMPS_PASS=" + cliRTMPSPass, "CLI_RTSP_PASS=" + cliRTSPPass, "CLI_GST_KEY=" + cliGstKey,
		"CLI_HOST=127.0.0.1", "CLI_UNUSED=" + cliEnvOnlyValue,
	}
	// Given on the command line through ${NAME} or ${file:PATH}: these
	// must not be in the arguments either.
	viaReference := []string{cliRTMPKey, cliRTMPSPass, cliRTMPSKey, cliRTSPPass, cliRTSPSPass, cliSRTPass, cliGstKey, cliServerPass}
	rtspPort := freePort(t)
	args := []string{"serve", "--input", "testsrc", "--size", "320x240", "--fps", "15",
		"--listen", fmt.Sprintf("127.0.0.1:%d", rtspPort), "--no-udp",
		"--user", "admin", "--pass", "${file:" + file("server-pass", cliServerPass) + "}",
		"--log-level", "debug", "--status", "always", "--metrics", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--out", fmt.Sprintf("rtmp://${CLI_HOST}:%d/app/${CLI_RTMP_KEY}", closed),
		"--out", fmt.Sprintf("rtmps://bob:${CLI_RTMPS_PASS}@127.0.0.1:%d/app/${file:%s}", closed, file("rtmps-key", cliRTMPSKey)),
		"--out", fmt.Sprintf("rtsp://bob:${CLI_RTSP_PASS}@127.0.0.1:%d/cam", closed),
		"--out", fmt.Sprintf("rtsps://bob:${file:%s}@127.0.0.1:%d/cam", file("rtsps-pass", cliRTSPSPass), closed),
		"--out", fmt.Sprintf("srt://127.0.0.1:%d?passphrase=${file:%s}", closedUDP, file("srt-pass", cliSRTPass)),
		// The observation's case: a passphrase written in gst: text.
		"--out", fmt.Sprintf("gst:mpegtsmux ! srtsink uri=srt://127.0.0.1:%d passphrase=%s wait-for-connection=false", closedUDP, cliGstPass),
		"--out", fmt.Sprintf(`gst:flvmux streamable=true ! rtmp2sink location="rtmp://127.0.0.1:%d/app/${CLI_GST_KEY}"`, closed),
		"--out", "kvs://us-east-1/demo?create=1",
	}
	c := startCLIIn(t, "", env, args...)
	for _, s := range viaReference {
		if strings.Contains(strings.Join(c.cmd.Args, " "), s) {
			t.Errorf("%s given by reference is on the command line", s)
		}
	}
	var stdout strings.Builder
	readLines := func() {
		for {
			select {
			case l, ok := <-c.lines:
				if !ok {
					return
				}
				stdout.WriteString(l + "\n")
			default:
				return
			}
		}
	}
	// Wait until each of the seven pushes has been reported down and KVS
	// has reported a refused request.
	down := regexp.MustCompile(`msg=destination-down destination="?([^" ]+)`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		readLines()
		logs := c.stderr.String()
		names := map[string]bool{}
		for _, m := range down.FindAllStringSubmatch(logs, -1) {
			names[m[1]] = true
		}
		if len(names) >= 7 && strings.Contains(logs, "msg=kvs") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every destination failed within 60 s (%d down: %v); stderr:\n%s", len(names), names, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The RTSP password read from ${file:PATH} is the one the server asks
	// for: ffprobe reads the stream with it, and not with another.
	probe := func(pass string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v:0",
			"-show_entries", "stream=codec_name,width", "-of", "csv=p=0",
			fmt.Sprintf("rtsp://admin:%s@127.0.0.1:%d/skyline", pass, rtspPort)).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := probe(cliServerPass); err != nil || out != "h264,320" {
		t.Errorf("ffprobe with the password from the file: %q %v", out, err)
	}
	if out, err := probe("wrong-password"); err == nil {
		t.Errorf("ffprobe with a wrong password: %q", out)
	}
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	scraped, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(scraped), `destination="gst:`) {
		t.Fatalf("no gst: destination in the metrics:\n%s", scraped)
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	code := c.wait(t)
	for l := range c.lines {
		stdout.WriteString(l + "\n")
	}
	if code != 0 && code != 1 {
		t.Errorf("exit status %d", code)
	}
	if !strings.Contains(stdout.String(), "out:     gst:") || !strings.Contains(stdout.String(), "DOWN") {
		t.Errorf("no destination or status line on stdout:\n%s", stdout.String())
	}
	cliNoLeak(t, "stdout (destinations, status line)", stdout.String())
	cliNoLeak(t, "stderr (logs at debug, events)", c.stderr.String())
	cliNoLeak(t, "the metrics", string(scraped))
	cliNoLeak(t, "kvs-local's output", localOut.String())
	t.Logf("%d bytes of logs, %d of stdout, %d of metrics; kvs-local: %d bytes", len(c.stderr.String()), stdout.Len(), len(scraped), len(localOut.String()))
}

// TestExpandSecrets: ${NAME}, ${file:PATH} and $${, and errors that name
// the reference but never a value.
func TestExpandSecrets(t *testing.T) {
	t.Setenv("CLI_KEY", cliRTMPKey)
	path := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(path, []byte(cliRTSPPass+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, secrets, err := expandSecrets("--out", "rtsp://u:${file:"+path+"}@h/$${x}/${CLI_KEY}")
	if err != nil || got != "rtsp://u:"+cliRTSPPass+"@h/${x}/"+cliRTMPKey || len(secrets) != 2 ||
		secrets[0].Reveal() != cliRTSPPass || secrets[1].Reveal() != cliRTMPKey {
		t.Fatalf("got %q %v %v", got, secrets, err)
	}
	if got, secrets, err := expandSecrets("--out", "file:a$b.mp4"); err != nil || got != "file:a$b.mp4" || secrets != nil {
		t.Fatalf("no reference: %q %v %v", got, secrets, err)
	}
	for _, bad := range []string{"x${CLI_KEY", "${}", "${A B}", "${CLI_NOT_SET_AT_ALL}", "${file:/nonexistent}"} {
		if _, _, err := expandSecrets("--out", bad); err == nil {
			t.Errorf("%q: no error", bad)
		} else {
			cliNoLeak(t, bad, err.Error())
		}
	}
}
