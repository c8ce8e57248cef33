#!/usr/bin/env bash
set -u
cd /work/main
export PATH=$(go env GOPATH)/bin:$PATH
PG='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
B=/tmp/before.bin A=/tmp/after.bin
run() { name=$1; shift; echo "== $name $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; bench/interleave.sh --out /tmp/final/$name "$@" 2>&1 | tail -n 12; }
run refresh-sqlite --rounds 3 --seconds 15 refresh $B $A
run authcode-sqlite --rounds 3 --seconds 15 authcode $B $A
run refresh-pg --rounds 2 --seconds 15 --store "$PG" refresh $B $A
run authcode-pg --rounds 2 --seconds 15 --store "$PG" authcode $B $A
run cc-sqlite --rounds 2 --seconds 10 client-credentials $B $A
run introspect-sqlite --rounds 2 --seconds 10 introspect $B $A
echo "== done $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
