#!/usr/bin/env bash
# HS256 against the floor and the peers, as ratios taken pass by pass in
# one interleaved run (BENCHMARKS.md, "Login and HS256, steadier").
#
#   bench/hs256.sh [--passes N] [--before TEST_BINARY] [-o DIR]
#
# Builds the bench module's test binary, then runs N passes (default 10)
# of -count 1 of BenchmarkVerify and BenchmarkSign for HS256, every
# library, one after the other in each pass, under `nice -n -10` when
# allowed. With --before (a test binary of the bench module built at an
# older commit: `go test -c -o before.test .` in its bench/), each pass
# first runs that binary's Sign/keycard and Sign/floor, so that the
# commits are compared in the same run.
#
# Prints benchstat of the CPU time per operation (cpu-ns/op: the process's
# user and system CPU, the collector's included, which waiting for a core
# does not inflate) and, for the issue's targets, the median and range
# over the passes of the per-pass ratios, by CPU time and by wall time:
# Sign keycard ÷ floor (target ≤ 1.6), Verify keycard ÷ floor (≤ 2.5) and
# the fastest peer's Verify ÷ keycard's (≥ 4.5). A ratio within one pass
# compares benchmarks a few seconds apart; bursts of other work between
# passes cancel out of it.
#
# Outputs in DIR (default: a new temporary directory): after.txt (and
# before.txt), the raw go test output, and load.txt, uptime per pass.
set -euo pipefail
script="$(realpath "$0")"
cd "$(dirname "$0")"
. ./lib.sh

passes=10 before="" dir=""
while [ $# -gt 0 ]; do
  case "$1" in
  --passes) passes="$2"; shift 2 ;;
  --before) before="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
  -o) dir="$2"; shift 2 ;;
  *) usage ;;
  esac
done
out_dir "$dir"
BENCHSTAT="golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"

go test -c -o "$dir/after.test" .
nice=""
if nice -n -10 true 2>/dev/null; then nice="nice -n -10"; fi
: >"$dir/after.txt"
[ -z "$before" ] || : >"$dir/before.txt"
uptime >"$dir/load.txt"
for i in $(seq "$passes"); do
  echo "== pass $i of $passes" >&2
  if [ -n "$before" ]; then
    $nice "$before" -test.run '^$' -test.bench '^BenchmarkSign/(keycard|floor)/HS256$' \
      -test.benchmem -test.count 1 -test.benchtime 1s >>"$dir/before.txt"
  fi
  $nice "$dir/after.test" -test.run '^$' -test.bench '^Benchmark(Verify|Sign)/[^/]+/HS256$' \
    -test.benchmem -test.count 1 -test.benchtime 1s >>"$dir/after.txt"
  uptime >>"$dir/load.txt"
done

if command -v benchstat >/dev/null; then
  benchstat -filter '.unit:cpu-ns/op' "$dir/after.txt"
else
  go run "$BENCHSTAT" -filter '.unit:cpu-ns/op' "$dir/after.txt"
fi

# ratios FILE: per-pass ratios for the targets, median and range.
ratios() {
  awk '
    /^Benchmark/ {
      name = $1; sub(/-[0-9]+$/, "", name)
      if (name in wall) { pass(); delete wall; delete cpu }
      wall[name] = $3
      for (i = 4; i < NF; i++) if ($(i+1) == "cpu-ns/op") cpu[name] = $i
    }
    END { pass(); for (k in r) report(k) }
    function pass(  u, peer, p, best, v) {
      for (u = 0; u < 2; u++) {
        add(u, "Sign keycard ÷ floor", val(u, "BenchmarkSign/keycard/HS256") / val(u, "BenchmarkSign/floor/HS256"))
        if (val(u, "BenchmarkVerify/keycard/HS256") == 0) continue
        add(u, "Verify keycard ÷ floor", val(u, "BenchmarkVerify/keycard/HS256") / val(u, "BenchmarkVerify/floor/HS256"))
        best = 0
        split("golang-jwt go-jose jwx cristalhq", peer, " ")
        for (p in peer) {
          v = val(u, "BenchmarkVerify/" peer[p] "/HS256")
          if (v > 0 && (best == 0 || v < best)) best = v
        }
        if (best > 0) add(u, "Verify fastest peer ÷ keycard", best / val(u, "BenchmarkVerify/keycard/HS256"))
      }
    }
    function val(u, name) { return u ? wall[name] : cpu[name] }
    function add(u, k, x) { k = (u ? "wall " : "cpu  ") k; r[k] = r[k] " " x; n[k]++ }
    function report(k,  xs, m, i, j, t, med) {
      m = split(substr(r[k], 2), xs, " ")
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (xs[j] + 0 < xs[i] + 0) { t = xs[i]; xs[i] = xs[j]; xs[j] = t }
      med = m % 2 ? xs[(m + 1) / 2] : (xs[m / 2] + xs[m / 2 + 1]) / 2
      printf "  %-36s median %.3f  range %.3f–%.3f  (%d passes)\n", k, med, xs[1], xs[m], m
    }' "$1" | sort
}
echo "per-pass ratios, this commit:"
ratios "$dir/after.txt"
if [ -n "$before" ]; then
  echo "per-pass ratios, --before:"
  ratios "$dir/before.txt"
fi
echo "load: $(head -1 "$dir/load.txt" | sed 's/.*load average: //') at the start, $(tail -1 "$dir/load.txt" | sed 's/.*load average: //') at the end"
