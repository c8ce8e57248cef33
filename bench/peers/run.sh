#!/usr/bin/env bash
# Keycard against Ory Hydra and Ory Oathkeeper on this machine, driven by
# wrk with the same scripts (bench/wrk), in interleaved rounds: each round
# runs every workload against every configuration once, one after the
# other, so that a slow spell of the machine lands on all of them.
#
#   bench/peers/run.sh --bin DIR [--rounds 3] [--duration 20s] [--connections 16]
#                      [--threads 2] [--out bench/peers/results]
#
# DIR holds hydra, oathkeeper and their .commit files (bench/peers/build.sh).
# Needs wrk, Go, psql and a PostgreSQL server: KEYCARD_BENCH_POSTGRES or
# KEYCARD_TEST_POSTGRES, a URL whose user may create databases (the script
# creates its own and drops them at the end). Nothing in CI runs it.
#
# What runs, all on 127.0.0.1, each server with its default logging to a
# file unless said otherwise:
#
#   Keycard   keycard serve --dev (ES256 access tokens, JWT) on SQLite, and
#             on PostgreSQL
#   Hydra     hydra serve all --dev on SQLite (WAL, synchronous=NORMAL, as
#             Keycard's) and on PostgreSQL, with opaque or JWT access
#             tokens (signed ES256 like Keycard's: the script creates the
#             key set before Hydra's first JWT, which would otherwise make
#             it RS256), and with its default client-secret hashing
#             (PBKDF2, 25,000 iterations) or a cheap one (PBKDF2, 1
#             iteration)
#   gateway   keycard gateway (verification cache on, access log off) and
#             oathkeeper (jwt authenticator against Keycard's JWKS, allow
#             authorizer, header mutator; log level warn, so no access
#             log), and a bare httputil.ReverseProxy, each in front of
#             bench/cmd/upstream, with Keycard's ES256 access tokens
#
# and the workloads, each with wrk -t THREADS -c CONNECTIONS -d DURATION
# through bench/cmd/wrkbench (which reads the server's CPU time from
# /proc/PID/stat around the run):
#
#   refresh             Keycard: POST /oauth/token, first-party (no client
#                       authentication); Hydra: POST /oauth2/token with a
#                       public client (client_id, no secret), sessions
#                       from the authorization code flow (bench/cmd/hydraprep)
#   client-credentials  HTTP Basic, scope bench:read; Hydra with each hashing
#   introspect          Keycard: POST /oauth/introspect with HTTP Basic of a
#                       service client; Hydra: its admin endpoint POST
#                       /admin/oauth2/introspect, which takes no client
#                       authentication
#   gateway             GET /me/x with a Keycard access token
#
# Results: OUT/rR-WORKLOAD-SYSTEM.json (keycard-wrk/1) and OUT/machine.json;
# then bench/cmd/benchreport -peers writes the "Against Ory" region of
# BENCHMARKS.md (with another --out, it prints the region instead).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
. bench/lib.sh

bin="" rounds=3 duration=20s conns=16 threads=2 out="$root/bench/peers/results"
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --connections) conns="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
PG_URL="${KEYCARD_BENCH_POSTGRES:-${KEYCARD_TEST_POSTGRES:-}}"
if [ -z "$bin" ] || [ ! -x "$bin/hydra" ] || [ ! -x "$bin/oathkeeper" ]; then
  echo "run.sh: --bin DIR must hold hydra and oathkeeper (bench/peers/build.sh)" >&2
  exit 2
fi
if [ -z "$PG_URL" ] || ! command -v psql >/dev/null || ! command -v wrk >/dev/null; then
  echo "run.sh: needs wrk, psql and KEYCARD_BENCH_POSTGRES or KEYCARD_TEST_POSTGRES" >&2
  exit 2
fi
bin="$(cd "$bin" && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

work="$(mktemp -d)"
pids=()
dbs=()
admin_password="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
export KEYCARD_BENCH_ADMIN_USER=admin KEYCARD_BENCH_ADMIN_PASSWORD="$admin_password"

cleanup() {
  local db
  stop_started
  for db in "${dbs[@]}"; do
    psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port prints a TCP port nothing on 127.0.0.1 listens on.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
}

# new_db prints the URL of a new PostgreSQL database, dropped at the end.
new_db() {
  local name="kcpeers_$1_$$" prefix
  psql -q "$PG_URL" -c "CREATE DATABASE $name" >/dev/null
  dbs+=("$name")
  prefix="${PG_URL%%\?*}"
  echo "${prefix%/*}/$name${PG_URL#"$prefix"}"
}

# wait_http URL PID waits until URL answers 200.
wait_http() {
  local i
  for i in $(seq 1 300); do
    curl -fs "$1" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "run.sh: process $2 exited before $1 answered" >&2; return 1; }
    sleep 0.1
  done
  echo "run.sh: $1 did not answer in 30 s" >&2
  return 1
}

started="$(date -u +%s)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
ticks_before="$(cpu_ticks 2>/dev/null || echo)"

log "building keycard, bench/cmd/upstream, wrkbench and hydraprep into $work"
go build -o "$work/keycard" ./cmd/keycard
(cd bench && go build -o "$work/upstream" ./cmd/upstream && go build -o "$work/wrkbench" ./cmd/wrkbench &&
  go build -o "$work/hydraprep" ./cmd/hydraprep)

# Keycard, on SQLite and on PostgreSQL, each with the admin wrkbench uses.
# keycard_serve NAME ARGS... starts keycard serve --dev; sets pid and url.
keycard_serve() {
  local name="$1"
  shift
  "$work/keycard" migrate "$@" >/dev/null
  printf '%s\n' "$admin_password" |
    "$work/keycard" users add "$@" --username admin --role admin --password-stdin >/dev/null
  "$work/keycard" serve --dev --addr 127.0.0.1:0 "$@" 2>"$work/$name.log" &
  pid=$!
  pids+=("$pid")
  url="http://$(listen_addr "$work/$name.log" "$pid")"
}
log "keycard serve on SQLite and on PostgreSQL"
keycard_serve keycard-sqlite --data "$work/keycard-sqlite"
kc_sqlite_pid=$pid kc_sqlite_url=$url
kc_db="$(new_db keycard)"
"$work/keycard" migrate --store "$kc_db" >/dev/null
keycard_serve keycard-pg --data "$work/keycard-pg" --store "$kc_db"
kc_pg_pid=$pid kc_pg_url=$url

# Hydra: hydra_serve NAME DSN STRATEGY ITERATIONS writes a configuration,
# migrates, starts hydra serve all, and prepares clients and sessions for
# introspection (hydraprep: sessions that are never refreshed, since a
# refresh revokes its session's access token).
declare -A hydra_pid hydra_public hydra_admin
hydra_serve() {
  local name="$1" dsn="$2" strategy="$3" iterations="$4" dir="$work/$1" public admin
  mkdir -p "$dir/intro"
  public="$(free_port)"
  admin="$(free_port)"
  cat >"$dir/hydra.yaml" <<EOF
dsn: "$dsn"
serve:
  public: {host: 127.0.0.1, port: $public}
  admin: {host: 127.0.0.1, port: $admin}
urls:
  self: {issuer: "http://127.0.0.1:$public"}
  login: http://127.0.0.1:9/login
  consent: http://127.0.0.1:9/consent
secrets: {system: ["$(head -c 24 /dev/urandom | base64)"]}
strategies: {access_token: $strategy}
ttl: {access_token: 24h}
sqa: {opt_out: true}
oauth2:
  hashers: {algorithm: pbkdf2, pbkdf2: {iterations: $iterations}}
EOF
  "$bin/hydra" migrate sql up -e --yes --config "$dir/hydra.yaml" >"$dir/migrate.log" 2>&1
  "$bin/hydra" serve all --dev --config "$dir/hydra.yaml" >"$dir/hydra.log" 2>&1 &
  hydra_pid[$name]=$!
  pids+=("$!")
  hydra_public[$name]="http://127.0.0.1:$public"
  hydra_admin[$name]="http://127.0.0.1:$admin"
  wait_http "${hydra_admin[$name]}/health/ready" "${hydra_pid[$name]}"
  if [ "$strategy" = jwt ]; then
    # Hydra makes its access-token key set at the first JWT it signs, RS256
    # (4,096 bits) unless the set exists: make it ES256, as Keycard signs.
    curl -fsS -o /dev/null -X POST "${hydra_admin[$name]}/admin/keys/hydra.jwt.access-token" \
      -H 'Content-Type: application/json' -d '{"alg": "ES256", "use": "sig", "kid": "bench-es256"}'
  fi
  "$work/hydraprep" -public "${hydra_public[$name]}" -admin "${hydra_admin[$name]}" -dir "$dir/intro" -n 8 2>/dev/null
}
# name, store, access-token strategy, PBKDF2 iterations (25,000 is Hydra's default)
hydras=(
  "hydra-sqlite-opaque sqlite opaque 1"
  "hydra-sqlite-jwt sqlite jwt 1"
  "hydra-sqlite-opaque-defaulthash sqlite opaque 25000"
  "hydra-pg-opaque pg opaque 1"
  "hydra-pg-jwt pg jwt 1"
  "hydra-pg-opaque-defaulthash pg opaque 25000"
)
for h in "${hydras[@]}"; do
  read -r name store strategy iterations <<<"$h"
  log "$name: Hydra on $store, $strategy access tokens, PBKDF2 $iterations iteration(s)"
  if [ "$store" = sqlite ]; then
    dsn="sqlite://$work/$name/hydra.db?_fk=true&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
    mkdir -p "$work/$name"
  else
    dsn="$(new_db "${name//-/_}")"
  fi
  hydra_serve "$name" "$dsn" "$strategy" "$iterations"
done

# The gateways, in front of one upstream, for Keycard's tokens.
log "upstream, bare reverse proxy, keycard gateway and oathkeeper"
start_proxies "$work" "$work/keycard-sqlite" "$kc_sqlite_url"
ok_port="$(free_port)" ok_api="$(free_port)" ok_prom="$(free_port)"
cat >"$work/oathkeeper-rules.json" <<EOF
[{
  "id": "me",
  "match": {"url": "http://127.0.0.1:$ok_port/me/<**>", "methods": ["GET"]},
  "upstream": {"url": "$upstream_url"},
  "authenticators": [{"handler": "jwt"}],
  "authorizer": {"handler": "allow"},
  "mutators": [{"handler": "header"}]
}]
EOF
cat >"$work/oathkeeper.yaml" <<EOF
serve:
  proxy: {host: 127.0.0.1, port: $ok_port}
  api: {host: 127.0.0.1, port: $ok_api}
  prometheus: {host: 127.0.0.1, port: $ok_prom}
access_rules:
  repositories: ["file://$work/oathkeeper-rules.json"]
  matching_strategy: glob
authenticators:
  jwt:
    enabled: true
    config:
      jwks_urls: ["$kc_sqlite_url/.well-known/jwks.json"]
      trusted_issuers: ["$kc_sqlite_url"]
      target_audience: [api]
      allowed_algorithms: [ES256]
authorizers:
  allow: {enabled: true}
mutators:
  header:
    enabled: true
    config: {headers: {X-User: "{{ print .Subject }}"}}
log: {level: warn}
EOF
"$bin/oathkeeper" serve --config "$work/oathkeeper.yaml" >"$work/oathkeeper.log" 2>&1 &
ok_pid=$!
pids+=("$ok_pid")
ok_url="http://127.0.0.1:$ok_port"
wait_http "http://127.0.0.1:$ok_api/health/ready" "$ok_pid"

# run R WORKLOAD SYSTEM LABEL PID URL [wrkbench flags...] runs wrk once,
# with the WRK_* variables of the caller's environment, into
# OUT/rR-WORKLOAD-SYSTEM.json.
run() {
  local r="$1" w="$2" system="$3" label="$4" pid="$5" url="$6" file="$out/r$1-$2-$3.json"
  shift 6
  if ! "$work/wrkbench" -workload "$w" -server-pid "$pid" -label "$label" -out "$file" "$@" -- \
    wrk -t"$threads" -c"$conns" -d"$duration" -s "bench/wrk/$w.lua" "$url" >"$work/last.out" 2>&1; then
    cat "$work/last.out" >&2
    echo "run.sh: FAILED: $w against $system, round $r" >&2
    rm -f "$file"
    return 0
  fi
  sed -n 's/^  "throughput_per_s": \([0-9]*\).*/   '"r$r $w $system"': \1\/s/p' "$file" >&2
}

# with_env DIR NAME=VALUE... COMMAND... runs COMMAND (a function of this
# script) in a subshell with the WRK_* variables hydraprep wrote to DIR,
# then the NAME=VALUE pairs, exported.
with_env() {
  local dir="$1"
  shift
  (
    set -a
    . "$dir/env"
    while [[ "$1" == *=* ]]; do
      export "$1"
      shift
    done
    set +a
    "$@"
  )
}

rm -f "$out"/r*-*.json "$out/machine.json"
for r in $(seq 1 "$rounds"); do
  log "round $r of $rounds"
  # refresh
  run "$r" refresh keycard-sqlite "Keycard, SQLite" "$kc_sqlite_pid" "$kc_sqlite_url" -keycard "$kc_sqlite_url"
  run "$r" refresh keycard-pg "Keycard, PostgreSQL" "$kc_pg_pid" "$kc_pg_url" -keycard "$kc_pg_url"
  for h in hydra-sqlite-opaque hydra-sqlite-jwt hydra-pg-opaque hydra-pg-jwt; do
    dir="$work/$h/refresh-r$r"
    mkdir -p "$dir"
    "$work/hydraprep" -public "${hydra_public[$h]}" -admin "${hydra_admin[$h]}" -dir "$dir" -n $((2 * conns)) 2>/dev/null
    # A public client: no Authorization header, client_id in the form.
    with_env "$dir" WRK_AUTH=- WRK_PATH=/oauth2/token WRK_TOKENS="$dir/refresh" \
      run "$r" refresh "$h" "$h" "${hydra_pid[$h]}" "${hydra_public[$h]}"
  done
  # client credentials
  run "$r" client-credentials keycard-sqlite "Keycard, SQLite" "$kc_sqlite_pid" "$kc_sqlite_url" -keycard "$kc_sqlite_url"
  run "$r" client-credentials keycard-pg "Keycard, PostgreSQL" "$kc_pg_pid" "$kc_pg_url" -keycard "$kc_pg_url"
  for h in hydra-sqlite-opaque hydra-sqlite-jwt hydra-sqlite-opaque-defaulthash hydra-pg-opaque hydra-pg-jwt hydra-pg-opaque-defaulthash; do
    with_env "$work/$h/intro" WRK_PATH=/oauth2/token \
      run "$r" client-credentials "$h" "$h" "${hydra_pid[$h]}" "${hydra_public[$h]}"
  done
  # introspection
  run "$r" introspect keycard-sqlite "Keycard, SQLite" "$kc_sqlite_pid" "$kc_sqlite_url" -keycard "$kc_sqlite_url"
  run "$r" introspect keycard-pg "Keycard, PostgreSQL" "$kc_pg_pid" "$kc_pg_url" -keycard "$kc_pg_url"
  for h in hydra-sqlite-opaque hydra-sqlite-jwt hydra-pg-opaque hydra-pg-jwt; do
    WRK_AUTH=- WRK_PATH=/admin/oauth2/introspect WRK_TOKENS="$work/$h/intro/access" \
      run "$r" introspect "$h" "$h" "${hydra_pid[$h]}" "${hydra_admin[$h]}"
  done
  # gateway
  WRK_PATH=/me/x run "$r" gateway keycard-gateway "keycard gateway" "$gateway_pid" "$gateway_url" -keycard "$kc_sqlite_url"
  WRK_PATH=/me/x run "$r" gateway oathkeeper "Oathkeeper" "$ok_pid" "$ok_url" -keycard "$kc_sqlite_url"
  WRK_PATH=/me/x run "$r" gateway bare "bare httputil.ReverseProxy" "$bare_pid" "$bare_url" -keycard "$kc_sqlite_url"
done

ended="$(date -u +%s)"
stop "${pids[@]}"
others="$(others_json "$ticks_before" "$((ended - started))")"
cat >"$out/machine.json" <<EOF
{
  "command": "bench/peers/run.sh --rounds $rounds --duration $duration --connections $conns --threads $threads",
  "commit": "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)",
  "hydra_commit": "$(cat "$bin/hydra.commit" 2>/dev/null || echo unknown)",
  "oathkeeper_commit": "$(cat "$bin/oathkeeper.commit" 2>/dev/null || echo unknown)",
  "date": "$(date -u +%Y-%m-%dT%H:%MZ)",
  "seconds": $((ended - started)),
  "cpu_model": "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)",
  "cores": $(nproc),
  "go_version": "$(go env GOVERSION)",
  "kernel": "$(uname -sr)",
  "load_before": "$load_before",
  "load_after": "$(cut -d' ' -f1-3 /proc/loadavg)",
  "postgres": "$(psql -tA "$PG_URL" -c 'SHOW server_version' 2>/dev/null || echo unknown)",
  $others
  "rounds": $rounds,
  "duration": "$duration",
  "connections": $conns,
  "threads": $threads
}
EOF
if [ "$out" = "$root/bench/peers/results" ]; then
  log "benchreport -peers → BENCHMARKS.md"
  (cd bench && go run ./cmd/benchreport -peers "$out" -md ../BENCHMARKS.md)
else # results elsewhere: a trial, which leaves BENCHMARKS.md alone
  (cd bench && go run ./cmd/benchreport -peers "$out")
fi
log "done in $((ended - started)) s"
