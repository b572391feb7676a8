#!/bin/sh
# Streams a Python OpenCV loop with SkyLine: send.py writes raw BGR frames
# to stdout, `skyline serve --input stdin` encodes them and serves them over
# RTSP (the URL is printed). Extra arguments go to `skyline serve`, e.g.
#   examples/python-pipe/run.sh --listen :8555
# Environment: SKYLINE (the skyline binary; default: skyline on the PATH,
# else built from this repository), FRAMES (stop after that many frames; 0, the
# default, never stops). Needs Debian's python3-opencv (scripts/deps.sh),
# hence /usr/bin/python3 rather than whatever python3 comes first on PATH.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${SKYLINE:-}" ]; then
  if command -v skyline >/dev/null; then SKYLINE=skyline
  else
    SKYLINE=${TMPDIR:-/tmp}/skyline-python-pipe
    (cd "$here/../.." && go build -o "$SKYLINE" ./cmd/skyline)
  fi
fi
SIZE=640x360 FPS=30
/usr/bin/python3 "$here/send.py" --size "$SIZE" --fps "$FPS" --frames "${FRAMES:-0}" |
  "$SKYLINE" serve --input stdin --pix-fmt bgr24 --size "$SIZE" --fps "$FPS" --path /python "$@"
