# SkyLine — the two quick-start commands:
#   make run    a live RTSP test stream on embedded defaults (URL printed)
#   make test   the whole test suite (vet, staticcheck, go test -race)
# Both install what they need first (Debian packages, Go modules).

GO ?= go
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin

.PHONY: run test deps build bench python

deps:
	@./scripts/deps.sh

build: deps
	$(GO) build -o bin/skyline ./cmd/skyline

python: build
	@./scripts/python-venv.sh

run: build
	./bin/skyline serve

test: deps
	./scripts/test.sh

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./bench/encode
