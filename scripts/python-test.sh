#!/usr/bin/env bash
# The Python package's tests (python/tests) with Debian's python3, numpy and
# OpenCV: builds the engine binary, installs the package into a venv made
# with --system-site-packages (offline: no PyPI), runs pytest there. Called
# by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"
scripts/python-venv.sh >/dev/null
go build -o bin/skyline ./cmd/skyline
export SKYLINE_BIN="$PWD/bin/skyline"
cd python/tests # run the installed package, not the source tree
exec ../../.venv/bin/python -m pytest -q -p no:cacheprovider "$@" .
