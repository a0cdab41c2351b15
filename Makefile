# wasmgate: `make run` builds the plugin and serves the demo gateway;
# `make test` installs what is missing and runs every test. Tool versions are
# pinned in build/tools.env; tools install into $(WASMGATE_CACHE).

SHELL := /bin/bash
.DEFAULT_GOAL := build
include build/tools.env

export WASMGATE_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/wasmgate
TINYGO := $(WASMGATE_CACHE)/tinygo-$(TINYGO_VERSION)/bin/tinygo
ENVOY  := $(WASMGATE_CACHE)/envoy-$(ENVOY_VERSION)/bin/envoy
RATELIMIT := $(WASMGATE_CACHE)/ratelimit-$(RATELIMIT_VERSION)/bin/ratelimit
GO_SOURCES := go.mod go.sum $(shell find cmd/plugin filter policy -name '*.go' -not -name '*_test.go')
EMPTY_SOURCES := go.mod go.sum $(wildcard internal/emptyplugin/*.go)
# Build commands of each SDK, shared by the plugin and the benchmark's empty plugin.
GO_WASM_BUILD = GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags='-s -w'
# TinyGo flags: every step tried, with its bytes and its instructions per
# request, is in docs/BENCHMARKS.md ("Module size"). -opt=z would make the
# module 21 % smaller and each request about 15 % more instructions.
TINYGO_OPT ?= 2
TINYGO_TAGS ?= custommalloc
TINYGO_BUILD  = $(TINYGO) build -target=wasi -scheduler=none -buildmode=wasi-legacy -no-debug -opt=$(TINYGO_OPT) -tags=$(TINYGO_TAGS)
# The Go modules: the plugin's (.) and the tooling beside it (e2e/harness:
# what both end-to-end modules share).
MODULES := . cmd/wasmgate e2e e2e/harness

.PHONY: build small bench-scale bench-modules tinygo envoy registry ratelimit redis registry-serve tools run test test-e2e test-istio bench-tools bench bench-soak bench-global check clean image push wasmplugin

build: out/wasmgate-go.wasm out/wasmgate-tinygo.wasm ## build both plugin modules

# Upstream Go: a reactor module (c-shared exports _initialize), stripped.
out/wasmgate-go.wasm: $(GO_SOURCES)
	@mkdir -p out
	$(GO_WASM_BUILD) -o $@ ./cmd/plugin

# TinyGo: wasi-legacy keeps the VM alive after main returns; custommalloc drops
# TinyGo's malloc export, which Envoy would use to hand data to the plugin and
# which keeps every block until a free the SDK never calls (the plugin exports
# its own, filter/hostmem_wasm.go).
out/wasmgate-tinygo.wasm: $(GO_SOURCES) | $(TINYGO)
	@mkdir -p out
	$(TINYGO_BUILD) -o $@ ./cmd/plugin

# The small module: the TinyGo build without Go's regexp (it refuses a
# policy with a regex match or uriRegexRewrite, naming the field), for size.
small: out/wasmgate-tinygo-noregex.wasm ## build the TinyGo module without regex support (out/wasmgate-tinygo-noregex.wasm)
out/wasmgate-tinygo-noregex.wasm: TINYGO_OPT = z
out/wasmgate-tinygo-noregex.wasm: $(GO_SOURCES) | $(TINYGO)
	@mkdir -p out
	$(TINYGO_BUILD),wasmgate_noregex -o $@ ./cmd/plugin

# The benchmark's floor: a plugin that does nothing, built like the plugin.
bench-modules: out/empty-go.wasm out/empty-tinygo.wasm
out/empty-go.wasm: $(EMPTY_SOURCES)
	@mkdir -p out
	$(GO_WASM_BUILD) -o $@ ./internal/emptyplugin
out/empty-tinygo.wasm: $(EMPTY_SOURCES) | $(TINYGO)
	@mkdir -p out
	$(TINYGO_BUILD) -o $@ ./internal/emptyplugin

tinygo: $(TINYGO) ## install TinyGo into the tools cache
$(TINYGO):
	bash build/install-tinygo.sh >/dev/null

envoy: $(ENVOY) ## install Envoy into the tools cache
$(ENVOY):
	bash build/install-envoy.sh >/dev/null

registry: ## install Debian's docker-registry (CNCF Distribution) for the registry tests
	bash build/install-registry.sh >/dev/null

ratelimit: $(RATELIMIT) ## install envoyproxy/ratelimit (Envoy's rate limit service) into the tools cache
$(RATELIMIT):
	bash build/install-ratelimit.sh >/dev/null

redis: ## install Debian's redis-server, the rate limit service's store
	bash build/install-redis.sh >/dev/null

tools: tinygo envoy registry ratelimit redis ## install every tool the tests need

RUN_WASM ?= out/wasmgate-go.wasm
# POLICY given to make run (JSON or YAML) replaces envoy.yaml's policy.
RUN_POLICY = $(if $(filter command line environment,$(origin POLICY)),$(POLICY))
run: $(RUN_WASM) envoy ## build the plugin and serve the demo gateway (POLICY, GATEWAY_PORT, ADMIN_PORT, RUN_WASM)
	@POLICY='$(RUN_POLICY)' bash build/demo.sh $(RUN_WASM)

test: tools build ## install what is missing and run every test
	go version
	$(ENVOY) --version | grep -o 'version: .*'
	set -e; for m in $(MODULES); do echo "== module $$m"; (cd $$m && go test -count=1 -timeout 30m ./...); done
	$(MAKE) test-istio
	# The filter's Go leg once more with the TinyGo build's SDK shim.
	go test -count=1 -tags wasmgate_tetrate ./filter
	# The soak: fails when a module's memory grows over 1M requests.
	go test -count=1 ./filter -run '^$$' -bench 'Wasm_(Request|KeyedLimit)' -benchtime 1000000x

bench-tools: ## install the benchmark's load generators: Debian's wrk, vegeta (Go, pinned)
	bash build/install-wrk.sh >/dev/null
	bash build/install-vegeta.sh >/dev/null

# BENCH_ROUNDS, BENCH_DURATION, ... tune both (see build/bench.sh).
bench: build bench-modules envoy bench-tools ## the plugin against Envoy's native filters, one worker (about 8 minutes)
	bash build/bench.sh compare

bench-scale: build ## how a request's cost grows with routes, headers and limit keys, both modules on wazero; installs Debian's valgrind (docs/BENCHMARKS.md)
	go test ./filter -count=1 -timeout 30m -run '^$$' -bench 'Wasm_Scale$$' -benchtime 2000x
	go test ./filter -count=1 -timeout 30m -run '^$$' -bench 'Wasm_ScaleKeys' -benchtime 1000000x
	bash build/scale-instructions.sh

bench-soak: build bench-modules envoy bench-tools ## Envoy's memory over 1M requests per build (about 5 minutes)
	bash build/bench.sh soak

bench-global: build envoy ratelimit redis ## added cost of a global limit vs Envoy's native rate limit filter (about 2 minutes)
	cd e2e && go test -count=1 -run 'TestGlobalLimit_Bench' -global-bench $(or $(GLOBAL_BENCH_REQUESTS),5000) -v . | grep -v 'envoy ready'

test-e2e: envoy ratelimit redis build ## only the end-to-end tests against a real Envoy
	cd e2e && go test -count=1 .

# Its own module, out of go.work: Istio's dependencies would move the others'
# versions. The first build compiles Istio's control plane (minutes).
test-istio: envoy registry build ## both builds through Istio's discovery server and a real Envoy gateway
	cd e2e/istio && GOWORK=off go test -count=1 -timeout 30m ./...

# Delivery: the OCI image Istio's WasmPlugin pulls, and the WasmPlugin itself.
REGISTRY      ?= 127.0.0.1:5000/wasmgate
TAG           ?= dev
POLICY        ?= deploy/policy.json
IMAGE_WASM    ?= out/wasmgate-tinygo.wasm
IMAGE_VARIANT ?= compat
WASMGATE := go run ./cmd/wasmgate

registry-serve: registry ## serve a loopback registry at 127.0.0.1:5000, stored in out/registry
	docker-registry serve build/registry.yml

image: $(IMAGE_WASM) ## print the manifest digest of IMAGE_WASM's image (no registry needed)
	@$(WASMGATE) image digest -wasm $(IMAGE_WASM) -variant $(IMAGE_VARIANT)

push: $(IMAGE_WASM) ## push IMAGE_WASM to REGISTRY:TAG and print the manifest digest
	@$(WASMGATE) image push -wasm $(IMAGE_WASM) -ref $(REGISTRY):$(TAG) -variant $(IMAGE_VARIANT)

RENDER_FLAGS  ?=
wasmplugin: $(IMAGE_WASM) ## render out/istio.yaml (WasmPlugin + VirtualService) for POLICY and REGISTRY:TAG (RENDER_FLAGS)
	$(WASMGATE) render -policy $(POLICY) -ref $(REGISTRY):$(TAG) -wasm $(IMAGE_WASM) -variant $(IMAGE_VARIANT) $(RENDER_FLAGS) > out/istio.yaml.tmp
	mv out/istio.yaml.tmp out/istio.yaml

# The shipped example: keeps its comment header, re-renders the rest with a
# placeholder manifest digest (64 zeros) where an image's goes, so a new
# build of the plugin does not change it. `make push` prints the real digest
# and `make wasmplugin` writes it. TestRender_Deploy fails when the file
# differs from a fresh render in anything but the digest.
# Its hintKey is a placeholder too: `make wasmplugin` renders a random one.
PLACEHOLDER_DIGEST := sha256:0000000000000000000000000000000000000000000000000000000000000000
PLACEHOLDER_HINT_KEY := REPLACE-this-example-hint-key
deploy/istio.yaml: deploy/policy.json
	{ sed '/^[^#]/,$$d' $@; $(WASMGATE) render -policy deploy/policy.json -ref registry.example.com/wasmgate:0.1.0 -digest $(PLACEHOLDER_DIGEST) -hint-key $(PLACEHOLDER_HINT_KEY) -new-gateway; } > $@.tmp
	mv $@.tmp $@

check: ## format, vet, regenerate, tidy; fails on a dirty tree
	gofmt -w $$(git ls-files '*.go')
	go generate ./...
	set -e; for m in $(MODULES); do (cd $$m && go vet ./... && GOWORK=off go mod tidy); done
	cd e2e/istio && GOWORK=off go vet ./... && GOWORK=off go mod tidy
	git diff --exit-code

# Each Go fuzz target (func Fuzz* in a _test.go file) for FUZZTIME; not part
# of make test or CI, whose runs stay bounded and deterministic.
FUZZTIME ?= 60s
.PHONY: fuzz
fuzz: ## run every Go fuzz target for FUZZTIME each (default 60s)
	@set -e; for f in $$(git ls-files '*_test.go'); do \
	  for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$(dirname $$f) $$name"; \
	    (cd $$(dirname $$f) && go test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) .); \
	  done; \
	done

clean:
	rm -rf out
