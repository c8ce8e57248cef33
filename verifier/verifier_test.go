package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

const testIssuer = "https://auth.example.com"

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// clock is a settable clock for tests.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := new(clock); c.set(t); return c }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) {
	c.ns.Add(int64(d))
}

// fixture is a Verifier on fixed keys, without a feed; the revocation
// set is fed by hand.
type fixture struct {
	key   *jose.Key
	clock *clock
	v     *Verifier
}

func newFixture(t testing.TB, alg jose.Algorithm, cfg Config) *fixture {
	t.Helper()
	key, err := jose.GenerateKey(alg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key, err = key.WithKeyID("kid-1"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{key: key, clock: newClock(testNow)}
	pub := key
	if p := key.Public(); p != nil {
		pub = p
	}
	cfg.Issuer = testIssuer
	if cfg.Audience == "" {
		cfg.Audience = "api"
	}
	cfg.Keys = pub
	cfg.NoRevocationFeed = true
	cfg.Now = f.clock.now
	if f.v, err = New(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.v.Close)
	return f
}

func (f *fixture) claims() *jwt.AccessClaims {
	return &jwt.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testIssuer, Subject: "user-1", Audience: jwt.Audience{"api"},
			ExpiresAt: jwt.NewNumericDate(testNow.Add(15 * time.Minute)),
			IssuedAt:  jwt.NewNumericDate(testNow), ID: "jti-1",
		},
		SessionID: "sess-1", ClientID: "web", Scope: "weather:read profile",
		Roles: []string{"user"}, Scp: []string{"orders:write"}, Scopes: []string{"profile", "billing"},
	}
}

func (f *fixture) sign(t testing.TB, c *jwt.AccessClaims, opts ...jwt.SignerOption) string {
	t.Helper()
	tok, err := jwt.Sign(f.key, c, append([]jwt.SignerOption{jwt.WithHeaderType("at+jwt")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func wantRefused(t *testing.T, err error, status int, sentinel error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want an *Error", err)
	}
	if e.Status != status || !errors.Is(err, sentinel) {
		t.Fatalf("got status %d, %v; want %d, %v", e.Status, err, status, sentinel)
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t, jose.ES256, Config{})
	c, err := f.v.Verify(f.sign(t, f.claims()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "user-1" || c.SessionID != "sess-1" || c.KeyID != "kid-1" {
		t.Errorf("claims: %+v", c)
	}
	want := []string{"weather:read", "profile", "orders:write", "billing"}
	if got := c.ScopeList(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("scopes: got %q, want %q", got, want)
	}
	for _, s := range want {
		if !c.HasScope(s) {
			t.Errorf("HasScope(%q) = false", s)
		}
	}
	if c.HasScope("weather") || c.HasScope("") || !c.HasRole("user") || c.HasRole("admin") {
		t.Error("HasScope/HasRole match what they should not")
	}
}

func TestVerifyRefusesBadTokens(t *testing.T) {
	f := newFixture(t, jose.ES256, Config{})
	other, err := jose.GenerateKey(jose.ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _ = other.WithKeyID("kid-1")
	mod := func(fn func(c *jwt.AccessClaims)) string {
		c := f.claims()
		fn(c)
		return f.sign(t, c)
	}
	foreign, err := jwt.Sign(other, f.claims(), jwt.WithHeaderType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	plainJWT, err := jwt.Sign(f.key, f.claims(), jwt.WithHeaderType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	good := f.sign(t, f.claims())
	bare, err := f.key.WithKeyID("") // the same key, without a kid
	if err != nil {
		t.Fatal(err)
	}
	noKID, err := jwt.Sign(bare, f.claims(), jwt.WithHeaderType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"no kid":          noKID,
		"empty":           "",
		"garbage":         "not-a-token",
		"foreign key":     foreign,
		"typ JWT":         plainJWT,
		"truncated":       good[:len(good)-5],
		"wrong issuer":    mod(func(c *jwt.AccessClaims) { c.Issuer = "https://evil.example" }),
		"wrong audience":  mod(func(c *jwt.AccessClaims) { c.Audience = jwt.Audience{"other"} }),
		"expired":         mod(func(c *jwt.AccessClaims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Minute)) }),
		"not yet valid":   mod(func(c *jwt.AccessClaims) { c.NotBefore = jwt.NewNumericDate(testNow.Add(time.Hour)) }),
		"no exp":          mod(func(c *jwt.AccessClaims) { c.ExpiresAt = jwt.NumericDate{} }),
		"alg none":        "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + strings.Split(good, ".")[1] + ".",
		"payload swapped": strings.Split(good, ".")[0] + "." + strings.Split(mod(func(c *jwt.AccessClaims) { c.Subject = "admin" }), ".")[1] + "." + strings.Split(good, ".")[2],
	} {
		t.Run(name, func(t *testing.T) {
			c, err := f.v.Verify(tok)
			if c != nil {
				t.Fatalf("got claims %+v", c)
			}
			wantRefused(t, err, http.StatusUnauthorized, ErrInvalidToken)
		})
	}
}

func TestVerifyRevocation(t *testing.T) {
	for _, cached := range []bool{false, true} {
		name := "uncached"
		size := -1
		if cached {
			name, size = "cached", 0
		}
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				name  string
				entry Entry
				other Entry // a similar entry that must not match
			}{
				{"session", Entry{Kind: "session", Value: "sess-1"}, Entry{Kind: "session", Value: "sess-2"}},
				{"token", Entry{Kind: "token", Value: "jti-1"}, Entry{Kind: "token", Value: "jti-2"}},
				{"user cut-off", Entry{Kind: "user", Value: "user-1", At: testNow.Add(time.Second)}, Entry{Kind: "user", Value: "user-1", At: testNow.Add(-time.Second)}},
				{"global cut-off", Entry{Kind: "all", At: testNow.Add(time.Millisecond)}, Entry{Kind: "all", At: testNow.Add(-time.Second)}},
				{"key", Entry{Kind: "key", Value: "kid-1"}, Entry{Kind: "key", Value: "kid-2"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					f := newFixture(t, jose.EdDSA, Config{CacheSize: size})
					tok := f.sign(t, f.claims())
					tc.entry.ExpiresAt, tc.other.ExpiresAt = testNow.Add(time.Hour), testNow.Add(time.Hour)
					tc.entry.Seq, tc.other.Seq = 1, 2
					if tc.other.At.IsZero() {
						tc.other.At = testNow
					}
					if tc.entry.At.IsZero() {
						tc.entry.At = testNow
					}
					if _, err := f.v.Verify(tok); err != nil {
						t.Fatal(err)
					}
					f.v.Revocations().Apply(tc.other)
					if _, err := f.v.Verify(tok); err != nil {
						t.Fatalf("after a non-matching entry: %v", err)
					}
					f.v.Revocations().Apply(tc.entry)
					_, err := f.v.Verify(tok)
					wantRefused(t, err, http.StatusUnauthorized, ErrRevoked)
				})
			}
		})
	}
}

func TestVerifyCacheChecksExpiry(t *testing.T) {
	f := newFixture(t, jose.HS256, Config{})
	tok := f.sign(t, f.claims())
	if _, err := f.v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if f.v.cache.len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", f.v.cache.len())
	}
	f.clock.add(15*time.Minute + DefaultLeeway - time.Second)
	if _, err := f.v.Verify(tok); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	f.clock.add(time.Second)
	_, err := f.v.Verify(tok)
	wantRefused(t, err, http.StatusUnauthorized, jwt.ErrTokenExpired)
	if f.v.cache.len() != 0 {
		t.Errorf("an expired token stayed in the cache")
	}
}

// TestVerifyCacheIsBounded fills the cache far past its size.
func TestVerifyCacheIsBounded(t *testing.T) {
	f := newFixture(t, jose.HS256, Config{CacheSize: 64})
	for i := range 1000 {
		c := f.claims()
		c.ID = "jti-" + string(rune('a'+i%26)) + strings.Repeat("x", i%7) + time.Duration(i).String()
		if _, err := f.v.Verify(f.sign(t, c)); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.v.cache.len(); n > 64 {
		t.Errorf("cache holds %d entries, want at most 64", n)
	}
}

// TestVerifyClaimsAreNotShared: the claims handed out for one token are
// not changed by verifying another.
func TestVerifyClaimsAreNotShared(t *testing.T) {
	f := newFixture(t, jose.HS256, Config{CacheSize: -1})
	a := f.claims()
	b := f.claims()
	b.Subject, b.Roles, b.Scope = "user-2", []string{"admin"}, "other"
	ca, err := f.v.Verify(f.sign(t, a))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(f.sign(t, b)); err != nil {
		t.Fatal(err)
	}
	if ca.Subject != "user-1" || ca.Roles[0] != "user" || !ca.HasScope("weather:read") {
		t.Errorf("first claims changed: %+v", ca)
	}
}

func TestNewChecksConfig(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Config{}); err == nil {
		t.Error("no issuer: want an error")
	}
	if _, err := New(ctx, Config{Issuer: testIssuer, JWKSURL: "http://127.0.0.1:1/jwks"}); err == nil || !strings.Contains(err.Error(), "ClientID") {
		t.Errorf("no client credentials: got %v, want an error naming ClientID", err)
	}
	// More leeway than the feed keeps entries would let revoked tokens
	// back in.
	if _, err := New(ctx, Config{Issuer: testIssuer, NoRevocationFeed: true, Keys: &jose.KeySet{}, Leeway: MaxLeeway + time.Second}); err == nil || !strings.Contains(err.Error(), "Leeway") {
		t.Errorf("leeway over the maximum: got %v, want an error", err)
	}
}

// TestNewDiscovers builds a Verifier from the issuer alone, against a
// fake auth server that serves discovery, JWKS and an empty feed.
func TestNewDiscovers(t *testing.T) {
	key, err := jose.GenerateKey(jose.ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ = key.WithKeyID("k1")
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"issuer": srv.URL, "jwks_uri": srv.URL + "/.well-known/jwks.json",
			"keycard_revocation_feed_endpoint": srv.URL + "/v1/revocations",
		})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		pub, _ := json.Marshal(key.Public())
		w.Write([]byte(`{"keys":[` + string(pub) + `]}`))
	})
	mux.HandleFunc("GET /v1/revocations", func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != "svc" || secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("wait") != "" {
			select {
			case <-r.Context().Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"entries":[{"seq":1,"kind":"session","value":"dead","at":"2026-11-22T12:00:00Z","expires_at":"2999-01-01T00:00:00Z"}],"next":1,"snapshot":false}`))
	})
	srv = httptest.NewServer(mux)
	defer srv.Close()
	v, err := New(context.Background(), Config{Issuer: srv.URL, ClientID: "svc", ClientSecret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	now := time.Now()
	c := &jwt.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Issuer: srv.URL, Subject: "u", ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now)}, SessionID: "alive"}
	tok, err := jwt.Sign(key, c, jwt.WithHeaderType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	c.SessionID = "dead"
	tok, _ = jwt.Sign(key, c, jwt.WithHeaderType("at+jwt"))
	_, err = v.Verify(tok)
	wantRefused(t, err, http.StatusUnauthorized, ErrRevoked)
}
