// Package postgres implements Keycard's stores on PostgreSQL with pgx, so
// that several auth server instances can share one database.
//
// Every state change is one transaction at READ COMMITTED. Where two
// instances could race, rows are locked in a fixed order (a session before
// its refresh tokens, sessions by id, the revocation feed's counter last),
// and a transaction that still loses to a deadlock or a serialization
// failure is retried. Appends to the revocation feed are serialized on a
// counter row so that sequence numbers become visible in commit order, and
// announced with NOTIFY on the channel RevocationsChannel.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keycard-auth/keycard"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Defaults of Options.
const (
	// MaxDefaultConns caps the default pool size, 4 × GOMAXPROCS.
	MaxDefaultConns = 32
	// DefaultStatementTimeout is how long one statement may run before the
	// server cancels it.
	DefaultStatementTimeout = 10 * time.Second
)

// migrationLockKey is the pg_advisory_xact_lock key that serializes
// migrations of one database across processes: "keycard" in ASCII.
const migrationLockKey int64 = 0x6b6579636172640

// maxAttempts is how often a transaction is tried when it fails with a
// deadlock or a serialization failure.
const maxAttempts = 3

// Options tune Open. The zero value is the default.
type Options struct {
	// RevocationTTL is how long a revocation feed entry can match a valid
	// token (see keycard.RevocationStore.AddRevocation); 0 means
	// keycard.DefaultRevocationTTL.
	RevocationTTL time.Duration
	// MaxConns is the most connections the pool opens; 0 means 4 ×
	// GOMAXPROCS, at most MaxDefaultConns. A pool_max_conns parameter in
	// the URL wins over both.
	MaxConns int32
	// StatementTimeout is the server-side statement_timeout of every pooled
	// connection, and six times it their idle_in_transaction_session_timeout;
	// 0 means DefaultStatementTimeout. URL parameters of those names win.
	StatementTimeout time.Duration
	// Logger receives the listener's reconnections and the migrations
	// applied; nil discards them. Connection URLs and passwords are never
	// logged.
	Logger *slog.Logger
}

// DB is an open Keycard database on PostgreSQL. It is safe for concurrent
// use.
type DB struct {
	pool          *pgxpool.Pool
	revocationTTL time.Duration
	log           *slog.Logger
}

// Open connects to the database at url (postgres:// or postgresql://, or a
// libpq key=value string), checks that it answers, and applies pending
// migrations (see Migrate).
//
// The pool keeps at most Options.MaxConns connections, closes connections
// idle for 5 minutes and every connection after an hour (with jitter, so
// that they do not all reconnect at once), checks a connection that has
// been idle for over a second before handing it out, and sets
// statement_timeout and idle_in_transaction_session_timeout on each, so that
// a stuck query or client cannot hold locks forever. Errors never contain
// the password.
func Open(ctx context.Context, url string, opt Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors redact the password.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = opt.MaxConns
		if cfg.MaxConns <= 0 {
			cfg.MaxConns = int32(min(4*runtime.GOMAXPROCS(0), MaxDefaultConns))
		}
	}
	if !strings.Contains(url, "pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = 5 * time.Minute
	}
	if !strings.Contains(url, "pool_max_conn_lifetime") {
		cfg.MaxConnLifetime = time.Hour
		cfg.MaxConnLifetimeJitter = 5 * time.Minute
	}
	if !strings.Contains(url, "pool_health_check_period") {
		cfg.HealthCheckPeriod = 30 * time.Second
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	timeout := opt.StatementTimeout
	if timeout <= 0 {
		timeout = DefaultStatementTimeout
	}
	params := cfg.ConnConfig.RuntimeParams
	if _, ok := params["statement_timeout"]; !ok {
		params["statement_timeout"] = strconv.FormatInt(timeout.Milliseconds(), 10)
	}
	if _, ok := params["idle_in_transaction_session_timeout"]; !ok {
		params["idle_in_transaction_session_timeout"] = strconv.FormatInt((6 * timeout).Milliseconds(), 10)
	}
	if _, ok := params["application_name"]; !ok {
		params["application_name"] = "keycard"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	ttl := opt.RevocationTTL
	if ttl <= 0 {
		ttl = keycard.DefaultRevocationTTL
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db := &DB{pool: pool, revocationTTL: ttl, log: log}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Close closes every connection of the pool, waiting for the ones in use to
// be returned. Stores made from db must not be used after. It always
// returns nil; the error result makes DB an io.Closer.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

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
			return nil, fmt.Errorf("postgres: bad migration file name %q", e.Name())
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
			return nil, fmt.Errorf("postgres: migration %s out of sequence, want version %d", m.name, i+1)
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

// Migrate applies pending migrations in one transaction, recording each in
// the table schema_migrations; Open calls it. It is safe to run from
// several processes at once: the transaction first takes a transaction-
// scoped advisory lock (pg_advisory_xact_lock, a fixed key), so the others
// wait for it to commit and then find nothing to do. The lock is
// transaction-scoped rather than session-scoped so that it cannot outlive
// the migration on a pooled connection. Migrate fails if the database was
// migrated by a newer Keycard, whose schema this one does not know.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if current > len(ms) {
			return fmt.Errorf("database schema version %d is newer than this program's %d", current, len(ms))
		}
		for _, m := range ms[current:] {
			// The simple protocol runs a file of several statements.
			if _, err := tx.Exec(ctx, m.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return err
			}
			db.log.Info("applied migration", "version", m.version, "name", m.name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// Version returns the schema version of the database: the number of the
// last migration applied to it.
func (db *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := db.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	return v, nil
}

// querier is what the read helpers need: the pool, reads, or a
// transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// reads is the pool for reads outside a transaction: a single-row read
// whose connection the server ended under it (connectionLost: a restart,
// a failover, pg_terminate_backend) runs again on another connection,
// which is safe because it changed nothing. Without it, a request that
// met such a connection would fail once with a 500.
func (db *DB) reads() querier { return readPool{db} }

type readPool struct{ db *DB }

func (p readPool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return p.db.pool.Exec(ctx, sql, args...)
}

func (p readPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return p.db.pool.Query(ctx, sql, args...)
}

func (p readPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return retryRow{p.db, ctx, sql, args}
}

// retryRow is a single-row read that Scan runs, again on another
// connection when the server ended the one it ran on.
type retryRow struct {
	db   *DB
	ctx  context.Context
	sql  string
	args []any
}

func (r retryRow) Scan(dest ...any) error {
	for attempt := 1; ; attempt++ {
		err := r.db.pool.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
		if err == nil || !connectionLost(err) || r.ctx.Err() != nil || attempt > int(r.db.pool.Config().MaxConns) {
			return err
		}
	}
}

// update runs fn in one transaction, committing if it returns nil. A
// transaction that fails with a deadlock or a serialization failure is run
// again, up to maxAttempts times in all, so fn must not have effects
// outside the transaction other than setting its results. A BEGIN that
// fails on a pooled connection the server has closed (a restart, a
// failover, pg_terminate_backend) is tried again on another: nothing ran,
// and the pool drops each broken connection as it finds it.
func (db *DB) update(ctx context.Context, fn func(tx pgx.Tx) error) error {
	beginFailures := 0
	for attempt := 1; ; {
		tx, err := db.pool.Begin(ctx)
		if err != nil {
			var connectErr *pgconn.ConnectError
			beginFailures++
			if ctx.Err() == nil && !errors.As(err, &connectErr) && beginFailures <= int(db.pool.Config().MaxConns) {
				continue
			}
			return err
		}
		committing := false
		if err = fn(tx); err == nil {
			committing = true
			err = tx.Commit(ctx)
		}
		if err != nil {
			tx.Rollback(ctx)
			if attempt++; attempt <= maxAttempts && retryable(err) && ctx.Err() == nil {
				continue
			}
			// The server ended the connection under a statement of the
			// transaction (pg_terminate_backend, a restart): nothing
			// committed, so it runs again on another connection. Not
			// when COMMIT itself failed: whether it took effect is
			// unknown, and the caller must hear of it.
			if !committing && connectionLost(err) && ctx.Err() == nil && beginFailures < int(db.pool.Config().MaxConns) {
				beginFailures++
				continue
			}
		}
		return err
	}
}

// updatePipelined runs a transaction in two round trips on one pooled
// connection, where update takes four: BEGIN and the statements that
// first queues in one pipeline, then the statements that decide queues after reading
// their results (in order, all of them), with COMMIT, in a second. If
// decide returns an error, or a statement fails, the transaction is
// rolled back and the error returned. It is run again on the same terms
// as update: after a deadlock or serialization failure, and when the
// server ended the connection before the second pipeline was sent
// (afterwards, whether COMMIT took effect is unknown, and the caller
// hears of it). decide is called again on each run, so it must have no
// effects outside the transaction other than setting its results.
// Each run queues its statements anew: pgx keeps in a queued statement
// what it prepared on one connection.
func (db *DB) updatePipelined(ctx context.Context, first func(b *pgx.Batch), decide func(br pgx.BatchResults) (*pgx.Batch, error)) error {
	failures := 0
	for attempt := 1; ; {
		conn, err := db.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		committing, err := runPipelined(ctx, conn.Conn(), first, decide)
		// The pool closes a connection left in a transaction.
		conn.Release()
		if err == nil {
			return nil
		}
		if attempt++; attempt <= maxAttempts && retryable(err) && ctx.Err() == nil {
			continue
		}
		if !committing && connectionLost(err) && ctx.Err() == nil && failures < int(db.pool.Config().MaxConns) {
			failures++
			continue
		}
		return err
	}
}

// runPipelined is one run of updatePipelined on c. committing reports
// whether the second pipeline, with COMMIT, was sent.
func runPipelined(ctx context.Context, c *pgx.Conn, first func(b *pgx.Batch), decide func(br pgx.BatchResults) (*pgx.Batch, error)) (committing bool, err error) {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	first(b)
	br := c.SendBatch(ctx, b)
	var second *pgx.Batch
	if _, err = br.Exec(); err == nil {
		second, err = decide(br)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		committing = true
		second.Queue("COMMIT")
		br = c.SendBatch(ctx, second)
		for range second.Len() {
			if _, err = br.Exec(); err != nil {
				break
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil && c.PgConn().TxStatus() != 'I' && !c.IsClosed() {
		// A failed statement skipped the rest of its pipeline, COMMIT
		// included.
		c.Exec(ctx, "ROLLBACK")
	}
	return committing, err
}

// pipeline sends the statements of b to the database in one round trip,
// outside an explicit transaction, and calls read with their results.
// PostgreSQL runs the statements of one pipeline (up to its Sync) in an
// implicit transaction: they commit together, and an error in one rolls
// back all of them. read may return early; the remaining results are
// discarded.
//
// A pipeline whose connection the server ended (connectionLost) did not
// commit — the implicit transaction commits at the Sync, after every
// statement ran — so it is sent again on another connection.
func (db *DB) pipeline(ctx context.Context, b *pgx.Batch, read func(br pgx.BatchResults) error) error {
	for attempt := 1; ; attempt++ {
		br := db.pool.SendBatch(ctx, b)
		err := read(br)
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil && connectionLost(err) && ctx.Err() == nil && attempt <= int(db.pool.Config().MaxConns) {
			continue
		}
		return err
	}
}

// connectionLost reports whether err says the server ended the
// connection: an administrator's or a restart's termination (SQLSTATE
// 57P01, 57P02, 57P03), or a connection that was already closed.
func connectionLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	return pgconn.SafeToRetry(err)
}

// retryable reports whether err is a deadlock or serialization failure,
// after which the whole transaction can simply be tried again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// pgCode returns the SQLSTATE of err, "" if it is not a server error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// constraint returns the name of the constraint a server error violated,
// "" if none.
func constraint(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}

// Constraint-violation SQLSTATEs.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// validText reports whether every s can be stored in a text column:
// PostgreSQL refuses invalid UTF-8 and NUL bytes, which SQLite keeps. A
// lookup of such a value finds nothing; a write of one is EINVALID.
func validText(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return false
		}
	}
	return true
}

func invalidText() error {
	return &keycard.Error{Code: keycard.EINVALID, Message: "Text must be valid UTF-8 without NUL characters."}
}

// nullTime returns t, or NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// fromNull is the inverse of nullTime, in UTC.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// nullString returns s, or NULL for "".
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// orEmpty returns ss, or an empty slice for nil, so that a TEXT[] NOT NULL
// column gets '{}' rather than NULL.
func orEmpty(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// wrap adds the operation to an error that is not already a keycard error.
// Data exceptions (SQLSTATE class 22, such as text PostgreSQL cannot store)
// are the caller's bad input: EINVALID.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var kerr *keycard.Error
	if errors.As(err, &kerr) {
		return err
	}
	if strings.HasPrefix(pgCode(err), "22") {
		return &keycard.Error{Code: keycard.EINVALID, Message: "The input holds a value the database cannot store."}
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// cleanText returns s with invalid UTF-8 replaced by U+FFFD and NUL bytes
// removed, for descriptive fields (user agents, client addresses, audit
// details) that come from requests and must not make a write fail.
func cleanText(s string) string {
	if validText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// placeholder returns the n-th query parameter, "$n".
func placeholder(n int) string { return "$" + strconv.Itoa(n) }
