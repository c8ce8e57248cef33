package postgres_test

import (
	"context"
	"testing"

	"github.com/keycard-auth/keycard/internal/postgres"
	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
	"github.com/keycard-auth/keycard/internal/storetest"
)

// BenchmarkRevokeBrowserSession is internal/sqlite's, on PostgreSQL.
func BenchmarkRevokeBrowserSession(b *testing.B) {
	for _, told := range []bool{true, false} {
		name := map[bool]string{true: "told", false: "untold"}[told]
		b.Run(name, func(b *testing.B) {
			db, err := postgres.Open(context.Background(), pgtest.NewDatabase(b), postgres.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			storetest.BenchRevokeBrowserSession(b, db.Stores(), told)
		})
	}
}
