# Shared helpers for the build/ installers. Source it; do not run it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=build/tools.env
. "$here/tools.env"

# WASMGATE_CACHE holds installed tools, keyed by version, outside the clone.
WASMGATE_CACHE=${WASMGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmgate}
export WASMGATE_CACHE
mkdir -p "$WASMGATE_CACHE"

# apt_install installs Debian packages that are missing, retrying while another
# apt/dpkg holds the lock.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  for i in $(seq 1 20); do
    if $sudo apt-get -o DPkg::Lock::Timeout=60 update -q &&
       $sudo apt-get -o DPkg::Lock::Timeout=60 install -y -q --no-install-recommends "${missing[@]}"; then
      return 0
    fi
    echo "apt-get failed (try $i), retrying in 10s" >&2
    sleep 10
  done
  return 1
}
