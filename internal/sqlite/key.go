package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keycard-auth/keycard"
)

// KeyStore implements keycard.KeyStore.
type KeyStore struct{ db *DB }

var _ keycard.KeyStore = (*KeyStore)(nil)

// NewKeyStore returns the key store on db.
func NewKeyStore(db *DB) *KeyStore { return &KeyStore{db: db} }

const keyColumns = `kid, alg, state, private_sealed, public_jwk, created_at, activates_at, retired_at, remove_after`

func scanKey(row interface{ Scan(...any) error }) (*keycard.SigningKey, error) {
	var (
		k                                    keycard.SigningKey
		created, activates, retired, removes sql.NullInt64
	)
	if err := row.Scan(&k.KID, &k.Alg, &k.State, &k.PrivateSealed, &k.PublicJWK, &created, &activates, &retired, &removes); err != nil {
		return nil, err
	}
	k.CreatedAt, k.ActivatesAt, k.RetiredAt, k.RemoveAfter = fromMicros(created), fromMicros(activates), fromMicros(retired), fromMicros(removes)
	return &k, nil
}

func keyNotFound() error { return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Key not found."} }

// CreateKey implements keycard.KeyStore.
func (s *KeyStore) CreateKey(ctx context.Context, k *keycard.SigningKey) error {
	if k.KID == "" || k.Alg == "" || len(k.PrivateSealed) == 0 || !k.State.Valid() {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Key id, algorithm, sealed private key and a valid state are required."}
	}
	err := s.db.update(ctx, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.KID, k.Alg, string(k.State), k.PrivateSealed, k.PublicJWK, micros(k.CreatedAt),
			nullMicros(k.ActivatesAt), nullMicros(k.RetiredAt), nullMicros(k.RemoveAfter))
		if isConstraint(err) {
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "Key already exists, or another key is active."}
		}
		return err
	})
	return wrap("create key", err)
}

// Key implements keycard.KeyStore.
func (s *KeyStore) Key(ctx context.Context, kid string) (*keycard.SigningKey, error) {
	k, err := scanKey(s.db.reader().QueryRowContext(ctx, `SELECT `+keyColumns+` FROM signing_keys WHERE kid = ?`, kid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyNotFound()
	}
	return k, wrap("key", err)
}

// ListKeys implements keycard.KeyStore.
func (s *KeyStore) ListKeys(ctx context.Context) ([]*keycard.SigningKey, error) {
	rows, err := s.db.reader().QueryContext(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, wrap("list keys", err)
	}
	defer rows.Close()
	keys := []*keycard.SigningKey{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, wrap("list keys", err)
		}
		keys = append(keys, k)
	}
	return keys, wrap("list keys", rows.Err())
}

// ActivateKey implements keycard.KeyStore.
func (s *KeyStore) ActivateKey(ctx context.Context, kid string, at, removeAfter time.Time) error {
	err := s.db.update(ctx, func(tx txn) error {
		var state string
		err := tx.QueryRowContext(ctx, `SELECT state FROM signing_keys WHERE kid = ?`, kid).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return keyNotFound()
		} else if err != nil {
			return err
		}
		if keycard.KeyState(state) != keycard.KeyNext {
			return keycard.Errorf(keycard.ECONFLICT, "Key is %s, not next.", state)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET state = 'retired', retired_at = ?, remove_after = ? WHERE state = 'active'`,
			micros(at), micros(removeAfter)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE signing_keys SET state = 'active' WHERE kid = ?`, kid)
		return err
	})
	return wrap("activate key", err)
}

// RevokeKey implements keycard.KeyStore.
func (s *KeyStore) RevokeKey(ctx context.Context, kid string, at time.Time) error {
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM signing_keys WHERE kid = ?`, kid)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return keyNotFound()
		}
		return addRevocation(ctx, tx, &keycard.Revocation{Kind: keycard.RevokeKey, Value: kid, At: at})
	})
	return wrap("revoke key", err)
}

// DeleteRemovedKeys implements keycard.KeyStore.
func (s *KeyStore) DeleteRemovedKeys(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM signing_keys WHERE state = 'retired' AND remove_after <= ?`, micros(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, wrap("delete removed keys", err)
}

// keyGenerationQuery reads keycard.KeyStore.KeyGeneration; the triggers
// of migration 0004 keep it.
const keyGenerationQuery = `SELECT generation FROM key_generation WHERE id = 1`

// KeyGeneration implements keycard.KeyStore.
func (s *KeyStore) KeyGeneration(ctx context.Context) (int64, error) {
	var gen int64
	err := s.db.reader().QueryRowContext(ctx, keyGenerationQuery).Scan(&gen)
	return gen, wrap("key generation", err)
}
