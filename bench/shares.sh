#!/usr/bin/env bash
# Estimates Keycard ÷ floor for the asymmetric algorithms from CPU profiles,
# which a busy machine distorts far less than it does ns/op: for each
# benchmark, the share of all profile samples (GC included) that falls in
# the standard-library primitive both implementations call. If the
# primitive is s_k of Keycard's time and s_f of the floor's, Keycard takes
# s_f / s_k times the floor's time.
#
#   bench/shares.sh            # prints a markdown table; about 3 minutes
set -euo pipefail
cd "$(dirname "$0")"
# pprof samples at 100 Hz: 10 s gives ~1000 samples, about ±1% on a ratio.
BENCHTIME="${BENCHTIME:-10s}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# op alg primitive (pprof function name, matched at the start of the name column)
cases=(
  "Verify RS256 crypto/rsa.VerifyPKCS1v15"
  "Verify ES256 crypto/ecdsa.VerifyASN1"
  "Verify EdDSA crypto/ed25519.VerifyWithOptions"
  "Sign RS256 crypto/rsa.SignPKCS1v15"
  "Sign ES256 crypto/ecdsa.SignASN1"
  "Sign EdDSA crypto/internal/fips140/ed25519.sign"
)

go test -c -o "$tmp/bench.test" . >/dev/null

# share OP LIB ALG PRIMITIVE prints the primitive's share of all samples.
share() {
  local prof="$tmp/$1.$2.$3.out"
  "$tmp/bench.test" -test.run '^$' -test.bench "^Benchmark$1/$2/$3\$" \
    -test.benchtime "$BENCHTIME" -test.cpuprofile "$prof" >/dev/null
  go tool pprof -top -cum -nodecount 100000 "$tmp/bench.test" "$prof" 2>/dev/null | awk -v fn="$4" '
    /^Showing nodes accounting for/ { total = $(NF-1); sub(/s$/, "", total); if (total ~ /ms/) { sub(/m/, "", total); total /= 1000 } }
    $6 == fn && !done { cum = $4; sub(/s$/, "", cum); if (cum ~ /ms/) { sub(/m/, "", cum); cum /= 1000 } ; done = 1 }
    END { if (total == 0 || cum == 0) { print "NaN" } else { printf "%.4f\n", cum / total } }'
}

echo "| operation | primitive | its share of Keycard's time | of the floor's | ≈ Keycard ÷ floor |"
echo "|---|---|--:|--:|--:|"
for c in "${cases[@]}"; do
  read -r op alg fn <<<"$c"
  k="$(share "$op" keycard "$alg" "$fn")"
  f="$(share "$op" floor "$alg" "$fn")"
  awk -v op="$op" -v alg="$alg" -v fn="$fn" -v k="$k" -v f="$f" \
    'BEGIN { printf "| %s %s | `%s` | %.1f%% | %.1f%% | %.3f× |\n", op, alg, fn, 100*k, 100*f, f/k }'
done
