package storetest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// BenchRevokeBrowserSession is the body of a store's benchmark of a
// sign-out: each iteration revokes a browser session with two grant
// sessions of one client under it, made (untimed) beforehand. told gives
// the client a back-channel logout URI.
func BenchRevokeBrowserSession(b *testing.B, s keycard.Stores, told bool) {
	ctx := context.Background()
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	newID := func() string {
		id, err := keycard.NewID(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		return id
	}
	u := &keycard.User{ID: newID(), Username: "u", NormalizedUsername: "u", PasswordHash: "h", CreatedAt: at, UpdatedAt: at, PasswordChangedAt: at}
	if err := s.Users.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	c := &keycard.Client{ID: newID(), Name: "app", SecretHash: keycard.HashClientSecret("s"), CreatedAt: at, UpdatedAt: at,
		OAuth: keycard.OAuthSettings{GrantTypes: []string{keycard.GrantAuthorizationCode}, RedirectURIs: []string{"https://app.example/cb"}}}
	if told {
		c.OAuth.BackchannelLogoutURI = "https://app.example/backchannel"
	}
	if err := s.Clients.CreateClient(ctx, c); err != nil {
		b.Fatal(err)
	}
	session := func(parent string) *keycard.Session {
		sess := &keycard.Session{ID: newID(), UserID: u.ID, CreatedAt: at, LastUsedAt: at, IdleTimeout: time.Hour, ExpiresAt: at.Add(time.Hour)}
		var first *keycard.RefreshToken
		if parent == "" {
			_, tid, hash, err := keycard.NewRefreshToken(rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			first = &keycard.RefreshToken{ID: tid, SecretHash: hash, CreatedAt: at}
		} else {
			sess.ParentID, sess.ClientID = parent, c.ID
		}
		if err := s.Sessions.CreateSession(ctx, sess, first, nil); err != nil {
			b.Fatal(err)
		}
		return sess
	}
	for b.Loop() {
		b.StopTimer()
		p := session("")
		session(p.ID)
		session(p.ID)
		b.StartTimer()
		if _, err := s.Sessions.RevokeSession(ctx, p.ID, at, keycard.RevokeLogout); err != nil {
			b.Fatal(err)
		}
	}
}
