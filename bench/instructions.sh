#!/usr/bin/env bash
# Instructions per operation of a Go benchmark, counted by valgrind's
# callgrind: a figure that does not move with the machine's load, unlike
# wall or CPU time.
#
#   bench/instructions.sh [-o DIR] TEST_BINARY BENCHMARK LO HI
#
#   cd bench && go test -c -o /tmp/bench.test . &&
#     ../bench/instructions.sh /tmp/bench.test 'Sign/keycard/HS256' 20000 60000
#
# It runs the test binary (from the current directory, so that the
# benchmark finds its testdata) twice under callgrind, with
# -test.bench "^Benchmark$BENCHMARK$" and -test.benchtime LOx, then HIx, and
# prints the difference of the two runs' instruction counts over HI − LO,
# so that the setup both runs share (the process's start, the benchmark's
# fixtures, the testing package's N=1 first run) cancels out (LO must be
# at least 2: at 1x the testing package runs a benchmark once, at 2x and
# up twice):
#
#   BENCHMARK  <instructions per operation>  (LO: <total>, HI: <total>)
#
# The callgrind files stay in DIR (default: a new temporary directory);
# `cd bench && go run ./cmd/cgshare -n $((HI-LO)) DIR/LO.out DIR/HI.out`
# shows where an operation's instructions go, by package and function
# (callgrind's inclusive costs are not to be trusted for Go: goroutine
# switches confuse its call stacks).
#
# What it counts: instructions executed in user space by every thread of
# the process, the garbage collector and the runtime included; not the
# kernel's work (system calls, page faults), not cache misses or memory
# stalls, not the time spent waiting. callgrind runs the program on a
# simulated CPU that has no SHA extensions (valgrind 3.19 reports a
# Haswell), so crypto/sha256 takes its AVX2 path instead of the SHA-NI one
# the machine's own CPU uses: SHA-256 costs more instructions here than it
# costs cycles there. valgrind runs one thread at a time, but the Go
# scheduler's idle work (spinning for goroutines to run) still varies from
# run to run by millions of instructions at GOMAXPROCS=2; run operations
# that take that many (a login) with GOMAXPROCS=1, as bench/login.sh does.
# Go's asynchronous preemption is turned off (GODEBUG=asyncpreemptoff=1):
# callgrind 3.19 aborts on the signal it uses. From Go 1.26 the runtime
# reads the clock with RDTSCP where the CPU has it, an instruction
# valgrind 3.19 does not know (SIGILL in runtime.cputicks), so it is
# turned off too (GODEBUG=cpu.rdtscp=off: MFENCE, LFENCE and RDTSC instead).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=""
if [ "${1:-}" = "-o" ]; then
  dir="$2"
  shift 2
fi
[ $# -eq 4 ] || usage
bin="$1" bench="$2" lo="$3" hi="$4"
# A benchmark that loops b.N times is run at N=1 first and then at N, so
# with LO of 2 or more both runs do its setup twice; at 1x it runs once.
if [ "$lo" -lt 2 ] || [ "$hi" -le "$lo" ]; then
  echo "instructions.sh: need 2 <= LO < HI (got LO $lo, HI $hi)" >&2
  exit 2
fi
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind" >&2; exit 1; }
[ -n "$dir" ] || dir="$(mktemp -d)"
mkdir -p "$dir"

count() { # n → total instructions of a run with -test.benchtime nx
  local n="$1"
  GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off valgrind --tool=callgrind --callgrind-out-file="$dir/$n.out" \
    "$bin" -test.run '^$' -test.bench "^Benchmark${bench}\$" -test.benchtime "${n}x" \
    >"$dir/$n.log" 2>&1 || { cat "$dir/$n.log" >&2; return 1; }
  grep -q '^ok\|^PASS' "$dir/$n.log" || { cat "$dir/$n.log" >&2; return 1; }
  awk '/^totals:|^summary:/ {print $2; exit}' "$dir/$n.out"
}

a="$(count "$lo")"
b="$(count "$hi")"
awk -v name="$bench" -v a="$a" -v b="$b" -v lo="$lo" -v hi="$hi" \
  'BEGIN { printf "%s\t%.0f\t(%s: %s, %s: %s)\n", name, (b - a) / (hi - lo), lo, a, hi, b }'
