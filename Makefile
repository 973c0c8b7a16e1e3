# Thin wrappers over the go command. See README.md.
GO      ?= go
BIN     ?= bin/healthgw
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# The full suite runs under the race detector; the timeout is generous
# because the machines are small and shared.
TESTFLAGS ?= -race -count=1 -timeout 25m
BENCHTIME ?= 1s
# Tests that take minutes (the full multi-party ceremony) run only when
# this is set; plain `go test ./...` leaves them out to fit Go's default
# 10-minute timeout.
export HEALTHGW_LONG_TESTS ?= 1

.PHONY: run build release test bench bench-peers bench-peers-comet soak timing lint fmt demo testnet testnet-start testnet-down testnet-check clean interop-deps

run: build
	./$(BIN) serve

# build compiles with the same settings as `go test` and `go vet` (no
# -trimpath, the default CGO_ENABLED), so they share the build cache:
# -trimpath and CGO_ENABLED=0 each change every package's cache key and
# made the first `make run` after `make test` compile everything again.
# (-ldflags only affects the link.) The race detector's builds cannot be
# shared either way. `make release` builds the static, path-free binary
# the container image ships.
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/healthgw

release:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/healthgw

# The race detector excludes the full ceremony test and the testnet test
# (both are built !race), so they run once more without it. TestTestnet
# is `make testnet-start`, `healthgw demo` at two members, `make
# testnet-down` and a second start, on free ports in a temporary
# directory (about two minutes on a small machine). `make testnet-check`
# runs it alone.
test:
	$(GO) test $(TESTFLAGS) ./...
	$(GO) test -count=1 -timeout 25m -run '^TestFullCeremony$$' ./circuits/ceremony/
	$(GO) test -count=1 -timeout 20m -run '^TestTestnet$$' ./cmd/healthgw/

testnet-check:
	$(GO) test -count=1 -timeout 20m -run '^TestTestnet$$' -v ./cmd/healthgw/

bench: timing
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 60m ./...

# healthgw against its peers on the same work (bench/peers, its own
# module): Tessera POSIX appends, bare gin + jwx reads, circom2 + snarkjs
# proofs (when node is installed; `npm ci` in bench/peers/zk first),
# openssl's AES-GCM, and the CometBFT kvstore pair of
# `make bench-peers-comet` where that target exists. Interleaved rounds,
# a ratio table on stdout; about 10 minutes with the defaults.
BENCH_ROUNDS  ?= 5
BENCH_SECONDS ?= 3
bench-peers:
	@if command -v npm >/dev/null 2>&1 && [ ! -d bench/peers/zk/node_modules ]; then \
		cd bench/peers/zk && npm ci --no-audit --no-fund --ignore-scripts; fi
	cd bench/peers && BENCH_ROUNDS=$(BENCH_ROUNDS) BENCH_SECONDS=$(BENCH_SECONDS) $(GO) run ./cmd/peers

# The statistical side-channel test of the read path (missing vs denied
# reads, with control pairs; sign test, no absolute thresholds). Behind
# the timing build tag so that `make test` and CI stay deterministic.
timing:
	$(GO) test -tags timing -run '^TestReadTiming$$' -count=1 -v -timeout 10m ./cmd/healthgw

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...

# The whole story against a running gateway (start it with `make run`).
demo: build
	./$(BIN) demo

# A 10-minute soak at 20 operations a second against a fresh gateway.
soak:
	./scripts/soak.sh 20 10m

# A local consortium: four hospital gateways, each with a CometBFT
# validator, as local processes on loopback ports 8081-8084 (see
# deploy/consortium/README.md). `make testnet` stays in the foreground
# (Ctrl-C stops it); testnet-start leaves it running in the background
# and testnet-down stops it.
testnet:
	./scripts/testnet.sh up

testnet-start:
	./scripts/testnet.sh start

testnet-down:
	./scripts/testnet.sh down

# The pinned node clients of the interop test (interop/); without them
# that test skips.
interop-deps:
	cd interop && npm ci --no-audit --no-fund --ignore-scripts

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

# healthgw's comet backend against CometBFT's kvstore on the same machine
# (four validators each, same configuration and submitters); prints one
# "PEER comet-vs-kvstore-<N>submitters ..." line per submitter count.
# BENCH_ROUNDS (3), BENCH_SECONDS (10) and BENCH_SUBMITTERS ("64,256")
# tune it; PEERFLAGS adds go test flags (e.g. -cpuprofile cpu.out).
PEERFLAGS ?=
bench-peers-comet:
	$(GO) test -run '^$$' -bench '^BenchmarkCometVsKVStore$$' -benchtime 1x -count 1 -timeout 60m $(PEERFLAGS) ./ledger/comet/
