#!/usr/bin/env bash
# Installs vegeta (open-loop HTTP load at a fixed rate, the latency runs of
# build/bench.sh) into the tools cache ($WASMGATE_CACHE/vegeta-$VEGETA_VERSION)
# with `go install` at the pinned version, and prints the path of its command.
. "$(dirname "$0")/lib.sh"

prefix="$WASMGATE_CACHE/vegeta-$VEGETA_VERSION"
bin="$prefix/bin/vegeta"
if [ ! -x "$bin" ]; then
  {
    work=$(mktemp -d "$WASMGATE_CACHE/.vegeta-install.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    GOBIN="$work/bin" GOFLAGS=-mod=mod GOWORK=off go install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
    "$work/bin/vegeta" -version
    rm -rf "$prefix"
    mkdir -p "$prefix"
    mv "$work/bin" "$prefix/bin"
  } >&2
fi
echo "$bin"
