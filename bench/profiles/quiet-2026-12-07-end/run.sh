#!/usr/bin/env bash
# The round's binaries on a quiet machine, end of 7 December 2026: the
# round's start (9d27245), this session's start (95c58c8) and its end
# (1cd19a6), interleaved, one benchmark at a time.
set -u
cd /work/main
export PATH=$(go env GOPATH)/bin:$PATH
PG='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
R=/work/bin/roundstart.bin B=/work/bin/base.bin A=/work/bin/after.bin
out=bench/profiles/quiet-2026-12-07-end
run() { name=$1; shift; echo "== $name $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; bench/interleave.sh --out /tmp/final2/$name "$@" 2>&1 | tail -n 16; cp /tmp/final2/$name/summary.tsv $out/$name.tsv; }
run refresh-sqlite --rounds 4 --seconds 15 refresh $R $B $A
run authcode-sqlite --rounds 3 --seconds 15 authcode $R $B $A
run refresh-pg --rounds 3 --seconds 15 --store "$PG" refresh $R $B $A
run authcode-pg --rounds 3 --seconds 15 --store "$PG" authcode $R $B $A
run cc-sqlite --rounds 3 --seconds 10 client-credentials $R $B $A
run introspect-sqlite --rounds 2 --seconds 10 introspect $R $B $A
echo "== done $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
