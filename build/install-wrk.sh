#!/usr/bin/env bash
# Installs Debian's wrk (closed-loop HTTP load, the saturation runs of
# build/bench.sh) and prints the path of its command.
. "$(dirname "$0")/lib.sh"

if ! command -v wrk >/dev/null 2>&1; then
  # apt_install's output goes to stderr so stdout is the path alone.
  apt_install wrk >&2
fi
command -v wrk
