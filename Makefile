# catalyst-sentiment: build, run, generate and test.
#
#   make run       build and start the server with the embedded defaults
#   make test      everything CI checks: generated code, lint, Go tests with
#                  -race, Python tests
#   make generate  regenerate gen/ from proto/ (the only way gen/ changes)
#   make chaos     the full chaos run (10,000 requests against llmsim, Redis
#                  killed and restarted, a replica stopped mid-stream); make
#                  test runs a short round of it (chaos-short)
#   make demo      a narrated, self-checking tour against llmsim (about 90 s)
#   make load      the ghz scenarios of bench/load/ beside their references
#                  (about 2 minutes)
#   make perf      make load plus the old bot's pacing, written into the
#                  generated section of docs/PERFORMANCE.md (about 4 minutes)
#
# demo, load and perf measure or drive real processes on loopback; they are
# not part of make test.
#
# Tools are pinned: Go generators in go.mod, buf/grpcurl/ghz/staticcheck in
# tools/go.mod, Python packages in python/requirements-dev.txt (installed
# into .venv, ignored by git).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO      ?= go
TOOL    := $(GO) tool -modfile=tools/go.mod
VENV    := .venv
PY      := $(VENV)/bin/python
BIN     := bin
PROTOS  := $(shell find proto -name '*.proto')

.PHONY: all build run tools generate test check-generated lint redis go-test chaos-short chaos py-test bench bench-ghz demo load perf venv clean

all: build

build:
	$(GO) build -o $(BIN)/sentimentd ./cmd/sentimentd
	$(GO) build -o $(BIN)/sentimentctl ./cmd/sentimentctl
	$(GO) build -o $(BIN)/llmsim ./cmd/llmsim

run: build
	./$(BIN)/sentimentd

# tools builds the pinned grpcurl and ghz into bin/ for debugging and load
# tests: export PATH="$$PWD/bin:$$PATH".
tools:
	$(GO) build -modfile=tools/go.mod -o $(BIN)/ github.com/fullstorydev/grpcurl/cmd/grpcurl github.com/bojand/ghz/cmd/ghz

# venv installs the pinned Python tools and the package itself (editable,
# so it reads gen/python in place). The stamp re-runs it when a pin changes.
venv: $(VENV)/.stamp
$(VENV)/.stamp: python/requirements-dev.txt python/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r python/requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e ./python
	touch $@

generate: $(VENV)/.stamp
	$(TOOL) buf generate
	rm -rf gen/python/catalyst
	mkdir -p gen/python
	$(PY) -m grpc_tools.protoc -I proto --python_out=gen/python --pyi_out=gen/python \
		--grpc_python_out=gen/python $(PROTOS)

test: check-generated lint redis go-test chaos-short py-test

# redis makes sure redis-server is installed: the quota tests run against a
# real one (they fail in CI, and skip elsewhere, without it).
redis:
	@command -v redis-server >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq redis-server >/dev/null; fi; }
	@redis-server --version

# check-generated fails when gen/ is not exactly what `make generate` makes.
check-generated: generate
	git diff --exit-code --stat -- gen/ || { echo "gen/ differs from 'make generate': run it and commit" >&2; exit 1; }
	test -z "$$(git status --porcelain -- gen/)" || { git status --porcelain -- gen/ >&2; echo "gen/ has files 'make generate' does not track: run it and commit" >&2; exit 1; }

lint:
	$(TOOL) buf lint
	$(TOOL) buf format -d --exit-code
	scripts/buf-breaking.sh
	test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'))" || { gofmt -l $$(git ls-files '*.go' | grep -v '^gen/') >&2; echo "gofmt needed" >&2; exit 1; }
	$(GO) vet ./...
	$(TOOL) staticcheck ./...

# go-test leaves the chaos package to chaos-short, which hands it the
# binaries build made rather than have it build them again.
go-test:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v '/chaos$$')

# The chaos run starts llmsim, a real redis-server and two sentimentd
# replicas on loopback. CHAOS_SEED repeats a run (its seed is printed);
# CHAOS_KEEP=dir keeps the children's logs.
CHAOS_BINS = SENTIMENTD_BIN=$(CURDIR)/$(BIN)/sentimentd LLMSIM_BIN=$(CURDIR)/$(BIN)/llmsim
CHAOS_SEED ?= 0

chaos-short: build redis
	$(CHAOS_BINS) $(GO) test -race -count=1 -v -timeout 5m ./chaos/ -chaos.seed=$(CHAOS_SEED)

chaos: build redis
	$(CHAOS_BINS) $(GO) test -count=1 -v -timeout 30m -run TestChaos ./chaos/ \
		-chaos.requests=10000 -chaos.rounds=5 -chaos.phase=6s -chaos.seed=$(CHAOS_SEED)

py-test: build $(VENV)/.stamp
	SENTIMENTD_BIN=$(CURDIR)/$(BIN)/sentimentd $(PY) -m pytest -q python/tests

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-ghz:
	scripts/bench-ghz.sh

demo:
	scripts/demo.sh

load: tools
	scripts/load.sh

perf: tools
	scripts/perf.sh

clean:
	rm -rf $(BIN) $(VENV)
