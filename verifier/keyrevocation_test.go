package verifier

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// TestVerifierRefetchesKeysOnKeyRevocation is an emergency key
// revocation as a verifier sees it: the auth server stops publishing the
// revoked key a, signs with a new key b, and puts a key entry for a in
// the feed. The verifier fetches the key set once, at once, although a
// token of b has just spent the refetch of unknown kids (10 s), so that
// b's tokens verify and a's are refused. A flood of key entries does not
// make a flood of fetches.
func TestVerifierRefetchesKeysOnKeyRevocation(t *testing.T) {
	a, b := jwksKey(t, jose.ES256, "a"), jwksKey(t, jose.ES256, "b")
	jwks := newJWKSServer(t, jwksDoc(t, []*jose.Key{a}))
	feed := newFakeFeed(t)
	clk := newClock(testNow) // does not advance: the refetch of unknown kids stays spent
	v, err := New(context.Background(), Config{
		Issuer: testIssuer, Audience: "api",
		JWKSURL: jwks.URL, FeedURL: feed.feedURL(),
		ClientID: feedClientID, ClientSecret: feedClientSecret,
		Now: clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	eventually(t, "the verifier is ready", func() bool { return v.Ready() == nil })

	sign := func(k *jose.Key) string {
		tok, err := jwt.Sign(k, &jwt.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testIssuer, Subject: "user-1", Audience: jwt.Audience{"api"},
			IssuedAt: jwt.NewNumericDate(testNow), ExpiresAt: jwt.NewNumericDate(testNow.Add(15 * time.Minute)),
		}}, jwt.WithHeaderType("at+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tokA, tokB := sign(a), sign(b)
	if _, err := v.Verify(tokA); err != nil {
		t.Fatalf("a's token before the revocation: %v", err)
	}
	// A token of b arrives before b is published: its refetch finds
	// nothing, and no other refetch for an unknown kid is allowed for
	// RefetchInterval.
	_, err = v.Verify(tokB)
	wantRefused(t, err, http.StatusUnauthorized, ErrInvalidToken)
	eventually(t, "the refetch for b completes", func() bool { return v.KeySet().Status().Fetches == 2 })

	// The revocation: b replaces a in the key set, then the feed says so.
	jwks.set(jwksResponse{body: jwksDoc(t, []*jose.Key{b})})
	_, err = v.Verify(tokB)
	wantRefused(t, err, http.StatusUnauthorized, ErrInvalidToken)
	if n := jwks.requests.Load(); n != 2 {
		t.Fatalf("the key set was fetched %d times before the feed entry, want 2", n)
	}
	feed.add(KindKey, "a")
	eventually(t, "b's token verifies", func() bool { _, err := v.Verify(tokB); return err == nil })
	if n := jwks.requests.Load(); n != 3 {
		t.Errorf("the key set was fetched %d times, want 3 (one for the key entry)", n)
	}
	_, err = v.Verify(tokA)
	wantRefused(t, err, http.StatusUnauthorized, ErrRevoked)

	// A flood of key entries in one page: the requests are folded into a
	// fetch a second after the last one.
	kids := make([]string, 200)
	for i := range kids {
		kids[i] = fmt.Sprintf("leaked-%d", i)
	}
	feed.add(KindKey, kids...)
	eventually(t, "the flood is applied and served", func() bool {
		return v.Follower().Status().Cursor == 201 && jwks.requests.Load() >= 4
	})
	if n := jwks.requests.Load(); n > 5 {
		t.Errorf("200 key entries made the key set fetch %d times, want at most 2", n-3)
	}
	if _, err := v.Verify(tokB); err != nil {
		t.Errorf("b's token after the flood: %v", err)
	}
}
