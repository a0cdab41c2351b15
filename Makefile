# wasmgate: `make run` builds the plugin and serves the demo gateway;
# `make test` installs what is missing and runs every test. Tool versions are
# pinned in build/tools.env; tools install into $(WASMGATE_CACHE).

SHELL := /bin/bash
.DEFAULT_GOAL := build
include build/tools.env

export WASMGATE_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/wasmgate
TINYGO := $(WASMGATE_CACHE)/tinygo-$(TINYGO_VERSION)/bin/tinygo
ENVOY  := $(WASMGATE_CACHE)/envoy-$(ENVOY_VERSION)/bin/envoy
GO_SOURCES := go.mod go.sum $(shell find cmd/wasmgate filter policy -name '*.go' -not -name '*_test.go')

.PHONY: build tinygo envoy registry tools run test test-unit test-e2e bench soak check clean

build: out/wasmgate-go.wasm out/wasmgate-tinygo.wasm ## build both plugin modules

# Upstream Go: a reactor module (c-shared exports _initialize), stripped.
out/wasmgate-go.wasm: $(GO_SOURCES)
	@mkdir -p out
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags='-s -w' -o $@ ./cmd/wasmgate

# TinyGo: wasi-legacy keeps the VM alive after main returns.
out/wasmgate-tinygo.wasm: $(GO_SOURCES) | $(TINYGO)
	@mkdir -p out
	$(TINYGO) build -o $@ -target=wasi -scheduler=none -buildmode=wasi-legacy -no-debug -opt=2 ./cmd/wasmgate

tinygo: $(TINYGO) ## install TinyGo into the tools cache
$(TINYGO):
	bash build/install-tinygo.sh >/dev/null

envoy: $(ENVOY) ## install Envoy into the tools cache
$(ENVOY):
	bash build/install-envoy.sh >/dev/null

tools: tinygo envoy registry

run: out/wasmgate-go.wasm envoy ## build the plugin and serve the demo gateway
	bash build/demo.sh out/wasmgate-go.wasm

test: tools build ## install what is missing and run every test
	go version
	go test -count=1 ./...

check: ## format, vet, regenerate, tidy; fails on a dirty tree
	gofmt -w $$(git ls-files '*.go')
	go generate ./...
	go vet ./...
	go mod tidy
	git diff --exit-code

clean:
	rm -rf out
