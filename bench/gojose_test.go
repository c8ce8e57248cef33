package bench

import (
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// joseClaims embeds go-jose's registered claims and adds the private ones,
// so that one json.Unmarshal fills both.
type joseClaims struct {
	josejwt.Claims
	SessionID string   `json:"sid"`
	Scope     string   `json:"scope"`
	Roles     []string `json:"roles"`
}

// goJoseVerifier follows the go-jose v4 docs: ParseSigned with the allowed
// algorithms, Claims with the key, then Claims.Validate against Expected
// (issuer, audience, exp/nbf/iat at time.Now with the default leeway). The
// typ check reads the parsed protected header.
func goJoseVerifier(tb testing.TB, f *fixture, token string) verifier {
	algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(f.alg)}
	expected := josejwt.Expected{Issuer: issuer, AnyAudience: josejwt.Audience{audience}}
	pub := f.publicKey()
	var c joseClaims
	return verifier{
		verify: func() error {
			t, err := josejwt.ParseSigned(token, algs)
			if err != nil {
				return err
			}
			if typ, _ := t.Headers[0].ExtraHeaders[jose.HeaderType].(string); typ != tokenType {
				return errType
			}
			if err := t.Claims(pub, &c); err != nil {
				return err
			}
			if c.Expiry == nil {
				return errNoExpiry
			}
			return c.Validate(expected)
		},
		claims: func() decoded { return decoded{c.Subject, c.SessionID, c.Scope, c.Roles} },
	}
}

func goJoseSigner(tb testing.TB, f *fixture) func() (signed, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{
			Algorithm: jose.SignatureAlgorithm(f.alg),
			Key:       jose.JSONWebKey{Key: f.privateKey(), KeyID: f.kid, Algorithm: f.alg},
		},
		(&jose.SignerOptions{}).WithType(tokenType),
	)
	if err != nil {
		tb.Fatalf("go-jose: NewSigner: %v", err)
	}
	c := &joseClaims{
		Claims: josejwt.Claims{
			Issuer:   issuer,
			Subject:  subject,
			Audience: josejwt.Audience{audience},
			Expiry:   josejwt.NewNumericDate(expiresAt),
			IssuedAt: josejwt.NewNumericDate(issuedAt),
			ID:       jwtID,
		},
		SessionID: sessionID,
		Scope:     scope,
		Roles:     roles,
	}
	return func() (signed, error) {
		s, err := josejwt.Signed(signer).Claims(c).Serialize()
		return signed{s: s}, err
	}
}
