#!/usr/bin/env bash
# Python package vs Go library vs ffmpeg pipe (see bench.py). Reported, not asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin"
py=$(scripts/python-venv.sh)
go build -o bin/skyline ./cmd/skyline
go build -o bin/bench-golib ./bench/python/golib
SKYLINE_BIN="$PWD/bin/skyline" exec "$py" bench/python/bench.py "$@"
