package jose

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

// The signing path's base64url encoder writes what the standard
// library's raw URL encoding writes, for inputs of every length.
func TestBase64AgreesWithStandardLibrary(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{'b', '6', '4'}))
	for n := range 300 {
		for range 20 {
			src := make([]byte, n)
			for i := range src {
				src[i] = byte(rng.Uint32())
			}
			enc := b64AppendEncode([]byte("prefix"), src)
			if want := base64.RawURLEncoding.AppendEncode([]byte("prefix"), src); !bytes.Equal(enc, want) {
				t.Fatalf("encode(%x) = %s, want %s", src, enc, want)
			}
			// Into a buffer with room, as Signer.Sign gives it.
			roomy := b64AppendEncode(make([]byte, 0, 1024), src)
			if want := base64.RawURLEncoding.EncodeToString(src); string(roomy) != want {
				t.Fatalf("encode(%x) into a roomy buffer = %s, want %s", src, roomy, want)
			}
		}
	}
}

// Signer.Sign sizes its output from sigSize: for every algorithm that is
// the length of the signature it makes, so a token is built in one
// allocation of the exact size.
func TestSigSize(t *testing.T) {
	for _, alg := range []Algorithm{HS256, HS384, HS512, RS256, PS384, ES256, ES384, ES512, EdDSA} {
		k, err := GenerateKey(alg, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSigner(k, Header{})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.Sign([]byte(`{"sub":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		sig, err := base64.RawURLEncoding.DecodeString(tok[bytes.LastIndexByte([]byte(tok), '.')+1:])
		if err != nil || len(sig) != k.sigSize() {
			t.Errorf("%s: signature of %d bytes (%v), sigSize %d", alg, len(sig), err, k.sigSize())
		}
	}
}
