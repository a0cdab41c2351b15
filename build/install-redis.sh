#!/usr/bin/env bash
# Installs Debian's redis-server, the store of the rate limit service, and
# prints the path of its command. The package's own service is not used: the
# tests start their own instance on a loopback port with a throw-away
# directory.
. "$(dirname "$0")/lib.sh"

if ! command -v redis-server >/dev/null 2>&1; then
  # apt_install's output goes to stderr so stdout is the path alone.
  apt_install redis-server >&2
fi
command -v redis-server
