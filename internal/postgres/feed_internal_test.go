package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
)

// TestFeedCommitOrder holds an appending transaction open and checks that a
// second appender, on another instance, waits for it: it cannot take a
// sequence number, let alone commit one, before the first commits, so a
// reader never sees a later number while an earlier one is in flight.
func TestFeedCommitOrder(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	open := func() *DB {
		db, err := Open(ctx, url, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

	tx, err := a.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	first := &keycard.Revocation{Kind: keycard.RevokeToken, Value: "first", At: at}
	if err := appendFeed(ctx, tx, a.revocationTTL, first); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}

	second := &keycard.Revocation{Kind: keycard.RevokeToken, Value: "second", At: at}
	done := make(chan error, 1)
	go func() { done <- b.Stores().Revocations.AddRevocation(ctx, second) }()

	// Wait until the second appender is blocked by the first transaction.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting bool
		if err := b.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND $1 = ANY (pg_blocking_pids(pid)))`, pid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("second append finished (%v, seq %d) while the first was uncommitted", err, second.Seq)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("second append never waited for the first")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Readers see neither yet, and the last seq is still 0.
	if revs, err := b.Stores().Revocations.Revocations(ctx, 0, 0); err != nil || len(revs) != 0 {
		t.Errorf("feed while the first append is uncommitted: %v, %v; want nothing", revs, err)
	}
	if seq, err := b.Stores().Revocations.LastRevocationSeq(ctx); err != nil || seq != 0 {
		t.Errorf("LastRevocationSeq while the first append is uncommitted: %d, %v; want 0", seq, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if first.Seq != 1 || second.Seq != 2 {
		t.Errorf("seqs: first %d, second %d; want 1, 2", first.Seq, second.Seq)
	}

	// A rolled-back append gives its number back.
	err = pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if err := appendFeed(ctx, tx, a.revocationTTL, &keycard.Revocation{Kind: keycard.RevokeToken, Value: "rolled back", At: at}); err != nil {
			return err
		}
		return context.Canceled // roll back
	})
	if err != context.Canceled {
		t.Fatal(err)
	}
	third := &keycard.Revocation{Kind: keycard.RevokeToken, Value: "third", At: at}
	if err := a.Stores().Revocations.AddRevocation(ctx, third); err != nil || third.Seq != 3 {
		t.Errorf("append after a rollback: seq %d, %v; want 3", third.Seq, err)
	}
}
