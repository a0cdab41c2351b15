#!/usr/bin/env bash
# The Envoy benchmark (docs/BENCHMARKS.md): wasmgate against Envoy's native
# filters doing the same job, on one Envoy with one worker thread.
#
# Usage: build/bench.sh [compare|soak]
#   compare  (make bench) interleaved rounds over the scenarios below; each
#            round starts a fresh Envoy per scenario, checks that it does its
#            job, then measures saturation (wrk, closed loop) and latency at
#            a fixed rate (vegeta, open loop)
#   soak     (make bench-soak) each build with a limit keyed by x-user-id and
#            a new user id on every request, for BENCH_SOAK_REQUESTS requests,
#            on two workers that share the limit's slots; fails when Envoy's
#            RSS grows more than BENCH_SOAK_MAX_GROWTH MiB
# Environment (defaults in brackets):
#   BENCH_ROUNDS [3]             rounds of compare
#   BENCH_WARMUP [2s]            wrk run before each measurement, not counted
#   BENCH_DURATION [6s]          the saturation run
#   BENCH_CONNECTIONS [32]       wrk connections (one request in flight each)
#   BENCH_RATE_DURATION [5s]     the fixed-rate run
#   BENCH_RATE []                requests/s of the fixed-rate run (default:
#                                BENCH_RATE_SHARE % of native's saturation in round 1)
#   BENCH_RATE_SHARE [10]        see BENCH_RATE; above ~25 % the 2-core
#                                machine measures queueing, not the proxy, and
#                                other work on it lowers that limit
#   BENCH_USERS [1000]           distinct x-user-id values the load cycles over
#   BENCH_SCENARIOS [all]        a subset of the scenarios, space-separated
#   BENCH_HEADERS [0]            extra request headers on every request
#                                (x-extra-<n>, 40-byte values): the cost of
#                                a request's headers in Envoy
#   BENCH_B_TINYGO, BENCH_B_GO   modules for the A/B scenarios tinygo-b and
#                                go-b (say, the same tree before a change),
#                                measured in the same rounds as the others
#   BENCH_SOAK_REQUESTS [1000000] BENCH_SOAK_SEGMENT [10s] BENCH_SOAK_MAX_GROWTH [2]
#   WASMGATE_ENVOY               the Envoy binary (default: the tools-cache install)
# Outputs in out/bench/: report.md (also printed), results.jsonl (one line
# per run: the tool's summary and Envoy's /proc samples), Envoy logs.
#
# Scenarios (configs derived from the shipped envoy.yaml, without its access
# log, and deploy/envoy-native.yaml by `bench config`; limits get a bucket of 10^9
# tokens per second, which never denies but is taken from on every request):
#   native         deploy/envoy-native.yaml without its local_ratelimit filter
#   native+limit   deploy/envoy-native.yaml
#   bare           envoy.yaml without the Wasm filter: the router alone
#   empty-tinygo   envoy.yaml with a plugin that does nothing (TinyGo SDK)
#   empty-go       the same with the upstream Go SDK
#   tinygo, go     envoy.yaml's seed policy without its rate limit
#   tinygo-b, go-b the same with BENCH_B_TINYGO, BENCH_B_GO (not in "all")
#   tinygo+limit, go+limit   the seed policy
# The upstream is a second Envoy answering with direct_response
# (build/bench-upstream.yaml). Every request is GET /products/<i>?x=1 with
# x-user-id: user-<i> and x-internal-debug: 1, i cycling over BENCH_USERS.
. "$(dirname "$0")/lib.sh"
root=$(cd "$here/.." && pwd)
cd "$root"

mode=${1:-compare}
rounds=${BENCH_ROUNDS:-3}
warmup=${BENCH_WARMUP:-2s}
duration=${BENCH_DURATION:-6s}
connections=${BENCH_CONNECTIONS:-32}
rate_duration=${BENCH_RATE_DURATION:-5s}
rate=${BENCH_RATE:-}
rate_share=${BENCH_RATE_SHARE:-10}
users=${BENCH_USERS:-1000}
export BENCH_HEADERS=${BENCH_HEADERS:-0} # read by build/bench.lua too
scenarios=(${BENCH_SCENARIOS:-native bare empty-tinygo tinygo tinygo+limit native+limit empty-go go go+limit})
soak_requests=${BENCH_SOAK_REQUESTS:-1000000}
soak_segment=${BENCH_SOAK_SEGMENT:-10s}
soak_max_growth=${BENCH_SOAK_MAX_GROWTH:-2}
workers=1
big=1000000000 # tokens per second of a limit that never denies
probe=5        # bucket of the limit check
case $mode in
  compare|soak) ;;
  *) echo "bench: unknown mode $mode; want compare or soak" >&2; exit 2 ;;
esac
for f in out/wasmgate-tinygo.wasm out/wasmgate-go.wasm out/empty-tinygo.wasm out/empty-go.wasm; do
  [ -f "$f" ] || { echo "bench: $f not found: run \`make build bench-modules\`" >&2; exit 1; }
done
envoy=${WASMGATE_ENVOY:-$(bash "$here/install-envoy.sh")}
wrk=$(bash "$here/install-wrk.sh")
vegeta=$(bash "$here/install-vegeta.sh")
command -v curl >/dev/null || apt_install curl >&2

outdir=out/bench
rm -rf "$outdir"
mkdir -p "$outdir"
results=$outdir/results.jsonl
tmp=$(mktemp -d)
upstream_pid= envoy_pid= child_pid=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -z "$child_pid" ] || kill -TERM "$child_pid" 2>/dev/null || true
  stop_envoy
  if [ -n "$upstream_pid" ]; then
    kill -TERM "$upstream_pid" 2>/dev/null || true
    wait "$upstream_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run CMD... runs a command in the background and waits, so that a signal
# reaches the trap at once; `timeout` bounds it.
run() {
  timeout 600 "$@" &
  child_pid=$!
  local rc=0
  wait "$child_pid" || rc=$?
  child_pid=
  return $rc
}

# start NAME CONFIG starts an Envoy ($workers worker threads) and waits until it is
# ready; sets pid, admin and the URL of its first listener. Each start gets
# its own directory and log.
starts=0
start() {
  starts=$((starts + 1))
  local dir=$tmp/$starts log=$outdir/envoy-$starts-$1.log deadline=$((SECONDS + 60))
  mkdir -p "$dir"
  "$envoy" -c "$2" --concurrency "$workers" --disable-hot-restart \
    --admin-address-path "$dir/admin" --log-level warn > "$log" 2>&1 &
  started_pid=$! admin=
  while :; do
    if ! kill -0 "$started_pid" 2>/dev/null; then
      echo "bench: Envoy ($1) exited during start-up; the end of $log:" >&2
      tail -n 20 "$log" >&2
      return 1
    fi
    [ -z "$admin" ] && [ -s "$dir/admin" ] && admin=http://$(cat "$dir/admin")
    [ -n "$admin" ] && [ "$(curl -s -m 2 "$admin/ready" || true)" = LIVE ] && break
    [ $SECONDS -lt $deadline ] || { echo "bench: Envoy ($1) not ready after 60 s (see $log)" >&2; return 1; }
    sleep 0.1
  done
  # /listeners answers "NAME::127.0.0.1:PORT" per listener.
  listeners=$(curl -s -m 5 "$admin/listeners")
}

start_envoy() {
  start "$@"
  envoy_pid=$started_pid
  url=http://$(sed -n 's/^gateway::\(.*\)$/\1/p' <<< "$listeners")
}

stop_envoy() {
  [ -n "$envoy_pid" ] || return 0
  kill -TERM "$envoy_pid" 2>/dev/null || true
  wait "$envoy_pid" 2>/dev/null || true
  envoy_pid=
}

# The /proc sampler: Envoy's user+system time in clock ticks (1/100 s,
# all threads; the command name "envoy" has no spaces), its RSS in KiB, and
# the machine's load.
ticks() { awk '{print $14 + $15}' "/proc/$envoy_pid/stat"; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$envoy_pid/status"; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# measure_sat SCENARIO ROUND: wrk warm-up, then the measured run.
measure_sat() {
  run "$wrk" -t1 -c"$connections" -d"$warmup" -s build/bench.lua "$url" -- "$users" > /dev/null
  local load t0 t1 out
  load=$(load1) t0=$(ticks)
  run "$wrk" -t1 -c"$connections" -d"$duration" -s build/bench.lua "$url" -- "$users" > "$tmp/wrk.out"
  t1=$(ticks)
  out=$(tail -n 1 "$tmp/wrk.out")
  printf '{"kind":"sat","scenario":"%s","round":%d,"cpu_ticks":%d,"rss_kib":%d,"load1":%s,"wrk":%s}\n' \
    "$1" "$2" $((t1 - t0)) "$(rss)" "$load" "$out" >> "$results"
  sat_rps=$(awk '{match($0, /"requests":[0-9]+/); r = substr($0, RSTART + 11, RLENGTH - 11)
                  match($0, /"duration_us":[0-9]+/); d = substr($0, RSTART + 14, RLENGTH - 14)
                  printf "%d", r / (d / 1e6)}' <<< "$out")
}

# measure_rate SCENARIO ROUND: vegeta at $rate requests/s, the same requests.
measure_rate() {
  awk -v base="$url" -v n="$users" 'BEGIN {
    extra = ""
    for (h = 0; h < ENVIRON["BENCH_HEADERS"]; h++) {
      v = ""; for (c = 0; c < 40; c++) v = v (h % 10)
      extra = extra sprintf("x-extra-%d: %s\n", h, v)
    }
    for (i = 0; i < n; i++) printf "GET %s/products/%d?x=1\nx-user-id: user-%d\nx-internal-debug: 1\n%s\n", base, i, i, extra }' > "$tmp/targets"
  local load t0 t1
  load=$(load1) t0=$(ticks)
  # At most $connections connections: should the machine stall, vegeta falls
  # behind the rate (the report shows it) instead of opening connections
  # until ports run out.
  run bash -c "'$vegeta' attack -targets '$tmp/targets' -rate $rate/1s -duration $rate_duration -timeout 10s \
    -max-workers $connections -max-connections $connections | '$vegeta' report -type json" > "$tmp/vegeta.json"
  t1=$(ticks)
  printf '{"kind":"rate","scenario":"%s","round":%d,"cpu_ticks":%d,"rss_kib":%d,"load1":%s,"vegeta":%s}\n' \
    "$1" "$2" $((t1 - t0)) "$(rss)" "$load" "$(cat "$tmp/vegeta.json")" >> "$results"
}

go build -C cmd/wasmgate -o "$tmp/bench" ./internal/bench
bench=$tmp/bench

start upstream build/bench-upstream.yaml
upstream_pid=$started_pid
v1=$(sed -n 's/^v1::.*:\([0-9]*\)$/\1/p' <<< "$listeners")
v2=$(sed -n 's/^v2::.*:\([0-9]*\)$/\1/p' <<< "$listeners")
ports=(-admin-port 0 -gateway-port 0 -upstream product-service=127.0.0.1:"$v1"
       -upstream product-service-v2=127.0.0.1:"$v2" -upstream default-backend=127.0.0.1:"$v1")

# config SCENARIO [bench config flags...] writes the scenario's config.
# envoy.yaml's access log goes: the native config has none, and a line per
# request would be what is measured.
config() {
  local name=$1 in=(-template envoy.yaml -no-access-log)
  shift
  case $name in native*) in=(-template deploy/envoy-native.yaml) ;; esac
  "$bench" config "${in[@]}" "${ports[@]}" "$@" > "$tmp/$name.yaml"
}
# job SCENARIO is what the check expects of it.
job() {
  case $1 in bare|empty-*) echo floor ;; *) echo full ;; esac
}
# b_module VAR is the absolute path of the A/B module VAR names.
b_module() {
  local f=${!1:-}
  [ -f "$f" ] || { echo "bench: $1 must name a module for its A/B scenario (got \"$f\")" >&2; return 1; }
  realpath "$f"
}
scenario_config() {
  local name=$1 limit
  case $name in *+limit) limit=(-tokens "$2") ;; *) limit=(-no-limit) ;; esac
  case $name in
    native*) config "$name" "${limit[@]}" ;;
    bare) config "$name" -no-plugin ;;
    empty-*) config "$name" -wasm "$root/out/empty-${name#empty-}.wasm" ;;
    tinygo-b) config "$name" -wasm "$(b_module BENCH_B_TINYGO)" "${limit[@]}" ;;
    go-b) config "$name" -wasm "$(b_module BENCH_B_GO)" "${limit[@]}" ;;
    *) config "$name" -wasm "$root/out/wasmgate-${name%+limit}.wasm" "${limit[@]}" ;;
  esac
}

{
  echo "# wasmgate in Envoy: $mode"
  echo
  echo "- Command: \`build/bench.sh $mode\`, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Envoy $("$envoy" --version | sed -n 's/.*version: [^/]*\/\([^/]*\)\/.*/\1/p'), V8; upstream: a second Envoy (direct_response); load: $(basename "$wrk") $("$wrk" --version 2>&1 | sed -n '1s/^wrk \([^ ]*\).*/\1/p') and vegeta $VEGETA_VERSION, on 127.0.0.1"
  echo "- Machine: $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
  for m in out/wasmgate-tinygo.wasm out/wasmgate-go.wasm out/empty-tinygo.wasm out/empty-go.wasm; do
    echo "- $(basename "$m"): $(stat -c %s "$m") bytes"
  done
  for v in BENCH_B_TINYGO BENCH_B_GO; do
    b=${v#BENCH_B_}
    [ -z "${!v:-}" ] || echo "- $v (scenario ${b,,}-b): $(basename "${!v}"), $(stat -c %s "${!v}") bytes"
  done
  [ "$BENCH_HEADERS" = 0 ] || echo "- $BENCH_HEADERS extra request headers (40-byte values) on every request"
} > "$outdir/report.md"

if [ "$mode" = soak ]; then
  workers=2
  echo "- Soak: \`--concurrency 2\`, limit keyed by x-user-id, a new user id per request, $soak_requests requests per build in wrk runs of $soak_segment, $connections connections" >> "$outdir/report.md"
  for build in tinygo go; do
    config "soak-$build" -wasm "$root/out/wasmgate-$build.wasm" -tokens $big -limit-key x-user-id
    start_envoy "soak-$build" "$tmp/soak-$build.yaml"
    run "$bench" check -url "$url" -job full -users "$users" >&2
    run "$wrk" -t1 -c"$connections" -d"$warmup" -s build/bench.lua "$url" -- "$users" unique warmup > /dev/null
    total=0 segment=0
    while [ "$total" -lt "$soak_requests" ]; do
      segment=$((segment + 1))
      load=$(load1) t0=$(ticks)
      run "$wrk" -t1 -c"$connections" -d"$soak_segment" -s build/bench.lua "$url" -- "$users" unique "$segment" > "$tmp/wrk.out"
      out=$(tail -n 1 "$tmp/wrk.out")
      total=$((total + $(sed 's/.*"requests":\([0-9]*\).*/\1/' <<< "$out")))
      printf '{"kind":"soak","scenario":"%s","cpu_ticks":%d,"rss_kib":%d,"load1":%s,"total":%d,"wrk":%s}\n' \
        "$build" $(($(ticks) - t0)) "$(rss)" "$load" "$total" "$out" >> "$results"
      echo "bench: soak $build: $total requests, RSS $(rss) KiB" >&2
    done
    stop_envoy
  done
  "$bench" report -results "$results" -max-growth "$soak_max_growth" >> "$outdir/report.md" || rc=$?
  cat "$outdir/report.md"
  exit "${rc:-0}"
fi

# Configs, and once per limit the check that it is in the request path:
# the same config with a bucket of $probe tokens denies.
for s in "${scenarios[@]}"; do
  case $s in *+limit)
    scenario_config "$s" "$probe"
    start_envoy "$s-probe" "$tmp/$s.yaml"
    msg=$(run "$bench" check -url "$url" -job limit -tokens "$probe")
    echo "bench: $s: $msg" >&2
    stop_envoy ;;
  esac
  scenario_config "$s" "$big"
done

for round in $(seq 1 "$rounds"); do
  echo "bench: round $round of $rounds, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  for s in "${scenarios[@]}"; do
    start_envoy "$s" "$tmp/$s.yaml"
    msg=$(run "$bench" check -url "$url" -job "$(job "$s")" -users "$users")
    echo "bench: $s: $msg" >&2
    measure_sat "$s" "$round"
    if [ -z "$rate" ]; then
      rate=$((sat_rps * rate_share / 100))
      echo "bench: fixed rate $rate requests/s ($rate_share % of $s's $sat_rps at saturation)" >&2
    fi
    measure_rate "$s" "$round"
    echo "bench: $s round $round: $sat_rps requests/s, load $(load1)" >&2
    stop_envoy
  done
done

{
  echo "- Settings: \`--concurrency 1\`, $rounds rounds; saturation: wrk, $connections connections, $warmup warm-up + $duration; fixed rate: vegeta, $rate requests/s for $rate_duration; $users users"
  echo "- Took $SECONDS s; load average (1 min) before each run: $(sed -n 's/.*"load1":\([0-9.]*\).*/\1/p' "$results" | sort -n | sed -n '1p;$p' | paste -sd ' ' | sed 's/ / to /')"
  echo
} >> "$outdir/report.md"
rc=0
"$bench" report -results "$results" >> "$outdir/report.md" || rc=$?
cat "$outdir/report.md"
exit $rc
