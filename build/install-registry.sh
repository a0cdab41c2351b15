#!/usr/bin/env bash
# Installs Debian's docker-registry (CNCF Distribution 2.8), the real registry
# the registry integration test pushes to, and prints the path of its command.
#
# The package's own service and config are not used: the test and `make
# registry-serve` run `docker-registry serve build/registry.yml` on loopback.
. "$(dirname "$0")/lib.sh"

if ! command -v docker-registry >/dev/null 2>&1; then
  # apt_install's output goes to stderr so stdout is the path alone.
  apt_install docker-registry >&2
fi
command -v docker-registry
