package bench

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"testing"
	"time"

	cjwt "github.com/cristalhq/jwt/v5"
)

// crClaims is the access-token claims type as a cristalhq/jwt user writes it.
type crClaims struct {
	cjwt.RegisteredClaims
	SessionID string   `json:"sid"`
	Scope     string   `json:"scope"`
	Roles     []string `json:"roles"`
}

// cristalhqVerifier follows the cristalhq/jwt docs: a Verifier bound to one
// algorithm, Parse (which checks alg and the signature), DecodeClaims, then
// the RegisteredClaims helpers for issuer, audience and time, which the
// library leaves to the caller.
func cristalhqVerifier(tb testing.TB, f *fixture, token string) verifier {
	v := cristalhqAlg(tb, f, false).(cjwt.Verifier)
	raw := []byte(token)
	var c crClaims
	return verifier{
		verify: func() error {
			t, err := cjwt.Parse(raw, v)
			if err != nil {
				return err
			}
			if t.Header().Type != tokenType {
				return errType
			}
			if err := t.DecodeClaims(&c); err != nil {
				return err
			}
			if c.ExpiresAt == nil {
				return errNoExpiry
			}
			if !c.IsIssuer(issuer) || !c.IsForAudience(audience) || !c.IsValidAt(time.Now()) {
				return errClaims
			}
			return nil
		},
		claims: func() decoded { return decoded{c.Subject, c.SessionID, c.Scope, c.Roles} },
	}
}

func cristalhqSigner(tb testing.TB, f *fixture) func() (signed, error) {
	b := cjwt.NewBuilder(cristalhqAlg(tb, f, true).(cjwt.Signer), cjwt.WithKeyID(f.kid))
	c := &crClaims{
		RegisteredClaims: cjwt.RegisteredClaims{
			ID:        jwtID,
			Audience:  cjwt.Audience{audience},
			Issuer:    issuer,
			Subject:   subject,
			ExpiresAt: cjwt.NewNumericDate(expiresAt),
			IssuedAt:  cjwt.NewNumericDate(issuedAt),
		},
		SessionID: sessionID,
		Scope:     scope,
		Roles:     roles,
	}
	return func() (signed, error) {
		t, err := b.Build(c)
		if err != nil {
			return signed{}, err
		}
		return signed{b: t.Bytes()}, nil
	}
}

// cristalhqAlg returns the library's signer (sign true) or verifier for f.
func cristalhqAlg(tb testing.TB, f *fixture, sign bool) any {
	var (
		a   any
		err error
	)
	switch f.alg {
	case "HS256":
		if sign {
			a, err = cjwt.NewSignerHS(cjwt.HS256, f.hmacKey)
		} else {
			a, err = cjwt.NewVerifierHS(cjwt.HS256, f.hmacKey)
		}
	case "RS256":
		if sign {
			a, err = cjwt.NewSignerRS(cjwt.RS256, f.rsaKey)
		} else {
			a, err = cjwt.NewVerifierRS(cjwt.RS256, f.publicKey().(*rsa.PublicKey))
		}
	case "ES256":
		if sign {
			a, err = cjwt.NewSignerES(cjwt.ES256, f.ecKey)
		} else {
			a, err = cjwt.NewVerifierES(cjwt.ES256, f.publicKey().(*ecdsa.PublicKey))
		}
	case "EdDSA":
		if sign {
			a, err = cjwt.NewSignerEdDSA(f.edKey)
		} else {
			a, err = cjwt.NewVerifierEdDSA(f.publicKey().(ed25519.PublicKey))
		}
	}
	if err != nil {
		tb.Fatalf("cristalhq: %s: %v", f.alg, err)
	}
	return a
}
