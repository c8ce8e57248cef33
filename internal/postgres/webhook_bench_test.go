package postgres_test

import (
	"context"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/postgres"
	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
	"github.com/keycard-auth/keycard/internal/storetest"
)

// BenchmarkAppendAudit is internal/sqlite's, on PostgreSQL.
func BenchmarkAppendAudit(b *testing.B) {
	for _, c := range []struct {
		name      string
		typ       string
		endpoints int
	}{
		{"failed/0-endpoints", keycard.AuditLoginFailed, 0},
		{"signin/0-endpoints", keycard.AuditLoginSucceeded, 0},
		{"failed/3-endpoints", keycard.AuditLoginFailed, 3},
		{"signin/3-endpoints", keycard.AuditLoginSucceeded, 3},
	} {
		b.Run(c.name, func(b *testing.B) {
			db, err := postgres.Open(context.Background(), pgtest.NewDatabase(b), postgres.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			storetest.BenchAppendAudit(b, db.Stores(), c.typ, c.endpoints)
		})
	}
}
