package bench

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"math/big"
	"sync"
	"testing"
)

// floor is the standard-library minimum a JWS library cannot go below: the
// base64url work and the crypto primitive, no JSON at all. No claims are
// decoded or validated, so a library's time above floor is what its parsing,
// JSON and validation cost.

// hmacState is a keyed HMAC-SHA256 and a buffer for its sum. States come from
// a sync.Pool, as they must in a verifier that serves concurrent requests.
type hmacState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

func hmacPool(key []byte) *sync.Pool {
	return &sync.Pool{New: func() any { return &hmacState{h: hmac.New(sha256.New, key)} }}
}

// floorVerifier splits the token, base64url-decodes header and payload into a
// reused buffer and the signature into another, and runs the primitive on the
// signing input.
func floorVerifier(tb testing.TB, f *fixture, token string) verifier {
	tok := []byte(token)
	buf := make([]byte, len(tok)) // header+payload, decoded; reused
	sigBuf := make([]byte, 512)   // signature, decoded; reused
	enc := base64.RawURLEncoding

	var check func(input, sig []byte) bool
	switch f.alg {
	case "HS256":
		pool := hmacPool(f.hmacKey)
		check = func(input, sig []byte) bool {
			st := pool.Get().(*hmacState)
			st.h.Reset()
			st.h.Write(input)
			ok := hmac.Equal(st.h.Sum(st.sum[:0]), sig)
			pool.Put(st)
			return ok
		}
	case "RS256":
		pub := &f.rsaKey.PublicKey
		check = func(input, sig []byte) bool {
			digest := sha256.Sum256(input)
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
		}
	case "ES256":
		pub := &f.ecKey.PublicKey
		check = func(input, sig []byte) bool {
			if len(sig) != 64 {
				return false
			}
			digest := sha256.Sum256(input)
			var r, s big.Int
			r.SetBytes(sig[:32])
			s.SetBytes(sig[32:])
			return ecdsa.Verify(pub, digest[:], &r, &s)
		}
	case "EdDSA":
		pub := f.edKey.Public().(ed25519.PublicKey)
		check = func(input, sig []byte) bool {
			return ed25519.Verify(pub, input, sig)
		}
	}

	return verifier{
		verify: func() error {
			dot1 := bytes.IndexByte(tok, '.')
			dot2 := bytes.LastIndexByte(tok, '.')
			if dot1 < 0 || dot2 <= dot1 || enc.DecodedLen(len(tok)-dot2-1) > len(sigBuf) {
				return errMalform
			}
			n, err := enc.Decode(buf, tok[:dot1])
			if err != nil {
				return err
			}
			if _, err := enc.Decode(buf[n:], tok[dot1+1:dot2]); err != nil {
				return err
			}
			sn, err := enc.Decode(sigBuf, tok[dot2+1:])
			if err != nil {
				return err
			}
			if !check(tok[:dot2], sigBuf[:sn]) {
				return errBadSig
			}
			return nil
		},
	}
}

// floorSigner signs the pre-encoded signing input of the reference token and
// appends the base64url signature to a copy of it: one output allocation
// plus whatever the primitive allocates.
func floorSigner(tb testing.TB, f *fixture) func() (signed, error) {
	input := f.signingInput
	enc := base64.RawURLEncoding

	var sigLen int
	var sign func(out []byte) ([]byte, error)
	switch f.alg {
	case "HS256":
		sigLen = sha256.Size
		pool := hmacPool(f.hmacKey)
		sign = func(out []byte) ([]byte, error) {
			st := pool.Get().(*hmacState)
			st.h.Reset()
			st.h.Write(input)
			out = enc.AppendEncode(out, st.h.Sum(st.sum[:0]))
			pool.Put(st)
			return out, nil
		}
	case "RS256":
		sigLen = f.rsaKey.Size()
		sign = func(out []byte) ([]byte, error) {
			digest := sha256.Sum256(input)
			sig, err := rsa.SignPKCS1v15(nil, f.rsaKey, crypto.SHA256, digest[:])
			if err != nil {
				return nil, err
			}
			return enc.AppendEncode(out, sig), nil
		}
	case "ES256":
		sigLen = 64
		sign = func(out []byte) ([]byte, error) {
			digest := sha256.Sum256(input)
			r, s, err := ecdsa.Sign(rand.Reader, f.ecKey, digest[:])
			if err != nil {
				return nil, err
			}
			var sig [64]byte
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
			return enc.AppendEncode(out, sig[:]), nil
		}
	case "EdDSA":
		sigLen = ed25519.SignatureSize
		sign = func(out []byte) ([]byte, error) {
			return enc.AppendEncode(out, ed25519.Sign(f.edKey, input)), nil
		}
	}

	size := len(input) + 1 + enc.EncodedLen(sigLen)
	return func() (signed, error) {
		out := make([]byte, 0, size)
		out = append(out, input...)
		out = append(out, '.')
		out, err := sign(out)
		return signed{b: out}, err
	}
}
