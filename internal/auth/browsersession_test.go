package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
)

// TestBrowserSessionValidity checks what BrowserSession — the single
// sign-on session the authorization endpoint, its consent form and the
// end-session endpoint go by — accepts: a sign-in that is active and
// whose user is enabled, and nothing else. Each refusal is a check of
// its own: a grant session's id (a sign-in's child, not a sign-in), a
// revoked session, one idle for longer than its idle timeout, one past its
// absolute end, a disabled user's (its session left unrevoked, as no
// store path leaves it, so that only the user's flag can refuse it), a
// deleted user's, an unknown id.
func TestBrowserSessionValidity(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	stores := f.db.Stores()
	f.user(t, "alice")
	f.user(t, "bob")

	// signIn returns a new sign-in of name's, as the pages make it.
	signIn := func(t *testing.T, name string) *keycard.Session {
		t.Helper()
		tok, err := f.svc.Login(ctx, name, "correct horse battery", Agent{UserAgent: "browser"})
		if err != nil {
			t.Fatal(err)
		}
		sess, err := stores.Sessions.Session(ctx, tok.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		return sess
	}
	refused := func(t *testing.T, what, id string) {
		t.Helper()
		b, err := f.svc.BrowserSession(ctx, id)
		if keycard.ErrorCode(err) != keycard.ENOTFOUND {
			t.Errorf("BrowserSession(%s) = %+v, %v; want ENOTFOUND", what, b, err)
		}
	}

	alice := signIn(t, "alice")
	b, err := f.svc.BrowserSession(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b.Session.ID != alice.ID || b.User.ID != alice.UserID || b.User.Username != "alice" {
		t.Errorf("BrowserSession = session %s of %s (%s), want %s of %s", b.Session.ID, b.User.ID, b.User.Username, alice.ID, alice.UserID)
	}
	bob := signIn(t, "bob")
	if b, err := f.svc.BrowserSession(ctx, bob.ID); err != nil || b.User.ID != bob.UserID || b.User.Username != "bob" {
		t.Errorf("BrowserSession(bob's) = %+v, %v; want bob's session and user", b, err)
	}

	t.Run("grant session", func(t *testing.T) {
		now := f.clock.Now()
		grant := &keycard.Session{ID: newID(t), UserID: alice.UserID, ParentID: alice.ID, ClientID: "app", Scope: "openid",
			CreatedAt: now, LastUsedAt: now, IdleTimeout: time.Hour, ExpiresAt: now.Add(time.Hour)}
		if err := stores.Sessions.CreateSession(ctx, grant, nil, nil); err != nil {
			t.Fatal(err)
		}
		refused(t, "a grant session", grant.ID)
	})
	t.Run("revoked", func(t *testing.T) {
		s := signIn(t, "alice")
		if _, err := stores.Sessions.RevokeSession(ctx, s.ID, f.clock.Now(), keycard.RevokeLogout); err != nil {
			t.Fatal(err)
		}
		refused(t, "a revoked session", s.ID)
	})
	t.Run("idle", func(t *testing.T) {
		s := signIn(t, "alice")
		if s.IdleTimeout >= s.ExpiresAt.Sub(s.LastUsedAt) {
			t.Fatalf("idle timeout %v not shorter than the session's lifetime", s.IdleTimeout)
		}
		f.clock.Advance(s.IdleExpiresAt().Sub(f.clock.Now()) - time.Second)
		if _, err := f.svc.BrowserSession(ctx, s.ID); err != nil {
			t.Fatalf("a second before its idle timeout: %v", err)
		}
		f.clock.Advance(time.Second)
		refused(t, "a session idle for its idle timeout", s.ID)
	})
	t.Run("expired", func(t *testing.T) {
		// Used recently enough, but past its absolute end: stored as
		// such, since the service never makes an idle timeout longer
		// than the lifetime.
		now := f.clock.Now()
		s := &keycard.Session{ID: newID(t), UserID: alice.UserID, CreatedAt: now.Add(-time.Hour), LastUsedAt: now,
			IdleTimeout: 24 * time.Hour, ExpiresAt: now.Add(time.Minute)}
		if err := stores.Sessions.CreateSession(ctx, s, &keycard.RefreshToken{ID: newID(t), SecretHash: []byte("h"), CreatedAt: now}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.BrowserSession(ctx, s.ID); err != nil {
			t.Fatalf("before its end: %v", err)
		}
		f.clock.Advance(time.Minute)
		refused(t, "a session at its absolute end", s.ID)
	})
	t.Run("disabled user", func(t *testing.T) {
		s := signIn(t, "bob")
		raw, err := sql.Open("sqlite", f.db.Path()+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.ExecContext(ctx, `UPDATE users SET disabled = 1 WHERE id = ?`, s.UserID); err != nil {
			t.Fatal(err)
		}
		if got, err := stores.Sessions.Session(ctx, s.ID); err != nil || got.Revoked() {
			t.Fatalf("bob's session after the direct update: %+v, %v; want it unrevoked", got, err)
		}
		refused(t, "a disabled user's session", s.ID)
	})
	t.Run("deleted user", func(t *testing.T) {
		s := signIn(t, "alice")
		if _, err := stores.Users.DeleteUser(ctx, s.UserID, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
		refused(t, "a deleted user's session", s.ID)
	})
	refused(t, "an unknown id", newID(t))
	refused(t, "an empty id", "")
}

// newID returns a new random id.
func newID(t *testing.T) string {
	t.Helper()
	id, err := keycard.NewID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
