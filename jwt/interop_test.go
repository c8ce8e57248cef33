package jwt_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"slices"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"
	gojosejwt "github.com/go-jose/go-jose/v4/jwt"
	gjwt "github.com/golang-jwt/jwt/v5"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// Interoperability with the two most used Go JWT libraries, both ways and
// for every algorithm: tokens that github.com/golang-jwt/jwt/v5 and
// github.com/go-jose/go-jose/v4/jwt sign must verify and validate in
// Keycard's Parser, and tokens from Keycard's Sign must verify and
// validate in them. The libraries are test dependencies only (see
// deps_test.go).

const (
	interopIssuer   = "https://auth.example.com"
	interopAudience = "api"
	interopKID      = "interop-1"
)

// interopKey is one algorithm's key in the forms each library takes.
type interopKey struct {
	alg     jose.Algorithm
	private any       // []byte, *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey
	public  any       // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	signing *jose.Key // Keycard's key for signing (private half or secret)
	verify  *jose.Key // Keycard's key for verifying (public half or secret)
}

// interopKeys returns a key for every algorithm Keycard supports, each
// with kid interopKID. The RSA algorithms share one key pair.
func interopKeys(t *testing.T) []interopKey {
	t.Helper()
	secret := make([]byte, 64) // long enough for HS512, so for every HS*
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKeys := map[jose.Algorithm]*ecdsa.PrivateKey{}
	for alg, curve := range map[jose.Algorithm]elliptic.Curve{jose.ES256: elliptic.P256(), jose.ES384: elliptic.P384(), jose.ES512: elliptic.P521()} {
		if ecKeys[alg], err = ecdsa.GenerateKey(curve, rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	var keys []interopKey
	for _, alg := range jose.Algorithms() {
		k := interopKey{alg: alg}
		switch alg {
		case jose.HS256, jose.HS384, jose.HS512:
			k.private, k.public = secret, secret
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			k.private, k.public = rsaKey, &rsaKey.PublicKey
		case jose.ES256, jose.ES384, jose.ES512:
			k.private, k.public = ecKeys[alg], &ecKeys[alg].PublicKey
		case jose.EdDSA:
			k.private, k.public = edPriv, edPub
		default:
			t.Fatalf("no interop key for %s", alg)
		}
		k.signing = mustInteropKey(t, alg, k.private)
		k.verify = mustInteropKey(t, alg, k.public)
		keys = append(keys, k)
	}
	return keys
}

func mustInteropKey(t *testing.T, alg jose.Algorithm, key any) *jose.Key {
	t.Helper()
	k, err := jose.NewKey(alg, key)
	if err != nil {
		t.Fatalf("NewKey(%s, %T): %v", alg, key, err)
	}
	if k, err = k.WithKeyID(interopKID); err != nil {
		t.Fatal(err)
	}
	return k
}

// interopClaims is the claims set every test sends: registered claims
// plus the access-token claims Keycard issues.
func interopClaims(now time.Time) *jwt.AccessClaims {
	return &jwt.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    interopIssuer,
			Subject:   "user-123",
			Audience:  jwt.Audience{interopAudience},
			ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        "jti-42",
		},
		SessionID: "sess-7",
		Scope:     "read write",
		Roles:     []string{"admin", "user"},
	}
}

// checkKeycardParse verifies and validates tok with Keycard's Parser and
// compares the claims with want.
func checkKeycardParse(t *testing.T, k interopKey, tok string, want *jwt.AccessClaims) {
	t.Helper()
	p := jwt.NewParser(k.verify, jwt.WithIssuer(interopIssuer), jwt.WithAudience(interopAudience), jwt.WithType("JWT"))
	var got jwt.AccessClaims
	hdr, err := p.ParseWithHeader(tok, &got)
	if err != nil {
		t.Fatalf("Keycard Parse: %v\ntoken %s", err, tok)
	}
	if hdr.Algorithm != k.alg || hdr.KeyID != interopKID {
		t.Errorf("header: got alg %s kid %q, want %s %q", hdr.Algorithm, hdr.KeyID, k.alg, interopKID)
	}
	if got.Issuer != want.Issuer || got.Subject != want.Subject || !slices.Equal(got.Audience, want.Audience) ||
		!got.ExpiresAt.Equal(want.ExpiresAt.Time) || !got.NotBefore.Equal(want.NotBefore.Time) || !got.IssuedAt.Equal(want.IssuedAt.Time) ||
		got.ID != want.ID || got.SessionID != want.SessionID || got.Scope != want.Scope || !slices.Equal(got.Roles, want.Roles) {
		t.Errorf("claims:\n got %+v\nwant %+v", got, *want)
	}
	// The same key material bound to another algorithm must not accept
	// the token: the key, not the token, chooses the algorithm.
	for _, other := range jose.Algorithms() {
		if other == k.alg {
			continue
		}
		ok, err := jose.NewKey(other, k.public)
		if err != nil {
			continue // not a key for that algorithm at all
		}
		if err := jwt.NewParser(ok).Parse(tok, nil); !errors.Is(err, jwt.ErrAlgorithmMismatch) {
			t.Errorf("%s token with the key bound to %s: got %v, want ErrAlgorithmMismatch", k.alg, other, err)
		}
	}
}

// keycardToken signs the interop claims with Keycard.
func keycardToken(t *testing.T, k interopKey, now time.Time) string {
	t.Helper()
	tok, err := jwt.Sign(k.signing, interopClaims(now))
	if err != nil {
		t.Fatalf("Keycard Sign: %v", err)
	}
	return tok
}

// golangJWTClaims is the interop claims set as golang-jwt sees it.
type golangJWTClaims struct {
	gjwt.RegisteredClaims
	SessionID string   `json:"sid,omitempty"`
	Scope     string   `json:"scope,omitempty"`
	Roles     []string `json:"roles,omitempty"`
}

func toGolangJWT(c *jwt.AccessClaims) *golangJWTClaims {
	return &golangJWTClaims{
		RegisteredClaims: gjwt.RegisteredClaims{
			Issuer:    c.Issuer,
			Subject:   c.Subject,
			Audience:  gjwt.ClaimStrings(c.Audience),
			ExpiresAt: gjwt.NewNumericDate(c.ExpiresAt.Time),
			NotBefore: gjwt.NewNumericDate(c.NotBefore.Time),
			IssuedAt:  gjwt.NewNumericDate(c.IssuedAt.Time),
			ID:        c.ID,
		},
		SessionID: c.SessionID,
		Scope:     c.Scope,
		Roles:     c.Roles,
	}
}

func TestInteropGolangJWTToKeycard(t *testing.T) {
	for _, k := range interopKeys(t) {
		t.Run(string(k.alg), func(t *testing.T) {
			want := interopClaims(time.Now())
			method := gjwt.GetSigningMethod(string(k.alg))
			if method == nil {
				t.Fatalf("golang-jwt has no %s", k.alg)
			}
			tok := gjwt.NewWithClaims(method, toGolangJWT(want))
			tok.Header["kid"] = interopKID
			s, err := tok.SignedString(k.private)
			if err != nil {
				t.Fatalf("golang-jwt SignedString: %v", err)
			}
			checkKeycardParse(t, k, s, want)
		})
	}
}

func TestInteropKeycardToGolangJWT(t *testing.T) {
	for _, k := range interopKeys(t) {
		t.Run(string(k.alg), func(t *testing.T) {
			now := time.Now()
			want := toGolangJWT(interopClaims(now))
			s := keycardToken(t, k, now)
			var got golangJWTClaims
			tok, err := gjwt.ParseWithClaims(s, &got, func(tok *gjwt.Token) (any, error) {
				if tok.Header["kid"] != interopKID {
					return nil, errors.New("unknown kid")
				}
				return k.public, nil
			}, gjwt.WithValidMethods([]string{string(k.alg)}), gjwt.WithIssuer(interopIssuer),
				gjwt.WithAudience(interopAudience), gjwt.WithExpirationRequired(), gjwt.WithIssuedAt())
			if err != nil {
				t.Fatalf("golang-jwt ParseWithClaims: %v\ntoken %s", err, s)
			}
			if !tok.Valid || tok.Header["typ"] != "JWT" {
				t.Errorf("got valid %v typ %v, want true JWT", tok.Valid, tok.Header["typ"])
			}
			if got.Issuer != want.Issuer || got.Subject != want.Subject || !slices.Equal(got.Audience, want.Audience) ||
				!got.ExpiresAt.Equal(want.ExpiresAt.Time) || !got.NotBefore.Equal(want.NotBefore.Time) || !got.IssuedAt.Equal(want.IssuedAt.Time) ||
				got.ID != want.ID || got.SessionID != want.SessionID || got.Scope != want.Scope || !slices.Equal(got.Roles, want.Roles) {
				t.Errorf("claims:\n got %+v\nwant %+v", got, *want)
			}
		})
	}
}

// goJOSEExtra holds the claims go-jose's Claims type does not have.
type goJOSEExtra struct {
	SessionID string   `json:"sid,omitempty"`
	Scope     string   `json:"scope,omitempty"`
	Roles     []string `json:"roles,omitempty"`
}

func toGoJOSE(c *jwt.AccessClaims) (gojosejwt.Claims, goJOSEExtra) {
	return gojosejwt.Claims{
			Issuer:    c.Issuer,
			Subject:   c.Subject,
			Audience:  gojosejwt.Audience(c.Audience),
			Expiry:    gojosejwt.NewNumericDate(c.ExpiresAt.Time),
			NotBefore: gojosejwt.NewNumericDate(c.NotBefore.Time),
			IssuedAt:  gojosejwt.NewNumericDate(c.IssuedAt.Time),
			ID:        c.ID,
		}, goJOSEExtra{
			SessionID: c.SessionID,
			Scope:     c.Scope,
			Roles:     c.Roles,
		}
}

func TestInteropGoJOSEToKeycard(t *testing.T) {
	for _, k := range interopKeys(t) {
		t.Run(string(k.alg), func(t *testing.T) {
			want := interopClaims(time.Now())
			signer, err := gojose.NewSigner(
				gojose.SigningKey{Algorithm: gojose.SignatureAlgorithm(k.alg), Key: k.private},
				(&gojose.SignerOptions{}).WithType("JWT").WithHeader("kid", interopKID))
			if err != nil {
				t.Fatalf("go-jose NewSigner: %v", err)
			}
			std, extra := toGoJOSE(want)
			s, err := gojosejwt.Signed(signer).Claims(std).Claims(extra).Serialize()
			if err != nil {
				t.Fatalf("go-jose Serialize: %v", err)
			}
			checkKeycardParse(t, k, s, want)
		})
	}
}

func TestInteropKeycardToGoJOSE(t *testing.T) {
	for _, k := range interopKeys(t) {
		t.Run(string(k.alg), func(t *testing.T) {
			now := time.Now()
			wantStd, wantExtra := toGoJOSE(interopClaims(now))
			s := keycardToken(t, k, now)
			tok, err := gojosejwt.ParseSigned(s, []gojose.SignatureAlgorithm{gojose.SignatureAlgorithm(k.alg)})
			if err != nil {
				t.Fatalf("go-jose ParseSigned: %v\ntoken %s", err, s)
			}
			if len(tok.Headers) != 1 || tok.Headers[0].KeyID != interopKID || tok.Headers[0].ExtraHeaders["typ"] != "JWT" {
				t.Errorf("headers: got %+v, want kid %q typ JWT", tok.Headers, interopKID)
			}
			var std gojosejwt.Claims
			var extra goJOSEExtra
			if err := tok.Claims(k.public, &std, &extra); err != nil {
				t.Fatalf("go-jose Claims: %v", err)
			}
			if err := std.ValidateWithLeeway(gojosejwt.Expected{Issuer: interopIssuer, AnyAudience: gojosejwt.Audience{interopAudience}, Time: now}, 0); err != nil {
				t.Errorf("go-jose Validate: %v", err)
			}
			if std.Issuer != wantStd.Issuer || std.Subject != wantStd.Subject || !slices.Equal(std.Audience, wantStd.Audience) ||
				!std.Expiry.Time().Equal(wantStd.Expiry.Time()) || !std.NotBefore.Time().Equal(wantStd.NotBefore.Time()) ||
				!std.IssuedAt.Time().Equal(wantStd.IssuedAt.Time()) || std.ID != wantStd.ID {
				t.Errorf("claims:\n got %+v\nwant %+v", std, wantStd)
			}
			if extra.SessionID != wantExtra.SessionID || extra.Scope != wantExtra.Scope || !slices.Equal(extra.Roles, wantExtra.Roles) {
				t.Errorf("extra claims: got %+v, want %+v", extra, wantExtra)
			}
		})
	}
}
