package postgres

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
)

// TestRedeemSealedFast checks that the one-statement redemption takes the
// common case (everything written: the use, the grant session, its
// token, the audit row) and declines every other case having written
// nothing, so that Redeem's general path decides it: a code used before,
// a parent that is unknown, revoked, idle, expired, another user's or a
// grant session, a consent missing or younger than the code, an audit
// event the store refuses. Removing any of its conditions fails it.
func TestRedeemSealedFast(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, pgtest.NewDatabase(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := db.Stores()
	grants := &GrantStore{db: db}
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, name := range []string{"u", "v"} {
		u := &keycard.User{ID: name, Username: name, NormalizedUsername: name, PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0}
		if err := st.Users.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Clients.CreateClient(ctx, &keycard.Client{ID: "app", Name: "app", SecretHash: []byte("h"), CreatedAt: t0,
		OAuth: keycard.OAuthSettings{RedirectURIs: []string{"https://app.example/cb"}, GrantTypes: []string{keycard.GrantAuthorizationCode}}}); err != nil {
		t.Fatal(err)
	}
	newID := func() string {
		id, err := keycard.NewID(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// signIn stores a sign-in of user, idle after an hour, ended after a
	// day.
	signIn := func(user string) *keycard.Session {
		s := &keycard.Session{ID: newID(), UserID: user, CreatedAt: t0, LastUsedAt: t0, IdleTimeout: time.Hour, ExpiresAt: t0.Add(24 * time.Hour)}
		if err := st.Sessions.CreateSession(ctx, s, &keycard.RefreshToken{ID: newID(), SecretHash: []byte("h"), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	at := t0.Add(10 * time.Second)
	// request redeems a new code into a grant session of user under
	// parent.
	request := func(parent, user string, consent bool) keycard.RedeemRequest {
		return keycard.RedeemRequest{
			Kind: keycard.GrantKindSealedCode, ID: newID(), At: at, ExpiresAt: t0.Add(keycard.AuthCodeLifetime), NeedsConsent: consent,
			Session: &keycard.Session{ID: newID(), UserID: user, ParentID: parent, ClientID: "app", Scope: "openid", CreatedAt: at, LastUsedAt: at,
				AuthTime: t0, AMR: []string{"pwd"}, IdleTimeout: time.Hour, ExpiresAt: at.Add(time.Hour)},
			First: &keycard.RefreshToken{ID: newID(), SecretHash: []byte("first"), CreatedAt: at},
			Audit: &keycard.AuditEvent{Time: at, Type: "grant.issued", Actor: user, Subject: user, Detail: []byte(`{"client":"app"}`)},
		}
	}
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := db.pool.QueryRow(ctx, query, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	audits := func() int { return count(`SELECT count(*) FROM audit_events WHERE type = 'grant.issued'`) }
	declines := func(name string, r keycard.RedeemRequest) {
		t.Helper()
		before, uses := audits(), count(`SELECT count(*) FROM used_auth_codes`)
		done, err := grants.redeemSealedFast(ctx, r)
		if done || err != nil {
			t.Fatalf("%s: redeemSealedFast = %v, %v; want false, nil", name, done, err)
		}
		if _, err := st.Sessions.Session(ctx, r.Session.ID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
			t.Errorf("%s: the declined grant session was stored (err %v)", name, err)
		}
		if _, err := st.Sessions.RefreshToken(ctx, r.First.ID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
			t.Errorf("%s: the declined first token was stored (err %v)", name, err)
		}
		if audits() != before || count(`SELECT count(*) FROM used_auth_codes`) != uses {
			t.Errorf("%s: an audit row or a use was written", name)
		}
	}

	parent := signIn("u")
	r := request(parent.ID, "u", false)
	done, err := grants.redeemSealedFast(ctx, r)
	if !done || err != nil {
		t.Fatalf("redeemSealedFast = %v, %v; want true", done, err)
	}
	got, err := st.Sessions.Session(ctx, r.Session.ID)
	if err != nil || got.ParentID != parent.ID || got.UserID != "u" || !got.ExpiresAt.Equal(r.Session.ExpiresAt) || len(got.AMR) != 1 {
		t.Errorf("grant session after redeemSealedFast: %+v, %v", got, err)
	}
	if tok, err := st.Sessions.RefreshToken(ctx, r.First.ID); err != nil || tok.SessionID != r.Session.ID || !tok.Live() {
		t.Errorf("first token after redeemSealedFast: %+v, %v", tok, err)
	}
	if r.First.SessionID != r.Session.ID || r.Audit.ID == 0 || audits() != 1 {
		t.Errorf("after redeemSealedFast: first token's session %q, audit id %d, %d audit rows; want %q, an id, 1", r.First.SessionID, r.Audit.ID, audits(), r.Session.ID)
	}
	if n := count(`SELECT count(*) FROM used_auth_codes WHERE id = $1 AND grant_session_id = $2`, r.ID, r.Session.ID); n != 1 {
		t.Errorf("use of the code: %d rows, want 1", n)
	}

	again := request(parent.ID, "u", false)
	again.ID = r.ID
	declines("a code used before", again)
	declines("unknown parent", request("nope", "u", false))
	declines("another user's parent", request(signIn("v").ID, "u", false))
	declines("a grant session as the parent", request(r.Session.ID, "u", false))
	revoked := signIn("u")
	if _, err := st.Sessions.RevokeSession(ctx, revoked.ID, t0, keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	declines("revoked parent", request(revoked.ID, "u", false))
	idle := request(signIn("u").ID, "u", false)
	idle.At = t0.Add(time.Hour)
	declines("idle parent", idle)
	ended := signIn("u")
	if _, err := db.pool.Exec(ctx, `UPDATE sessions SET expires_at = $1, idle_timeout = $2 WHERE id = $3`, at, (48 * time.Hour).Microseconds(), ended.ID); err != nil {
		t.Fatal(err)
	}
	declines("parent at its end", request(ended.ID, "u", false))
	declines("no consent", request(parent.ID, "u", true))
	if err := st.Grants.SaveConsent(ctx, &keycard.Consent{UserID: "u", ClientID: "app", Scopes: []string{"openid"}, CreatedAt: at, UpdatedAt: at}); err != nil {
		t.Fatal(err)
	}
	declines("a consent younger than the code", request(parent.ID, "u", true))
	bad := request(parent.ID, "u", false)
	bad.Audit.Detail = []byte(`[]`)
	declines("an audit detail that is not an object", bad)

	if _, err := db.pool.Exec(ctx, `UPDATE consents SET created_at = $1`, t0); err != nil {
		t.Fatal(err)
	}
	withConsent := request(parent.ID, "u", true)
	if done, err := grants.redeemSealedFast(ctx, withConsent); !done || err != nil {
		t.Errorf("redeemSealedFast with a consent as old as the code = %v, %v; want true", done, err)
	}
	noToken := request(parent.ID, "u", false)
	noToken.First, noToken.Audit = nil, nil
	if done, err := grants.redeemSealedFast(ctx, noToken); !done || err != nil {
		t.Errorf("redeemSealedFast without a refresh token or audit event = %v, %v; want true", done, err)
	}
	if _, err := st.Sessions.Session(ctx, noToken.Session.ID); err != nil {
		t.Errorf("grant session without a token: %v", err)
	}
}
