#!/usr/bin/env bash
# Serves the demo gateway of envoy.yaml until Ctrl-C: the two demo upstreams
# (cmd/demo-upstream) and Envoy with the plugin. The body of `make run`.
#
# Usage: [POLICY=FILE] [GATEWAY_PORT=10000] [ADMIN_PORT=9901] build/demo.sh [WASM]
#   WASM    the plugin module (default out/wasmgate-go.wasm); it must be built.
#   POLICY  a policy (JSON or YAML) to serve instead of envoy.yaml's: the
#           configuration comes from `wasmgate envoy-config`, with a demo
#           upstream per destination on a port the kernel picks.
# Envoy is $WASMGATE_ENVOY, else the tools-cache install (installed if missing).
# Envoy's log goes to out/envoy.log. Taken ports are refused before anything
# starts; Ctrl-C stops everything and exits 0.
. "$(dirname "$0")/lib.sh"
root=$(cd "$here/.." && pwd)
cd "$root"

wasm=${1:-out/wasmgate-go.wasm}
if [ ! -f "$wasm" ]; then
  echo "demo: $wasm not found: run \`make build\` (or \`make run\`, which builds it)" >&2
  exit 1
fi
wasm=$(cd "$(dirname "$wasm")" && pwd)/$(basename "$wasm")
envoy=${WASMGATE_ENVOY:-$(bash "$here/install-envoy.sh")}
command -v curl >/dev/null || apt_install curl

# The ports of envoy.yaml, unless GATEWAY_PORT / ADMIN_PORT say otherwise.
gateway_port=${GATEWAY_PORT:-10000}
admin_port=${ADMIN_PORT:-9901}
gateway=http://127.0.0.1:$gateway_port
admin=http://127.0.0.1:$admin_port
policy=${POLICY:-}
if [ -n "$policy" ] && [ ! -f "$policy" ]; then
  echo "demo: POLICY=$policy: no such file" >&2
  exit 1
fi

# Refuse taken ports now, before anything starts or out/envoy.log is touched.
port_taken() { (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=("$gateway_port:the gateway (GATEWAY_PORT)" "$admin_port:the admin interface (ADMIN_PORT)")
[ -n "$policy" ] || ports+=("18081:envoy.yaml's product-service upstream" "18082:envoy.yaml's product-service-v2 upstream")
for entry in "${ports[@]}"; do
  if port_taken "${entry%%:*}"; then
    echo "demo: port ${entry%%:*} for ${entry#*:} is taken: is another demo running? Stop it, or pick free ports: make run GATEWAY_PORT=... ADMIN_PORT=..." >&2
    exit 1
  fi
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  trap - EXIT INT TERM
  set +m # no job-status lines for the children stopped here
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  wait
  rm -rf "$tmp"
  echo "demo: stopped" >&2
}
trap cleanup EXIT
# Stopping is the normal end of a demo: exit 0, so make reports no error.
trap 'exit 0' INT TERM

go build -o "$tmp/demo-upstream" ./cmd/demo-upstream
go build -o "$tmp/wasmgate" ./cmd/wasmgate
# Job control puts each child in its own process group, so Ctrl-C reaches only
# this script, which then stops the children in order.
set -m
if [ -z "$policy" ]; then
  "$tmp/demo-upstream" -listen 127.0.0.1:18081 -name product-service -version v1 &
  pids+=($!)
  "$tmp/demo-upstream" -listen 127.0.0.1:18082 -name product-service-v2 -version v2 &
  pids+=($!)
  # envoy.yaml with the module asked for and the ports.
  "$tmp/wasmgate" envoy-config -wasm "$wasm" -gateway-port "$gateway_port" -admin-port "$admin_port" > "$tmp/envoy.yaml"
else
  if ! "$tmp/wasmgate" lint "$policy" >&2; then
    echo "demo: $policy is not a valid policy" >&2
    exit 1
  fi
  # One upstream per cluster the policy needs: it answers as the destination's
  # host, its version the destination's hint (the cluster's name).
  upstream_flags=()
  upstream_list=""
  n=0
  while read -r cluster host; do
    n=$((n + 1))
    # The kernel may hand out a GATEWAY_PORT or ADMIN_PORT in its ephemeral
    # range: an upstream that got one is started again.
    for _ in 1 2 3 4 5; do
      : >"$tmp/upstream-$n.log"
      "$tmp/demo-upstream" -listen 127.0.0.1:0 -name "$host" -version "$cluster" 2>"$tmp/upstream-$n.log" &
      upstream_pid=$!
      pids+=("$upstream_pid")
      addr=""
      for _ in $(seq 1 100); do
        addr=$(sed -n 's/.*listening on \(.*\)$/\1/p' "$tmp/upstream-$n.log")
        [ -n "$addr" ] && break
        sleep 0.1
      done
      case "${addr##*:}" in
        "$gateway_port" | "$admin_port") kill -TERM "$upstream_pid"; wait "$upstream_pid" 2>/dev/null || true ;;
        *) break ;;
      esac
    done
    [ -n "$addr" ] || { echo "demo: the upstream for $cluster did not start:" >&2; cat "$tmp/upstream-$n.log" >&2; exit 1; }
    upstream_flags+=(-upstream "$cluster=$addr")
    upstream_list+="  $cluster: http://$addr"$'\n'
  done < <("$tmp/wasmgate" envoy-config -policy "$policy" -clusters)
  "$tmp/wasmgate" envoy-config -policy "$policy" -wasm "$wasm" -route-header \
    -gateway-port "$gateway_port" -admin-port "$admin_port" "${upstream_flags[@]}" > "$tmp/envoy.yaml"
fi

mkdir -p out
log=out/envoy.log
version=$("$envoy" --version | sed -n 's|.*version: [^/]*/\([^/]*\)/.*|\1|p')
echo "demo: starting Envoy $version with $wasm (log: $log)" >&2
"$envoy" -c "$tmp/envoy.yaml" --concurrency 2 --disable-hot-restart --log-level info > "$log" 2>&1 &
envoy_pid=$!
pids+=("$envoy_pid")

for _ in $(seq 1 300); do
  if ! kill -0 "$envoy_pid" 2>/dev/null; then
    echo "demo: Envoy exited; the end of $log:" >&2
    grep -v '\]   [a-z]' "$log" | tail -n 20 >&2
    exit 1
  fi
  [ "$(curl -s "$admin/ready" || true)" = LIVE ] && break
  sleep 0.2
done
[ "$(curl -s "$admin/ready" || true)" = LIVE ] || { echo "demo: Envoy not ready after 60s (see $log)" >&2; exit 1; }

if [ -n "$policy" ]; then
  cat <<EOF

wasmgate demo gateway on $gateway (admin $admin) serving $policy. Ctrl-C stops it.
Upstreams, one per destination, answer with JSON describing the request they received:
$upstream_list
# Send a request through the gateway: x-wasmgate-route names the policy route that matched
curl -si $gateway/

# Replay recorded requests through the same module, without Envoy
go run ./cmd/wasmgate simulate -policy $policy -wasm $wasm REQUESTS.jsonl

# The plugin's counters, and its log lines
curl -s $admin/stats | grep wasmgate
grep 'wasm log' $log

EOF
else
cat <<EOF

wasmgate demo gateway on $gateway (admin $admin). Ctrl-C stops it.
Upstreams answer with JSON describing the request they received.

# Rewrite: /products/123?x=1 arrives upstream as /123?x=1
curl -s '$gateway/products/123?x=1'

# Headers: x-forwarded-proto added, x-internal-debug removed, x-served-by returned
curl -si -H 'x-internal-debug: 1' $gateway/products/1

# Canary: about 1 request in 10 reaches v2
curl -s "$gateway/products/[1-50]" | grep '"version"' | sort | uniq -c

# Canary override for testers
curl -s -H 'x-canary: product-service-v2' $gateway/products/1

# Sticky: one user always reaches the same version
curl -s -H 'x-user-id: alice' "$gateway/products/[1-10]" | grep '"version"' | sort | uniq -c

# Rate limit (100-token bucket, 10 tokens/s shared by both workers): a burst gets 429s
curl -s -o /dev/null -w '%{http_code}\n' "$gateway/products/[1-300]" | sort | uniq -c
curl -si $gateway/products/1 | grep -i -e '^HTTP' -e ratelimit -e retry-after

# The plugin's counters, and its log lines
curl -s $admin/stats | grep wasmgate
grep 'wasm log' $log

EOF
fi

# Exit when a child dies; Ctrl-C or SIGTERM interrupts the wait and runs cleanup.
set +e
wait -n "${pids[@]}"
echo "demo: a process exited unexpectedly (see $log)" >&2
exit 1
