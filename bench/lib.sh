# Shell helpers shared by bench/all.sh and bench/peers/run.sh; sourced,
# not run. The caller keeps the PIDs of the processes it starts in the
# array pids.

log() { echo "== $*" >&2; }

# usage prints the script's opening comment, its usage, and exits 2.
usage() {
  sed -n '2,/^set -euo/p' "${script:-$0}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# out_dir DIR sets dir to DIR as an absolute path (a new temporary
# directory when DIR is empty), creates it and says where outputs go.
out_dir() {
  dir="${1:-$(mktemp -d)}"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  echo "outputs: $dir"
}

# stop_started ends every process in pids and waits for them: the start
# of a cleanup.
stop_started() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}

# stop PID... ends processes this script started and waits for them.
stop() {
  local pid keep=()
  for pid in "$@"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    case " $* " in *" $pid "*) ;; *) keep+=("$pid") ;; esac
  done
  pids=("${keep[@]}")
}

# listen_addr LOGFILE PID waits for the "listening" line a keycard process
# logs and prints its addr.
listen_addr() {
  local i addr
  for i in $(seq 1 300); do
    addr="$(sed -n 's/.*"msg":"listening","addr":"\([^"]*\)".*/\1/p' "$1" | head -1)"
    if [ -n "$addr" ]; then
      echo "$addr"
      return 0
    fi
    if ! kill -0 "$2" 2>/dev/null; then
      echo "$(basename "$0"): process $2 exited; its log $1:" >&2
      cat "$1" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "$(basename "$0"): no listening line in $1 after 30 s" >&2
  return 1
}

# first_line FILE PID waits for the first line PID writes to FILE (the
# address bench/cmd/upstream listens on) and prints it.
first_line() {
  local i
  for i in $(seq 1 100); do
    if [ -s "$1" ]; then
      head -1 "$1"
      return 0
    fi
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "$(basename "$0"): process $2 wrote no address to $1" >&2
  return 1
}

# cpu_ticks prints, in clock ticks, the machine's busy time (user, nice,
# system, irq, softirq), its steal time, the CPU time of this script and
# every process it started and waited for, and that of the PostgreSQL
# server (which works for the run's PostgreSQL section; its postmaster
# reaps the backends, so their time is in its children's fields).
cpu_ticks() {
  local busy steal mine pg
  read -r busy steal < <(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat)
  mine="$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$$/stat")"
  pg="$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(postgres)" { t += $14 + $15; if ($4 == 1) t += $16 + $17 } END { print t + 0 }')"
  echo "$busy $steal $mine $pg"
}

# others_json TICKS_BEFORE SECONDS prints the JSON members others_cpu_pct
# and steal_cpu_pct (each followed by a comma) for the SECONDS since
# TICKS_BEFORE (cpu_ticks): the share of all cores' time that programs
# other than this script, what it started and waited for, and the
# PostgreSQL server used, and the share the hypervisor gave to other
# machines. Nothing when the ticks cannot be read.
others_json() {
  local b0 s0 m0 p0 b1 s1 m1 p1 after
  [ -n "$1" ] && after="$(cpu_ticks 2>/dev/null)" || return 0
  read -r b0 s0 m0 p0 <<<"$1"
  read -r b1 s1 m1 p1 <<<"$after"
  awk -v b="$((b1 - b0))" -v s="$((s1 - s0))" -v m="$((m1 - m0 + p1 - p0))" -v t="$2" -v n="$(nproc)" \
    'BEGIN { all = t * n * 100; if (all <= 0) exit; o = (b - m) / all * 100; if (o < 0) o = 0; printf "\"others_cpu_pct\": %.1f, \"steal_cpu_pct\": %.1f,", o, s / all * 100 }'
}

# start_proxies WORK DATA ISSUER starts, from the binaries in WORK,
# bench/cmd/upstream, a bare reverse proxy to it (upstream -proxy) and
# keycard gateway (route /me/ to the upstream for any valid token, access
# log off) following the auth server ISSUER with a service client it adds
# to the data directory DATA, and waits until the gateway is ready. It sets
# upstream_url, bare_pid, bare_url, gateway_pid and gateway_url.
start_proxies() {
  local work="$1" data="$2" issuer="$3" i
  "$work/upstream" >"$work/upstream.addr" 2>"$work/upstream.log" &
  pids+=($!)
  upstream_url="http://$(first_line "$work/upstream.addr" "$!")"
  "$work/upstream" -proxy "$upstream_url" >"$work/bare.addr" 2>"$work/bare.log" &
  bare_pid=$!
  pids+=("$bare_pid")
  bare_url="http://$(first_line "$work/bare.addr" "$bare_pid")"
  "$work/keycard" clients add --data "$data" --name gateway >"$work/gateway-client.json" 2>/dev/null
  sed -n 's/.*"client_secret":"\([^"]*\)".*/\1/p' "$work/gateway-client.json" >"$work/gateway.secret"
  cat >"$work/gateway.yaml" <<EOF
listen: 127.0.0.1:0
issuer: $issuer
audience: api
access_log: false
client: {id: $(sed -n 's/.*"client_id":"\([^"]*\)".*/\1/p' "$work/gateway-client.json"), secret_file: gateway.secret}
routes:
  - path: /me/
    upstream: $upstream_url
EOF
  "$work/keycard" gateway --config "$work/gateway.yaml" 2>"$work/gateway.log" &
  gateway_pid=$!
  pids+=("$gateway_pid")
  gateway_url="http://$(listen_addr "$work/gateway.log" "$gateway_pid")"
  for i in $(seq 1 300); do
    curl -fs "$gateway_url/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$(basename "$0"): the gateway was not ready after 30 s; its log $work/gateway.log:" >&2
  cat "$work/gateway.log" >&2
  return 1
}
