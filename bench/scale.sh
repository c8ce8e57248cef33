#!/usr/bin/env bash
# Refresh and introspection as the PostgreSQL store grows (issue 20,
# "Scale"): two databases of their own on the server KEYCARD_TEST_POSTGRES
# names, keycard_scale_small (10,000 sessions and 10,000 users) and
# keycard_scale (LARGE_SESSIONS sessions and LARGE_USERS users, by default
# 1,000,000 and 10,000,000), filled by bench/cmd/scalegen with COPY (not
# through the API), each served in turn by `keycard serve --dev` and
# driven by wrk (bench/wrk/WORKLOAD.lua through bench/cmd/wrkbench: 2
# threads, 16 connections) for each workload, in interleaved rounds
# (small, large, small, large, …), so that the machine's load falls on
# both alike. Both databases are dropped at the end.
#
#   KEYCARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
#     bench/scale.sh [--rounds 3] [--seconds 20] [--large-sessions 1000000] [--large-users 10000000]
#
# The databases are made afresh (dropped first if a run left them).
# Writes bench/results/scale/SIZE-WORKLOAD-rROUND.json
# (keycard-wrk/1, server CPU per request from /proc/PID/stat),
# bench/results/scale/fill.log and bench/results/scale/machine.json, then
# runs bench/cmd/scaleplot, which writes bench/results/scale/summary.md
# and bench/plots/scale.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
. bench/lib.sh

rounds=3 seconds=20 large_sessions=1000000 large_users=10000000
small_sessions=10000 small_users=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --large-sessions) large_sessions="$2"; shift 2 ;;
    --large-users) large_users="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "scale.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
base="${KEYCARD_TEST_POSTGRES:?scale.sh needs KEYCARD_TEST_POSTGRES, a PostgreSQL URL whose server may get two more databases}"
command -v wrk >/dev/null || { echo "scale.sh: wrk is not installed" >&2; exit 2; }
command -v psql >/dev/null || { echo "scale.sh: psql is not installed" >&2; exit 2; }

# db_url NAME is base with its database replaced by NAME.
db_url() { echo "$base" | sed -E "s#^(postgres(ql)?://[^/]*)/[^?]*#\1/$1#"; }
small_db=keycard_scale_small large_db=keycard_scale

work="$(mktemp -d)"
pids=()
cleanup() {
  stop_started
  psql "$base" -qc "DROP DATABASE IF EXISTS $small_db" >/dev/null 2>&1 || true
  psql "$base" -qc "DROP DATABASE IF EXISTS $large_db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

out="$root/bench/results/scale"
mkdir -p "$out"
rm -f "$out"/*.json
log "building keycard and the bench tools into $work"
go build -o "$work/keycard" ./cmd/keycard
(cd bench && go build -o "$work/wrkbench" ./cmd/wrkbench && go build -o "$work/scalegen" ./cmd/scalegen && go build -o "$work/scaleplot" ./cmd/scaleplot)

admin_password="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
export KEYCARD_BENCH_ADMIN_USER=admin KEYCARD_BENCH_ADMIN_PASSWORD="$admin_password"
started="$(date -u +%s)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
: >"$out/fill.log"
# fill NAME SIZE SESSIONS USERS makes the database afresh, migrates it
# (the master key in the data directory of SIZE, which serve uses
# later), adds the admin and fills it with scalegen.
fill() {
  local url t0
  url="$(db_url "$1")"
  psql "$base" -qc "DROP DATABASE IF EXISTS $1" >/dev/null
  psql "$base" -qc "CREATE DATABASE $1" >/dev/null
  "$work/keycard" migrate --data "$work/data-$2" --store "$url" >/dev/null
  printf '%s\n' "$admin_password" | "$work/keycard" users add --data "$work/data-$2" --store "$url" --username admin --role admin --password-stdin >/dev/null
  log "filling $1: $3 sessions, $4 users (COPY)"
  t0="$(date +%s)"
  "$work/scalegen" -db "$url" -sessions "$3" -users "$4" 2>&1 | tee -a "$out/fill.log" >&2
  echo "$1: $3 sessions, $4 users, filled in $(($(date +%s) - t0)) s" >>"$out/fill.log"
  psql "$url" -Atc "SELECT '$1: ' || pg_size_pretty(pg_database_size('$1'))" >>"$out/fill.log"
}
fill "$small_db" small "$small_sessions" "$small_users"
fill "$large_db" large "$large_sessions" "$large_users"

for round in $(seq 1 "$rounds"); do
  for size in small large; do
    if [ "$size" = small ]; then db="$small_db"; else db="$large_db"; fi
    : >"$work/serve-$size.log"
    "$work/keycard" serve --dev --addr 127.0.0.1:0 --data "$work/data-$size" --store "$(db_url "$db")" 2>"$work/serve-$size.log" &
    pid=$!
    pids+=("$pid")
    url="http://$(listen_addr "$work/serve-$size.log" "$pid")"
    for w in refresh introspect; do
      load="$(cut -d' ' -f1-3 /proc/loadavg)"
      log "round $round, $size store, $w: wrk for $seconds s (load $load)"
      "$work/wrkbench" -workload "$w" -keycard "$url" -server-pid "$pid" -label "$size" \
        -out "$out/$size-$w-r$round.json" -- \
        wrk -t2 -c16 -d"${seconds}s" -s "$root/bench/wrk/$w.lua" "$url" >"$work/$w.wrk" 2>&1 ||
        { cat "$work/$w.wrk" >&2; exit 1; }
      # The load average at the start of the run, for the report.
      sed -i "s/^{/{\n  \"load_average\": \"$load\",/" "$out/$size-$w-r$round.json"
    done
    stop "$pid"
  done
done

cat >"$out/machine.json" <<EOF
{
  "command": "bench/scale.sh --rounds $rounds --seconds $seconds --large-sessions $large_sessions --large-users $large_users",
  "commit": "$(git rev-parse --short HEAD)",
  "date": "$(date -u +%Y-%m-%dT%H:%MZ)",
  "seconds": $(($(date -u +%s) - started)),
  "cpu_model": "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)",
  "cores": $(nproc),
  "load_before": "$load_before",
  "load_after": "$(cut -d' ' -f1-3 /proc/loadavg)",
  "small": {"sessions": $small_sessions, "users": $small_users},
  "large": {"sessions": $large_sessions, "users": $large_users},
  "postgres": "$(psql "$base" -Atc 'SHOW server_version')"
}
EOF
"$work/scaleplot" -dir "$out" -md "$out/summary.md" -svg "$root/bench/plots/scale.svg"
cat "$out/summary.md"
