package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	sqlite "modernc.org/sqlite"
)

// The read pool's hottest reads (a client's lookup at the token endpoint)
// run on the driver directly, as the write connection's hottest writes do
// (rawStmts): database/sql's per-query work (a connection per statement
// from its Stmt, a goroutine watching the context for the Rows and another
// in the driver, Scan's conversions) cost as much as SQLite's own
// execution of a lookup by primary key.
//
// The read pool has several connections, each prepared with its own
// statements. They live on the connection (readConn), which database/sql
// gives to one user at a time, so they need no lock; and they are closed
// with it, whenever database/sql closes it: at DB.Close, or when it
// replaces a broken connection (a connection closed with unfinalized
// statements stays open in SQLite, with its file, until they are).

// sqliteConn is what database/sql uses of a modernc.org/sqlite
// connection; readConn passes each on.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// readConn is a connection of the read pool: the driver's, with the
// statements of DB.rawReadRow prepared on it by query text.
type readConn struct {
	sqliteConn
	stmts map[string]driver.Stmt
}

// stmt returns the statement for query on c, preparing it the first time.
func (c *readConn) stmt(ctx context.Context, query string) (driver.Stmt, error) {
	if s, ok := c.stmts[query]; ok {
		return s, nil
	}
	s, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if c.stmts == nil {
		c.stmts = map[string]driver.Stmt{}
	}
	c.stmts[query] = s
	return s, nil
}

// Close closes the connection's statements, then the connection.
func (c *readConn) Close() error {
	var errs []error
	for _, s := range c.stmts {
		errs = append(errs, s.Close())
	}
	c.stmts = nil
	return errors.Join(append(errs, c.sqliteConn.Close())...)
}

// readConnector opens the read pool's connections as readConns.
type readConnector struct{ driver.Connector }

// newReadConnector returns the connector of the read pool on dsn.
func newReadConnector(dsn string) (driver.Connector, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return readConnector{c}, nil
}

func (c readConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := dc.(sqliteConn)
	if !ok {
		dc.Close()
		return nil, fmt.Errorf("sqlite: driver connection %T lacks methods database/sql uses", dc)
	}
	return &readConn{sqliteConn: sc}, nil
}

// rawReadRow is reader.QueryRowContext(…).Scan(dest…) on a read
// connection's driver, with a statement prepared once per connection; it
// returns sql.ErrNoRows when there is no row. Its arguments must be driver
// values (see namedValues), and dest holds the kinds of pointers assign
// takes.
//
// It is for reads of a row by key, whose work is bounded: ctx bounds the
// wait for a connection, but the query, once started, runs to its end
// whether ctx ends or not (the driver then watches no context, which
// costs a goroutine per query).
func (db *DB) rawReadRow(ctx context.Context, query string, args []any, dest ...any) error {
	nv, err := namedValues(args)
	if err != nil {
		return err
	}
	conn, err := db.read.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		rc, ok := dc.(*readConn)
		if !ok {
			return fmt.Errorf("sqlite: read connection %T is not the read pool's", dc)
		}
		s, err := rc.stmt(ctx, query)
		if err != nil {
			return err
		}
		return queryRawRow(context.WithoutCancel(ctx), s, nv, dest)
	})
}
