// Package authtest sets up the auth server's parts for the tests of other
// packages: a fresh SQLite database, a master key, and a first signing
// key, the way `keycard serve` does, so that a test can build an
// auth.Service (and an httpapi.Server on it) in a few lines.
package authtest

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/password"
	"github.com/keycard-auth/keycard/internal/sqlite"
	"github.com/keycard-auth/keycard/jose"
)

// Env is what an auth.Service is built on.
type Env struct {
	DB     *sqlite.DB
	Stores keycard.Stores
	Sealer *auth.Sealer
	Keys   *auth.KeyManager
	Now    func() time.Time
}

// New opens a fresh SQLite database in a temporary directory (closed when
// the test ends), makes a master key and the first ES256 signing key. now
// is the clock of the database and the keys; nil means time.Now.
func New(t testing.TB, now func() time.Time) *Env {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keycard.db"), sqlite.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	master, err := auth.GenerateMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := auth.ParseMasterKey([]byte(master))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := auth.NewSealer(mk)
	if err != nil {
		t.Fatal(err)
	}
	stores := db.Stores()
	km, err := auth.NewKeyManager(stores.Keys, sealer, auth.KeyOptions{Algorithm: jose.ES256, RetainFor: auth.DefaultAccessTTL + auth.DefaultLeeway}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	return &Env{DB: db, Stores: stores, Sealer: sealer, Keys: km, Now: now}
}

// FastHasher returns an argon2id hasher with the smallest parameters, to
// keep tests quick; the hashes are still argon2id.
func FastHasher() *password.Hasher {
	return &password.Hasher{Params: password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}}
}

// Deps returns the dependencies of an auth.Service over e, with
// FastHasher and e's clock.
func (e *Env) Deps() auth.Deps {
	return auth.Deps{Stores: e.Stores, Keys: e.Keys, Sealer: e.Sealer, Hasher: FastHasher(), Now: e.Now}
}

// SignInWithAMR makes a session of the user with the authentication
// methods amr (RFC 8176: ["pwd","otp","mfa"] for a second factor, …), as
// a sign-in by those methods would, writing it to the store directly, and
// returns its refresh token: the tokens a Service mints from it (Refresh)
// say how the user signed in (amr, acr). The session began at now and
// lasts an hour.
func (e *Env) SignInWithAMR(t testing.TB, userID string, amr []string, now time.Time) string {
	t.Helper()
	sid, err := keycard.NewID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	refresh, rid, hash, err := keycard.NewRefreshToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sess := &keycard.Session{ID: sid, UserID: userID, CreatedAt: now, LastUsedAt: now, AuthTime: now, AMR: amr,
		IdleTimeout: time.Hour, ExpiresAt: now.Add(time.Hour)}
	if err := e.Stores.Sessions.CreateSession(context.Background(), sess, &keycard.RefreshToken{ID: rid, SecretHash: hash, CreatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	return refresh
}
