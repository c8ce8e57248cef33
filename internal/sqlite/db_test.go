package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

func openTest(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPragmas(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "keycard.db"))
	ctx := context.Background()
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
		{"synchronous", "1"}, // NORMAL
	}
	for _, tt := range tests {
		for name, pool := range map[string]*sql.DB{"write": db.write, "read": db.read} {
			if tt.pragma == "synchronous" && name == "read" {
				continue // readers do not commit
			}
			var got string
			if err := pool.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatalf("%s PRAGMA %s: %v", name, tt.pragma, err)
			}
			if got != tt.want {
				t.Errorf("%s PRAGMA %s = %q, want %q", name, tt.pragma, got, tt.want)
			}
		}
	}
	if _, err := db.read.ExecContext(ctx, `DELETE FROM users`); err == nil {
		t.Errorf("write through the read pool: got nil error, want query_only refusal")
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keycard.db")
	db := openTest(t, path)
	var n, version int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &version); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion() || version != SchemaVersion() || version < 1 {
		t.Errorf("schema_migrations: %d rows up to version %d, want %d", n, version, SchemaVersion())
	}
	// Migrating again, and opening again, applies nothing twice.
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	db2 := openTest(t, path)
	if err := db2.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion() {
		t.Errorf("schema_migrations after reopening: %d rows, want %d", n, SchemaVersion())
	}

	// A database from a newer Keycard is refused.
	if _, err := db.write.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, 'future.sql', 0)`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, path, Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open(newer schema): got %v, want a newer-schema error", err)
	}
}

func TestMigrationsConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keycard.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			db, err := Open(context.Background(), path, Options{})
			if err == nil {
				err = db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Open %d: %v", i, err)
		}
	}
}

func TestOpenBadPath(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
	}{
		{"empty", ""},
		{"memory", ":memory:"},
		{"uri", "file:" + filepath.Join(dir, "x.db")},
		{"query", filepath.Join(dir, "x.db?mode=ro")},
		{"missing directory", filepath.Join(dir, "missing", "x.db")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if db, err := Open(context.Background(), tt.path, Options{}); err == nil {
				db.Close()
				t.Errorf("Open(%q): got nil error, want one", tt.path)
			}
		})
	}
}

// TestSharedFile runs two DB handles on one file, as the server and the
// keycard CLI do, writing at the same time.
func TestSharedFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keycard.db")
	server, cli := openTest(t, path), openTest(t, path)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const perSide = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*perSide)
	for side, db := range []*DB{server, cli} {
		wg.Go(func() {
			users := db.Stores().Users
			for i := range perSide {
				name := fmt.Sprintf("side%d-user%02d", side, i)
				errs <- users.CreateUser(ctx, &keycard.User{ID: name, Username: name, NormalizedUsername: name,
					PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("CreateUser from two handles: %v", err)
		}
	}
	for _, db := range []*DB{server, cli} {
		users, err := db.Stores().Users.ListUsers(ctx, keycard.UserFilter{})
		if err != nil || len(users) != 2*perSide {
			t.Errorf("ListUsers: %d users, %v; want %d", len(users), err, 2*perSide)
		}
	}
}

func TestFilePermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keycard.db")
	openTest(t, path)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
			t.Errorf("mode of %s = %v, want %v", filepath.Base(p), got, want)
		}
	}
}

// TestRefreshTokenSessionIndex checks the one index on refresh_tokens
// (session_id) of migration 0014: it refuses a second live token of a
// session, takes any number of rotated ones, and is what lookups by
// session use (revoking a session, the foreign key's cascade).
func TestRefreshTokenSessionIndex(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "keycard.db"))
	ctx := context.Background()
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	s := db.Stores()
	u := &keycard.User{ID: "u", Username: "u", NormalizedUsername: "u", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0}
	if err := s.Users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	sess := &keycard.Session{ID: "s", UserID: u.ID, CreatedAt: t0, LastUsedAt: t0,
		IdleTimeout: keycard.DefaultIdleTimeout, ExpiresAt: t0.Add(keycard.DefaultSessionLifetime)}
	if err := s.Sessions.CreateSession(ctx, sess, &keycard.RefreshToken{ID: "t1", SecretHash: []byte("h1"), CreatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	insert := func(id string, rotated any) error {
		_, err := db.write.ExecContext(ctx, `INSERT INTO refresh_tokens (id, session_id, secret_hash, created_at, rotated_at) VALUES (?, 's', x'00', 0, ?)`, id, rotated)
		return err
	}
	if err := insert("t2", nil); !isConstraint(err) {
		t.Errorf("a second live token of a session: got %v, want a constraint violation", err)
	}
	for _, id := range []string{"r1", "r2"} {
		if err := insert(id, 1); err != nil {
			t.Errorf("rotated token %s: %v", id, err)
		}
	}
	for _, q := range []string{
		`UPDATE refresh_tokens SET successor_sealed = NULL WHERE session_id = ? AND successor_sealed IS NOT NULL`,
		`DELETE FROM refresh_tokens WHERE session_id = ?`, // what the cascade runs
	} {
		rows, err := db.read.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, "s")
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if got := strings.Join(plan, "; "); !strings.Contains(got, "USING INDEX refresh_tokens_session_live (session_id=?)") {
			t.Errorf("plan of %q: %s; want it to use refresh_tokens_session_live", q, got)
		}
	}
	if _, err := s.Sessions.RevokeSession(ctx, sess.ID, t0.Add(time.Minute), keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.ExecContext(ctx, `DELETE FROM sessions WHERE id = 's'`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM refresh_tokens`).Scan(&n); err != nil || n != 0 {
		t.Errorf("refresh tokens after deleting their session: %d, %v; want 0", n, err)
	}
}
