package jwt

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
)

var testNow = time.Unix(1_800_000_000, 0)

func testAccessClaims() *AccessClaims {
	return &AccessClaims{
		RegisteredClaims: RegisteredClaims{
			Issuer:    "https://auth.example.com",
			Subject:   "user-123",
			Audience:  Audience{"api"},
			ExpiresAt: NewNumericDate(testNow.Add(15 * time.Minute)),
			IssuedAt:  NewNumericDate(testNow),
			ID:        "jti-1",
		},
		SessionID: "sess-1",
		ClientID:  "web",
		Scope:     "read write",
		Roles:     []string{"admin", "user"},
		AuthTime:  NewNumericDate(testNow),
	}
}

func mustKey(t testing.TB, alg jose.Algorithm) *jose.Key {
	t.Helper()
	k, err := jose.GenerateKey(alg, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err = k.WithKeyID("kid-" + string(alg))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignParseAccessClaims(t *testing.T) {
	for _, alg := range jose.Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			key := mustKey(t, alg)
			claims := testAccessClaims()
			claims.Scp, claims.Scopes = []string{"orders:write"}, []string{"weather:read", "a b"}
			claims.ACR, claims.AMR = "mfa", []string{"pwd", "otp", "mfa"}
			tok, err := Sign(key, claims, WithHeaderType("at+jwt"))
			if err != nil {
				t.Fatal(err)
			}
			verify := key
			if pub := key.Public(); pub != nil {
				verify = pub
			}
			p := NewParser(verify, WithIssuer("https://auth.example.com"), WithAudience("api"), WithType("at+jwt"), WithNow(func() time.Time { return testNow }))
			var got AccessClaims
			if err := p.Parse(tok, &got); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := claims
			if got.Subject != want.Subject || got.SessionID != want.SessionID || got.Scope != want.Scope ||
				len(got.Roles) != 2 || got.Roles[1] != "user" || !got.ExpiresAt.Equal(want.ExpiresAt.Time) || !got.AuthTime.Equal(want.AuthTime.Time) ||
				!slices.Equal(got.Scp, want.Scp) || !slices.Equal(got.Scopes, want.Scopes) || got.ACR != "mfa" || !slices.Equal(got.AMR, want.AMR) {
				t.Errorf("got %+v, want %+v", got, *want)
			}
			var m MapClaims
			if err := p.Parse(tok, &m); err != nil {
				t.Fatalf("Parse map: %v", err)
			}
			if m["sid"] != "sess-1" {
				t.Errorf("map sid: got %v, want sess-1", m["sid"])
			}
			if m["acr"] != "mfa" || len(m["amr"].([]any)) != 3 {
				t.Errorf("map acr, amr: got %v, %v, want mfa, [pwd otp mfa]", m["acr"], m["amr"])
			}
		})
	}
}

func TestParseZeroAllocHS256(t *testing.T) {
	key := mustKey(t, jose.HS256)
	tok, err := Sign(key, testAccessClaims(), WithHeaderType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	p := NewParser(key, WithIssuer("https://auth.example.com"), WithAudience("api"), WithType("at+jwt"), WithNow(func() time.Time { return testNow }))
	var c AccessClaims
	if err := p.Parse(tok, &c); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := p.Parse(tok, &c); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse into a reused *AccessClaims: got %v allocations, want 0", allocs)
	}
}

func TestExpiredAndMissingExp(t *testing.T) {
	key := mustKey(t, jose.HS256)
	c := testAccessClaims()
	tok, _ := Sign(key, c)
	late := NewParser(key, WithNow(func() time.Time { return testNow.Add(16 * time.Minute) }))
	var got AccessClaims
	if err := late.Parse(tok, &got); !errors.Is(err, ErrTokenExpired) || !errors.Is(err, ErrInvalidClaims) {
		t.Errorf("got %v, want ErrTokenExpired", err)
	}
	if got.Subject != "" {
		t.Errorf("claims of a rejected token were handed back: %+v", got)
	}
	c.ExpiresAt = NumericDate{}
	tok, _ = Sign(key, c)
	if err := NewParser(key, WithNow(func() time.Time { return testNow })).Parse(tok, &got); !errors.Is(err, ErrMissingClaim) {
		t.Errorf("no exp: got %v, want ErrMissingClaim", err)
	}
}

// TestConfirmationClaim reads the cnf of a DPoP-bound token (RFC 9449
// section 6.1) and refuses malformed ones.
func TestConfirmationClaim(t *testing.T) {
	key := mustKey(t, jose.ES256)
	p := NewParser(key.Public(), WithNow(func() time.Time { return testNow }))
	sign := func(extra map[string]any) string {
		c := MapClaims{"iss": "i", "exp": testNow.Add(time.Minute).Unix()}
		for k, v := range extra {
			c[k] = v
		}
		tok, err := Sign(key, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	var got AccessClaims
	if err := p.Parse(sign(map[string]any{"cnf": map[string]any{"jkt": "abc", "x5t#S256": "x"}}), &got); err != nil || got.Confirmation.JKT != "abc" {
		t.Fatalf("got %+v, %v; want jkt abc", got.Confirmation, err)
	}
	// The fast encoder of AccessClaims writes it.
	ac := testAccessClaims()
	ac.ExpiresAt = NewNumericDate(testNow.Add(time.Minute))
	ac.Confirmation.JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	tok, err := Sign(key, ac)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Parse(tok, &got); err != nil || got.Confirmation != ac.Confirmation {
		t.Fatalf("round trip: got %+v, %v; want %+v", got.Confirmation, err, ac.Confirmation)
	}
	// Reused for a token without cnf, the value forgets the jkt.
	if err := p.Parse(sign(nil), &got); err != nil || got.Confirmation.JKT != "" {
		t.Errorf("got %+v, %v; want no jkt", got.Confirmation, err)
	}
	for _, bad := range []map[string]any{{"cnf": "abc"}, {"cnf": map[string]any{"jkt": 1}}, {"CNF": map[string]any{"jkt": "abc"}}} {
		if err := p.Parse(sign(bad), &got); !errors.Is(err, ErrInvalidClaim) {
			t.Errorf("%v: got %v, want ErrInvalidClaim", bad, err)
		}
	}
}

// TestAppendAccessMatchesEncodingJSON keeps the purpose-built encoder of
// AccessClaims (appendAccess) and encoding/json, which the claims hook's
// tokens go through, in agreement: the same bytes for every member.
func TestAppendAccessMatchesEncodingJSON(t *testing.T) {
	full := testAccessClaims()
	full.NotBefore = NewNumericDate(testNow)
	full.ACR, full.AMR = "mfa", []string{"pwd", "otp", "mfa"}
	full.Scp, full.Scopes = []string{"a"}, []string{"b", "c"}
	full.Act = &Actor{Subject: "svc", Act: &Actor{Subject: "svc0"}}
	full.Confirmation.JKT = "thumb"
	for _, c := range []*AccessClaims{full, testAccessClaims(), {}} {
		fast, err := appendClaims(nil, c)
		if err != nil {
			t.Fatal(err)
		}
		std, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if string(fast) != string(std) {
			t.Errorf("appendAccess: got %s, encoding/json %s", fast, std)
		}
	}
}
