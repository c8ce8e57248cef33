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
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
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

	// revocationTTL is the lifetime of feed entries (see
	// Options.RevocationTTL).
	revocationTTL time.Duration

	path  string
	write *sql.DB // one connection: all write transactions
	read  *sql.DB // a pool of query-only connections (readConn)

	// Prepared statements, by query text. SQLite compiles a statement on
	// every call otherwise, which costs more than running it.
	writeStmts, readStmts stmtCache
	// raw holds the hottest writes' statements on the write connection's
	// driver connection.
	raw rawStmts

	// batches commits the writes of the hot paths in batches (group
	// commit).
	batches *batcher
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
	// RevocationTTL is how long a revocation feed entry can match a valid
	// token: the access-token lifetime plus the verification leeway. Each
	// entry's ExpiresAt is its At plus RevocationTTL unless the caller of
	// AddRevocation sets one. 0 means keycard.DefaultRevocationTTL.
	RevocationTTL time.Duration
}

// Open opens the database file at path, creating it with mode 0600 if it
// does not exist, and applies any pending migrations in one transaction.
// The file's directory must exist. Open fails if the database was written by a newer Keycard, whose
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
	// Create the file owner-only before SQLite does (with 0644): it holds
	// password hashes and sealed keys. SQLite gives the -wal and -shm files
	// the database file's permissions.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	f.Close()
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
	readConnector, err := newReadConnector(path + "?" + q.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	read := sql.OpenDB(readConnector)
	read.SetMaxOpenConns(readConns)
	read.SetMaxIdleConns(readConns)

	revocationTTL := opt.RevocationTTL
	if revocationTTL <= 0 {
		revocationTTL = keycard.DefaultRevocationTTL
	}
	db := &DB{Now: now, revocationTTL: revocationTTL, path: path, write: write, read: read}
	db.writeStmts.db, db.readStmts.db = write, read
	db.batches = startBatcher(db)
	if err := db.migrateAtOpen(ctx, busy); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// migrateAtOpen is Migrate, tried again for up to busy while SQLite
// answers SQLITE_BUSY. Processes (or DBs of one process) opening a new
// database file at once each switch it to WAL mode on their first write
// connection and then begin a write transaction; SQLite refuses some of
// them at once, without waiting in its busy handler, where waiting could
// deadlock (a connection holding a read lock asking for a write lock
// while another waits for it to let go). Starting again, on a connection
// that holds nothing, is SQLite's own advice.
func (db *DB) migrateAtOpen(ctx context.Context, busy time.Duration) error {
	deadline := time.Now().Add(busy)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		err := db.Migrate(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (or one of its
// extended codes).
func isBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// Close closes the database. Stores made from it must not be used after.
func (db *DB) Close() error {
	db.batches.close()
	return errors.Join(db.closeRaw(context.Background()), db.readStmts.close(), db.writeStmts.close(), db.read.Close(), db.write.Close())
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
		Clients:     &ClientStore{db: db},
		Grants:      &GrantStore{db: db},
		Logouts:     &LogoutStore{db: db},
		Webhooks:    &WebhookStore{db: db},
		Emails:      &EmailStore{db: db},
		Passkeys:    &PasskeyStore{db: db},
		MFA:         &MFAStore{db: db},
		Federation:  &FederationStore{db: db},
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
	return db.update(ctx, func(tx txn) error {
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
			// Not through the statement cache: a migration has many statements.
			if _, err := tx.Tx.ExecContext(ctx, m.sql); err != nil {
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
func (db *DB) update(ctx context.Context, fn func(tx txn) error) error {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.Close()
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	t := txn{Tx: tx, conn: conn, stmts: &db.writeStmts, revocationTTL: db.revocationTTL, writes: new(int)}
	if ctx.Done() == nil {
		// Only a transaction that no context can end uses the driver
		// directly: database/sql rolls back the transaction of a context
		// that ends, and a statement on the driver after that would run
		// on its own, outside it.
		t.raw = &db.raw
	}
	err = fn(t)
	if err == nil {
		if err = tx.Commit(); err != nil {
			err = fmt.Errorf("sqlite: commit: %w", err)
		}
	} else {
		tx.Rollback()
	}
	conn.Close() // back to the pool, for preparePending
	if ctx.Err() == nil {
		db.writeStmts.preparePending(ctx)
	}
	return err
}

// queryer is what the read helpers need from reader and txn.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// stmtCache keeps prepared statements of one *sql.DB by query text.
// database/sql prepares each again on every connection it runs on.
type stmtCache struct {
	db      *sql.DB
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	pending map[string]bool // seen inside a transaction, not yet prepared
}

// get returns the prepared statement for query, preparing it first if
// needed. It must not be called while holding a connection of c.db.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := c.lookup(query); ok {
		return s, nil
	}
	s, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[query]; ok {
		s.Close()
		return old, nil
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = s
	return s, nil
}

// lookup returns the prepared statement for query if there is one, and
// otherwise remembers the query for preparePending.
func (c *stmtCache) lookup(query string) (*sql.Stmt, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[query]
	if !ok {
		if c.pending == nil {
			c.pending = map[string]bool{}
		}
		c.pending[query] = true
	}
	return s, ok
}

// preparePending prepares the queries lookup missed. The write pool has a
// single connection, which a transaction holds, so its statements are
// prepared between transactions.
func (c *stmtCache) preparePending(ctx context.Context) {
	c.mu.Lock()
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for q := range pending {
		c.get(ctx, q) // on failure, the query keeps running unprepared
	}
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, s := range c.m {
		errs = append(errs, s.Close())
	}
	c.m = nil
	return errors.Join(errs...)
}

// txn is a write transaction that uses prepared statements where it can.
type txn struct {
	*sql.Tx
	// conn is the write connection Tx runs on, and raw its driver
	// statements (txn.rawExec, txn.rawQueryRow); nil when the transaction
	// can be ended by its context.
	conn  *sql.Conn
	raw   *rawStmts
	stmts *stmtCache
	// revocationTTL is the lifetime of the feed entries appended in the
	// transaction (see Options.RevocationTTL).
	revocationTTL time.Duration
	// writes counts the statements run that may have changed the database:
	// every Exec, and every query that is not a SELECT (RETURNING). The
	// batcher reads it to tell a write refused before it changed anything
	// from one that must be undone.
	writes *int
}

// mayWrite counts a query that is not a plain SELECT in t.writes.
func (t txn) mayWrite(query string) {
	if !strings.HasPrefix(strings.TrimLeft(query, " \t\r\n"), "SELECT") {
		*t.writes++
	}
}

func (t txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	*t.writes++
	if s, ok := t.stmts.lookup(query); ok {
		return t.Tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	t.mayWrite(query)
	if s, ok := t.stmts.lookup(query); ok {
		return t.Tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	t.mayWrite(query)
	if s, ok := t.stmts.lookup(query); ok {
		return t.Tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}

// reader runs queries on the read pool with prepared statements.
type reader struct{ stmts *stmtCache }

func (db *DB) reader() reader { return reader{&db.readStmts} }

func (r reader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := r.stmts.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (r reader) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := r.stmts.get(ctx, query)
	if err != nil {
		return r.stmts.db.QueryRowContext(ctx, query, args...) // reports the same error
	}
	return s.QueryRowContext(ctx, args...)
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

// nullList returns ss as a JSON array, or NULL when it is empty: for
// columns such as amr that most rows leave empty, so that reading them
// decodes nothing.
func nullList(ss []string) (any, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(ss)
	return string(b), err
}

// decodeList is the inverse of nullList.
func decodeList(v sql.NullString, dst *[]string) error {
	if !v.Valid {
		*dst = nil
		return nil
	}
	return json.Unmarshal([]byte(v.String), dst)
}

// Extended result codes of constraint violations.
const (
	constraintUnique     = sqlite3.SQLITE_CONSTRAINT_UNIQUE
	constraintPrimaryKey = sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	constraintForeignKey = sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
)

// constraintCode returns the extended result code of an SQLite constraint
// violation (constraintUnique, …), or 0 if err is not one.
func constraintCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
		return e.Code()
	}
	return 0
}

// isForeignKey reports whether err is a foreign key violation.
func isForeignKey(err error) bool { return constraintCode(err) == constraintForeignKey }
