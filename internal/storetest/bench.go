package storetest

import (
	"context"
	"crypto/rand"
	"syscall"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// BenchAuthCodeFlow measures the stores' share of authorization code
// flows from parallel goroutines, each signed in with a browser session of
// its own: CreateAuthCode, then Redeem into a grant session with a first
// refresh token. A backend's benchmark calls it with new, empty stores.
func BenchAuthCodeFlow(b *testing.B, s keycard.Stores) {
	ctx := context.Background()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	u := &keycard.User{ID: "u", Username: "u", NormalizedUsername: "u", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0}
	if err := s.Users.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	c := &keycard.Client{ID: "app", Name: "app", SecretHash: keycard.HashClientSecret("s"), CreatedAt: t0, UpdatedAt: t0}
	if err := s.Clients.CreateClient(ctx, c); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		sid, _ := keycard.NewID(rand.Reader)
		_, tid, hash, _ := keycard.NewRefreshToken(rand.Reader)
		parent := &keycard.Session{ID: sid, UserID: u.ID, CreatedAt: t0, LastUsedAt: t0, IdleTimeout: keycard.DefaultIdleTimeout, ExpiresAt: t0.Add(keycard.DefaultSessionLifetime)}
		if err := s.Sessions.CreateSession(ctx, parent, &keycard.RefreshToken{ID: tid, SecretHash: hash, CreatedAt: t0}, nil); err != nil {
			b.Error(err)
			return
		}
		now := t0
		for pb.Next() {
			now = now.Add(time.Millisecond)
			_, cid, chash, _ := keycard.NewOpaqueToken(rand.Reader)
			code := &keycard.AuthCode{ID: cid, SecretHash: chash, ClientID: c.ID, UserID: u.ID, SessionID: parent.ID,
				RedirectURI: "https://app.example/cb", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
				Scope: "openid offline_access", Nonce: "n", AuthTime: t0, AMR: []string{"pwd"},
				CreatedAt: now, ExpiresAt: now.Add(keycard.AuthCodeLifetime)}
			if err := s.Grants.CreateAuthCode(ctx, code); err != nil {
				b.Error(err)
				return
			}
			gid, _ := keycard.NewID(rand.Reader)
			_, rid, rhash, _ := keycard.NewRefreshToken(rand.Reader)
			out, err := s.Grants.Redeem(ctx, keycard.RedeemRequest{
				Kind: keycard.GrantKindAuthCode, ID: cid, At: now,
				Session: &keycard.Session{ID: gid, UserID: u.ID, ParentID: parent.ID, ClientID: c.ID, Scope: code.Scope,
					CreatedAt: now, AuthTime: t0, AMR: code.AMR, LastUsedAt: now, IdleTimeout: keycard.DefaultIdleTimeout, ExpiresAt: parent.ExpiresAt},
				First: &keycard.RefreshToken{ID: rid, SecretHash: rhash, CreatedAt: now},
			})
			if err != nil || out != keycard.Redeemed {
				b.Errorf("redeem: %v, %v", out, err)
				return
			}
		}
	})
}

// BenchSessionWithUser compares SessionStore.SessionWithUser with what it
// replaced at the authorization endpoint, Session and then UserByID,
// alternating the two one call each; it reports the CPU time of this
// process (getrusage: the store's side, and SQLite's, which runs in it)
// and the wall time per call of each as metrics.
func BenchSessionWithUser(b *testing.B, s keycard.Stores) {
	ctx := context.Background()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	u := &keycard.User{ID: "u", Username: "u", NormalizedUsername: "u", PasswordHash: "h", Roles: []string{"user"}, Email: "u@example.com",
		CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0}
	if err := s.Users.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	var ids []string
	for range 64 {
		sid, _ := keycard.NewID(rand.Reader)
		_, tid, hash, _ := keycard.NewRefreshToken(rand.Reader)
		sess := &keycard.Session{ID: sid, UserID: u.ID, CreatedAt: t0, LastUsedAt: t0, AMR: []string{"pwd"},
			IdleTimeout: keycard.DefaultIdleTimeout, ExpiresAt: t0.Add(keycard.DefaultSessionLifetime)}
		if err := s.Sessions.CreateSession(ctx, sess, &keycard.RefreshToken{ID: tid, SecretHash: hash, CreatedAt: t0}, nil); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, sid)
	}
	ways := []func(id string) error{
		func(id string) error {
			_, _, err := s.Sessions.SessionWithUser(ctx, id)
			return err
		},
		func(id string) error {
			sess, err := s.Sessions.Session(ctx, id)
			if err != nil {
				return err
			}
			_, err = s.Users.UserByID(ctx, sess.UserID)
			return err
		},
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var used, wall [2]time.Duration
	var n [2]int
	i := 0
	for b.Loop() {
		w := i % 2
		id := ids[(i/2)%len(ids)]
		i++
		c, t := cpu(), time.Now()
		if err := ways[w](id); err != nil {
			b.Fatal(err)
		}
		wall[w] += time.Since(t)
		used[w] += cpu() - c
		n[w]++
	}
	for w, name := range []string{"joined", "two-reads"} {
		if n[w] > 0 {
			b.ReportMetric(float64(used[w].Nanoseconds())/1e3/float64(n[w]), name+"-cpu-us/op")
			b.ReportMetric(float64(wall[w].Nanoseconds())/1e3/float64(n[w]), name+"-wall-us/op")
		}
	}
}
