#!/usr/bin/env bash
# Makes .venv (Debian's /usr/bin/python3 with its system packages: numpy,
# OpenCV, pytest) and installs python/ into it, offline: setuptools comes
# from Debian (--no-build-isolation), nothing from PyPI. Prints the venv's
# python. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
.venv/bin/python -m pip install -q --no-index --no-build-isolation --no-deps ./python >/dev/null
echo "$PWD/.venv/bin/python"
