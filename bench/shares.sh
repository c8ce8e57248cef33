#!/usr/bin/env bash
# Estimates Keycard ÷ floor for the asymmetric algorithms from CPU profiles,
# which a busy machine distorts far less than it does ns/op: for each
# benchmark, the share of all profile samples (GC included) that falls in
# the standard-library primitive both implementations call. If the
# primitive is s_k of Keycard's time and s_f of the floor's, Keycard takes
# s_f / s_k times the floor's time.
#
# For HS256 the primitive is SHA-256's block function under the HMAC
# (the same bytes are MACed by every library), and a second table gives
# Keycard's speed-up over the fastest peer the same way: s_k / s_p.
#
#   bench/shares.sh            # prints the markdown tables; about 4 minutes
#   bench/shares.sh HS256      # only the cases whose algorithm matches
set -euo pipefail
only="${1:-}"
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
  "Verify HS256 crypto/internal/fips140/sha256.block"
  "Sign HS256 crypto/internal/fips140/sha256.block"
)
# op alg peer primitive: Keycard against a peer (the fastest in
# BENCHMARKS.md's tables).
peers=(
  "Verify HS256 cristalhq crypto/internal/fips140/sha256.block"
  "Sign HS256 cristalhq crypto/internal/fips140/sha256.block"
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
  case "$alg" in *"$only"*) ;; *) continue ;; esac
  k="$(share "$op" keycard "$alg" "$fn")"
  f="$(share "$op" floor "$alg" "$fn")"
  awk -v op="$op" -v alg="$alg" -v fn="$fn" -v k="$k" -v f="$f" \
    'BEGIN { printf "| %s %s | `%s` | %.1f%% | %.1f%% | %.3f× |\n", op, alg, fn, 100*k, 100*f, f/k }'
done

echo
echo "| operation | peer | primitive | its share of Keycard's time | of the peer's | ≈ Keycard's speed-up |"
echo "|---|---|---|--:|--:|--:|"
for c in "${peers[@]}"; do
  read -r op alg peer fn <<<"$c"
  case "$alg" in *"$only"*) ;; *) continue ;; esac
  k="$(share "$op" keycard "$alg" "$fn")"
  p="$(share "$op" "$peer" "$alg" "$fn")"
  awk -v op="$op" -v alg="$alg" -v peer="$peer" -v fn="$fn" -v k="$k" -v p="$p" \
    'BEGIN { printf "| %s %s | %s | `%s` | %.1f%% | %.1f%% | %.2f× |\n", op, alg, peer, fn, 100*k, 100*p, k/p }'
done
