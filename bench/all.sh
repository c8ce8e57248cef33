#!/usr/bin/env bash
# Runs every benchmark behind BENCHMARKS.md and regenerates the file and its
# plots from the results.
#
#   bench/all.sh                   # full run: about 25 minutes on the quiet 2-core
#                                  # machine (bench/run.sh about 5 of them), longer when busy
#   bench/all.sh --quick           # short runs (2 to 4 minutes): a smoke test; its
#                                  # figures are labelled as such in BENCHMARKS.md
#   bench/all.sh --skip-token-core # leave the token-core section (bench/run.sh) as it is
#
# Needs Go, wrk (Debian: apt-get install wrk; without it the wrk runs are
# left out and BENCHMARKS.md says so), and for the stored-sessions series
# the sqlite3 shell. PostgreSQL
# figures need a server: KEYCARD_TEST_POSTGRES (or KEYCARD_BENCH_POSTGRES)
# is a URL whose user may create databases, for example
# postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable, and psql;
# without them those figures are left out and BENCHMARKS.md says so.
#
# What it runs, in this order (each result lands in bench/results/):
#
#   1. token core: bench/run.sh (its own results.txt, tables and chart.svg);
#   2. go test benchmarks: verifier middleware, verification cache and
#      revocation set (verifier.txt), the gateway against a bare
#      httputil.ReverseProxy (gateway.txt), login against argon2id
#      (login.txt), the stores' refresh rotation (stores.txt,
#      stores-postgres.txt) — each as
#      COUNT passes of -count 1, so that a burst of other work on a shared
#      machine is spread over the variants compared instead of landing on
#      one;
#   3. `keycard serve --dev` on SQLite, driven by `keycard bench … --json`
#      and, right after each, by wrk with the same workload and 16
#      connections (bench/wrk/*.lua through bench/cmd/wrkbench): login,
#      refresh, client-credentials, introspect (sqlite-*.json,
#      wrk-sqlite-*.json); with it, `keycard gateway` and a bare reverse
#      proxy (bench/cmd/upstream) in front of the same upstream, `keycard
#      bench gateway` and wrk through each, alternating (gateway-*.json,
#      wrk-gateway-*.json), and `keycard bench revocation-latency`
#      (revocation.json). Every run reads the server's (or proxy's) CPU
#      time from /proc/PID/stat around it: CPU per request;
#   4. the same server workloads on a fresh PostgreSQL database, one
#      instance, with keycard bench and wrk (pg1-*.json, wrk-pg1-*.json),
#      then two instances on that database, each
#      driven by its own `keycard bench` at the same time; their
#      throughputs add (pg2-*-a.json, pg2-*-b.json);
#   5. refresh as the stored sessions grow: one SQLite data directory per
#      size, seeded in one transaction with that many live sessions (one
#      refresh token each, spread over 1,000 users), then `keycard bench
#      refresh` against each in turn, ROUNDS times (sessions-N-rR.json);
#   6. bench/cmd/benchreport -system: the region between
#      <!-- benchreport:system:begin/end --> in BENCHMARKS.md and the plots
#      in bench/plots/.
#
# Everything it starts listens on 127.0.0.1 on a free port and is stopped at
# the end (also on error or Ctrl-C); the PostgreSQL database it creates is
# dropped. Run it on an otherwise idle machine: the load average before and
# after, and the share of the cores' time other programs took while it ran,
# are recorded next to the figures (and a share of 10% or more, a load
# average of 3 or more at the start, or --quick labels them noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
. bench/lib.sh

mode=full
token_core=1
for arg in "$@"; do
  case "$arg" in
    --quick) mode=quick ;;
    --skip-token-core) token_core= ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/all.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$mode" = quick ]; then
  COUNT=1             # passes of each go test benchmark
  BENCHTIME=200ms     # go test -benchtime, verifier and gateway
  HTTP_BENCHTIME=2s   # go test -benchtime, login and argon2id
  DURATION=3s         # each keycard bench run
  REVOCATIONS=100     # revocation-latency cycles
  SESSIONS="10000 100000"
  ROUNDS=1
else
  COUNT=6
  BENCHTIME=1s
  HTTP_BENCHTIME=5s
  DURATION=20s
  REVOCATIONS=1000
  SESSIONS="10000 100000 1000000"
  ROUNDS=3
fi
PG_URL="${KEYCARD_BENCH_POSTGRES:-${KEYCARD_TEST_POSTGRES:-}}"

out="$root/bench/results"
work="$(mktemp -d)"
pids=()
pg_db=""
have_wrk=""
command -v wrk >/dev/null && have_wrk=1
WRK_THREADS="${WRK_THREADS:-2}"
admin_user=admin
admin_password="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
export KEYCARD_BENCH_ADMIN_USER="$admin_user" KEYCARD_BENCH_ADMIN_PASSWORD="$admin_password"

cleanup() {
  stop_started
  if [ -n "$pg_db" ]; then
    psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# serve NAME ARGS... starts `keycard serve --dev` and sets $addr.
serve() {
  local name="$1"
  shift
  "$work/keycard" serve --dev --addr 127.0.0.1:0 "$@" 2>"$work/$name.log" &
  pid=$!
  pids+=("$pid")
  addr="$(listen_addr "$work/$name.log" "$pid")"
}

# add_admin ARGS... creates the admin user bench logs in as.
add_admin() {
  "$work/keycard" migrate "$@" >/dev/null
  printf '%s\n' "$admin_password" |
    "$work/keycard" users add "$@" --username "$admin_user" --role admin --password-stdin >/dev/null
}

# failed WHAT records a step that failed; the run goes on, and the report
# lists the failures next to the figures.
failed() {
  echo "bench/all.sh: FAILED: $*" >&2
  printf '%s\n' "$*" >>"$work/failures"
}

# kbench FILE WORKLOAD ARGS... runs keycard bench with --json into
# bench/results/FILE and says what it measured. A run that fails is
# recorded; its result is kept only if bench printed one.
kbench() {
  local file="$1" code=0
  shift
  "$work/keycard" bench "$@" --quiet --json >"$out/$file" 2>"$work/$file.err" || code=$?
  cat "$work/$file.err" >&2
  if [ "$code" != 0 ]; then
    failed "keycard bench $1 ($file): exit $code: $(tail -1 "$work/$file.err")"
    grep -q '"schema": "keycard-bench/1"' "$out/$file" 2>/dev/null || rm -f "$out/$file"
  fi
  if [ -s "$out/$file" ]; then
    sed -n 's/^  "throughput_per_s": \([0-9]*\).*/   '"$file"': \1\/s/p' "$out/$file" >&2
  fi
}

# wrkbench FILE WORKLOAD PID URL [WRKBENCH FLAGS...] runs wrk with
# bench/wrk/WORKLOAD.lua against URL (16 connections, DURATION), with the
# users, client and tokens it needs prepared on $keycard_url, and the CPU
# time of process PID read around it, into bench/results/FILE.
wrkbench() {
  local file="$1" workload="$2" pid="$3" url="$4" code=0 timeout=2s
  shift 4
  [ -n "$have_wrk" ] || return 0
  [ "$workload" = login ] && timeout=10s # a login takes longer than wrk's 2 s default on a loaded machine
  "$work/wrkbench" -workload "$workload" -keycard "$keycard_url" -server-pid "$pid" -out "$out/$file" "$@" -- \
    wrk -t"$WRK_THREADS" -c16 -d"$DURATION" --timeout "$timeout" -s "bench/wrk/$workload.lua" "$url" \
    >"$work/$file.out" 2>&1 || code=$?
  if [ "$code" != 0 ]; then
    cat "$work/$file.out" >&2
    failed "wrk $workload ($file): exit $code: $(tail -1 "$work/$file.out")"
    rm -f "$out/$file"
  elif [ -s "$out/$file" ]; then
    sed -n 's/^  "throughput_per_s": \([0-9]*\).*/   '"$file"': \1\/s/p' "$out/$file" >&2
  fi
}

# gobench FILE PKG REGEXP ARGS... runs COUNT passes of go test -bench
# -count 1 into bench/results/FILE, after a "command:" line saying so.
gobench() {
  local file="$1" pkg="$2" re="$3" pass
  shift 3
  echo "command: go test -run '^\$' -bench '$re' -count 1 -benchmem $* $pkg, run $COUNT times" >"$out/$file"
  for pass in $(seq 1 "$COUNT"); do
    log "go test -bench '$re' $* $pkg (pass $pass of $COUNT) → bench/results/$file"
    go test -run '^$' -bench "$re" -count 1 -benchmem -timeout 60m "$@" "$pkg" >>"$out/$file" ||
      failed "go test -bench '$re' $pkg, pass $pass: exit $? (output in bench/results/$file)"
  done
}

started="$(date -u +%s)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain -- . ':!bench/results' ':!bench/plots' ':!BENCHMARKS.md' ':!bench/results.txt' ':!bench/benchstat.txt' ':!bench/chart.svg' 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"

ticks_before="$(cpu_ticks 2>/dev/null || echo)"

mkdir -p "$out" "$root/bench/plots"
rm -f "$out"/*.json "$out"/*.txt

log "building keycard and bench/cmd/upstream into $work"
go build -o "$work/keycard" ./cmd/keycard
(cd bench && go build -o "$work/upstream" ./cmd/upstream && go build -o "$work/wrkbench" ./cmd/wrkbench)
[ -n "$have_wrk" ] || log "no wrk on PATH: the wrk runs are left out"

# 1. Token core.
if [ -n "$token_core" ]; then
  log "token core: bench/run.sh (COUNT=$COUNT)"
  COUNT="$COUNT" INTERLEAVE=1 bench/run.sh >/dev/null || failed "bench/run.sh: exit $?"
fi

# 2. go test benchmarks.
gobench verifier.txt ./verifier/ '^(BenchmarkMiddleware|BenchmarkVerifyCached|BenchmarkRevokedCheck|BenchmarkRevocationSetMemory)$' -benchtime "$BENCHTIME"
gobench gateway.txt ./internal/gateway/ '^BenchmarkGatewayVsReverseProxy$' -benchtime "$BENCHTIME"
gobench login.txt ./internal/httpapi/ '^(BenchmarkLogin|BenchmarkArgon2idHash)$' -benchtime "$HTTP_BENCHTIME"
gobench stores.txt ./internal/sqlite/ '^BenchmarkRotateRefreshToken$' -benchtime "$HTTP_BENCHTIME"
if [ -n "$PG_URL" ]; then
  KEYCARD_TEST_POSTGRES="$PG_URL" gobench stores-postgres.txt ./internal/postgres/ '^BenchmarkRotate$' -benchtime "$HTTP_BENCHTIME"
fi

# 3. SQLite: server workloads, then the gateway and revocation propagation.
log "keycard serve --dev on SQLite"
add_admin --data "$work/sqlite"
serve sqlite --data "$work/sqlite"
sqlite_pid=$pid sqlite_url="http://$addr" keycard_url="http://$addr"
for w in login refresh client-credentials introspect; do
  kbench "sqlite-$w.json" "$w" --target "$sqlite_url" --duration "$DURATION" --server-pid "$sqlite_pid"
  wrkbench "wrk-sqlite-$w.json" "$w" "$sqlite_pid" "$sqlite_url"
done

log "keycard gateway and a bare reverse proxy in front of one upstream"
start_proxies "$work" "$work/sqlite" "$sqlite_url"
for round in $(seq 1 "$ROUNDS"); do
  kbench "gateway-bare-r$round.json" gateway --target "$sqlite_url" --gateway "$bare_url" --path /me/x --duration "$DURATION" --server-pid "$bare_pid"
  kbench "gateway-keycard-r$round.json" gateway --target "$sqlite_url" --gateway "$gateway_url" --path /me/x --duration "$DURATION" --server-pid "$gateway_pid"
  WRK_PATH=/me/x wrkbench "wrk-gateway-bare-r$round.json" gateway "$bare_pid" "$bare_url"
  WRK_PATH=/me/x wrkbench "wrk-gateway-keycard-r$round.json" gateway "$gateway_pid" "$gateway_url"
done
log "keycard bench revocation-latency --requests $REVOCATIONS"
kbench revocation.json revocation-latency --target "$sqlite_url" --gateway "$gateway_url" --path /me/x --requests "$REVOCATIONS"
stop "$gateway_pid" "$sqlite_pid"

# 4. PostgreSQL, one instance and two.
if [ -n "$PG_URL" ] && command -v psql >/dev/null; then
  pg_db="kcbench_$(date -u +%s)_$$"
  psql -q "$PG_URL" -c "CREATE DATABASE $pg_db" >/dev/null
  prefix="${PG_URL%%\?*}"
  db_url="${prefix%/*}/$pg_db${PG_URL#"$prefix"}"
  log "keycard serve --dev on PostgreSQL (fresh database $pg_db)"
  add_admin --data "$work/pg" --store "$db_url"
  serve pg1 --data "$work/pg" --store "$db_url"
  pg1_pid=$pid pg1_url="http://$addr" keycard_url="http://$addr"
  for w in refresh client-credentials introspect; do
    kbench "pg1-$w.json" "$w" --target "$pg1_url" --duration "$DURATION" --server-pid "$pg1_pid"
    wrkbench "wrk-pg1-$w.json" "$w" "$pg1_pid" "$pg1_url"
  done
  log "a second instance on the same database; two keycard bench runs at once"
  serve pg2 --data "$work/pg" --store "$db_url"
  pg2_pid=$pid pg2_url="http://$addr"
  for w in refresh client-credentials introspect; do
    kbench "pg2-$w-a.json" "$w" --target "$pg1_url" --duration "$DURATION" --server-pid "$pg1_pid" &
    a=$!
    kbench "pg2-$w-b.json" "$w" --target "$pg2_url" --duration "$DURATION" --server-pid "$pg2_pid" &
    b=$!
    wait "$a"
    wait "$b"
  done
  stop "$pg1_pid" "$pid"
else
  log "no KEYCARD_TEST_POSTGRES (or psql): PostgreSQL figures left out"
fi

# 5. Refresh as stored sessions grow.
if command -v sqlite3 >/dev/null; then
  for n in $SESSIONS; do
    log "seeding $n sessions into a fresh SQLite database"
    add_admin --data "$work/sessions-$n"
    sqlite3 "$work/sessions-$n/keycard.db" >/dev/null <<EOF
PRAGMA journal_mode=OFF;
PRAGMA synchronous=OFF;
PRAGMA cache_size=-400000;
PRAGMA foreign_keys=ON;
BEGIN;
INSERT INTO users (id, username, username_normalized, password_hash, created_at, updated_at, password_changed_at)
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
SELECT 'seed-user-' || i, 'seed-user-' || i, 'seed-user-' || i, '!', 1, 1, 1 FROM n;
INSERT INTO sessions (id, user_id, created_at, last_used_at, idle_timeout, expires_at)
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $n - 1)
SELECT lower(hex(randomblob(16))), 'seed-user-' || (i % 1000), 1, 1, 604800000000, 4102444800000000 FROM n;
INSERT INTO refresh_tokens (id, session_id, secret_hash, created_at)
SELECT lower(hex(randomblob(16))), id, randomblob(32), 1 FROM sessions WHERE user_id LIKE 'seed-user-%';
COMMIT;
PRAGMA journal_mode=WAL;
EOF
  done
  for round in $(seq 1 "$ROUNDS"); do
    for n in $SESSIONS; do
      serve "sessions-$n" --data "$work/sessions-$n"
      kbench "sessions-$n-r$round.json" refresh --target "http://$addr" --duration "$DURATION" --server-pid "$pid"
      stop "$pid"
    done
  done
else
  log "no sqlite3 shell: the stored-sessions series is left out"
fi

# Where and how it ran, for the report. Every process started has been
# waited for, so its CPU time counts as this script's.
ended="$(date -u +%s)"
others_json="$(others_json "$ticks_before" "$((ended - started))")"
load_after="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
failures=""
if [ -s "$work/failures" ]; then
  failures="$(sed 's/\\/\\\\/g; s/"/\\"/g; s/.*/"&"/' "$work/failures" | paste -sd, -)"
fi
cat >"$out/machine.json" <<EOF
{
  "mode": "$mode",
  "command": "bench/all.sh$([ "$mode" = quick ] && echo ' --quick')$([ -z "$token_core" ] && echo ' --skip-token-core')",
  "commit": "$commit",
  "date": "$(date -u +%Y-%m-%dT%H:%MZ)",
  "seconds": $((ended - started)),
  "cpu_model": "$cpu_model",
  "cores": $(nproc),
  "go_version": "$(go env GOVERSION)",
  "kernel": "$(uname -sr)",
  "load_before": "$load_before",
  "load_after": "$load_after",
  "count": $COUNT,
  "benchtime": "$BENCHTIME",
  "http_benchtime": "$HTTP_BENCHTIME",
  "duration": "$DURATION",
  "revocations": $REVOCATIONS,
  "rounds": $ROUNDS,
  "postgres": $([ -n "$pg_db" ] && echo true || echo false),
  "wrk": $([ -n "$have_wrk" ] && echo true || echo false),
  "wrk_threads": $WRK_THREADS,
  $others_json
  "failures": [$failures]
}
EOF

log "benchreport -system → BENCHMARKS.md, bench/plots/"
(cd bench && go run ./cmd/benchreport -system results -md ../BENCHMARKS.md -plots plots -plots-link bench/plots)
log "done in $((ended - started)) s"
