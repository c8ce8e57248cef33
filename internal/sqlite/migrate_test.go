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
	"github.com/keycard-auth/keycard/internal/storetest"
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

	storetest.CheckOIDCUpgrade(t, openTest(t, path).Stores(), t0.Add(time.Minute), tid, hash)
}
