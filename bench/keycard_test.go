package bench

import (
	"testing"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// keycardKey returns f's private key as a Keycard key with f's kid.
func keycardKey(tb testing.TB, f *fixture) *jose.Key {
	k, err := jose.NewKey(jose.Algorithm(f.alg), f.privateKey())
	if err != nil {
		tb.Fatalf("keycard: NewKey: %v", err)
	}
	if k, err = k.WithKeyID(f.kid); err != nil {
		tb.Fatalf("keycard: WithKeyID: %v", err)
	}
	return k
}

// keycardParser is the parser a resource server builds once: the public key
// (the secret for HMAC), the one accepted algorithm, issuer, audience and the
// RFC 9068 typ. An empty typ leaves the type unchecked.
func keycardParser(tb testing.TB, f *fixture, typ string) *jwt.Parser {
	k := keycardKey(tb, f)
	if pub := k.Public(); pub != nil {
		k = pub
	}
	opts := []jwt.ParserOption{
		jwt.WithAlgorithms(jose.Algorithm(f.alg)),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
	}
	if typ != "" {
		opts = append(opts, jwt.WithType(typ))
	}
	return jwt.NewParser(k, opts...)
}

// keycardVerifier decodes into one *jwt.AccessClaims reused across calls,
// the path Keycard documents as allocation-free.
func keycardVerifier(tb testing.TB, f *fixture, token string) verifier {
	p := keycardParser(tb, f, tokenType)
	c := new(jwt.AccessClaims)
	return verifier{
		verify: func() error { return p.Parse(token, c) },
		claims: func() decoded { return decoded{c.Subject, c.SessionID, c.Scope, c.Roles} },
	}
}

// keycardSigner builds a jwt.Signer once, as an auth server does, and signs
// a *jwt.AccessClaims, the type Keycard encodes without encoding/json.
func keycardSigner(tb testing.TB, f *fixture) func() (signed, error) {
	s, err := jwt.NewSigner(keycardKey(tb, f), jwt.WithHeaderType(tokenType))
	if err != nil {
		tb.Fatalf("keycard: NewSigner: %v", err)
	}
	c := &jwt.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   subject,
			Audience:  jwt.Audience{audience},
			ExpiresAt: jwt.NewNumericDate(expiresAt),
			IssuedAt:  jwt.NewNumericDate(issuedAt),
			ID:        jwtID,
		},
		SessionID: sessionID,
		Scope:     scope,
		Roles:     roles,
	}
	return func() (signed, error) {
		tok, err := s.Sign(c)
		return signed{s: tok}, err
	}
}

// keycardCheck verifies a token some library signed, requiring typ (unless
// empty) and the reference claim values.
func keycardCheck(tb testing.TB, f *fixture, token, typ string) (decoded, error) {
	var c jwt.AccessClaims
	err := keycardParser(tb, f, typ).Parse(token, &c)
	if err == nil && (!c.ExpiresAt.Equal(expiresAt) || !c.IssuedAt.Equal(issuedAt) || c.ID != jwtID) {
		err = errClaims
	}
	return decoded{c.Subject, c.SessionID, c.Scope, c.Roles}, err
}
