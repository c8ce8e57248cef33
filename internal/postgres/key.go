package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
)

// KeyStore implements keycard.KeyStore.
type KeyStore struct{ db *DB }

var _ keycard.KeyStore = (*KeyStore)(nil)

const keyColumns = `kid, alg, state, private_sealed, public_jwk, created_at, activates_at, retired_at, remove_after`

func scanKey(row pgx.Row) (*keycard.SigningKey, error) {
	var (
		k                           keycard.SigningKey
		activates, retired, removes *time.Time
	)
	if err := row.Scan(&k.KID, &k.Alg, &k.State, &k.PrivateSealed, &k.PublicJWK, &k.CreatedAt, &activates, &retired, &removes); err != nil {
		return nil, err
	}
	k.CreatedAt, k.ActivatesAt, k.RetiredAt, k.RemoveAfter = k.CreatedAt.UTC(), fromNull(activates), fromNull(retired), fromNull(removes)
	return &k, nil
}

func keyNotFound() error { return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Key not found."} }

// CreateKey implements keycard.KeyStore.
func (s *KeyStore) CreateKey(ctx context.Context, k *keycard.SigningKey) error {
	if k.KID == "" || k.Alg == "" || len(k.PrivateSealed) == 0 || !k.State.Valid() {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Key id, algorithm, sealed private key and a valid state are required."}
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO signing_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			k.KID, k.Alg, string(k.State), k.PrivateSealed, k.PublicJWK, k.CreatedAt,
			nullTime(k.ActivatesAt), nullTime(k.RetiredAt), nullTime(k.RemoveAfter))
		if pgCode(err) == uniqueViolation {
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "Key already exists, or another key is active."}
		}
		if err != nil {
			return err
		}
		return notifyKeysChanged(ctx, tx)
	})
	return wrap("create key", err)
}

// notifyKeysChanged tells every instance, at commit, that the keys changed
// (a new key, an activation): the notification on RevocationsChannel
// makes their listeners re-read the keys (auth.Service.RevocationsAppended)
// at once instead of when their key cache expires, so that a key made
// active at once on one instance is in every instance's JWKS before a
// verifier asks for it.
func notifyKeysChanged(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify('`+RevocationsChannel+`', '')`)
	return err
}

// Key implements keycard.KeyStore.
func (s *KeyStore) Key(ctx context.Context, kid string) (*keycard.SigningKey, error) {
	if !validText(kid) {
		return nil, keyNotFound()
	}
	k, err := scanKey(s.db.reads().QueryRow(ctx, `SELECT `+keyColumns+` FROM signing_keys WHERE kid = $1`, kid))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, keyNotFound()
	}
	return k, wrap("key", err)
}

// ListKeys implements keycard.KeyStore.
func (s *KeyStore) ListKeys(ctx context.Context) ([]*keycard.SigningKey, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at, kid`)
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

// ActivateKey implements keycard.KeyStore. Of two instances activating
// different next keys at once, the second finds the first's key active when
// it sets its own, and the partial unique index on the active state makes
// that an ECONFLICT.
func (s *KeyStore) ActivateKey(ctx context.Context, kid string, at, removeAfter time.Time) error {
	if !validText(kid) {
		return wrap("activate key", keyNotFound())
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		var state string
		err := tx.QueryRow(ctx, `SELECT state FROM signing_keys WHERE kid = $1 FOR UPDATE`, kid).Scan(&state)
		if errors.Is(err, pgx.ErrNoRows) {
			return keyNotFound()
		} else if err != nil {
			return err
		}
		if keycard.KeyState(state) != keycard.KeyNext {
			return keycard.Errorf(keycard.ECONFLICT, "Key is %s, not next.", state)
		}
		if _, err := tx.Exec(ctx, `UPDATE signing_keys SET state = 'retired', retired_at = $1, remove_after = $2 WHERE state = 'active'`,
			at, removeAfter); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE signing_keys SET state = 'active' WHERE kid = $1`, kid)
		if pgCode(err) == uniqueViolation {
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "Another key was activated at the same time."}
		}
		if err != nil {
			return err
		}
		return notifyKeysChanged(ctx, tx)
	})
	return wrap("activate key", err)
}

// RevokeKey implements keycard.KeyStore.
func (s *KeyStore) RevokeKey(ctx context.Context, kid string, at time.Time) error {
	if !validText(kid) {
		return wrap("revoke key", keyNotFound())
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM signing_keys WHERE kid = $1`, kid)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return keyNotFound()
		}
		return appendFeed(ctx, tx, s.db.revocationTTL, &keycard.Revocation{Kind: keycard.RevokeKey, Value: kid, At: at})
	})
	return wrap("revoke key", err)
}

// DeleteRemovedKeys implements keycard.KeyStore.
func (s *KeyStore) DeleteRemovedKeys(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM signing_keys WHERE state = 'retired' AND remove_after <= $1`, now)
		n = tag.RowsAffected()
		return err
	})
	return n, wrap("delete removed keys", err)
}

// keyGenerationQuery reads keycard.KeyStore.KeyGeneration; the trigger of
// migration 0002 keeps it.
const keyGenerationQuery = `SELECT generation FROM key_generation WHERE id = 1`

// KeyGeneration implements keycard.KeyStore.
func (s *KeyStore) KeyGeneration(ctx context.Context) (int64, error) {
	var gen int64
	err := s.db.reads().QueryRow(ctx, keyGenerationQuery).Scan(&gen)
	return gen, wrap("key generation", err)
}
