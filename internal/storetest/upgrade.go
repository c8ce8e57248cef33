package storetest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// CheckOIDCUpgrade checks stores just migrated to the OpenID Connect
// schema (SQLite version 4, PostgreSQL version 2) from a database written
// before it with the service client "gw", the user "u" and the user's
// session "s", live at t0 with the live refresh token tokenID (secret hash
// hash): the client reads back as a service client and can be given OAuth
// settings, the session as a sign-in, and its token still rotates.
func CheckOIDCUpgrade(t *testing.T, s keycard.Stores, t0 time.Time, tokenID string, hash []byte) {
	t.Helper()
	ctx := context.Background()
	c, err := s.Clients.Client(ctx, "gw")
	if err != nil {
		t.Fatalf("Client after migrating: %v", err)
	}
	if c.OAuth.Public || len(c.OAuth.GrantTypes) != 0 || !c.AllowsGrant(keycard.GrantClientCredentials) || c.AllowsGrant(keycard.GrantAuthorizationCode) {
		t.Errorf("client after migrating: OAuth %+v, want a service client's zero settings", c.OAuth)
	}
	sess, err := s.Sessions.Session(ctx, "s")
	if err != nil {
		t.Fatalf("Session after migrating: %v", err)
	}
	if sess.ParentID != "" || sess.ClientID != "" || sess.Scope != "" || !sess.AuthTime.IsZero() || sess.AMR != nil {
		t.Errorf("session after migrating: %+v, want a sign-in without grant fields", sess)
	}
	if got, err := s.Sessions.ListSessions(ctx, keycard.SessionFilter{UserID: "u", SignInsOnly: true}); err != nil || len(got) != 1 {
		t.Errorf("ListSessions(sign-ins) after migrating = %d sessions, %v; want 1", len(got), err)
	}
	_, nid, nhash, err := keycard.NewRefreshToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
		TokenID: tokenID, SecretHash: hash, Now: t0, Grace: time.Second,
		Successor: keycard.RefreshToken{ID: nid, SecretHash: nhash}, WithUser: true,
	})
	if err != nil || res.Outcome != keycard.Rotated || res.User == nil {
		t.Errorf("rotation after migrating = %+v, %v; want Rotated with the user", res, err)
	}
	c.OAuth.GrantTypes = []string{keycard.GrantClientCredentials, keycard.GrantAuthorizationCode}
	c.OAuth.RedirectURIs = []string{"https://gw.example/cb"}
	if got, err := s.Clients.UpdateClient(ctx, c); err != nil {
		t.Errorf("UpdateClient after migrating: %v", err)
	} else {
		check(t, "client given OAuth settings after migrating", got, c)
	}
}
