package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// TestMigrateOIDC upgrades a database written at version 3, before OpenID
// Connect, with a service client and a live session: the client reads back
// as a service client, the session as a sign-in, and both keep working.
func TestMigrateOIDC(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keycard.db")
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	_, tid, hash, err := keycard.NewRefreshToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{`CREATE TABLE schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`}
	for _, m := range ms[:3] {
		stmts = append(stmts, m.sql, fmt.Sprintf(`INSERT INTO schema_migrations VALUES (%d, '%s', 0)`, m.version, m.name))
	}
	stmts = append(stmts,
		`INSERT INTO users (id, username, username_normalized, password_hash, created_at, updated_at, password_changed_at)
			VALUES ('u', 'u', 'u', 'h', 0, 0, 0)`,
		fmt.Sprintf(`INSERT INTO sessions (id, user_id, created_at, last_used_at, idle_timeout, expires_at)
			VALUES ('s', 'u', %d, %d, 3600000000, %d)`, t0.UnixMicro(), t0.UnixMicro(), t0.Add(time.Hour).UnixMicro()),
		`INSERT INTO clients (id, name, secret_hash, scopes, created_at, updated_at) VALUES ('gw', 'gateway', X'01', '["feed:read"]', 0, 0)`,
	)
	for _, q := range stmts {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := raw.ExecContext(ctx, `INSERT INTO refresh_tokens (id, session_id, secret_hash, created_at) VALUES (?, 's', ?, 0)`, tid, hash); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	s := openTest(t, path).Stores()
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
	_, nid, nhash, _ := keycard.NewRefreshToken(rand.Reader)
	res, err := s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
		TokenID: tid, SecretHash: hash, Now: t0.Add(time.Minute), Grace: time.Second,
		Successor: keycard.RefreshToken{ID: nid, SecretHash: nhash}, WithUser: true,
	})
	if err != nil || res.Outcome != keycard.Rotated || res.User == nil {
		t.Errorf("rotation after migrating = %+v, %v; want Rotated with the user", res, err)
	}
	// A service client of before can be given OAuth settings.
	c.OAuth.GrantTypes = []string{keycard.GrantClientCredentials, keycard.GrantAuthorizationCode}
	c.OAuth.RedirectURIs = []string{"https://gw.example/cb"}
	if _, err := s.Clients.UpdateClient(ctx, c); err != nil {
		t.Errorf("UpdateClient after migrating: %v", err)
	}
}
