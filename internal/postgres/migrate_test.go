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
	"github.com/keycard-auth/keycard/internal/storetest"
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
	storetest.CheckOIDCUpgrade(t, db.Stores(), t0.Add(time.Minute), tid, hash)
}
