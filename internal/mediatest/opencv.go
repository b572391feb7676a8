package mediatest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
)

// openCVScript opens argv[1] with OpenCV's backend argv[2] ("gstreamer"
// or "ffmpeg") and writes n = argv[3] pictures, BGR, to stdout.
const openCVScript = `
import sys, cv2
url, backend, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
api = cv2.CAP_GSTREAMER if backend == "gstreamer" else cv2.CAP_FFMPEG
cap = cv2.VideoCapture(url, api)
if not cap.isOpened():
    sys.exit("OpenCV (%s) cannot open %s" % (backend, url))
out = sys.stdout.buffer
for i in range(n):
    ok, img = cap.read()
    if not ok:
        sys.exit("OpenCV (%s): read %d failed" % (backend, i))
    out.write(img.tobytes())
    out.flush()
`

// DecodeOpenCV reads n pictures of url with Debian's python3-opencv
// (/usr/bin/python3, scripts/deps.sh) through its GStreamer or FFmpeg
// backend, calling each with every BGR picture of w x h (the slice is
// reused), until n or each returns an error.
func DecodeOpenCV(ctx context.Context, url, backend string, w, h, n int, each func(i int, bgr []byte) error) error {
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "-c", openCVScript, url, backend, strconv.Itoa(n))
	i, stderr, err := readPictures(cmd, w, h, n, each)
	if err != nil {
		return err
	}
	if i < n {
		return fmt.Errorf("OpenCV %s %s: %d of %d pictures: %s", backend, url, i, n, stderr)
	}
	return nil
}

// readPictures runs cmd, which writes w x h BGR pictures to its stdout, and
// calls each with the first n of them (the slice is reused). It returns how
// many were read, cmd's stderr, and each's error; cmd is killed and waited
// for at the end.
func readPictures(cmd *exec.Cmd, w, h, n int, each func(i int, bgr []byte) error) (int, string, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, "", err
	}
	if err := cmd.Start(); err != nil {
		return 0, "", err
	}
	buf := make([]byte, w*h*3)
	i := 0
	var cbErr error
	for i < n {
		if _, err := io.ReadFull(out, buf); err != nil {
			break
		}
		if cbErr = each(i, buf); cbErr != nil {
			break
		}
		i++
	}
	_ = cmd.Process.Kill()
	_, _ = io.Copy(io.Discard, out)
	_ = cmd.Wait()
	return i, stderr.String(), cbErr
}
