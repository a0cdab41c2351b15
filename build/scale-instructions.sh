#!/bin/bash
# Instructions per request of each growth case of filter/scale_test.go,
# counted by valgrind's callgrind (unlike time, other work on the machine
# does not change them; the Go host runs without its collector, whose work
# would vary): each case alone at two lengths, the difference
# divided by the extra requests, and the ratio to the first case.
#   bash build/scale-instructions.sh [LEG...]   (default: wasm-tinygo wasm-go)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || apt_install valgrind
go test -c -o out/filter.test ./filter
rounds=15 short=50 long=250 # rounds as scaleRounds in filter/scale_test.go
# The names of scaleCases in filter/scale_test.go, first the reference.
cases=("1 route, 5 headers" "1 000 prefix routes" "1 000 exact routes" "20 headers" "50 headers" "4 KB cookie")
instructions() { # leg, case, requests per round -> instructions of the whole run
  (cd filter && GODEBUG=asyncpreemptoff=1 GOGC=off GOMAXPROCS=1 WASMGATE_SCALE_CASE="$2" \
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    ../out/filter.test -test.run '^$' -test.bench "Wasm_Scale\$/$1\$" -test.benchtime "$3x" 2>&1) |
    sed -n 's/.*refs: *//p' | tr -d ,
}
legs=("$@"); [ $# -gt 0 ] || legs=(wasm-tinygo wasm-go)
for leg in "${legs[@]}"; do
  # One run outside valgrind fills wazero's compilation cache (on disk,
  # internal/proxyhost), so that no measured run compiles the module: the
  # first one would otherwise count the compilation (10^9 instructions).
  (cd filter && WASMGATE_SCALE_CASE="${cases[0]}" ../out/filter.test -test.run '^$' \
    -test.bench "Wasm_Scale\$/$leg\$" -test.benchtime 2x >/dev/null)
  echo "$leg: instructions per request (callgrind, Go host and guest), $((rounds * (long - short))) requests"
  echo "| case | instructions/request | × first case |"
  echo "|---|--:|--:|"
  first=
  for c in "${cases[@]}"; do
    a=$(instructions "$leg" "$c" $short) b=$(instructions "$leg" "$c" $long)
    per=$(( (b - a) / (rounds * (long - short)) ))
    first=${first:-$per}
    echo "| $c | $per | $(awk -v x=$per -v y=$first 'BEGIN{printf "%.2f", x/y}') |"
  done
done
