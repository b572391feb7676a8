#!/usr/bin/env bash
# Installs what SkyLine needs on Debian 12, idempotently: GStreamer 1.22 with
# its dev headers and plugins, the test clients (ffmpeg/ffprobe, chromium for
# the WebRTC page test), libyuv, the Go modules (the core's and the gocv
# adapter's), OpenCV for the gocv module and Python OpenCV for the
# python-pipe example. Fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  pkg-config gcc
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  gstreamer1.0-libav gstreamer1.0-tools
  libyuv-dev
  ffmpeg
  chromium fonts-liberation libgl1-mesa-dri   # headless page test (with the recommends it needs)
  # the gocv adapter module (gocv/, gocv v0.32.0 = OpenCV 4.6) needs OpenCV
  # with its pkg-config file and a C++ compiler; the python-pipe example
  # and its test need Debian's Python OpenCV (/usr/bin/python3)
  libopencv-dev g++ python3 python3-opencv python3-numpy
  # the Python package (python/): a venv with the system packages, its tests
  python3-venv python3-pip python3-setuptools python3-pytest
  util-linux   # prlimit: the RTSP server's descriptor-exhaustion test
)
if [ "${SKYLINE_DEPS_EXTRA:-}" != "" ]; then
  # shellcheck disable=SC2206
  PKGS+=(${SKYLINE_DEPS_EXTRA})
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/skyline-apt.log 2>&1; then
    tail -50 /tmp/skyline-apt.log >&2; exit 1
  fi
fi

if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then export PATH=$PATH:/usr/local/go/bin; else
    echo "deps: Go toolchain not found; install Go >= 1.26 (https://go.dev/dl)" >&2; exit 1
  fi
fi
go mod download
(cd gocv && go mod download)
