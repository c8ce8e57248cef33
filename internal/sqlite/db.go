// Package sqlite implements Keycard's stores on an embedded SQLite database
// with the pure-Go driver modernc.org/sqlite, so no C toolchain is needed.
//
// The database runs in WAL mode with a busy timeout and foreign keys on, and
// every write is one IMMEDIATE transaction, so several processes (a running
// server and the keycard CLI) can share one database file safely. Within a
// process, writes go through a single connection and reads through a pool,
// so writers queue in Go instead of spinning on SQLite's busy handler.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/keycard-auth/keycard"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DefaultBusyTimeout is how long a write waits for another process's write
// transaction to finish before failing.
const DefaultBusyTimeout = 5 * time.Second

// DB is an open Keycard database. It is safe for concurrent use.
type DB struct {
	// Now is the clock used to record when migrations were applied; the
	// stores themselves take every time from their callers.
	Now func() time.Time

	path  string
	write *sql.DB // one connection: all write transactions
	read  *sql.DB // a pool of query-only connections
}

// Options tune Open. The zero value is the default.
type Options struct {
	// BusyTimeout is how long to wait on a lock held by another process;
	// 0 means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// ReadConns is the size of the read pool; 0 means 8.
	ReadConns int
	// Now is the clock for DB.Now; nil means time.Now.
	Now func() time.Time
}

// Open opens (creating if needed) the database file at path, and applies
// any pending migrations in one transaction. The file's directory must
// exist. Open fails if the database was written by a newer Keycard, whose
// schema this one does not know.
func Open(ctx context.Context, path string, opt Options) (*DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: unsupported database path %q", path)
	}
	busy := opt.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	readConns := opt.ReadConns
	if readConns <= 0 {
		readConns = 8
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")

	write, err := sql.Open("sqlite", path+"?"+q.Encode()+"&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	q.Add("_pragma", "query_only(1)")
	read, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	read.SetMaxOpenConns(readConns)
	read.SetMaxIdleConns(readConns)

	db := &DB{Now: now, path: path, write: write, read: read}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the database. Stores made from it must not be used after.
func (db *DB) Close() error {
	return errors.Join(db.read.Close(), db.write.Close())
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Stores returns the stores on db.
func (db *DB) Stores() keycard.Stores {
	return keycard.Stores{
		Users:       &UserStore{db: db},
		Sessions:    &SessionStore{db: db},
		Keys:        &KeyStore{db: db},
		Revocations: &RevocationStore{db: db},
		Audit:       &AuditStore{db: db},
	}
}

// migration is one numbered file from migrations/.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. File names
// are NNNN_name.sql, numbered from 1 without gaps.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlite: bad migration file name %q", e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlite: migration %s out of sequence, want version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion returns the number of the last migration this package
// knows.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// Migrate applies pending migrations in one transaction; Open calls it. It
// is safe to run from several processes at once: the IMMEDIATE transaction
// serializes them and the later ones find nothing to do.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	return db.update(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at INTEGER NOT NULL
		) STRICT`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if current > len(ms) {
			return fmt.Errorf("sqlite: database schema version %d is newer than this program's %d", current, len(ms))
		}
		for _, m := range ms[current:] {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("sqlite: migration %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, db.Now().UnixMicro()); err != nil {
				return err
			}
		}
		return nil
	})
}

// update runs fn in one write transaction, committing if it returns nil.
func (db *DB) update(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// queryer is what the read helpers need from *sql.DB and *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// micros returns t as microseconds since the Unix epoch.
func micros(t time.Time) int64 { return t.UnixMicro() }

// nullMicros returns t as microseconds, or NULL for the zero time.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of nullMicros.
func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// isConstraint reports whether err is an SQLite constraint violation.
func isConstraint(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// wrap adds the operation to an error that is not already a keycard error.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var kerr *keycard.Error
	if errors.As(err, &kerr) {
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}
