package bench

import (
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// jwxKey imports a standard-library key as the jwk.Key a JWKS would give a
// jwx user, with kid and alg set.
func jwxKey(tb testing.TB, f *fixture, raw any) (jwk.Key, jwa.SignatureAlgorithm) {
	alg, ok := jwa.LookupSignatureAlgorithm(f.alg)
	if !ok {
		tb.Fatalf("jwx: no algorithm %s", f.alg)
	}
	k, err := jwk.Import(raw)
	if err != nil {
		tb.Fatalf("jwx: Import: %v", err)
	}
	if err := k.Set(jwk.KeyIDKey, f.kid); err != nil {
		tb.Fatal(err)
	}
	if err := k.Set(jwk.AlgorithmKey, alg); err != nil {
		tb.Fatal(err)
	}
	return k, alg
}

// jwxVerifier follows the jwx v3 docs: jwt.Parse with WithKey (which pins the
// algorithm), WithIssuer and WithAudience; validation of exp/nbf/iat is on by
// default. jwt.Parse has no typ check, so jwx is measured without one. The
// options are built once, outside the measured call.
func jwxVerifier(tb testing.TB, f *fixture, token string) verifier {
	key, alg := jwxKey(tb, f, f.publicKey())
	opts := []jwt.ParseOption{
		jwt.WithKey(alg, key),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
	}
	raw := []byte(token)
	var t jwt.Token
	return verifier{
		verify: func() error {
			var err error
			t, err = jwt.Parse(raw, opts...)
			return err
		},
		claims: func() decoded {
			var d decoded
			if t == nil {
				return d
			}
			d.Subject, _ = t.Subject()
			_ = t.Get("sid", &d.SessionID)
			_ = t.Get("scope", &d.Scope)
			var rs []any
			_ = t.Get("roles", &rs)
			for _, r := range rs {
				s, _ := r.(string)
				d.Roles = append(d.Roles, s)
			}
			return d
		},
	}
}

func jwxSigner(tb testing.TB, f *fixture) func() (signed, error) {
	key, alg := jwxKey(tb, f, f.privateKey())
	t, err := jwt.NewBuilder().
		Issuer(issuer).
		Subject(subject).
		Audience([]string{audience}).
		Expiration(expiresAt).
		IssuedAt(issuedAt).
		JwtID(jwtID).
		Claim("sid", sessionID).
		Claim("scope", scope).
		Claim("roles", roles).
		Build()
	if err != nil {
		tb.Fatalf("jwx: Build: %v", err)
	}
	hdrs := jws.NewHeaders()
	if err := hdrs.Set(jws.TypeKey, tokenType); err != nil {
		tb.Fatal(err)
	}
	opt := jwt.WithKey(alg, key, jws.WithProtectedHeaders(hdrs))
	return func() (signed, error) {
		b, err := jwt.Sign(t, opt)
		return signed{b: b}, err
	}
}
