#!/usr/bin/env bash
# How many of a rotation's session updates are HOT at scale, with the
# sessions table's fill factor as it is and then at 80 (migration 0014).
#
#   bench/profiles/pg-refresh-4/hot.sh postgres://…/SCRATCH_DB?sslmode=disable
#
# SCRATCH_DB must be a migrated Keycard database that nothing else uses
# (it gets 200k sessions). Rotates 2,001 sessions, every third of a range
# of 100k inserted at once, with rotate-fast.sql (rotateFast's statement
# with the user, the audit row and the key generation) PREPAREd, and prints
# sessions' n_tup_upd and n_tup_hot_upd after each pass.
set -euo pipefail
db="$1"
dir="$(dirname "$0")"
pass() { # first id of the inserted range
  local from=$1
  psql -q "$db" -c "INSERT INTO sessions (id, user_id, created_at, last_used_at, idle_timeout, expires_at)
      SELECT 'sx' || g, 'ux', now(), now(), 86400000000, now() + interval '30 days' FROM generate_series($from, $from + 99999) g" \
    -c "INSERT INTO refresh_tokens (id, session_id, secret_hash, created_at)
      SELECT 'tx' || g || '_0', 'sx' || g, '\x01', now() FROM generate_series($from, $from + 99999) g" \
    -c "ANALYZE" -c "SELECT pg_stat_reset_single_table_counters('sessions'::regclass)" >/dev/null
  {
    echo "PREPARE r(text, bytea, timestamptz, text, bytea, bytea, text, text, timestamptz, text, text, text, text, text, text) AS"
    cat "$dir/rotate-fast.sql"; echo ";"
    for i in $(seq $((from + 20000)) 3 $((from + 26000))); do
      echo "EXECUTE r('tx${i}_0', '\x01', now(), 'tx${i}_1', '\x02', '\x03', NULL, NULL, now(), 'refresh.rotated', '', '', '192.0.2.1', 'ua', '{}');"
    done
  } | psql -q "$db" >/dev/null
  sleep 2 # statistics are flushed within a second
  psql -At "$db" -c "SELECT 'fillfactor ' || coalesce(array_to_string(reloptions, ','), 'default') || ': ' || n_tup_upd || ' updates, ' || n_tup_hot_upd || ' HOT'
    FROM pg_stat_user_tables JOIN pg_class c ON c.oid = relid WHERE c.relname = 'sessions'"
}
psql -q "$db" -c "INSERT INTO users (id, username, username_normalized, password_hash, created_at, updated_at, password_changed_at)
  VALUES ('ux', 'ux', 'ux', 'h', now(), now(), now()) ON CONFLICT DO NOTHING" -c "ALTER TABLE sessions RESET (fillfactor)"
pass 1
psql -q "$db" -c "ALTER TABLE sessions SET (fillfactor = 80)"
pass 100001
