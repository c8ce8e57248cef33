package jwt

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
)

// TestActorRoundTrip signs a token with a nested act claim (RFC 8693
// section 4.1) by the fast encoder and reads it back by the fast scanner,
// by encoding/json, and into a reused value that then meets a token
// without act.
func TestActorRoundTrip(t *testing.T) {
	key := mustKey(t, jose.ES256)
	claims := testAccessClaims()
	claims.Act = &Actor{Subject: "service-b", Act: &Actor{Subject: "service-a"}}
	tok, err := Sign(key, claims, WithHeaderType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	p := NewParser(key.Public(), WithType("at+jwt"), WithNow(func() time.Time { return testNow }))
	var got AccessClaims
	if err := p.Parse(tok, &got); err != nil {
		t.Fatal(err)
	}
	if chain := got.Act.Chain(); !slices.Equal(chain, []string{"service-b", "service-a"}) || got.Act.Depth() != 2 {
		t.Errorf("act chain: got %q (depth %d), want [service-b service-a]", chain, got.Act.Depth())
	}
	var m MapClaims
	if err := p.Parse(tok, &m); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m["act"])
	if string(b) != `{"act":{"sub":"service-a"},"sub":"service-b"}` {
		t.Errorf("act as JSON: got %s", b)
	}
	// encoding/json encodes the same claim the same way (the claims hook
	// path marshals AccessClaims with it).
	jb, _ := json.Marshal(claims.Act)
	if string(jb) != `{"sub":"service-b","act":{"sub":"service-a"}}` {
		t.Errorf("encoding/json: got %s", jb)
	}
	plain, err := Sign(key, testAccessClaims(), WithHeaderType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Parse(plain, &got); err != nil {
		t.Fatal(err)
	}
	if got.Act != nil {
		t.Errorf("a reused value kept the act of the previous token: %+v", got.Act)
	}
	if (*Actor)(nil).Chain() != nil || (*Actor)(nil).Depth() != 0 {
		t.Error("a nil Actor has no chain")
	}
}

// TestActorMalformed sends act claims an attacker could write: each is
// refused with ErrInvalidClaim, never a panic; extra members are ignored.
func TestActorMalformed(t *testing.T) {
	key, err := jose.NewHMACKey(jose.HS256, []byte("keycard-test-hmac-secret-32bytes"))
	if err != nil {
		t.Fatal(err)
	}
	p := NewParser(key, WithNow(func() time.Time { return testNow }))
	exp := `"exp":1800000900`
	for _, tc := range []struct {
		name, act string
		ok        bool
		chain     []string
	}{
		{name: "one actor", act: `{"sub":"a"}`, ok: true, chain: []string{"a"}},
		{name: "extra members ignored", act: `{"sub":"a","iss":"x","client_id":"y"}`, ok: true, chain: []string{"a"}},
		{name: "nested", act: `{"sub":"b","act":{"sub":"a"}}`, ok: true, chain: []string{"b", "a"}},
		{name: "string", act: `"a"`},
		{name: "null", act: `null`},
		{name: "array", act: `[{"sub":"a"}]`},
		{name: "no sub", act: `{"iss":"x"}`},
		{name: "empty sub", act: `{"sub":""}`},
		{name: "sub not a string", act: `{"sub":1}`},
		{name: "nested not an object", act: `{"sub":"b","act":"a"}`},
		{name: "nested without sub", act: `{"sub":"b","act":{}}`},
		{name: "duplicate sub", act: `{"sub":"a","sub":"b"}`},
		{name: "case-variant sub beside sub", act: `{"sub":"a","SUB":"b"}`},
		{name: "case-variant sub alone", act: `{"Sub":"a"}`},
		{name: "case-variant act", act: `{"sub":"b","Act":{"sub":"a"}}`},
		{name: "nested case-variant sub", act: `{"sub":"b","act":{"sub":"a","sUb":"c"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Sign(key, json.RawMessage(`{`+exp+`,"act":`+tc.act+`}`))
			if err != nil {
				t.Fatal(err)
			}
			var c AccessClaims
			err = p.Parse(tok, &c)
			if tc.ok {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if !slices.Equal(c.Act.Chain(), tc.chain) {
					t.Errorf("chain: got %q, want %q", c.Act.Chain(), tc.chain)
				}
				return
			}
			if !errors.Is(err, ErrInvalidClaim) && !errors.Is(err, jose.ErrMalformed) {
				t.Fatalf("got %v, want ErrInvalidClaim", err)
			}
			if c.Act != nil {
				t.Errorf("claims kept an act from a refused token: %+v", c.Act)
			}
		})
	}
}

// TestActorCaseVariant refuses "Act" beside nothing: encoding/json would
// read it as act.
func TestActorCaseVariant(t *testing.T) {
	key, err := jose.NewHMACKey(jose.HS256, []byte("keycard-test-hmac-secret-32bytes"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Sign(key, json.RawMessage(`{"exp":1800000900,"ACT":{"sub":"a"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var c AccessClaims
	if err := NewParser(key, WithNow(func() time.Time { return testNow })).Parse(tok, &c); !errors.Is(err, ErrInvalidClaim) {
		t.Errorf("got %v, want ErrInvalidClaim", err)
	}
}
