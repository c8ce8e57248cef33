package verifier

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// TestActors reads the actor chain of an exchanged token (RFC 8693 act
// claim), most recent first, from a fresh and from a cached verification;
// the token's session still revokes it like any other of the session.
func TestActors(t *testing.T) {
	f := newFixture(t, jose.ES256, Config{})
	c := f.claims()
	c.Act = &jwt.Actor{Subject: "service-b", Act: &jwt.Actor{Subject: "service-a"}}
	tok := f.sign(t, c)
	for _, pass := range []string{"fresh", "cached"} {
		got, err := f.v.Verify(tok)
		if err != nil {
			t.Fatalf("%s: %v", pass, err)
		}
		if !slices.Equal(got.Actors(), []string{"service-b", "service-a"}) || got.Subject != "user-1" {
			t.Errorf("%s: actors %q, subject %q", pass, got.Actors(), got.Subject)
		}
	}
	plain, err := f.v.Verify(f.sign(t, f.claims()))
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Actors()) != 0 {
		t.Errorf("a token without act: actors %q, want none", plain.Actors())
	}
	f.v.Revocations().Apply(Entry{Seq: 1, Kind: "session", Value: "sess-1", At: testNow, ExpiresAt: testNow.Add(time.Hour)})
	_, err = f.v.Verify(tok)
	wantRefused(t, err, http.StatusUnauthorized, ErrRevoked)
}
