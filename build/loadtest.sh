#!/usr/bin/env bash
# Load benchmark of the plugin inside a real Envoy (docs/BENCHMARKS.md):
# throughput, latency, Envoy CPU per request and Envoy memory, for Envoy
# without the plugin (baseline) and with each module, then a soak per module
# that watches Envoy's RSS. Runs unattended, bounded in time, and stops every
# process it started, also on failure or Ctrl-C.
#
# Usage: build/loadtest.sh [WASM...]
#   WASM  plugin modules, relative to the repository root (default:
#         out/wasmgate-tinygo.wasm out/wasmgate-go.wasm, built by `make build`).
# Environment (defaults in brackets):
#   LOADTEST_DURATION [20s]        measured time per scenario, after a 3 s warm-up
#   LOADTEST_CONNECTIONS [32]      connections, one request in flight on each
#   LOADTEST_LATENCY_DURATION [5s] then the same on one connection: latency unloaded
#   LOADTEST_SOAK_REQUESTS [1000000]  soak length per module (0 skips the soak)
#   LOADTEST_SOAK_TIMEOUT [300s]   soak time limit per module
#   LOADTEST_CHECKPOINT [200000]   RSS sample interval during the soak, in requests
#   LOADTEST_QUIET_WAIT [30s]      before each run, wait up to this long for an idle machine
#   WASMGATE_ENVOY                 the Envoy binary (default: the tools-cache install)
# The report (markdown) goes to stdout and out/loadtest/report.md; the raw
# records to out/loadtest/results.jsonl; Envoy logs to out/loadtest/. The
# report ends with the plugin's counters of each Envoy run, which show that
# the policy applied (matched) and how often workers raced on the bucket
# (contended).
#
# Scenarios, each on a fresh Envoy (--concurrency 2) from envoy.yaml:
#   baseline         no Wasm filter; every request goes to the default backend
#                    (the v1 upstream); run first and last
#   split            seed policy without its rate limit: rewrite, headers, 90/10 split
#   split+ratelimit  the same plus a bucket too large to ever deny, so every
#                    request runs the shared-data compare-and-swap path
#   soak             split+ratelimit keyed by x-user-id, with a distinct
#                    x-user-id per request (every request claims a bucket slot
#                    from an idle key), until LOADTEST_SOAK_REQUESTS or
#                    LOADTEST_SOAK_TIMEOUT
# Requests are GET /products/<n>?x=1 with n counting up.
. "$(dirname "$0")/lib.sh"
root=$(cd "$here/.." && pwd)
cd "$root"

duration=${LOADTEST_DURATION:-20s}
latency_duration=${LOADTEST_LATENCY_DURATION:-5s}
connections=${LOADTEST_CONNECTIONS:-32}
soak_requests=${LOADTEST_SOAK_REQUESTS:-1000000}
soak_timeout=${LOADTEST_SOAK_TIMEOUT:-300s}
checkpoint=${LOADTEST_CHECKPOINT:-200000}
quiet_wait=${LOADTEST_QUIET_WAIT:-30s}
warmup=3s
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(out/wasmgate-tinygo.wasm out/wasmgate-go.wasm)
for m in "${modules[@]}"; do
  if [ ! -f "$m" ]; then
    echo "loadtest: $m not found: run \`make build\`" >&2
    exit 1
  fi
done
envoy=${WASMGATE_ENVOY:-$(bash "$here/install-envoy.sh")}
command -v curl >/dev/null || apt_install curl

outdir=out/loadtest
rm -rf "$outdir"
mkdir -p "$outdir"
results=$outdir/results.jsonl

tmp=$(mktemp -d)
counters=$tmp/counters.md
upstream_pids=()
envoy_pid= envoy_name= envoy_admin= driver_pid=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$driver_pid" ]; then
    kill -TERM "$driver_pid" 2>/dev/null || true
    wait "$driver_pid" 2>/dev/null || true
  fi
  stop_envoy
  for pid in "${upstream_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${upstream_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop_envoy records the plugin's counters of the running Envoy run, then
# stops it: SIGTERM, then SIGKILL after 10 s.
stop_envoy() {
  [ -n "$envoy_pid" ] || return 0
  local stats
  stats=$(curl -s -m 5 "$envoy_admin/stats?filter=wasmgate" | sed -n 's/^.*wasmgate\.\(route\..*\): \([0-9]*\)$/\1=\2/p' | tr '\n' ' ' || true)
  echo "- run $runs ($envoy_name): ${stats:-no plugin counters}" >> "$counters"
  kill -TERM "$envoy_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$envoy_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$envoy_pid" 2>/dev/null || true
  wait "$envoy_pid" 2>/dev/null || true
  envoy_pid=
}

# start_upstream NAME VERSION VAR starts a demo upstream on a kernel-picked
# port and sets VAR to the port.
start_upstream() {
  local log=$tmp/upstream-$1.log addr=
  "$tmp/demo-upstream" -listen 127.0.0.1:0 -name "$1" -version "$2" > /dev/null 2> "$log" &
  upstream_pids+=($!)
  for _ in $(seq 1 100); do
    addr=$(sed -n 's/.*listening on \(.*\)$/\1/p' "$log")
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "loadtest: upstream $1 did not start: $(cat "$log")" >&2; return 1; }
  printf -v "$3" '%s' "${addr##*:}"
}

# derive_config WASM POLICY_FILE prints envoy.yaml with the admin interface
# and listener on kernel-picked ports and the clusters on the demo upstreams.
# With WASM empty the Wasm filter is removed (the baseline); otherwise the
# filter loads WASM with the policy in POLICY_FILE. It fails when an edit no
# longer finds its anchor in envoy.yaml.
derive_config() {
  awk -v wasm="$1" -v policy="$2" -v v1="$v1_port" -v v2="$v2_port" '
    function trim(s) { sub(/^ +/, "", s); sub(/ +$/, "", s); return s }
    BEGIN {
      port["admin:"] = 0; port["- name: gateway"] = 0
      port["- name: product-service"] = v1; port["- name: default-backend"] = v1
      port["- name: product-service-v2"] = v2
      pending = ""
    }
    {
      line = $0; t = trim(line)
      if (in_policy) {  # the old policy: blank or deeper-indented lines
        match(line, /^ */)
        if (t == "" || RLENGTH > indent) next
        in_policy = 0
      }
      if (dropping) {   # the Wasm filter, up to the next filter
        if (t != "- name: envoy.filters.http.router") next
        dropping = 0
      }
      if (wasm == "" && t == "- name: envoy.filters.http.wasm") { dropping = 1; dropped++; next }
      if (t in port) { pending = port[t]; seen[t]++ }
      if (pending != "" && sub(/port_value: [0-9]+/, "port_value: " pending, line)) pending = ""
      if (t == "filename: out/wasmgate-go.wasm") { sub(/out\/wasmgate-go\.wasm/, "\"" wasm "\"", line); files++ }
      if (string_value && t == "value: |") {
        print line
        match(line, /^ */); indent = RLENGTH
        pad = sprintf("%" (indent + 2) "s", "")
        while ((getline p < policy) > 0) print pad p
        close(policy)
        in_policy = 1; string_value = 0; policies++
        next
      }
      if (index(t, "type.googleapis.com/google.protobuf.StringValue")) string_value = 1
      print line
    }
    END {
      for (a in port) if (seen[a] != 1) { printf "envoy.yaml: want one line \"%s\", found %d\n", a, seen[a] > "/dev/stderr"; bad = 1 }
      if (wasm == "" && dropped != 1) { print "envoy.yaml: no envoy.filters.http.wasm filter to remove" > "/dev/stderr"; bad = 1 }
      if (wasm != "" && (files != 1 || policies != 1)) { print "envoy.yaml: want one module filename and one StringValue policy block" > "/dev/stderr"; bad = 1 }
      exit bad
    }' envoy.yaml
}

# start_envoy NAME CONFIG starts Envoy on CONFIG and waits until it is ready;
# it sets envoy_pid, envoy_name, envoy_admin and gateway (the listener's
# URL). Runs are numbered so a repeated NAME gets its own directory and log.
runs=0
start_envoy() {
  runs=$((runs + 1))
  local dir=$tmp/$runs-$1 log=$outdir/envoy-$runs-$1.log admin= deadline=$((SECONDS + 90))
  envoy_name=$1
  mkdir -p "$dir"
  cp "$2" "$dir/envoy.yaml"
  "$envoy" -c "$dir/envoy.yaml" --concurrency 2 --disable-hot-restart \
    --admin-address-path "$dir/admin-address" --log-level warn > "$log" 2>&1 &
  envoy_pid=$!
  while :; do
    if ! kill -0 "$envoy_pid" 2>/dev/null; then
      echo "loadtest: Envoy exited during start-up; the end of $log:" >&2
      tail -n 20 "$log" >&2
      envoy_pid=
      return 1
    fi
    [ -z "$admin" ] && [ -s "$dir/admin-address" ] && admin=http://$(cat "$dir/admin-address")
    [ -n "$admin" ] && [ "$(curl -s -m 2 "$admin/ready" || true)" = LIVE ] && break
    [ $SECONDS -lt $deadline ] || { echo "loadtest: Envoy not ready after 90 s (see $log)" >&2; return 1; }
    sleep 0.2
  done
  envoy_admin=$admin
  # /listeners answers "gateway::127.0.0.1:PORT".
  gateway=http://$(curl -s -m 5 "$admin/listeners" | sed -n 's/^gateway::\(.*\)$/\1/p')
  [ "$gateway" != http:// ] || { echo "loadtest: Envoy has no listener named gateway" >&2; return 1; }
}

# drive NAME MODULE [loadtest flags...] runs the load generator against the
# running Envoy. `timeout` backs up the driver's own limits. It runs in the
# background so that a signal reaches this script's trap at once.
drive() {
  local name=$1 module=$2
  shift 2
  timeout 900 "$tmp/loadtest" run -url "$gateway" -pid "$envoy_pid" \
    -upstream-pids "$(IFS=,; echo "${upstream_pids[*]}")" -label "$name" -module "$module" \
    -quiet-wait "$quiet_wait" -results "$results" "$@" &
  driver_pid=$!
  wait "$driver_pid"
  driver_pid=
}

# scenario NAME MODULE CONFIG measures throughput at $connections
# connections, then latency on one connection, on a fresh Envoy.
scenario() {
  start_envoy "$1-$2" "$3"
  drive "$1" "$2" -c "$connections" -warmup "$warmup" -duration "$duration"
  drive "$1" "$2" -c 1 -warmup 0 -duration "$latency_duration"
  stop_envoy
}

go build -o "$tmp/demo-upstream" ./cmd/demo-upstream
go build -C cmd/wasmgate -o "$tmp/loadtest" ./internal/loadtest
start_upstream product-service v1 v1_port
start_upstream product-service-v2 v2 v2_port

# The seed policy of envoy.yaml without its rate limit, and with a bucket of
# 10^9 tokens refilled every second: no request is denied, each takes a token.
route='{"routes": [{
  "name": "products",
  "match": [{"uri": {"prefix": "/products"}}],
  "rewrite": {"uri": "/"},
  "headers": {
    "request": {"set": {"x-forwarded-proto": "https"}, "remove": ["x-internal-debug"]},
    "response": {"set": {"x-served-by": "%DESTINATION%"}}
  },
  "route": [
    {"destination": {"host": "product-service", "port": 8080}, "weight": 90},
    {"destination": {"host": "product-service-v2", "port": 8080}, "weight": 10}
  ],
  "split": {"hintHeader": "x-route-to", "stickyBy": {"header": "x-user-id"}, "overrideHeader": "x-canary"}'
printf '%s\n}]}\n' "$route" > "$tmp/split.json"
printf '%s,\n  %s\n}]}\n' "$route" \
  '"rateLimit": {"tokenBucket": {"maxTokens": 1000000000, "tokensPerFill": 1000000000, "fillInterval": "1s"}}' \
  > "$tmp/ratelimit.json"
printf '%s,
  %s
}]}
' "$route" \
  '"rateLimit": {"tokenBucket": {"maxTokens": 1000000000, "tokensPerFill": 1000000000, "fillInterval": "1s"}, "key": {"header": "x-user-id"}}' \
  > "$tmp/keyed.json"

derive_config "" "" > "$tmp/baseline.yaml"
{
  echo "# wasmgate in Envoy: load benchmark"
  echo
  echo "- Command: \`build/loadtest.sh ${modules[*]}\` (LOADTEST_DURATION=$duration LOADTEST_LATENCY_DURATION=$latency_duration LOADTEST_CONNECTIONS=$connections LOADTEST_SOAK_REQUESTS=$soak_requests LOADTEST_SOAK_TIMEOUT=$soak_timeout)"
  echo "- Envoy: $("$envoy" --version | sed -n 's/.*version: \([^ ]*\).*/\1/p'), \`--concurrency 2\`, runtime V8"
  echo "- Machine: $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)), shared by the load generator, Envoy and two demo upstreams; all traffic on 127.0.0.1"
  echo "- Load: $connections keep-alive HTTP/1.1 connections, one request in flight each (closed loop), $warmup warm-up then $duration per scenario; then one connection for $latency_duration; GET /products/<n>?x=1"
  for m in "${modules[@]}"; do
    echo "- Module $(basename "$m"): $(stat -c %s "$m") bytes, sha256 $(sha256sum "$m" | cut -c1-16)…"
  done
  echo
} > "$outdir/report.md"

scenario baseline none "$tmp/baseline.yaml"
for m in "${modules[@]}"; do
  name=$(basename "$m" .wasm)
  name=${name#wasmgate-}
  wasm=$(cd "$(dirname "$m")" && pwd)/$(basename "$m")
  derive_config "$wasm" "$tmp/split.json" > "$tmp/split-$name.yaml"
  derive_config "$wasm" "$tmp/ratelimit.json" > "$tmp/ratelimit-$name.yaml"
  derive_config "$wasm" "$tmp/keyed.json" > "$tmp/keyed-$name.yaml"
  scenario split "$name" "$tmp/split-$name.yaml"
  scenario split+ratelimit "$name" "$tmp/ratelimit-$name.yaml"
  if [ "$soak_requests" -gt 0 ]; then
    start_envoy "soak-$name" "$tmp/keyed-$name.yaml"
    drive soak "$name" -c "$connections" -warmup "$warmup" -user-ids \
      -requests "$soak_requests" -duration "$soak_timeout" -checkpoint "$checkpoint"
    stop_envoy
  fi
done
# Again at the end: the spread of the two baselines is the machine's drift.
scenario baseline none "$tmp/baseline.yaml"

{
  "$tmp/loadtest" report -results "$results"
  printf '\nPlugin counters at the end of each Envoy run:\n\n'
  cat "$counters"
} >> "$outdir/report.md"
cat "$outdir/report.md"
