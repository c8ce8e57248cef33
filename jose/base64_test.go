package jose

import (
	"bytes"
	"encoding/base64"
	"errors"
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

// checkB64Decode compares b64Decode with b64 (encoding/base64's strict
// raw URL encoding) on src, into a buffer of exactly the decoded length
// and into one with the two spare bytes decodeSegment gives: the same
// bytes when both accept, and both refuse the same inputs, except that
// b64Decode also refuses CR and LF, which b64 skips.
func checkB64Decode(t *testing.T, src []byte) {
	t.Helper()
	want, err := b64.DecodeString(string(src))
	if bytes.ContainsAny(src, "\r\n") {
		err = errors.New("CR or LF")
	}
	n := b64.DecodedLen(len(src))
	for _, room := range []int{n, n + 2} {
		out := make([]byte, room)
		m, ok := b64Decode(out, src)
		if ok != (err == nil) || (ok && !bytes.Equal(out[:m], want)) {
			t.Fatalf("b64Decode(%q) into %d bytes = %x, %v; encoding/base64: %x, %v", src, room, out[:m], ok, want, err)
		}
	}
}

// Every canonical encoding of every length to 300 decodes as the standard
// library decodes it, and so does each of them with any one character
// replaced by any byte value (to 40 characters; beyond, every tenth
// place), which covers every non-alphabet byte in every position of the
// eight-, four- and one-to-three-character steps and every value of the
// last character, whose bits beyond the last byte must be zero.
func TestB64DecodeAgreesWithStandardLibrary(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{'d', 'e', 'c'}))
	for n := range 301 {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		enc := []byte(base64.RawURLEncoding.EncodeToString(src))
		checkB64Decode(t, enc)
		for i := range enc {
			if len(enc) > 40 && i%10 != 0 && i != len(enc)-1 {
				continue
			}
			orig := enc[i]
			for c := range 256 {
				enc[i] = byte(c)
				checkB64Decode(t, enc)
			}
			enc[i] = orig
		}
		// Random strings of the alphabet and a few others, of every
		// length, most of them not canonical.
		junk := make([]byte, len(enc)+rng.IntN(3))
		for i := range junk {
			if rng.IntN(50) == 0 {
				junk[i] = "=.+/ \r\n\x00\xff"[rng.IntN(9)]
			} else {
				junk[i] = b64Alphabet[rng.IntN(64)]
			}
		}
		checkB64Decode(t, junk)
	}
}

func FuzzB64Decode(f *testing.F) {
	for _, s := range []string{"", "A", "AA", "AB", "AAA", "AAB", "eyJhbGciOiJIUzI1NiJ9", "ab\ncd", "abc=", "a+b/", "QUJDREVGR0g"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) { checkB64Decode(t, src) })
}

// BenchmarkB64Decode decodes the 350 characters of a typical access
// token's payload and signature with b64Decode and with encoding/base64.
func BenchmarkB64Decode(b *testing.B) {
	src := make([]byte, 262)
	for i := range src {
		src[i] = byte(i * 7)
	}
	enc := []byte(base64.RawURLEncoding.EncodeToString(src))
	out := make([]byte, len(src)+2)
	b.Run("own", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, ok := b64Decode(out, enc); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("encoding/base64", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := b64.Decode(out, enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
