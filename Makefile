# qlaunch — thin targets over go and the scripts in .ci/ and lab/.
# `make` alone prints this menu.

GO        ?= go
BIN       ?= bin/qlaunch
FUZZTIME  ?= 2s
# VERSION is what qlaunch version prints: the source revision here.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS   ?= $(if $(VERSION),-X github.com/qlaunch/qlaunch/cmd/cli.version=$(VERSION))
# PYTHON runs the Python package (python/): Debian's python3 has its dependencies.
PYTHON    ?= /usr/bin/python3
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)

.DEFAULT_GOAL := help

.PHONY: help
help: ## print this menu
	@grep -hE '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/qlaunch (pure Go, CGO_ENABLED=0)
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/qlaunch

.PHONY: build-mpi
build-mpi: ## build bin/qlaunch-mpi with the Open MPI bootstrap (needs libopenmpi-dev)
	$(GO) build -tags mpi -ldflags '$(LDFLAGS)' -o bin/qlaunch-mpi ./cmd/qlaunch

.PHONY: demo
demo: build ## the main job: synthesise a Toffoli gate on a runtime started here (attached mode)
	$(BIN) run configs/local.toml -- $(BIN) synth --target toffoli

.PHONY: deps
deps: ## install what the tests need (Debian packages, staticcheck, the SLURM lab); needs root
	.ci/deps

# make check's two test lanes; together they run every test (see README,
# "Testing"). The race lane (test) runs every package; tests of numeric
# results that exercise no concurrency, and the largest inputs of
# single-goroutine code, skip or shrink there (raceEnabled in the package's
# race_test.go says which and why) and run in full in the one-CPU lane.
# The one-CPU lane (test-cpu1, GOMAXPROCS=1 in the test binary, no race
# detector) catches code that assumes parallelism; it leaves out ./lab,
# whose tests only start and wait for SLURM jobs of binaries built the same
# way in either lane, so a second run would repeat the race lane's.
CPU1_PKGS = $(shell $(GO) list ./... | grep -v '/lab$$')
# For the same reason the one-CPU lane skips (CPU1_SKIP) the tests whose
# code under test runs only in other processes: qlaunch binaries that
# TestMain or the test builds without the race detector in both lanes,
# python3, pyflakes, go build. -cpu=1 sets GOMAXPROCS in the test binary
# alone, so these would run exactly as in the race lane. Tests that also
# drive in-process code (a client.Dial, a kernel in the test binary) stay.
CPU1_SKIP = ^(TestPythonSuite|TestPythonOneSlot|TestPythonExample|TestPythonClientAnswersHeartbeats|TestPythonTopologyEnv|TestPythonPinning|TestPyflakes|TestPythonInterruptLeavesNothing|TestPythonBench|TestPythonTopologySettings|TestPythonTopologyBadKey|TestPythonRetryableRankKilled|TestPythonClientTLS|TestCustomKernelBinary|TestSubmitInputTooLarge|TestClientMisdials|TestWaitPlannedTree|TestWaitPastAStaleFile|TestDemoSummary|TestAttachedRunTLS|TestPureGoBuild)$$

.PHONY: test
test: ## the race lane: every test of every package with the race detector
	$(GO) test -race -timeout 30m ./...

.PHONY: test-cpu1
test-cpu1: ## the one-CPU lane: the tests once more on one CPU without the race detector (all but ./lab and the CPU1_SKIP tests of other processes)
	$(GO) test -cpu=1 -timeout 30m -skip '$(CPU1_SKIP)' $(CPU1_PKGS)

.PHONY: fuzz-short
fuzz-short: ## run every fuzz target briefly (FUZZTIME each; one instrumented test binary per package)
	FUZZTIME=$(FUZZTIME) .ci/fuzz-short

.PHONY: fuzz-long
fuzz-long: ## long fuzzing outside CI: every target for FUZZTIME (here 3m unless given; FUZZPKGS=./launcher/wire narrows); prints executions and crashes
	FUZZTIME=$(if $(filter command line environment,$(origin FUZZTIME)),$(FUZZTIME),3m) FUZZPKGS='$(or $(FUZZPKGS),./...)' FUZZSAVE='$(FUZZSAVE)' .ci/fuzz-long

.PHONY: bench
bench: build bench-go ## the Go benchmarks once, then on one attached runtime the Go workloads beside raw-TCP baselines (one hop, the runtime's three-process shape) and the Python workloads beside the Go kernels and the peers (BQSKit, Dask), with ratios
	$(BIN) run configs/local.toml -- sh -c '$(BIN) bench --workload all && PYTHONPATH=python $(PYTHON) -m qlaunch.bench --qlaunch $(BIN)'

.PHONY: bench-python
bench-python: build ## the Python workloads alone on an attached runtime: ratios against the Go kernels of the same run and the peers' figures (BQSKit, Dask)
	$(BIN) run configs/local.toml -- env PYTHONPATH=python $(PYTHON) -m qlaunch.bench --qlaunch $(BIN)

.PHONY: bench-go
bench-go: ## every Go benchmark once (wire, plan, kernels, workloads in process)
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...

.PHONY: bench-synth
bench-synth: ## toffoli synthesis on attached runtimes of 1 and 2 worker slots, side by side: the speed-up
	$(GO) test -run='^$$' -bench=SynthToffoliSlots -benchtime=20x ./cmd/cli

.PHONY: bench-compile
bench-compile: ## compile the generated benchmark circuits (Heisenberg, TFIM, Hubbard, QAOA, QFT, adder, Grover, random) for every preset gate set, all-to-all and on a line, at level 3: counts before/after, error bound, seconds, speed-up from 1 slot to the whole runtime (under qlaunch run: its tree; else NumCPU slots)
	$(GO) test -run='^$$' -bench=CompileSet -benchtime=1x -timeout 60m ./cmd/cli

.PHONY: bench-scale
bench-scale: ## the scale simulation: 1 server, 64 managers, 4,096 slots, beside a small tree
	$(GO) test -run='^$$' -bench=Scale -benchtime=1x ./launcher/bench

RELREPORT ?= $(CURDIR)/bin/reliability.tsv

.PHONY: reliability
reliability: ## fault matrix, exactly-once, hostile input, short soak on real processes; prints a table
	@mkdir -p $(dir $(RELREPORT)); rm -f $(RELREPORT)
	@QLAUNCH_CHAOS_RUNS=20 QLAUNCH_RELIABILITY_REPORT=$(RELREPORT) $(GO) test -race -count=1 -timeout 10m ./reliability/; s=$$?; \
	  $(GO) run ./reliability/reldriver table $(RELREPORT); exit $$s

.PHONY: reliability-long
reliability-long: ## the long soak (10^6 tiny tasks, 10^4 of 1 MiB) through qlaunch run, the long chaos test, the 10^7-task admission bound and a stalled client with 10^6 results; prints a table
	@mkdir -p $(dir $(RELREPORT)); rm -f $(RELREPORT)
	@QLAUNCH_SOAK=1 QLAUNCH_RELIABILITY_REPORT=$(RELREPORT) $(GO) test -count=1 -run 'Soak|Chaos|Admission|StalledClient' -v -timeout 60m ./reliability/; s=$$?; \
	  $(GO) run ./reliability/reldriver table $(RELREPORT); exit $$s

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if pkg-config --exists ompi-c 2>/dev/null; then echo "go vet -tags mpi"; $(GO) vet -tags mpi ./rank/... ./launcher/boot/... ./cmd/...; fi
	$(STATICCHECK) ./...

.PHONY: tidy-check
tidy-check: ## fail when go.mod or go.sum are not tidy
	$(GO) mod tidy -diff

.PHONY: lab-up
lab-up: ## bring up the 3-node SLURM lab on this machine (root); its files in /run/qlaunch-lab, SLURM_CONF=/run/qlaunch-lab/slurm.conf
	lab/up.sh

.PHONY: lab-down
lab-down: ## stop the SLURM lab and undo exactly what lab-up changed
	lab/down.sh

.PHONY: check
check: deps lint tidy-check test test-cpu1 fuzz-short ## everything CI runs: install, lint, race tests, a one-CPU lane, short fuzzing
