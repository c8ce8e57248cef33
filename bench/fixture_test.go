package bench

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The claim values every library verifies and signs. The token is an RFC 9068
// access token as Keycard mints it: exp far in the future so that no run ever
// sees it expire, iat in the past so that no library rejects it as issued in
// the future.
const (
	issuer    = "https://auth.example.com"
	subject   = "user_2b7f3c9e41d0"
	audience  = "api"
	tokenType = "at+jwt"
	jwtID     = "01JD3X9K2M5N7P8QR4ST6VW8XY"
	sessionID = "sess_8f14e45fceea167a"
	scope     = "openid profile orders:read orders:write"
)

var (
	issuedAt  = time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z
	expiresAt = time.Unix(4102444800, 0) // 2100-01-01T00:00:00Z
	roles     = []string{"user", "admin"}
)

// algs lists the algorithms in the order they appear in the sub-benchmarks.
var algs = []string{"HS256", "RS256", "ES256", "EdDSA"}

// fixture is one algorithm's fixed key and the one token every library
// verifies for that algorithm.
type fixture struct {
	alg string
	kid string

	hmacKey []byte             // HS256
	rsaKey  *rsa.PrivateKey    // RS256
	ecKey   *ecdsa.PrivateKey  // ES256
	edKey   ed25519.PrivateKey // EdDSA

	token      string // compact JWS
	tokenBytes []byte // the same bytes, for libraries that take []byte
	tampered   string // token with one signature byte flipped

	signingInput []byte // base64url(header) "." base64url(claims) of token
}

// privateKey returns the signing key in its standard-library form.
func (f *fixture) privateKey() any {
	switch f.alg {
	case "HS256":
		return f.hmacKey
	case "RS256":
		return f.rsaKey
	case "ES256":
		return f.ecKey
	default:
		return f.edKey
	}
}

// publicKey returns the verification key in its standard-library form.
func (f *fixture) publicKey() any {
	switch f.alg {
	case "HS256":
		return f.hmacKey
	case "RS256":
		return &f.rsaKey.PublicKey
	case "ES256":
		return &f.ecKey.PublicKey
	default:
		return f.edKey.Public().(ed25519.PublicKey)
	}
}

// refHeader and refClaims fix the JSON member order of the reference token.
type refHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

type refClaims struct {
	Iss   string   `json:"iss"`
	Sub   string   `json:"sub"`
	Aud   string   `json:"aud"`
	Exp   int64    `json:"exp"`
	Iat   int64    `json:"iat"`
	Jti   string   `json:"jti"`
	Sid   string   `json:"sid"`
	Scope string   `json:"scope"`
	Roles []string `json:"roles"`
}

var (
	fixturesOnce sync.Once
	fixturesMap  map[string]*fixture
	fixturesErr  error
)

// fixtures returns the fixture for every algorithm, built once per process
// from the keys in testdata/. The tokens are signed here with the standard
// library alone, so that no library under test produces the input it is
// measured on.
func fixtures(tb testing.TB) map[string]*fixture {
	tb.Helper()
	fixturesOnce.Do(func() { fixturesMap, fixturesErr = loadFixtures() })
	if fixturesErr != nil {
		tb.Fatalf("loading fixtures: %v", fixturesErr)
	}
	return fixturesMap
}

func loadFixtures() (map[string]*fixture, error) {
	m := make(map[string]*fixture, len(algs))
	for _, alg := range algs {
		f := &fixture{alg: alg, kid: "bench-" + strings.ToLower(alg)}
		var err error
		switch alg {
		case "HS256":
			var b []byte
			if b, err = os.ReadFile(filepath.Join("testdata", "hs256.hex")); err == nil {
				f.hmacKey, err = hex.DecodeString(strings.TrimSpace(string(b)))
			}
			if err == nil && len(f.hmacKey) != 32 {
				err = fmt.Errorf("HS256 key is %d bytes, want 32", len(f.hmacKey))
			}
		case "RS256":
			f.rsaKey, err = readPKCS8[*rsa.PrivateKey]("rs256.pem")
		case "ES256":
			f.ecKey, err = readPKCS8[*ecdsa.PrivateKey]("es256.pem")
		case "EdDSA":
			f.edKey, err = readPKCS8[ed25519.PrivateKey]("eddsa.pem")
		}
		if err != nil {
			return nil, fmt.Errorf("%s key: %w", alg, err)
		}

		h, _ := json.Marshal(refHeader{Alg: alg, Typ: tokenType, Kid: f.kid})
		c, _ := json.Marshal(refClaims{
			Iss: issuer, Sub: subject, Aud: audience,
			Exp: expiresAt.Unix(), Iat: issuedAt.Unix(),
			Jti: jwtID, Sid: sessionID, Scope: scope, Roles: roles,
		})
		enc := base64.RawURLEncoding
		f.signingInput = []byte(enc.EncodeToString(h) + "." + enc.EncodeToString(c))
		sig, err := stdSign(f, f.signingInput)
		if err != nil {
			return nil, fmt.Errorf("%s reference token: %w", alg, err)
		}
		f.token = string(f.signingInput) + "." + enc.EncodeToString(sig)
		f.tokenBytes = []byte(f.token)

		// Flip a byte of the decoded signature, not a base64 character: the
		// last character of an unpadded encoding may carry only padding bits,
		// and a lenient decoder would then see the original signature.
		bad := append([]byte(nil), sig...)
		bad[len(bad)/2] ^= 0x01
		f.tampered = string(f.signingInput) + "." + enc.EncodeToString(bad)
		m[alg] = f
	}
	return m, nil
}

func readPKCS8[K any](name string) (K, error) {
	var zero K
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		return zero, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return zero, fmt.Errorf("%s: no PKCS #8 PEM block", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", name, err)
	}
	key, ok := k.(K)
	if !ok {
		return zero, fmt.Errorf("%s: key is %T, want %T", name, k, zero)
	}
	return key, nil
}

// stdSign signs a JWS signing input with the standard library and returns the
// JWS signature bytes (RFC 7518 §3).
func stdSign(f *fixture, input []byte) ([]byte, error) {
	digest := sha256.Sum256(input)
	switch f.alg {
	case "HS256":
		m := hmac.New(sha256.New, f.hmacKey)
		m.Write(input)
		return m.Sum(nil), nil
	case "RS256":
		return rsa.SignPKCS1v15(nil, f.rsaKey, crypto.SHA256, digest[:])
	case "ES256":
		r, s, err := ecdsa.Sign(rand.Reader, f.ecKey, digest[:])
		if err != nil {
			return nil, err
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig, nil
	default:
		return ed25519.Sign(f.edKey, input), nil
	}
}
