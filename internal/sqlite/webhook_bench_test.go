package sqlite_test

import (
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/storetest"
)

// BenchmarkAppendAudit measures an audit append with the webhook
// trigger: an event that is no webhook (login.failed: the trigger's WHEN
// leaves it out) and a sign-in (login.succeeded: it runs), with no
// endpoint and with three (three deliveries owed).
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
			db, err := openB(b)
			if err != nil {
				b.Fatal(err)
			}
			storetest.BenchAppendAudit(b, db.Stores(), c.typ, c.endpoints)
		})
	}
}
