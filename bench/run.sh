#!/usr/bin/env bash
# Runs the side-by-side benchmarks and regenerates the numbers in
# ../BENCHMARKS.md and the chart in chart.svg.
#
#   bench/run.sh              # 6 runs of every benchmark (about 10 minutes on 2 cores)
#   COUNT=10 bench/run.sh     # more runs, tighter medians
#   INTERLEAVE=1 bench/run.sh # COUNT passes of -count 1 instead of one -count COUNT:
#                             # go test repeats each benchmark back to back, so on a
#                             # shared machine a burst of other work lands on one
#                             # library; passes spread it over all of them
#
# Outputs: bench/results.txt (raw go test output, with go version, core count,
# commit and date as benchmark configuration lines), bench/benchstat.txt, the
# generated region of BENCHMARKS.md, and bench/chart.svg. Run it on an idle
# machine: anything else on the cores shows up in the numbers.
set -euo pipefail
cd "$(dirname "$0")"

COUNT="${COUNT:-6}"
BENCHSTAT="golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain -- . ../jose ../jwt 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi

{
  echo "go: $(go version | awk '{print $3}')"
  echo "cores: $(nproc)"
  echo "commit: $commit"
  echo "date: $(date -u +%Y-%m-%d)"
} > results.txt

if [ -n "${INTERLEAVE:-}" ]; then
  for pass in $(seq 1 "$COUNT"); do
    echo "== go test -bench (pass $pass of $COUNT) → bench/results.txt" >&2
    go test -run '^$' -bench . -count 1 -benchmem -timeout 90m | tee -a results.txt
  done
else
  echo "== go test -bench (count $COUNT) → bench/results.txt" >&2
  go test -run '^$' -bench . -count "$COUNT" -benchmem -timeout 90m | tee -a results.txt
fi

echo "== benchstat → bench/benchstat.txt" >&2
go run "$BENCHSTAT" results.txt > benchstat.txt

echo "== benchreport → BENCHMARKS.md, bench/chart.svg" >&2
go run ./cmd/benchreport -md ../BENCHMARKS.md -svg chart.svg -svg-link bench/chart.svg results.txt
