package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
)

// rawStmts holds the statements of the hottest writes (a refresh token's
// rotation) prepared on the write connection's driver connection, by
// query text. They run on the driver directly (txn.rawExec,
// txn.rawQueryRow), without database/sql: its per-statement work (a Stmt
// per transaction, locks, argument conversion, Scan's conversions) was a
// quarter of a rotation's statements' CPU, which SQLite's own execution of
// them is not much more than.
//
// Only the holder of the write connection (the single connection of
// DB.write, inside a transaction) uses it, so it needs no lock of its own.
type rawStmts struct {
	conn driver.Conn // the connection m was prepared on
	m    map[string]driver.Stmt
}

// get returns the statement for query on c, preparing it the first time.
// A new driver connection (database/sql replaced a broken one) starts
// the map again.
func (r *rawStmts) get(ctx context.Context, c driver.Conn, query string) (driver.Stmt, error) {
	if r.conn != c {
		r.conn, r.m = c, map[string]driver.Stmt{}
	}
	if s, ok := r.m[query]; ok {
		return s, nil
	}
	p, ok := c.(driver.ConnPrepareContext)
	if !ok {
		return nil, fmt.Errorf("sqlite: driver connection %T cannot prepare with a context", c)
	}
	s, err := p.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	r.m[query] = s
	return s, nil
}

// close closes the statements on the write connection.
func (db *DB) closeRaw(ctx context.Context) error {
	if len(db.raw.m) == 0 {
		return nil
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		var errs []error
		if dc == db.raw.conn {
			for _, s := range db.raw.m {
				errs = append(errs, s.Close())
			}
		}
		db.raw.conn, db.raw.m = nil, nil
		return errors.Join(errs...)
	})
}

// namedValues returns args as the driver's arguments. They must be of the
// driver.Value types already (nil, int64, float64, bool, []byte, string,
// time.Time), which is what this package's callers pass.
func namedValues(args []any) ([]driver.NamedValue, error) {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		if !driver.IsValue(a) {
			return nil, fmt.Errorf("sqlite: argument %d of type %T is not a driver value", i+1, a)
		}
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return nv, nil
}

// rawExec is ExecContext on the driver connection, with a statement
// prepared once per connection (see rawStmts). Its arguments must be
// driver values (see namedValues). In a transaction that its context can
// end (t.raw is nil) it is ExecContext.
func (t txn) rawExec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t.raw == nil {
		return t.ExecContext(ctx, query, args...)
	}
	*t.writes++
	nv, err := namedValues(args)
	if err != nil {
		return nil, err
	}
	var res driver.Result
	err = t.conn.Raw(func(dc any) error {
		s, err := t.raw.get(ctx, dc.(driver.Conn), query)
		if err != nil {
			return err
		}
		res, err = s.(driver.StmtExecContext).ExecContext(ctx, nv)
		return err
	})
	return res, err
}

// rawQueryRow is QueryRowContext(…).Scan(dest…) on the driver
// connection, with a statement prepared once per connection; it returns
// sql.ErrNoRows when there is no row. Its arguments must be driver values
// (see namedValues), and dest holds the kinds of pointers assign takes.
// The query must be a SELECT (it does not count as a write). In a
// transaction that its context can end it is QueryRowContext.
func (t txn) rawQueryRow(ctx context.Context, query string, args []any, dest ...any) error {
	if t.raw == nil {
		return t.QueryRowContext(ctx, query, args...).Scan(dest...)
	}
	nv, err := namedValues(args)
	if err != nil {
		return err
	}
	return t.conn.Raw(func(dc any) error {
		s, err := t.raw.get(ctx, dc.(driver.Conn), query)
		if err != nil {
			return err
		}
		return queryRawRow(ctx, s, nv, dest)
	})
}

// queryRawRow runs the driver statement s with the arguments nv and scans
// its first row into dest (see assign); sql.ErrNoRows when there is none.
func queryRawRow(ctx context.Context, s driver.Stmt, nv []driver.NamedValue, dest []any) error {
	rows, err := s.(driver.StmtQueryContext).QueryContext(ctx, nv)
	if err != nil {
		return err
	}
	vals := make([]driver.Value, len(rows.Columns()))
	err = rows.Next(vals)
	if err == nil && len(vals) != len(dest) {
		err = fmt.Errorf("sqlite: %d columns, %d destinations", len(vals), len(dest))
	}
	for i := 0; err == nil && i < len(dest); i++ {
		if err = assign(dest[i], vals[i]); err != nil {
			err = fmt.Errorf("sqlite: column %d: %w", i, err)
		}
	}
	if errors.Is(err, io.EOF) {
		err = sql.ErrNoRows
	}
	return errors.Join(err, rows.Close())
}

// assign stores the driver's value v in dest as database/sql's Scan would
// for the destinations this package scans into (a NULL only into a
// pointer that takes one); the driver's byte slices are its own copies, so
// they are stored as they are.
func assign(dest any, v driver.Value) error {
	switch d := dest.(type) {
	case *string:
		if s, ok := v.(string); ok {
			*d = s
			return nil
		}
	case *int64:
		if n, ok := v.(int64); ok {
			*d = n
			return nil
		}
	case *bool:
		if n, ok := v.(int64); ok && (n == 0 || n == 1) {
			*d = n == 1
			return nil
		}
	case *[]byte:
		switch b := v.(type) {
		case []byte:
			*d = b
			return nil
		case nil:
			*d = nil
			return nil
		}
	case *sql.NullString:
		switch s := v.(type) {
		case string:
			*d = sql.NullString{String: s, Valid: true}
			return nil
		case nil:
			*d = sql.NullString{}
			return nil
		}
	case *sql.NullInt64:
		switch n := v.(type) {
		case int64:
			*d = sql.NullInt64{Int64: n, Valid: true}
			return nil
		case nil:
			*d = sql.NullInt64{}
			return nil
		}
	}
	return fmt.Errorf("cannot store %T in %T", v, dest)
}
