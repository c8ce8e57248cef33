package postgres_test

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/postgres"
	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
)

// TestMigrateOIDC upgrades a database written at version 1, before OpenID
// Connect, with a service client and a live session: the client reads back
// as a service client, the session as a sign-in, and both keep working.
func TestMigrateOIDC(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	v1, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	_, tid, hash, err := keycard.NewRefreshToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
		)`,
		string(v1),
		`INSERT INTO schema_migrations (version, name) VALUES (1, '0001_init.sql')`,
	} {
		if _, err := conn.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (id, username, username_normalized, password_hash, created_at, updated_at, password_changed_at)
			VALUES ('u', 'u', 'u', 'h', $1, $1, $1)`, []any{t0}},
		{`INSERT INTO sessions (id, user_id, created_at, last_used_at, idle_timeout, expires_at)
			VALUES ('s', 'u', $1, $1, 3600000000, $2)`, []any{t0, t0.Add(time.Hour)}},
		{`INSERT INTO refresh_tokens (id, session_id, secret_hash, created_at) VALUES ($1, 's', $2, $3)`, []any{tid, hash, t0}},
		{`INSERT INTO clients (id, name, secret_hash, scopes, created_at, updated_at) VALUES ('gw', 'gateway', '\x01', '{feed:read}', $1, $1)`, []any{t0}},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	conn.Close(ctx)

	db, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("Open (migrating): %v", err)
	}
	defer db.Close()
	s := db.Stores()
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
	c.OAuth.GrantTypes = []string{keycard.GrantClientCredentials, keycard.GrantAuthorizationCode}
	c.OAuth.RedirectURIs = []string{"https://gw.example/cb"}
	if _, err := s.Clients.UpdateClient(ctx, c); err != nil {
		t.Errorf("UpdateClient after migrating: %v", err)
	}
}
