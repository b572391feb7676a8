#!/usr/bin/env bash
# The whole test suite: vet, staticcheck, then every test with the race
# detector. Called by `make test` (after scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...
go test -race -count=1 -timeout 20m ./... 2>&1 | tee /tmp/skyline-test.log
