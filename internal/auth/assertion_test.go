package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

const (
	testTokenEndpoint = "https://auth.test/oauth/token"
	testKeysURI       = "https://app.example/jwks.json"
)

// testAudiences are the audiences the token endpoint accepts.
var testAudiences = []string{"https://auth.test", testTokenEndpoint}

// signingKey makes a private key with a kid.
func signingKey(t *testing.T, alg jose.Algorithm, kid string) *jose.Key {
	t.Helper()
	k, err := jose.GenerateKey(alg, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if k, err = k.WithKeyID(kid); err != nil {
		t.Fatal(err)
	}
	return k
}

// jwksOf returns the public JWK Set of keys.
func jwksOf(t *testing.T, keys ...*jose.Key) []byte {
	t.Helper()
	var pubs []*jose.Key
	for _, k := range keys {
		pubs = append(pubs, k.Public())
	}
	set, err := jose.NewKeySet(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keyApp registers a confidential client of the code grant that
// authenticates with private_key_jwt, with an inline JWK Set or a JWKS
// URI.
func (f *fixture) keyApp(t *testing.T, jwks []byte, uri string) *keycard.Client {
	t.Helper()
	c, secret, err := f.svc.CreateClient(context.Background(), Operator(), ClientSpec{Name: "Key app", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantAuthorizationCode}, RedirectURIs: []string{testRedirect},
		TokenAuthMethod: keycard.AuthPrivateKeyJWT, JWKS: jwks, JWKSURI: uri,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		t.Fatalf("a private_key_jwt client got a secret")
	}
	return c
}

// assertion signs claims with key, naming its kid.
func assertion(t *testing.T, key *jose.Key, claims map[string]any) string {
	t.Helper()
	tok, err := jwt.Sign(key, jwt.MapClaims(claims), jwt.WithKeyID(key.KeyID()))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// assertionClaims are the claims of a good assertion of client id at now,
// with a fresh jti; change sets or deletes (nil) members.
func assertionClaims(t *testing.T, id string, now time.Time, change map[string]any) map[string]any {
	jti, err := keycard.NewID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{"iss": id, "sub": id, "aud": testTokenEndpoint, "jti": jti, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	for k, v := range change {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// unsigned returns a token with the given header and claims and no
// signature (alg none).
func unsigned(header string, claims map[string]any) string {
	b, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(b) + "."
}

// TestClientAssertionAttacks sends each attack on private_key_jwt to
// AuthenticateClientAssertion: only the good assertions pass.
func TestClientAssertionAttacks(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	key := signingKey(t, jose.ES256, "k1")
	rsaKey := signingKey(t, jose.RS256, "r1")
	app := f.keyApp(t, jwksOf(t, key, rsaKey), "")
	otherKey := signingKey(t, jose.ES256, "k1") // the other client's, with the same kid
	other := f.keyApp(t, jwksOf(t, otherKey), "")
	secretClient, secret := f.client(t, nil, nil)
	now := f.clock.Now()

	// The classic confusion: an HS256 token whose HMAC secret is the
	// client's public key, in the forms a careless verifier might use.
	pemKey, err := rsaKey.Public().MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	hmacWith := func(secret []byte) string {
		k, err := jose.NewHMACKey(jose.HS256, secret)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Sign(k, jwt.MapClaims(assertionClaims(t, app.ID, now, nil)), jwt.WithKeyID("r1"))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	rsaJWK, _ := json.Marshal(rsaKey.Public())
	n := rsaKey.PublicKey().(*rsa.PublicKey).N.Bytes()

	replayed := assertion(t, key, assertionClaims(t, app.ID, now, nil))
	if _, err := f.svc.AuthenticateClientAssertion(ctx, app.ID, replayed, testAudiences); err != nil {
		t.Fatalf("a good assertion: %v", err)
	}

	tests := []struct {
		name      string
		clientID  string // the request's client_id
		assertion string
		audiences []string // nil: testAudiences
		ok        bool
	}{
		{"good, ES256", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, nil)), nil, true},
		{"good, RS256", app.ID, assertion(t, rsaKey, assertionClaims(t, app.ID, now, nil)), nil, true},
		{"good, client_id from sub", "", assertion(t, key, assertionClaims(t, app.ID, now, nil)), nil, true},
		{"good, aud the issuer", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"aud": "https://auth.test"})), nil, true},
		{"good, aud an array of ours", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"aud": []string{"https://auth.test", testTokenEndpoint}})), nil, true},
		{"good, no iat", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"iat": nil})), nil, true},
		{"replayed jti", app.ID, replayed, nil, false},
		{"wrong aud", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"aud": "https://other.example/oauth/token"})), nil, false},
		{"aud of another endpoint", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"aud": "https://auth.test/oauth/par"})), nil, false},
		{"aud naming another server too", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"aud": []string{testTokenEndpoint, "https://other.example"}})), nil, false},
		{"aud empty array", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"aud": []string{}})), nil, false},
		{"no aud", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"aud": nil})), nil, false},
		{"expired", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"iat": now.Add(-3 * time.Minute).Unix(), "exp": now.Add(-time.Minute).Unix()})), nil, false},
		{"far-future exp", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"exp": now.Add(time.Hour).Unix()})), nil, false},
		{"far-future exp, no iat", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"iat": nil, "exp": now.Add(10 * time.Minute).Unix()})), nil, false},
		{"exp long after an old iat", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"iat": now.Add(-time.Hour).Unix(), "exp": now.Add(time.Minute).Unix()})), nil, false},
		{"no exp", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"exp": nil})), nil, false},
		{"iat in the future", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"iat": now.Add(2 * time.Minute).Unix(), "exp": now.Add(4 * time.Minute).Unix()})), nil, false},
		{"nbf in the future", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"nbf": now.Add(2 * time.Minute).Unix()})), nil, false},
		{"no jti", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"jti": nil})), nil, false},
		{"empty jti", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"jti": ""})), nil, false},
		{"alg none", app.ID, unsigned(`{"alg":"none","kid":"k1"}`, assertionClaims(t, app.ID, now, nil)), nil, false},
		{"alg none, no kid", app.ID, unsigned(`{"alg":"none"}`, assertionClaims(t, app.ID, now, nil)), nil, false},
		{"HS256 keyed with the PEM public key", app.ID, hmacWith(pemKey), nil, false},
		{"HS256 keyed with the JWK public key", app.ID, hmacWith(rsaJWK), nil, false},
		{"HS256 keyed with the RSA modulus", app.ID, hmacWith(n), nil, false},
		{"signed by another client's key", app.ID, assertion(t, otherKey, assertionClaims(t, app.ID, now, nil)), nil, false},
		{"the other client's own assertion, as this client", app.ID, assertion(t, otherKey, assertionClaims(t, other.ID, now, nil)), nil, false},
		{"iss is not sub", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"iss": other.ID})), nil, false},
		{"sub is not iss", app.ID, assertion(t, key, assertionClaims(t, app.ID, now, map[string]any{"sub": other.ID})), nil, false},
		{"client_id names another client", other.ID, assertion(t, key, assertionClaims(t, app.ID, now, nil)), nil, false},
		{"a client registered for secrets", secretClient.ID, assertion(t, key, assertionClaims(t, secretClient.ID, now, nil)), nil, false},
		{"unknown client", "nope", assertion(t, key, assertionClaims(t, "nope", now, nil)), nil, false},
		{"malformed", app.ID, "not.a.jwt", nil, false},
		{"empty", app.ID, "", nil, false},
		{"signature tampered", app.ID, flipLast(assertion(t, key, assertionClaims(t, app.ID, now, nil))), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			aud := tt.audiences
			if aud == nil {
				aud = testAudiences
			}
			c, err := f.svc.AuthenticateClientAssertion(ctx, tt.clientID, tt.assertion, aud)
			switch {
			case tt.ok && (err != nil || c == nil || c.ID != app.ID):
				t.Errorf("got %v, %v; want the client", c, err)
			case !tt.ok && (err == nil || keycard.ErrorCode(err) != keycard.EUNAUTHORIZED || keycard.ErrorMessage(err) != "Invalid client credentials."):
				t.Errorf("got %v, %v; want the one EUNAUTHORIZED error", c, err)
			}
		})
	}

	// The other way round: a private_key_jwt client cannot use a secret,
	// even one it was given (rotate-secret) or kept from before.
	s2, err := f.svc.RotateClientSecret(ctx, Operator(), app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuthenticateClient(ctx, app.ID, s2); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("a private_key_jwt client with a secret: %v, want EUNAUTHORIZED", err)
	}
	if _, err := f.svc.AuthenticateClient(ctx, secretClient.ID, secret); err != nil {
		t.Errorf("the secret client's own secret: %v", err)
	}
}

// flipLast changes the last character of a token's signature.
func flipLast(tok string) string {
	b := []byte(tok)
	if b[len(b)-1] == 'A' {
		b[len(b)-1] = 'Q'
	} else {
		b[len(b)-1] = 'A'
	}
	return string(b)
}

// fakeKeys is a ClientKeys serving the sets of a map, counting the calls
// and the refreshes.
type fakeKeys struct {
	mu        sync.Mutex
	sets      map[string][]byte // by URI; what a fetch would get now
	served    map[string][]byte // what the last "fetch" got
	calls     int
	refreshes int
	fail      error
}

func (k *fakeKeys) KeySet(ctx context.Context, uri string, refresh bool) (*jose.KeySet, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	if refresh {
		k.refreshes++
	}
	if k.fail != nil {
		return nil, k.fail
	}
	if k.served == nil {
		k.served = map[string][]byte{}
	}
	if _, ok := k.served[uri]; !ok || refresh {
		k.served[uri] = k.sets[uri]
	}
	return jose.ParseKeySet(k.served[uri])
}

// TestClientAssertionKeysURI: a client's keys at a JWKS URI are fetched
// through ClientKeys; a new key the client rotated to is found by one
// refresh; a set that holds an HMAC key under the client's kid cannot be
// used to forge an assertion.
func TestClientAssertionKeysURI(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	keys := &fakeKeys{sets: map[string][]byte{}}
	svc, err := NewService(Deps{Stores: f.db.Stores(), Keys: f.svc.Keys(), Hasher: fastHasher, Now: f.clock.Now, ClientKeys: keys}, Config{Issuer: "https://auth.test"})
	if err != nil {
		t.Fatal(err)
	}
	old, next := signingKey(t, jose.ES256, "old"), signingKey(t, jose.EdDSA, "next")
	keys.sets[testKeysURI] = jwksOf(t, old)
	app := f.keyApp(t, nil, testKeysURI)
	now := f.clock.Now()

	if _, err := svc.AuthenticateClientAssertion(ctx, app.ID, assertion(t, old, assertionClaims(t, app.ID, now, nil)), testAudiences); err != nil {
		t.Fatalf("an assertion of the published key: %v", err)
	}
	if keys.refreshes != 0 {
		t.Errorf("%d refreshes for a known key, want 0", keys.refreshes)
	}
	// The client rotates: the set served next holds the new key.
	keys.sets[testKeysURI] = jwksOf(t, old, next)
	if _, err := svc.AuthenticateClientAssertion(ctx, app.ID, assertion(t, next, assertionClaims(t, app.ID, now, nil)), testAudiences); err != nil {
		t.Fatalf("an assertion of the new key: %v", err)
	}
	if keys.refreshes != 1 {
		t.Errorf("%d refreshes for the new kid, want 1", keys.refreshes)
	}
	// An unknown kid asks once per assertion, no more.
	stranger := signingKey(t, jose.ES256, "stranger")
	before := keys.calls
	if _, err := svc.AuthenticateClientAssertion(ctx, app.ID, assertion(t, stranger, assertionClaims(t, app.ID, now, nil)), testAudiences); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("an unknown key: %v, want EUNAUTHORIZED", err)
	}
	if got := keys.calls - before; got != 2 {
		t.Errorf("an unknown kid made %d key set requests, want 2 (the cached set, one refresh)", got)
	}

	// A published HMAC key is never used: anyone can read it.
	secret := []byte("0123456789abcdef0123456789abcdef")
	hmacKey, err := jose.NewHMACKey(jose.HS256, secret)
	if err != nil {
		t.Fatal(err)
	}
	if hmacKey, err = hmacKey.WithKeyID("old"); err != nil {
		t.Fatal(err)
	}
	keys.sets[testKeysURI] = []byte(`{"keys":[{"kty":"oct","alg":"HS256","kid":"old","k":"` + base64.RawURLEncoding.EncodeToString(secret) + `"}]}`)
	keys.served = nil
	forged, err := jwt.Sign(hmacKey, jwt.MapClaims(assertionClaims(t, app.ID, now, nil)), jwt.WithKeyID("old"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AuthenticateClientAssertion(ctx, app.ID, forged, testAudiences); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("an HS256 assertion of a published oct key: %v, want EUNAUTHORIZED", err)
	}

	// The keys cannot be fetched: refused, not an internal error.
	keys.fail = errors.New("connection refused")
	if _, err := svc.AuthenticateClientAssertion(ctx, app.ID, assertion(t, old, assertionClaims(t, app.ID, now, nil)), testAudiences); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("keys unreachable: %v, want EUNAUTHORIZED", err)
	}
	// Without ClientKeys, a JWKS URI client cannot authenticate.
	if _, err := f.svc.AuthenticateClientAssertion(ctx, app.ID, assertion(t, old, assertionClaims(t, app.ID, now, nil)), testAudiences); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("no ClientKeys: %v, want EUNAUTHORIZED", err)
	}
}

// TestClientAssertionJTIExpiry: a jti is refused until its assertion has
// expired (plus the leeway), and only for its own client.
func TestClientAssertionJTIExpiry(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	key := signingKey(t, jose.ES256, "k1")
	app := f.keyApp(t, jwksOf(t, key), "")
	now := f.clock.Now()
	claims := assertionClaims(t, app.ID, now, map[string]any{"jti": "once"})
	if _, err := f.svc.AuthenticateClientAssertion(ctx, app.ID, assertion(t, key, claims), testAudiences); err != nil {
		t.Fatal(err)
	}
	// A new assertion with the same jti, within the first's life.
	f.clock.Advance(30 * time.Second)
	again := assertionClaims(t, app.ID, f.clock.Now(), map[string]any{"jti": "once"})
	if _, err := f.svc.AuthenticateClientAssertion(ctx, app.ID, assertion(t, key, again), testAudiences); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("a jti reused within the first assertion's life: %v, want EUNAUTHORIZED", err)
	}
	// Once the first has expired for good, the jti names a new assertion.
	f.clock.Advance(3 * time.Minute)
	later := assertionClaims(t, app.ID, f.clock.Now(), map[string]any{"jti": "once"})
	if _, err := f.svc.AuthenticateClientAssertion(ctx, app.ID, assertion(t, key, later), testAudiences); err != nil {
		t.Errorf("the jti after the first assertion expired: %v", err)
	}
	// Another client may use the same jti.
	key2 := signingKey(t, jose.ES256, "k2")
	app2 := f.keyApp(t, jwksOf(t, key2), "")
	if _, err := f.svc.AuthenticateClientAssertion(ctx, app2.ID, assertion(t, key2, assertionClaims(t, app2.ID, f.clock.Now(), map[string]any{"jti": "once"})), testAudiences); err != nil {
		t.Errorf("another client's assertion with the same jti: %v", err)
	}
}
