#!/usr/bin/env bash
# Installs envoyproxy/ratelimit (Envoy's rate limit service) into the tools
# cache ($WASMGATE_CACHE/ratelimit-$RATELIMIT_VERSION) and prints the path of
# its command. Re-uses an existing install. Built from source with `go
# install` through the Go module proxy.
. "$(dirname "$0")/lib.sh"

prefix="$WASMGATE_CACHE/ratelimit-$RATELIMIT_VERSION"
bin="$prefix/bin/ratelimit"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

{
work=$(mktemp -d "$WASMGATE_CACHE/.ratelimit-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/prefix/bin"
GOBIN="$work/bin" GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 \
  go install "github.com/envoyproxy/ratelimit/src/service_cmd@$RATELIMIT_VERSION"
mv "$work/bin/service_cmd" "$work/prefix/bin/ratelimit"
rm -rf "$prefix"
mv "$work/prefix" "$prefix"
} >&2
echo "$bin"
