#!/usr/bin/env bash
# The whole test suite: gofmt, vet, staticcheck, then every test with the race
# detector, for the core module and for the gocv adapter module (gocv/, a
# module of its own so that the core never needs OpenCV). Called by
# `make test` (after scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...
go test -race -count=1 -timeout 20m ./... 2>&1 | tee /tmp/skyline-test.log
./scripts/python-test.sh 2>&1 | tee /tmp/skyline-test-python.log
(
  cd gocv
  go vet ./...
  go run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...
  go test -race -count=1 -timeout 10m ./... 2>&1 | tee /tmp/skyline-test-gocv.log
)
