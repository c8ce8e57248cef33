#!/usr/bin/env bash
# nginx with forward-auth (auth_request to keycard gateway --forward-auth)
# against nginx alone, in front of the same upstream, in one run:
# `keycard bench gateway` through each, alternating, ROUNDS times.
#
#   bench/forwardauth.sh [--rounds 3] [--duration 20s] [--out bench/results/forwardauth]
#
# Needs nginx (Debian's package) and Go. Both nginx servers run one worker
# process with no master (worker_processes 1, master_process off), so that
# /proc/PID/stat holds all of nginx's CPU time; the forward-auth figure adds
# the gateway's. The gateway is keycard gateway --forward-auth (access log
# off, verification cache on) following a keycard serve --dev on SQLite;
# the nginx configuration is the one of docs/forward-auth.md. Nothing in
# CI runs it; docs/forward-auth.md reports its figures.
#
# Results: OUT/rR-{alone,forwardauth}.json (keycard-bench/1), and a summary
# on standard output: requests per second of each, the ratio, and the
# server CPU time per request (nginx, plus the gateway for forward-auth).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
. bench/lib.sh

rounds=3 duration=20s out="$root/bench/results/forwardauth"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/forwardauth.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
nginx="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$nginx" ] || { echo "bench/forwardauth.sh: nginx is not installed (apt-get install nginx-light)" >&2; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() {
  stop_started
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$out"
rm -f "$out"/*.json

log "building keycard and bench/cmd/upstream into $work"
go build -o "$work/keycard" ./cmd/keycard
(cd bench && go build -o "$work/upstream" ./cmd/upstream)

admin_password="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
export KEYCARD_BENCH_ADMIN_USER=admin KEYCARD_BENCH_ADMIN_PASSWORD="$admin_password"
"$work/keycard" migrate --data "$work/data" >/dev/null
printf '%s\n' "$admin_password" |
  "$work/keycard" users add --data "$work/data" --username admin --role admin --password-stdin >/dev/null
"$work/keycard" serve --dev --addr 127.0.0.1:0 --data "$work/data" 2>"$work/serve.log" &
pids+=($!)
target="http://$(listen_addr "$work/serve.log" "$!")"

"$work/upstream" >"$work/upstream.addr" 2>"$work/upstream.log" &
pids+=($!)
upstream="http://$(first_line "$work/upstream.addr" "$!")"

"$work/keycard" clients add --data "$work/data" --name gateway >"$work/client.json" 2>/dev/null
sed -n 's/.*"client_secret":"\([^"]*\)".*/\1/p' "$work/client.json" >"$work/gateway.secret"
cat >"$work/gateway.yaml" <<EOF
listen: 127.0.0.1:0
issuer: $target
audience: api
access_log: false
client: {id: $(sed -n 's/.*"client_id":"\([^"]*\)".*/\1/p' "$work/client.json"), secret_file: gateway.secret}
routes:
  - path: /me/
EOF
"$work/keycard" gateway --forward-auth --config "$work/gateway.yaml" 2>"$work/gateway.log" &
gateway_pid=$!
pids+=("$gateway_pid")
gateway="http://$(listen_addr "$work/gateway.log" "$gateway_pid")"
for i in $(seq 1 300); do
  curl -fs "$gateway/readyz" >/dev/null 2>&1 && break
  [ "$i" = 300 ] && { echo "bench/forwardauth.sh: the gateway was not ready" >&2; cat "$work/gateway.log" >&2; exit 1; }
  sleep 0.1
done

# free_port prints a loopback port that was free a moment ago.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_nginx NAME LOCATION starts nginx with LOCATION as its location /
# block and sets nginx_pid and nginx_url.
start_nginx() {
  local dir="$work/$1" port
  port="$(free_port)"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  upstream app { server ${upstream#http://}; keepalive 32; }
  upstream keycard { server ${gateway#http://}; keepalive 32; }
  server {
    listen 127.0.0.1:$port;
    location = /healthz { return 200; } # keycard bench's check that the server is up
$2
  }
}
EOF
  "$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
  nginx_pid=$!
  pids+=("$nginx_pid")
  nginx_url="http://127.0.0.1:$port"
  for i in $(seq 1 100); do
    curl -s -o /dev/null "$nginx_url/" && return 0
    sleep 0.1
  done
  echo "bench/forwardauth.sh: nginx $1 did not start" >&2
  cat "$dir/error.log" >&2
  return 1
}

start_nginx alone '
    location / {
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }'
alone_pid=$nginx_pid alone_url=$nginx_url

start_nginx forwardauth '
    location / {
      auth_request /_keycard;
      auth_request_set $keycard_subject $upstream_http_x_keycard_subject;
      auth_request_set $keycard_session $upstream_http_x_keycard_session;
      auth_request_set $keycard_scopes  $upstream_http_x_keycard_scopes;
      auth_request_set $keycard_roles   $upstream_http_x_keycard_roles;
      proxy_set_header X-Keycard-Subject $keycard_subject;
      proxy_set_header X-Keycard-Session $keycard_session;
      proxy_set_header X-Keycard-Scopes  $keycard_scopes;
      proxy_set_header X-Keycard-Roles   $keycard_roles;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }
    location = /_keycard {
      internal;
      proxy_pass http://keycard/auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-Host $host;
    }'
fa_pid=$nginx_pid fa_url=$nginx_url

# ticks PID prints the CPU time (user + system, clock ticks) of PID.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run NAME URL PID... runs keycard bench gateway through URL and prints
# its throughput and the CPU time per request of the PIDs together.
run() {
  local name="$1" url="$2" file before after t0 t1 p req rate
  shift 2
  file="$out/r$round-$name.json"
  before=0 after=0
  for p in "$@"; do before=$((before + $(ticks "$p"))); done
  "$work/keycard" bench gateway --target "$target" --gateway "$url" --path /me/x \
    --duration "$duration" --server-pid "$1" --quiet --json >"$file"
  for p in "$@"; do after=$((after + $(ticks "$p"))); done
  req="$(sed -n 's/^  "successes": \([0-9]*\).*/\1/p' "$file")"
  rate="$(sed -n 's/^  "throughput_per_s": \([0-9.]*\).*/\1/p' "$file")"
  awk -v n="$name" -v r="$rate" -v q="$req" -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%-12s %9.0f req/s  %6.1f µs server CPU/request\n", n, r, t / hz * 1e6 / q }'
  echo "$rate" >>"$work/$name.rates"
}

log "nginx alone $alone_url, nginx + forward-auth $fa_url, gateway $gateway; $rounds rounds of $duration each"
for round in $(seq 1 "$rounds"); do
  echo "round $round"
  run alone "$alone_url" "$alone_pid"
  run forwardauth "$fa_url" "$fa_pid" "$gateway_pid"
done
awk 'NR == FNR { a += $1; n++; next } { f += $1; m++ }
  END { printf "nginx + forward-auth / nginx alone: %.2f× (mean of %d rounds)\n", (f / m) / (a / n), n }' \
  "$work/alone.rates" "$work/forwardauth.rates"
