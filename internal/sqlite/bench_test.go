package sqlite_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/sqlite"
	"github.com/keycard-auth/keycard/internal/storetest"
)

// BenchmarkRotateRefreshToken measures store-level refresh rotations, each
// on its own session's live token, from parallel goroutines: the database
// share of a refresh grant.
func BenchmarkRotateRefreshToken(b *testing.B) {
	benchRotate(b, keycard.RotateRequest{})
}

// BenchmarkRotateKeyGeneration measures what reading the key generation
// with the rotation costs: rotations as a refresh grant asks for them,
// with the user, without and with the key generation.
func BenchmarkRotateKeyGeneration(b *testing.B) {
	b.Run("user", func(b *testing.B) { benchRotate(b, keycard.RotateRequest{WithUser: true}) })
	b.Run("user+keygen", func(b *testing.B) { benchRotate(b, keycard.RotateRequest{WithUser: true, WithKeyGeneration: true}) })
}

// benchRotate runs rotations with the With… options of opts on a fresh
// database.
func benchRotate(b *testing.B, opts keycard.RotateRequest) {
	ctx := context.Background()
	db, err := openB(b)
	if err != nil {
		b.Fatal(err)
	}
	s := db.Stores()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	u := &keycard.User{ID: "u", Username: "u", NormalizedUsername: "u", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0}
	if err := s.Users.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	// Creating and migrating the database is not measured.
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		sid, _ := keycard.NewID(rand.Reader)
		_, tid, hash, _ := keycard.NewRefreshToken(rand.Reader)
		sess := &keycard.Session{ID: sid, UserID: u.ID, CreatedAt: t0, LastUsedAt: t0, IdleTimeout: keycard.DefaultIdleTimeout, ExpiresAt: t0.Add(keycard.DefaultSessionLifetime)}
		if err := s.Sessions.CreateSession(ctx, sess, &keycard.RefreshToken{ID: tid, SecretHash: hash, CreatedAt: t0}, nil); err != nil {
			b.Error(err)
			return
		}
		now := t0
		for pb.Next() {
			_, nid, nhash, _ := keycard.NewRefreshToken(rand.Reader)
			now = now.Add(time.Millisecond)
			res, err := s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
				TokenID: tid, SecretHash: hash, Now: now, Grace: keycard.DefaultRotationGrace,
				Successor:       keycard.RefreshToken{ID: nid, SecretHash: nhash},
				SuccessorSealed: make([]byte, 120),
				WithUser:        opts.WithUser, WithKeyGeneration: opts.WithKeyGeneration,
			})
			if err != nil || res.Outcome != keycard.Rotated {
				b.Errorf("rotate: %v, %v", res, err)
				return
			}
			tid, hash = nid, nhash
		}
	})
}

func openB(b *testing.B) (*sqlite.DB, error) {
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "keycard.db"), sqlite.Options{})
	if err == nil {
		b.Cleanup(func() { db.Close() })
	}
	return db, err
}

// BenchmarkAuthCodeFlow measures the store's share of an authorization
// code flow from parallel goroutines, each signed in with a browser
// session: CreateAuthCode, then Redeem into a grant session with a first
// refresh token.
func BenchmarkAuthCodeFlow(b *testing.B) {
	db, err := openB(b)
	if err != nil {
		b.Fatal(err)
	}
	storetest.BenchAuthCodeFlow(b, db.Stores())
}

// BenchmarkSessionWithUser: the authorization endpoint's one read of the
// browser session and its user against the two it replaced.
func BenchmarkSessionWithUser(b *testing.B) {
	db, err := openB(b)
	if err != nil {
		b.Fatal(err)
	}
	storetest.BenchSessionWithUser(b, db.Stores())
}
