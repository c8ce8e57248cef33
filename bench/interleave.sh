#!/usr/bin/env bash
# Compares keycard binaries on one workload in interleaved rounds: the
# server's CPU time per request and the throughput of each, side by side
# under the same machine load (the machine may be shared: CPU per request
# is the steadier figure).
#
#   bench/interleave.sh [--rounds 3] [--seconds 15] [--store postgres://…/postgres?…] [--out DIR] WORKLOAD BINARY...
#
# WORKLOAD is a wrk workload of bench/wrk (refresh, introspect, …), run
# through bench/cmd/wrkbench with wrk -t2 -c16, or authcode, run with the
# binary's own `keycard bench authcode --concurrency 16`. Build the
# binaries first, one per commit compared:
#
#   git worktree add /tmp/before BASE && (cd /tmp/before && go build -o /tmp/before.bin ./cmd/keycard)
#   go build -o /tmp/after.bin ./cmd/keycard
#   bench/interleave.sh --rounds 3 refresh /tmp/before.bin /tmp/after.bin
#
# Each round runs every binary once, in the order given: `keycard serve
# --dev` on a fresh SQLite data directory (or, with --store, on a fresh
# database made next to the one the URL names, dropped afterwards), the
# load for SECONDS, the server stopped. Prints one line per run (binary,
# round, one-minute load average before it, throughput, µs of server CPU
# per request, errors; with --store also PostgreSQL's CPU per request:
# its backends serving that server, read from /proc, so PostgreSQL must
# run on this machine) and writes DIR/NAME-ROUND.json (the reports) and
# DIR/summary.tsv; DIR defaults to a new temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
. bench/lib.sh

rounds=3 seconds=15 store="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --store) store="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "interleave.sh: unknown flag $1 (try --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then
  echo "interleave.sh: name a workload and at least one binary (try --help)" >&2
  exit 2
fi
workload="$1"
shift
[ -n "$out" ] || out="$(mktemp -d)"
mkdir -p "$out"

work="$(mktemp -d)"
pids=()
db=""
cleanup() {
  stop_started
  [ -n "$db" ] && psql -q "$store" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$workload" != authcode ]; then
  (cd bench && go build -o "$work/wrkbench" ./cmd/wrkbench)
fi
for r in $(seq 1 "$rounds"); do
  for bin in "$@"; do
    name="$(basename "$bin")"
    run="$work/run"
    rm -rf "$run" && mkdir -p "$run"
    password="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
    export KEYCARD_BENCH_ADMIN_USER=admin KEYCARD_BENCH_ADMIN_PASSWORD="$password"
    args=(--data "$run/data")
    if [ -n "$store" ]; then
      db="kc_interleave_$$"
      psql -q "$store" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
      base="${store%%\?*}"
      args+=(--store "${base%/*}/$db${store#"$base"}")
    fi
    "$bin" migrate "${args[@]}" >/dev/null 2>&1
    printf '%s\n' "$password" | "$bin" users add "${args[@]}" --username admin --role admin --password-stdin >/dev/null
    "$bin" serve --dev --addr 127.0.0.1:0 "${args[@]}" 2>"$run/serve.log" &
    pid=$!
    pids=("$pid")
    url="http://$(listen_addr "$run/serve.log" "$pid")"
    load="$(cut -d' ' -f1 /proc/loadavg)"
    report="$out/$name-$r.json"
    sampler=""
    if [ -n "$store" ]; then
      # PostgreSQL's own CPU: every half second, the CPU ticks of each
      # backend on the bench database (pooled connections come and go),
      # so that the last reading of each counts once.
      (
        while :; do
          for bpid in $(psql -qAt "$store" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$db'" 2>/dev/null); do
            [ -r "/proc/$bpid/stat" ] && awk -v p="$bpid" '{ print p, $14 + $15 }' "/proc/$bpid/stat" 2>/dev/null
          done
          sleep 0.5
        done
      ) >"$run/pgcpu" &
      sampler=$!
    fi
    if [ "$workload" = authcode ]; then
      "$bin" bench authcode --target "$url" --duration "${seconds}s" --concurrency 16 --server-pid "$pid" --quiet --json >"$report"
    else
      "$work/wrkbench" -workload "$workload" -keycard "$url" -server-pid "$pid" -out "$report" -- \
        wrk -t2 -c16 -d"${seconds}s" -s "$root/bench/wrk/$workload.lua" "$url" >"$run/wrk.out" 2>&1
    fi
    us="$(grep -m1 '"us_per_request"' "$report" | tr -dc '0-9.')"
    rate="$(grep -m1 '"throughput_per_s"' "$report" | tr -dc '0-9.')"
    errors="$(grep -m1 '"errors"' "$report" | tr -dc '0-9')"
    pg=""
    if [ -n "$sampler" ]; then
      kill "$sampler" 2>/dev/null || true
      wait "$sampler" 2>/dev/null || true
      # Counted from each backend's start, so the fixture's few
      # statements are included; divided by the successful requests.
      ok="$(grep -m1 '"successes"' "$report" | tr -dc '0-9')"
      pg="$(awk -v hz="$(getconf CLK_TCK)" -v n="${ok:-0}" '{ if ($2 > t[$1]) t[$1] = $2 }
        END { for (p in t) s += t[p]; if (n > 0) printf "\tpostgres %.1f µs/request", s / hz * 1e6 / n }' "$run/pgcpu")"
    fi
    printf '%s\tround %s\tload %s\t%.0f/s\t%s µs/request\terrors %s%s\n' "$name" "$r" "$load" "$rate" "$us" "$errors" "$pg" | tee -a "$out/summary.tsv"
    stop "$pid"
    if [ -n "$db" ]; then
      psql -q "$store" -c "DROP DATABASE IF EXISTS $db" >/dev/null
      db=""
    fi
  done
done
echo "reports in $out" >&2
