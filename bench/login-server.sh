#!/usr/bin/env bash
# A server's CPU per login against the raw argon2id rate, the operator's
# view of issue 20's "login ≥ 0.95× the raw argon2id rate" (BENCHMARKS.md,
# "Login, round 3").
#
#   bench/login-server.sh [--rounds 3] [--seconds 15] [--hash-test TEST_BINARY] [-o DIR] BINARY...
#
# Each round runs, for each BINARY in turn: BenchmarkVerifyParallel of
# internal/password built from this checkout (one argon2id verification
# with the default parameters on each core at once through a Hasher, the
# concurrency the server's hashing slots allow; 320 hashes); `keycard
# serve` of BINARY under wrk's login workload (bench/interleave.sh login:
# 16 connections, the server's CPU per login from /proc); and the hashes
# again. Prints per round and binary the server's CPU per login, the
# hash's CPU per verification (the mean of the two runs beside it) and their
# ratio (hash ÷ login: the rate a CPU-bound server reaches against the
# raw hashing rate), then the medians. The binaries hash with their own
# code; the raw rate is this checkout's (x/crypto's IDKey, which
# allocates 19 MiB a hash, is slower: internal/argon2's BenchmarkIDKey),
# or with --hash-test that of a test binary of internal/password built
# elsewhere (it must have BenchmarkVerifyParallel: to take x/crypto's
# rate, copy internal/password/parallel_test.go into a worktree of
# b652648 and `go test -c ./internal/password` there).
set -euo pipefail
script="$(realpath "$0")"
cd "$(dirname "$0")/.."
. bench/lib.sh

rounds=3 seconds=15 dir="" hashtest=""
while [ $# -gt 0 ]; do
  case "$1" in
  --rounds) rounds="$2"; shift 2 ;;
  --seconds) seconds="$2"; shift 2 ;;
  --hash-test) hashtest="$(realpath "$2")"; shift 2 ;;
  -o) dir="$2"; shift 2 ;;
  -*) usage ;;
  *) break ;;
  esac
done
[ $# -gt 0 ] || usage
out_dir "$dir"
bins=()
for b in "$@"; do bins+=("$(realpath "$b")"); done

if [ -n "$hashtest" ]; then
  cp "$hashtest" "$dir/password.test"
else
  go test -c -o "$dir/password.test" ./internal/password
fi
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo ' (with uncommitted changes)')" | tee "$dir/info.txt"
hash() {
  (cd "$dir" && ./password.test -test.run '^$' -test.bench '^BenchmarkVerifyParallel$' -test.benchtime 320x) |
    grep '^BenchmarkVerifyParallel' | awk '{ for (i = 1; i < NF; i++) if ($(i+1) == "cpu-ms/op") print $i }'
}
for r in $(seq 1 "$rounds"); do
  for bin in "${bins[@]}"; do
    name="$(basename "$bin")"
    h1="$(hash)"
    bench/interleave.sh --rounds 1 --seconds "$seconds" --out "$dir/round$r-$name" login "$bin" >/dev/null 2>&1
    h2="$(hash)"
    echo "$name round $r: $h1 $h2" >>"$dir/hashes.txt"
    IFS=$'\t' read -r _ _ load rate us _ <"$dir/round$r-$name/summary.tsv"
    us="${us% µs/request}"
    # The hash's CPU per verification: the mean of the runs just before
    # and just after this server's (the machine's speed drifts by 10–20%
    # over minutes; a ratio of figures taken far apart would carry it).
    awk -v n="$name" -v r="$r" -v l="$load" -v rate="$rate" -v us="$us" -v h1="$h1" -v h2="$h2" 'BEGIN {
      h = (h1 + h2) / 2
      printf "%s\tround %s\t%s\tlogin %s, %.2f cpu-ms/login\thash %.2f cpu-ms/op (%.2f, %.2f)\thash/login %.3f\n", n, r, l, rate, us / 1000, h, h1, h2, h / (us / 1000) }' |
      tee -a "$dir/summary.tsv"
  done
done
echo "medians of hash/login:"
awk -F'\t' '{ split($6, a, " "); v[$1] = v[$1] " " a[2] } END {
  for (n in v) { k = split(substr(v[n], 2), x, " "); asort(x); m = (k % 2) ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2
    printf "  %s: %.3f (%s)\n", n, m, substr(v[n], 2) } }' "$dir/summary.tsv"
echo "load at the end: $(uptime)" | tee -a "$dir/info.txt"
