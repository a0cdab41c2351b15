#!/bin/bash
# Instructions per request of each growth case of filter/scale_test.go,
# counted by valgrind's callgrind (unlike time, other work on the machine
# does not change them; the Go host runs without its collector, whose work
# would vary): each case alone at two lengths, the difference
# divided by the extra requests, and the ratio to the first case; both for
# the whole process (proxyhost, the Go host, included) and for the module's
# own machine code, which is what a request costs the plugin in any host.
#   bash build/scale-instructions.sh [LEG...]   (default: wasm-tinygo wasm-go)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || apt_install valgrind
go test -c -o out/filter.test ./filter
rounds=15 short=50 long=250 # rounds as scaleRounds in filter/scale_test.go
# The names of scaleCases in filter/scale_test.go, first the reference.
cases=("1 route, 5 headers" "1 000 prefix routes" "1 000 exact routes" "20 headers" "50 headers" "4 KB cookie")
# instructions LEG CASE N prints the run's instructions, all and those of
# the module's compiled code (the functions callgrind cannot name, `???:0x…`:
# wazero's machine code for the guest), for N requests per round.
instructions() {
  local out=$tmp/callgrind.out
  (cd filter && GODEBUG=asyncpreemptoff=1 GOGC=off GOMAXPROCS=1 WASMGATE_SCALE_CASE="$2" \
    valgrind --tool=callgrind --callgrind-out-file="$out" \
    ../out/filter.test -test.run '^$' -test.bench "Wasm_Scale\$/$1\$" -test.benchtime "$3x" >/dev/null 2>&1)
  callgrind_annotate --inclusive=no --auto=no --threshold=100 "$out" 2>/dev/null | awk '
    /PROGRAM TOTALS/ { gsub(",", "", $1); all = $1 }
    NF >= 2 && ($NF ~ /^\?\?\?:0x/ || $(NF-1) ~ /^\?\?\?:0x/) { gsub(",", "", $1); guest += $1 }
    END { printf "%d %d\n", all, guest }'
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
legs=("$@"); [ $# -gt 0 ] || legs=(wasm-tinygo wasm-go)
for leg in "${legs[@]}"; do
  # One run outside valgrind fills wazero's compilation cache (on disk,
  # internal/proxyhost), so that no measured run compiles the module: the
  # first one would otherwise count the compilation (10^9 instructions).
  (cd filter && WASMGATE_SCALE_CASE="${cases[0]}" ../out/filter.test -test.run '^$' \
    -test.bench "Wasm_Scale\$/$leg\$" -test.benchtime 2x >/dev/null)
  echo "$leg: instructions per request (callgrind), $((rounds * (long - short))) requests"
  echo "| case | instructions/request (host and guest) | × first case | the module's | × first case |"
  echo "|---|--:|--:|--:|--:|"
  first= gfirst=
  for c in "${cases[@]}"; do
    read -r a ga <<< "$(instructions "$leg" "$c" $short)"
    read -r b gb <<< "$(instructions "$leg" "$c" $long)"
    n=$((rounds * (long - short)))
    per=$(( (b - a) / n )) gper=$(( (gb - ga) / n ))
    first=${first:-$per} gfirst=${gfirst:-$gper}
    echo "| $c | $per | $(awk -v x=$per -v y=$first 'BEGIN{printf "%.2f", x/y}') | $gper | $(awk -v x=$gper -v y=$gfirst 'BEGIN{printf "%.2f", x/y}') |"
  done
done
