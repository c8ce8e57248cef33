package postgres

import "github.com/jackc/pgx/v5/pgxpool"

// Pool is db's connection pool, for the benchmarks of package
// postgres_test.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }
