package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/keycard-auth/keycard"
)

// RevocationStore implements keycard.RevocationStore.
type RevocationStore struct{ db *DB }

var _ keycard.RevocationStore = (*RevocationStore)(nil)

// NewRevocationStore returns the revocation store on db.
func NewRevocationStore(db *DB) *RevocationStore { return &RevocationStore{db: db} }

// addRevocation appends r to the feed within tx and sets r.Seq, and
// r.ExpiresAt if it is zero.
func addRevocation(ctx context.Context, tx txn, r *keycard.Revocation) error {
	if !r.Kind.Valid() {
		return keycard.Errorf(keycard.EINVALID, "Unknown revocation kind %q.", r.Kind)
	}
	if r.ExpiresAt.IsZero() {
		r.ExpiresAt = r.At.Add(tx.revocationTTL)
	}
	return tx.QueryRowContext(ctx, `INSERT INTO revocations (kind, value, at, expires_at) VALUES (?, ?, ?, ?) RETURNING seq`,
		string(r.Kind), r.Value, micros(r.At), micros(r.ExpiresAt)).Scan(&r.Seq)
}

// AddRevocation implements keycard.RevocationStore.
func (s *RevocationStore) AddRevocation(ctx context.Context, r *keycard.Revocation) error {
	err := s.db.update(ctx, func(tx txn) error { return addRevocation(ctx, tx, r) })
	return wrap("add revocation", err)
}

// Revocations implements keycard.RevocationStore.
func (s *RevocationStore) Revocations(ctx context.Context, after int64, limit int) ([]*keycard.Revocation, error) {
	rows, err := s.db.reader().QueryContext(ctx, `SELECT seq, kind, value, at, expires_at FROM revocations WHERE seq > ? ORDER BY seq LIMIT ?`,
		after, keycard.PageSize(limit))
	if err != nil {
		return nil, wrap("revocations", err)
	}
	defer rows.Close()
	revs := []*keycard.Revocation{}
	for rows.Next() {
		var (
			r           keycard.Revocation
			at, expires sql.NullInt64
		)
		if err := rows.Scan(&r.Seq, &r.Kind, &r.Value, &at, &expires); err != nil {
			return nil, wrap("revocations", err)
		}
		r.At, r.ExpiresAt = fromMicros(at), fromMicros(expires)
		revs = append(revs, &r)
	}
	return revs, wrap("revocations", rows.Err())
}

// HasRevocation implements keycard.RevocationStore.
func (s *RevocationStore) HasRevocation(ctx context.Context, kind keycard.RevocationKind, value string) (bool, error) {
	var found bool
	err := s.db.reader().QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM revocations WHERE kind = ? AND value = ?)`,
		string(kind), value).Scan(&found)
	return found, wrap("has revocation", err)
}

// LastRevocationSeq implements keycard.RevocationStore. It reads the
// AUTOINCREMENT counter, so the answer does not go down when entries are
// pruned.
func (s *RevocationStore) LastRevocationSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.db.reader().QueryRowContext(ctx, `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'revocations'), 0)`).Scan(&seq)
	return seq, wrap("last revocation seq", err)
}

// FirstRevocationSeq implements keycard.RevocationStore.
func (s *RevocationStore) FirstRevocationSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.db.reader().QueryRowContext(ctx, `SELECT COALESCE(MIN(seq), 0) FROM revocations`).Scan(&seq)
	return seq, wrap("first revocation seq", err)
}

// PruneRevocations implements keycard.RevocationStore.
func (s *RevocationStore) PruneRevocations(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM revocations WHERE expires_at < ?`, micros(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, wrap("prune revocations", err)
}
