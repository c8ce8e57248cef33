package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
)

// RevocationsChannel is the LISTEN/NOTIFY channel on which every
// transaction that appends to the revocation feed announces, at commit, the
// highest sequence number it appended.
const RevocationsChannel = "keycard_revocations"

// RevocationStore implements keycard.RevocationStore.
type RevocationStore struct{ db *DB }

var _ keycard.RevocationStore = (*RevocationStore)(nil)

// appendFeed appends revs to the revocation feed within tx, sets their Seq
// (and ExpiresAt where it is zero, to At plus ttl), and queues a NOTIFY on
// RevocationsChannel, which PostgreSQL delivers at commit.
//
// Sequence numbers must become visible in the order they were assigned: a
// follower that has read entry 11 never looks below 11 again, so if 10
// committed after 11 it would be skipped forever. A sequence (BIGSERIAL)
// hands out numbers at INSERT time, in no relation to commit order, so it
// cannot do. Instead each appending transaction increments the single row
// of revocation_seq: the row lock it takes is held until the transaction
// ends, so the next appender waits, and only reads the counter (and gets
// its numbers) after this one has committed or rolled back. Appenders are
// therefore serialized from their append to their commit, the committed
// numbers always form a prefix 1..n without gaps (a rollback gives its
// numbers back), and LastRevocationSeq is simply the counter. A
// transaction-scoped advisory lock in front of a sequence would serialize
// the same way, but would leave gaps after rollbacks and no transactional
// "last assigned" value to read.
//
// The price is that appends are serialized across all instances; they are
// rare (logouts, revocations, theft), and every caller appends as the last
// write of its transaction, in one statement, so the lock is held only for
// the insert and the commit. Taking the counter last is also what keeps
// appenders from deadlocking with each other: nobody waits for a row lock
// while holding it.
func appendFeed(ctx context.Context, tx pgx.Tx, ttl time.Duration, revs ...*keycard.Revocation) error {
	if len(revs) == 0 {
		return nil
	}
	kinds := make([]string, len(revs))
	values := make([]string, len(revs))
	ats := make([]time.Time, len(revs))
	expires := make([]time.Time, len(revs))
	for i, r := range revs {
		if !r.Kind.Valid() {
			return keycard.Errorf(keycard.EINVALID, "Unknown revocation kind %q.", r.Kind)
		}
		if !validText(r.Value) {
			return invalidText()
		}
		if r.ExpiresAt.IsZero() {
			r.ExpiresAt = r.At.Add(ttl)
		}
		kinds[i], values[i], ats[i], expires[i] = string(r.Kind), r.Value, r.At, r.ExpiresAt
	}
	b := &pgx.Batch{}
	b.Queue(`WITH counter AS (
			UPDATE revocation_seq SET last = last + cardinality($1::text[]) RETURNING last
		), appended AS (
			INSERT INTO revocations (seq, kind, value, at, expires_at)
			SELECT counter.last - cardinality($1::text[]) + r.n, r.kind, r.value, r.at, r.expires_at
			FROM counter, unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[])
				WITH ORDINALITY AS r (kind, value, at, expires_at, n)
			RETURNING seq
		)
		SELECT max(seq) FROM appended`, kinds, values, ats, expires)
	b.Queue(`SELECT pg_notify('` + RevocationsChannel + `', last::text) FROM revocation_seq`)
	br := tx.SendBatch(ctx, b)
	var last int64
	err := br.QueryRow().Scan(&last)
	if err == nil {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	for i, r := range revs {
		r.Seq = last - int64(len(revs)-1-i)
	}
	return nil
}

// AddRevocation implements keycard.RevocationStore.
func (s *RevocationStore) AddRevocation(ctx context.Context, r *keycard.Revocation) error {
	if !r.Kind.Valid() {
		return keycard.Errorf(keycard.EINVALID, "Unknown revocation kind %q.", r.Kind)
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error { return appendFeed(ctx, tx, s.db.revocationTTL, r) })
	return wrap("add revocation", err)
}

// Revocations implements keycard.RevocationStore.
func (s *RevocationStore) Revocations(ctx context.Context, after int64, limit int) ([]*keycard.Revocation, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT seq, kind, value, at, expires_at FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2`,
		after, keycard.PageSize(limit))
	if err != nil {
		return nil, wrap("revocations", err)
	}
	defer rows.Close()
	revs := []*keycard.Revocation{}
	for rows.Next() {
		var r keycard.Revocation
		if err := rows.Scan(&r.Seq, &r.Kind, &r.Value, &r.At, &r.ExpiresAt); err != nil {
			return nil, wrap("revocations", err)
		}
		r.At, r.ExpiresAt = r.At.UTC(), r.ExpiresAt.UTC()
		revs = append(revs, &r)
	}
	return revs, wrap("revocations", rows.Err())
}

// HasRevocation implements keycard.RevocationStore.
func (s *RevocationStore) HasRevocation(ctx context.Context, kind keycard.RevocationKind, value string) (bool, error) {
	if !validText(string(kind), value) {
		return false, nil
	}
	var found bool
	err := s.db.reads().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revocations WHERE kind = $1 AND value = $2)`,
		string(kind), value).Scan(&found)
	return found, wrap("has revocation", err)
}

// LastRevocationSeq implements keycard.RevocationStore. It reads the
// counter that appends increment, so the answer does not go down when
// entries are pruned, and never names an entry that has not committed.
func (s *RevocationStore) LastRevocationSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.db.reads().QueryRow(ctx, `SELECT last FROM revocation_seq`).Scan(&seq)
	return seq, wrap("last revocation seq", err)
}

// FirstRevocationSeq implements keycard.RevocationStore.
func (s *RevocationStore) FirstRevocationSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.db.reads().QueryRow(ctx, `SELECT COALESCE(MIN(seq), 0) FROM revocations`).Scan(&seq)
	return seq, wrap("first revocation seq", err)
}

// PruneRevocations implements keycard.RevocationStore.
func (s *RevocationStore) PruneRevocations(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM revocations WHERE expires_at < $1`, before)
		n = tag.RowsAffected()
		return err
	})
	return n, wrap("prune revocations", err)
}
