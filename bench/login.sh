#!/usr/bin/env bash
# A login against the raw argon2id rate, two ways that hold still better
# on a shared machine than BenchmarkLogin and BenchmarkArgon2idHash run
# one after the other (BENCHMARKS.md, "Login and HS256, steadier").
#
#   bench/login.sh [--pairs N] [--lo L] [--hi H] [--no-pairs] [--no-callgrind] [-o DIR]
#
# 1. Pairs (default 15): BenchmarkLoginHashPairs in ./internal/httpapi, in
#    one process at the default GOMAXPROCS (the cores) and 16 concurrent
#    clients as BenchmarkLogin: N pairs of a round of 64 logins and a
#    round of 64 argon2id verifications, alternating which goes first.
#    Prints the median, smallest and largest per-pair ratio of the login
#    rate to the hash rate (login/hash-rate), of a hash's CPU time to a
#    login's (login/hash-cpu; user time alone: login/hash-user), and the
#    system CPU per login and per hash (login-sys-ms/op, hash-sys-ms/op);
#    each pair's figures in DIR/pairs.err.
#    Wall and CPU time both still move with other work's memory traffic,
#    which slows argon2id (19 MiB a hash) more than the rest of a login.
# 2. Instructions (needs valgrind): BenchmarkLoginSerial and
#    BenchmarkArgon2idSerial, one operation at a time, under callgrind
#    with GOMAXPROCS=1, each at -benchtime Lx and Hx (default 2 and 8):
#    instructions per login and per hash from the difference
#    (bench/instructions.sh), their ratio, and a login's instructions by
#    package (bench/cmd/cgshare; DIR/LoginSerial-by-package.txt and
#    DIR/Argon2idSerial-by-package.txt). It counts user-space instructions
#    only: not the kernel's page faults, not cache misses or memory stalls.
#    A login here includes the in-process HTTP client's work, as
#    BenchmarkLogin's does. About 5 minutes under callgrind.
#
# Outputs go to DIR (default: a new temporary directory), named on stdout.
set -euo pipefail
script="$(realpath "$0")"
cd "$(dirname "$0")/.."
. bench/lib.sh

pairs=15 lo=2 hi=8 dir="" do_pairs=1 do_cg=1
while [ $# -gt 0 ]; do
  case "$1" in
  --pairs) pairs="$2"; shift 2 ;;
  --lo) lo="$2"; shift 2 ;;
  --hi) hi="$2"; shift 2 ;;
  --no-pairs) do_pairs=""; shift ;;
  --no-callgrind) do_cg=""; shift ;;
  -o) dir="$2"; shift 2 ;;
  *) usage ;;
  esac
done
out_dir "$dir"

go test -c -o "$dir/httpapi.test" ./internal/httpapi
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo ' (with uncommitted changes)')" | tee "$dir/info.txt"
echo "load before: $(uptime)" | tee -a "$dir/info.txt"

if [ -n "$do_pairs" ]; then
  echo "== $pairs login/hash pairs → $dir/pairs.txt" >&2
  "$dir/httpapi.test" -test.run '^$' -test.bench '^BenchmarkLoginHashPairs$' \
    -test.benchtime "${pairs}x" >"$dir/pairs.txt" 2>"$dir/pairs.err"
  grep '^BenchmarkLoginHashPairs' "$dir/pairs.txt" | awk '{
    for (i = 5; i < NF; i += 2) printf "  %-22s %s\n", $(i+1), $i }'
  echo "load after pairs: $(uptime)" | tee -a "$dir/info.txt"
fi

if [ -n "$do_cg" ]; then
  echo "== instructions under callgrind (GOMAXPROCS=1, -benchtime ${lo}x and ${hi}x)" >&2
  for b in Argon2idSerial LoginSerial; do
    GOMAXPROCS=1 bench/instructions.sh -o "$dir/cg-$b" "$dir/httpapi.test" "$b" "$lo" "$hi"
  done | tee "$dir/instructions.txt"
  awk '{ n[$1] = $2 } END {
    printf "  hash/login instructions: %.4f (a login is %.2f%% more than one argon2id verification)\n",
      n["Argon2idSerial"] / n["LoginSerial"], 100 * (n["LoginSerial"] / n["Argon2idSerial"] - 1) }' "$dir/instructions.txt"
  for b in LoginSerial Argon2idSerial; do
    (cd bench && go run ./cmd/cgshare -n $((hi - lo)) "$dir/cg-$b/$lo.out" "$dir/cg-$b/$hi.out") \
      >"$dir/$b-by-package.txt"
  done
  echo "  a login's instructions by package (a hash's: $dir/Argon2idSerial-by-package.txt):"
  sed 's/^/  /' "$dir/LoginSerial-by-package.txt"
  echo "load after callgrind: $(uptime)" | tee -a "$dir/info.txt"
fi
