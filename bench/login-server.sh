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
#
# With KEYCARD_HASHCPU_LOG set to a file's path, and the binaries and the
# --hash-test binary built with bench/hashcpu.patch applied (each hash's
# CPU time on its own thread, appended to that file), each line also
# gives the hash's thread CPU time in the bare loop (before, after) and
# inside the server, the server's CPU per login less the latter (the
# login's own work) and their ratio, hash in the server ÷ login: a
# ratio taken within one run, which the machine's drift between the runs
# does not move (BENCHMARKS.md, "Login, round 4"). The server's figure is
# the mean over all its hashes, the fixture's few users included.
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
log="${KEYCARD_HASHCPU_LOG:-}"
threadcpu() { # the mean of the last line of process $1 (or of any) in $log
  grep "^${1:-[0-9]*} " "$log" | tail -1 | sed 's/.*thread-cpu-ms=//'
}
for r in $(seq 1 "$rounds"); do
  for bin in "${bins[@]}"; do
    name="$(basename "$bin")"
    h1="$(hash)"
    [ -z "$log" ] || t1="$(threadcpu)"
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
    if [ -n "$log" ]; then
      t2="$(threadcpu)"
      pid="$(grep -o '/proc/[0-9]*/stat' "$dir/round$r-$name/$name-1.json" | cut -d/ -f3)"
      ts="$(threadcpu "$pid")"
      awk -v n="$name" -v r="$r" -v us="$us" -v t1="$t1" -v t2="$t2" -v ts="$ts" 'BEGIN {
        printf "%s\tround %s\thash thread-cpu-ms: bare loop %.2f (%.2f, %.2f), in the server %.2f (%.3f×)\tlogin less its hash %.2f ms\thash in the server/login %.3f\n",
          n, r, (t1 + t2) / 2, t1, t2, ts, ts / ((t1 + t2) / 2), us / 1000 - ts, ts / (us / 1000) }' | tee -a "$dir/hashcpu.tsv"
    fi
  done
done
echo "medians of hash/login:"
awk -F'\t' '{ split($6, a, " "); v[$1] = v[$1] " " a[2] } END {
  for (n in v) { k = split(substr(v[n], 2), x, " "); asort(x); m = (k % 2) ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2
    printf "  %s: %.3f (%s)\n", n, m, substr(v[n], 2) } }' "$dir/summary.tsv"
if [ -n "$log" ]; then
  echo "medians of the login's own work (ms) and of hash in the server/login:"
  awk -F'\t' '{ split($4, a, " "); split($5, b, " "); w[$1] = w[$1] " " a[5]; v[$1] = v[$1] " " b[5] } END {
    for (n in v) { k = split(substr(w[n], 2), x, " "); asort(x); split(substr(v[n], 2), y, " "); asort(y)
      m = (k % 2) ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2; q = (k % 2) ? y[(k + 1) / 2] : (y[k / 2] + y[k / 2 + 1]) / 2
      printf "  %s: %.2f ms, %.3f (%s)\n", n, m, q, substr(v[n], 2) } }' "$dir/hashcpu.tsv"
fi
echo "load at the end: $(uptime)" | tee -a "$dir/info.txt"
