package bench

import (
	"testing"

	gjwt "github.com/golang-jwt/jwt/v5"
)

// gjClaims is the access-token claims type as a golang-jwt user writes it:
// RegisteredClaims embedded, private claims beside it.
type gjClaims struct {
	gjwt.RegisteredClaims
	SessionID string   `json:"sid"`
	Scope     string   `json:"scope"`
	Roles     []string `json:"roles"`
}

// golangJWTVerifier follows the golang-jwt v5 docs for production: one
// Parser built with WithValidMethods, issuer, audience and exp required. The
// library has no typ option; the check sits in the Keyfunc, where its docs
// put header checks.
func golangJWTVerifier(tb testing.TB, f *fixture, token string) verifier {
	p := gjwt.NewParser(
		gjwt.WithValidMethods([]string{f.alg}),
		gjwt.WithIssuer(issuer),
		gjwt.WithAudience(audience),
		gjwt.WithExpirationRequired(),
		gjwt.WithIssuedAt(),
	)
	pub := f.publicKey()
	keyFunc := func(t *gjwt.Token) (any, error) {
		if t.Header["typ"] != tokenType {
			return nil, errType
		}
		return pub, nil
	}
	var c gjClaims
	return verifier{
		verify: func() error {
			_, err := p.ParseWithClaims(token, &c, keyFunc)
			return err
		},
		claims: func() decoded { return decoded{c.Subject, c.SessionID, c.Scope, c.Roles} },
	}
}

func golangJWTSigner(tb testing.TB, f *fixture) func() (signed, error) {
	method := gjwt.GetSigningMethod(f.alg)
	if method == nil {
		tb.Fatalf("golang-jwt: no signing method %s", f.alg)
	}
	key := f.privateKey()
	c := &gjClaims{
		RegisteredClaims: gjwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   subject,
			Audience:  gjwt.ClaimStrings{audience},
			ExpiresAt: gjwt.NewNumericDate(expiresAt),
			IssuedAt:  gjwt.NewNumericDate(issuedAt),
			ID:        jwtID,
		},
		SessionID: sessionID,
		Scope:     scope,
		Roles:     roles,
	}
	return func() (signed, error) {
		t := gjwt.NewWithClaims(method, c)
		t.Header["typ"] = tokenType
		t.Header["kid"] = f.kid
		s, err := t.SignedString(key)
		return signed{s: s}, err
	}
}
