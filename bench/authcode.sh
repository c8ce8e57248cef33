#!/usr/bin/env bash
# Measures whole authorization code flows: `keycard bench authcode`
# against `keycard serve --dev`, several rounds, with a CPU profile of the
# server during one of them.
#
#   bench/authcode.sh [--rounds 3] [--seconds 15] [--concurrency 16] [--store postgres://…] [--out DIR]
#
# Builds a profiling keycard (go build -overlay with
# bench/profile/keycard_pprof.go.in, as bench/profile.sh does: pprof on
# KEYCARD_BENCH_PPROF, nothing else changed), starts it with --dev on a
# fresh SQLite data directory (or, with --store, on that PostgreSQL
# database, migrated first), then runs
#
#   keycard bench authcode --duration SECONDS --concurrency N --server-pid PID --json
#
# ROUNDS times, each on the same cores as the server, and records the load
# average before each round (the machine may be shared). During the
# second round (the first when there is one) it takes a CPU profile of the
# server for SECONDS - 4 s. Writes DIR/authcode-N.json (one per round),
# DIR/loadavg.txt, DIR/authcode.pb.gz and DIR/top.txt (go tool pprof -top);
# DIR defaults to bench/profiles/authcode-sqlite or …-postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
. bench/lib.sh

rounds=3 seconds=15 concurrency=16 store="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --store) store="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "authcode.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$out" ]; then
  out="$root/bench/profiles/authcode-sqlite"
  [ -n "$store" ] && out="$root/bench/profiles/authcode-postgres"
fi
mkdir -p "$out"

work="$(mktemp -d)"
pids=()
cleanup() {
  stop_started
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

printf '{"Replace":{"%s/cmd/keycard/zz_bench_pprof.go":"%s/bench/profile/keycard_pprof.go.in"}}\n' "$root" "$root" >"$work/overlay.json"
log "building a profiling keycard (go build -overlay) into $work"
go build -overlay "$work/overlay.json" -o "$work/keycard" ./cmd/keycard

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

: >"$out/loadavg.txt"
profile_round=$((rounds > 1 ? 2 : 1))
for i in $(seq 1 "$rounds"); do
  echo "round $i: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/loadavg.txt"
  log "round $i of $rounds: keycard bench authcode for $seconds s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  "$work/keycard" bench authcode --target "$url" --duration "${seconds}s" --concurrency "$concurrency" \
    --server-pid "$pid" --quiet --json >"$out/authcode-$i.json" &
  bench_pid=$!
  if [ "$i" = "$profile_round" ]; then
    sleep 3
    curl -fsS -o "$out/authcode.pb.gz" "http://127.0.0.1:$pprof_port/debug/pprof/profile?seconds=$((seconds - 4))"
  fi
  wait "$bench_pid"
  sed -n 's/^  "\(throughput_per_s\|errors\)": \(.*\),$/  \1 \2/p' "$out/authcode-$i.json" >&2
done
go tool pprof -top -nodecount 40 "$work/keycard" "$out/authcode.pb.gz" >"$out/top.txt" 2>/dev/null
head -50 "$out/top.txt"
