package jose_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard/jose"
)

// FuzzParseCompact feeds arbitrary tokens to UnsafeParse and to a JWSVerifier
// with fixed keys. Neither may panic, every error must be one of the
// documented sentinels, and a token that verifies must be a canonical
// three-segment JWS that verifies again to the same message.
//
// With resign set, the token's signature is first replaced by a valid one
// over its first two segments, read as they are: without it a mutated
// token would almost never get past the signature, and the checks made on
// tokens that do would only ever see the seeds.
//
// The seeds are every token of the attack tables in strict_test.go.
func FuzzParseCompact(f *testing.F) {
	fx := newStrictFixture(f)
	for _, a := range allAttacks(f, fx) {
		f.Add(a.token, false)
	}
	signers := map[jose.Algorithm]strictKey{jose.HS256: fx.hs, jose.ES256: fx.es, jose.EdDSA: fx.ed}
	for _, k := range signers {
		tok := k.token(f, `{"alg":"`+string(k.alg)+`","kid":"`+k.pub.KeyID()+`","typ":"JWT"}`, strictPayload)
		f.Add(tok, false)
		f.Add(tok, true)
	}
	v := jose.JWSVerifier{Keys: fx.set(f, fx.hs.pub, fx.es.pub, fx.ed.pub)}

	f.Fuzz(func(t *testing.T, tok string, resign bool) {
		if resign {
			tok = resignCompact(t, tok, signers)
		}
		um, uerr := jose.UnsafeParse(tok)
		if uerr != nil && (um != nil || !documentedError(uerr)) {
			t.Fatalf("UnsafeParse: got %+v, %v; want nil and a documented error", um, uerr)
		}
		m, err := v.Verify(tok)
		// v remembers the last header segment it accepted and skips
		// decoding and parsing one equal to it; a verifier with no
		// memory must come to the same answer.
		fresh := jose.JWSVerifier{Keys: v.Keys}
		fm, ferr := fresh.Verify(tok)
		if (err == nil) != (ferr == nil) || (err == nil && (fm.Header != m.Header || !bytes.Equal(fm.Payload, m.Payload))) {
			t.Fatalf("Verify with the header memoized: %+v, %v; with a fresh verifier: %+v, %v", m, err, fm, ferr)
		}
		if err != nil {
			if m != nil || !documentedError(err) {
				t.Fatalf("Verify: got %+v, %v; want nil and a documented error", m, err)
			}
			if errors.Is(err, jose.ErrMalformed) && uerr == nil {
				t.Fatalf("Verify found the token malformed (%v) but UnsafeParse accepted it", err)
			}
			return
		}

		// The token verified.
		m2, err := v.Verify(tok)
		if err != nil || m2.Header != m.Header || !bytes.Equal(m2.Payload, m.Payload) {
			t.Fatalf("second Verify: got %+v, %v; want %+v", m2, err, m)
		}
		if uerr != nil || um.Header != m.Header || !bytes.Equal(um.Payload, m.Payload) {
			t.Fatalf("UnsafeParse of a verified token: got %+v, %v; want %+v", um, uerr, m)
		}
		if len(tok) > jose.DefaultMaxTokenSize {
			t.Fatalf("verified a token of %d bytes, over the %d limit", len(tok), jose.DefaultMaxTokenSize)
		}
		segs := strings.Split(tok, ".")
		if len(segs) != 3 {
			t.Fatalf("verified a token of %d segments", len(segs))
		}
		for i, seg := range segs {
			b, err := base64.RawURLEncoding.DecodeString(seg)
			if err != nil || base64.RawURLEncoding.EncodeToString(b) != seg {
				t.Fatalf("verified a token whose segment %d, %q, is not canonical base64url", i, seg)
			}
			if i == 0 && !json.Valid(b) {
				t.Fatalf("verified a token whose header %q is not JSON", b)
			}
			if i == 1 && !bytes.Equal(b, m.Payload) {
				t.Fatalf("payload: got %q, want %q", m.Payload, b)
			}
		}
		if k, ok := signers[m.Header.Algorithm]; !ok || (m.Header.KeyID != "" && m.Header.KeyID != k.pub.KeyID()) {
			t.Fatalf("verified with alg %s and kid %q, which name no key of the set", m.Header.Algorithm, m.Header.KeyID)
		}
	})
}

// resignCompact replaces the signature of tok by a valid one over
// everything before its last dot, with the key for the alg a lenient
// reading of its header names (HS256 when it names none of them).
func resignCompact(t *testing.T, tok string, signers map[jose.Algorithm]strictKey) string {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 {
		return tok
	}
	input := tok[:i]
	k := signers[jose.HS256]
	hdr, _, _ := strings.Cut(input, ".")
	if raw, err := base64.RawURLEncoding.DecodeString(hdr); err == nil {
		var h struct {
			Alg string `json:"alg"`
		}
		if json.Unmarshal(raw, &h) == nil {
			if s, ok := signers[jose.Algorithm(h.Alg)]; ok {
				k = s
			}
		}
	}
	return k.signed(t, input)
}

// documentedError reports whether err matches one of the sentinels that
// verification is documented to return.
func documentedError(err error) bool {
	for _, s := range []error{jose.ErrMalformed, jose.ErrUnsupportedAlgorithm, jose.ErrAlgorithmMismatch, jose.ErrKeyNotFound, jose.ErrSignatureInvalid} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
