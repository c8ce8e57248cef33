#!/usr/bin/env bash
# The after binary with synchronous_commit=off on its PostgreSQL
# connections (a URL parameter, sent as a run-time parameter by pgx).
args=()
next=""
for a in "$@"; do
  if [ "$next" = store ]; then a="$a&synchronous_commit=off"; next=""; fi
  [ "$a" = --store ] && next=store
  args+=("$a")
done
exec "${AFTER_BIN:-/tmp/pgrefresh-after.bin}" "${args[@]}"
