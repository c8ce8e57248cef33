#!/usr/bin/env bash
# Takes a CPU profile of `keycard serve` under wrk, for each workload
# named, and says where the server's CPU time per request goes.
#
#   bench/profile.sh [--seconds 20] [--store postgres://…] WORKLOAD...   # refresh, introspect, …
#
# The server's /debug/pprof is not exposed, and cmd/keycard has no profile
# flag: the script builds a profiling keycard binary with go build -overlay,
# adding bench/profile/keycard_pprof.go.in to cmd/keycard (it serves
# net/http/pprof on KEYCARD_BENCH_PPROF), starts it with --dev on a fresh
# SQLite data directory (or, with --store, on that PostgreSQL database,
# migrated first), and drives it with wrk (bench/wrk/WORKLOAD.lua through
# bench/cmd/wrkbench: 2 threads, 16 connections) for SECONDS + 6 s. After a
# 3 s warm-up it takes a SECONDS-long CPU profile, then runs
# bench/cmd/profshare on it with the server's CPU time per request that
# wrkbench measured over the wrk run.
#
# Writes bench/profiles/WORKLOAD.pb.gz (open it with go tool pprof),
# bench/profiles/WORKLOAD.json (the wrk run) and bench/profiles/WORKLOAD.md
# (the table).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
. bench/lib.sh

seconds=20 store="" workloads=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --store) store="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "profile.sh: unknown flag $1 (try --help)" >&2; exit 2 ;;
    *) workloads+=("$1"); shift ;;
  esac
done
if [ ${#workloads[@]} -eq 0 ]; then
  echo "profile.sh: name the workloads to profile, such as refresh introspect (try --help)" >&2
  exit 2
fi

work="$(mktemp -d)"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

out="$root/bench/profiles"
mkdir -p "$out"
printf '{"Replace":{"%s/cmd/keycard/zz_bench_pprof.go":"%s/bench/profile/keycard_pprof.go.in"}}\n' "$root" "$root" >"$work/overlay.json"
log "building a profiling keycard (go build -overlay) and the bench tools into $work"
go build -overlay "$work/overlay.json" -o "$work/keycard" ./cmd/keycard
(cd bench && go build -o "$work/wrkbench" ./cmd/wrkbench && go build -o "$work/profshare" ./cmd/profshare)

admin_password="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
export KEYCARD_BENCH_ADMIN_USER=admin KEYCARD_BENCH_ADMIN_PASSWORD="$admin_password"
args=(--data "$work/data")
[ -n "$store" ] && args+=(--store "$store")
"$work/keycard" migrate "${args[@]}" >/dev/null
printf '%s\n' "$admin_password" | "$work/keycard" users add "${args[@]}" --username admin --role admin --password-stdin >/dev/null
pprof_port=$((20000 + RANDOM % 40000))
KEYCARD_BENCH_PPROF="127.0.0.1:$pprof_port" "$work/keycard" serve --dev --addr 127.0.0.1:0 "${args[@]}" 2>"$work/serve.log" &
pid=$!
pids+=("$pid")
url="http://$(listen_addr "$work/serve.log" "$pid")"

for w in "${workloads[@]}"; do
  log "$w: wrk for $((seconds + 6)) s, a CPU profile of $seconds s from the 3rd"
  [ "$w" = gateway ] && { echo "profile.sh: the gateway is not keycard serve; profile it with the same overlay by hand" >&2; exit 2; }
  "$work/wrkbench" -workload "$w" -keycard "$url" -server-pid "$pid" -out "$out/$w.json" -- \
    wrk -t2 -c16 -d"$((seconds + 6))s" -s "$root/bench/wrk/$w.lua" "$url" >"$work/$w.wrk" 2>&1 &
  wrk_pid=$!
  sleep 3
  curl -fsS -o "$out/$w.pb.gz" "http://127.0.0.1:$pprof_port/debug/pprof/profile?seconds=$seconds"
  wait "$wrk_pid" || { cat "$work/$w.wrk" >&2; exit 1; }
  us="$(sed -n 's/^    "us_per_request": \([0-9.]*\).*/\1/p' "$out/$w.json" | head -1)"
  {
    echo "Profile of \`keycard serve\` (commit $(git rev-parse --short HEAD)) under \`$(sed -n 's/^  "command": "\(.*\)",*$/\1/p' "$out/$w.json")\`, $seconds s from the 3rd second; server CPU over the wrk run: $us µs per request, $(sed -n 's/^  "throughput_per_s": \([0-9]*\).*/\1/p' "$out/$w.json")/s."
    echo
    "$work/profshare" -us "$us" "$out/$w.pb.gz"
  } >"$out/$w.md"
  cat "$out/$w.md"
done
