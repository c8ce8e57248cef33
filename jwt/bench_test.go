package jwt

import (
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
)

// Micro-benchmarks of this package alone; the side-by-side comparison
// with other libraries and the floor lives in the bench/ module.

func BenchmarkParseAccess(b *testing.B) {
	for _, alg := range []jose.Algorithm{jose.HS256, jose.ES256, jose.EdDSA} {
		b.Run(string(alg), func(b *testing.B) {
			key := mustKey(b, alg)
			tok, err := Sign(key, testAccessClaims(), WithHeaderType("at+jwt"))
			if err != nil {
				b.Fatal(err)
			}
			verify := key
			if pub := key.Public(); pub != nil {
				verify = pub
			}
			p := NewParser(verify, WithIssuer("https://auth.example.com"), WithAudience("api"), WithType("at+jwt"), WithNow(func() time.Time { return testNow }))
			var c AccessClaims
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Parse(tok, &c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSignAccess(b *testing.B) {
	for _, alg := range []jose.Algorithm{jose.HS256, jose.ES256, jose.EdDSA} {
		b.Run(string(alg), func(b *testing.B) {
			s, err := NewSigner(mustKey(b, alg), WithHeaderType("at+jwt"))
			if err != nil {
				b.Fatal(err)
			}
			c := testAccessClaims()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseAccessWithACR is BenchmarkParseAccess of a user's token as
// Keycard mints it since tokens say how the user signed in: with acr and
// amr (about 30 bytes more), for comparison with a token without them.
func BenchmarkParseAccessWithACR(b *testing.B) {
	for _, alg := range []jose.Algorithm{jose.HS256, jose.ES256} {
		b.Run(string(alg), func(b *testing.B) {
			key := mustKey(b, alg)
			claims := testAccessClaims()
			claims.ACR, claims.AMR = "mfa", []string{"pwd", "otp", "mfa"}
			tok, err := Sign(key, claims, WithHeaderType("at+jwt"))
			if err != nil {
				b.Fatal(err)
			}
			verify := key
			if pub := key.Public(); pub != nil {
				verify = pub
			}
			p := NewParser(verify, WithIssuer("https://auth.example.com"), WithAudience("api"), WithType("at+jwt"), WithNow(func() time.Time { return testNow }))
			var c AccessClaims
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Parse(tok, &c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
