package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// TestRawStatements checks txn.rawExec and txn.rawQueryRow on the driver
// (a transaction no context can end) and through database/sql (one that
// its context can end, where a statement on the driver could outlive the
// transaction), and that a rolled-back transaction leaves nothing of
// either.
func TestRawStatements(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "keycard.db"))
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	cancelable, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tt := range []struct {
		name string
		ctx  context.Context
		raw  bool
	}{
		{"driver", context.Background(), true},
		{"database/sql", cancelable, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := "u-" + tt.name
			err := db.update(tt.ctx, func(tx txn) error {
				if got := tx.raw != nil; got != tt.raw {
					t.Errorf("driver statements: got %v, want %v", got, tt.raw)
				}
				if _, err := tx.rawExec(tt.ctx, `INSERT INTO users (id, username, username_normalized, password_hash, created_at, updated_at, password_changed_at)
					VALUES (?, ?, ?, ?, ?, ?, ?)`, id, id, id, "h", micros(t0), micros(t0), micros(t0)); err != nil {
					return err
				}
				var (
					name     string
					disabled bool
				)
				if err := tx.rawQueryRow(tt.ctx, `SELECT username, disabled FROM users WHERE id = ?`, []any{id}, &name, &disabled); err != nil {
					return err
				}
				if name != id || disabled {
					t.Errorf("got %q, %v; want %q, false", name, disabled, id)
				}
				if *tx.writes != 1 {
					t.Errorf("got %d writes counted, want 1", *tx.writes)
				}
				return errRollBack
			})
			if err != errRollBack {
				t.Fatalf("got %v, want the rollback's error", err)
			}
			if _, err := db.Stores().Users.UserByID(context.Background(), id); keycard.ErrorCode(err) != keycard.ENOTFOUND {
				t.Errorf("after the rollback: got %v, want ENOTFOUND", err)
			}
		})
	}
}

var errRollBack = &keycard.Error{Code: keycard.EINVALID, Message: "roll back"}
