# scimflow: make help lists the targets.
GO      ?= go
PKG     ?= ./...
T       ?=
BIN     := bin
# staticcheck, pinned, run through the Go toolchain (downloaded into the module cache on first use).
# v0.8.2 is staticcheck 2026.2.2, which supports Go 1.26. Package-level exclusions live in
# staticcheck.conf files beside the code they concern, each with its reason.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Knobs of the chaos suite, e.g. CHAOS_FLAGS="-seed 42 -keys 200 -events 2000" (docs/chaos.md).
# `make chaos` and `make test` run it at full scale (20,000 events over 2,000 keys, about 4 minutes),
# then with the JetStream server down 15 s (8,000 events over 800 keys, about 2 minutes).
CHAOS_FLAGS ?=
# Knobs of make bench, e.g. BENCH_FLAGS="-pairs 3 -users 5000" or "-parts overhead,census" (docs/benchmarks.md).
BENCH_FLAGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## download the Go modules the build and tests need
	$(GO) mod download

.PHONY: build
build: deps ## build worker, publisher and cyberark-sim into bin/
	$(GO) build -o $(BIN)/ ./cmd/...

.PHONY: demo
demo: build ## run the whole product in process on the sample events and print the outcomes
	./$(BIN)/worker demo --config deploy/examples/config.yaml --events deploy/examples/events.jsonl

.PHONY: test
test: deps ## the whole suite: gofmt, vet and staticcheck, every test under the race detector, the 1000-user demo timed without it, then make test-browser, make test-containers and make chaos (T=Name PKG=./internal/x/... for one test, without chaos)
ifeq ($(T)$(PKG),./...)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags scimflow_ablate ./cmd/worker ./internal/ablate ./internal/inventory
	$(STATICCHECK) ./...
	$(GO) test -race -count=1 -timeout 9m ./...
	$(GO) test -count=1 -timeout 3m -v -run 'TestDemoOfAThousandGeneratedUsers' ./cmd/worker
	$(MAKE) --no-print-directory test-browser
	$(MAKE) --no-print-directory test-containers
	$(MAKE) --no-print-directory chaos
else
	$(GO) test -race -count=1 -timeout 8m $(if $(T),-run '$(T)') $(PKG)
endif

.PHONY: test-browser
test-browser: deps ## the operator page in headless chromium (installed with apt when missing); screenshot in bin/operator-page.png
	./tools/ensure-chromium.sh
	$(GO) vet -tags browser ./cmd/worker
	@mkdir -p $(BIN)
	SCREENSHOT=$(abspath $(BIN))/operator-page.png $(GO) test -tags browser -count=1 -timeout 5m -v -run 'Browser' ./cmd/worker

.PHONY: test-containers
test-containers: deps ## the deploy/ stack in containers (testcontainers-go): 3 JetStream nodes, simulator, 2 workers; a Docker engine is installed and started for it, and stopped after
	$(GO) vet -tags containers ./test/containers
	@host=$$(./tools/docker-engine.sh start) || { echo "test-containers: no Docker engine could be started here (tools/docker-engine.sh above says why)"; exit 1; }; \
	  DOCKER_HOST=$$host TESTCONTAINERS_RYUK_DISABLED=true $(GO) test -tags containers -count=1 -timeout 10m -v -run 'Containers' ./test/containers; \
	  rc=$$?; ./tools/docker-engine.sh stop; exit $$rc

.PHONY: screenshot
screenshot: ## refresh docs/operator-page.png from the browser test
	$(MAKE) --no-print-directory test-browser BIN=bin
	cp $(BIN)/operator-page.png docs/operator-page.png

.PHONY: chaos
chaos: deps ## the chaos suite: real processes, kill -9, broker restart, target faults; checks outcomes, order and final state (CHAOS_FLAGS, docs/chaos.md); then make chaos-outage
	$(GO) run ./chaos $(CHAOS_FLAGS)
	$(MAKE) --no-print-directory chaos-outage

.PHONY: chaos-outage
chaos-outage: deps ## the chaos suite with the JetStream server down 15 s, past the pool's TTL (8,000 events over 800 keys)
	$(GO) run ./chaos -broker-down 15s -keys 800 -events 8000 $(CHAOS_FLAGS)

.PHONY: bench
bench: deps ## issue 10's harness (under 10 minutes): worker against a bare loop, latency scaling, end-to-end latency, scale-out, micro-benchmarks; prints one table, rewrites docs/benchmarks.md (BENCH_FLAGS)
	$(GO) run ./tools/bench $(BENCH_FLAGS)

.PHONY: bench-all
bench-all: bench ## make bench, then the soak (one worker, 300,000 events: does an event cost more as the worker ages), every Go benchmark once (-benchtime 1x), bench-inventory and bench-writes
	$(GO) run ./tools/bench -parts soak -docs ""
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 20m ./...
	$(MAKE) --no-print-directory bench-inventory
	$(MAKE) --no-print-directory bench-writes

.PHONY: bench-writes
bench-writes: deps ## the JetStream server's CPU per event for what the worker stores, laid out three ways (today's writes, a keyed outcome, a republishing ledger) and against the bare loop's one write: docs/design-notes.md, "One durable write per event"
	$(GO) run ./tools/bench-writes

.PHONY: bench-inventory
bench-inventory: deps ## full inventory at scale: 100k users + 10k groups (1M memberships), then 1M users; wall time, objects/s, peak RSS (INVENTORY_SIZES)
	$(GO) run ./tools/bench-inventory $(if $(INVENTORY_SIZES),-sizes $(INVENTORY_SIZES))

.PHONY: lint
lint: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) vet -tags scimflow_ablate ./cmd/worker ./internal/ablate ./internal/inventory
	$(STATICCHECK) ./...

.PHONY: clean
clean: ## remove build output and local data
	rm -rf $(BIN) data
