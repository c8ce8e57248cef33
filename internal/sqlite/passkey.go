package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keycard-auth/keycard"
)

// PasskeyStore implements keycard.PasskeyStore.
type PasskeyStore struct{ db *DB }

var _ keycard.PasskeyStore = (*PasskeyStore)(nil)

const passkeyColumns = `id, user_id, credential_id, public_key, aaguid, sign_count, transports, attestation_format,
	backup_eligible, backup_state, user_verified, name, created_at, last_used_at`

func scanPasskey(row scanner) (*keycard.Passkey, error) {
	var p keycard.Passkey
	var transports sql.NullString
	var created, used sql.NullInt64
	var count int64
	if err := row.Scan(&p.ID, &p.UserID, &p.CredentialID, &p.PublicKey, &p.AAGUID, &count, &transports, &p.AttestationFormat,
		&p.BackupEligible, &p.BackupState, &p.UserVerified, &p.Name, &created, &used); err != nil {
		return nil, err
	}
	p.SignCount = uint32(count)
	if err := decodeList(transports, &p.Transports); err != nil {
		return nil, err
	}
	p.CreatedAt, p.LastUsedAt = fromMicros(created), fromMicros(used)
	return &p, nil
}

func passkeyNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Passkey not found."}
}

// CreatePasskey implements keycard.PasskeyStore.
func (s *PasskeyStore) CreatePasskey(ctx context.Context, p *keycard.Passkey) error {
	if p.ID == "" || p.UserID == "" || len(p.CredentialID) == 0 || len(p.PublicKey) == 0 {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Passkey id, user, credential id and public key are required."}
	}
	transports, err := nullList(p.Transports)
	if err != nil {
		return err
	}
	err = s.db.update(ctx, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO passkeys (`+passkeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.UserID, p.CredentialID, p.PublicKey, p.AAGUID, int64(p.SignCount), transports, p.AttestationFormat,
			p.BackupEligible, p.BackupState, p.UserVerified, p.Name, micros(p.CreatedAt), nullMicros(p.LastUsedAt))
		switch {
		case isForeignKey(err):
			return userNotFound()
		case isConstraint(err):
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "This passkey is already registered."}
		}
		return err
	})
	return wrap("create passkey", err)
}

// Passkey implements keycard.PasskeyStore.
func (s *PasskeyStore) Passkey(ctx context.Context, userID, id string) (*keycard.Passkey, error) {
	p, err := scanPasskey(s.db.reader().QueryRowContext(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE id = ? AND user_id = ?`, id, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, passkeyNotFound()
	}
	return p, wrap("passkey", err)
}

// PasskeyByCredentialID implements keycard.PasskeyStore.
func (s *PasskeyStore) PasskeyByCredentialID(ctx context.Context, credentialID []byte) (*keycard.Passkey, error) {
	if len(credentialID) == 0 {
		return nil, passkeyNotFound()
	}
	p, err := scanPasskey(s.db.reader().QueryRowContext(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE credential_id = ?`, credentialID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, passkeyNotFound()
	}
	return p, wrap("passkey by credential id", err)
}

// ListPasskeys implements keycard.PasskeyStore.
func (s *PasskeyStore) ListPasskeys(ctx context.Context, userID string) ([]*keycard.Passkey, error) {
	rows, err := s.db.reader().QueryContext(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, wrap("list passkeys", err)
	}
	defer rows.Close()
	var out []*keycard.Passkey
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, wrap("list passkeys", err)
		}
		out = append(out, p)
	}
	return out, wrap("list passkeys", rows.Err())
}

// RenamePasskey implements keycard.PasskeyStore.
func (s *PasskeyStore) RenamePasskey(ctx context.Context, userID, id, name string) error {
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE passkeys SET name = ? WHERE id = ? AND user_id = ?`, name, id, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return passkeyNotFound()
		}
		return nil
	})
	return wrap("rename passkey", err)
}

// DeletePasskey implements keycard.PasskeyStore.
func (s *PasskeyStore) DeletePasskey(ctx context.Context, userID, id string) (*keycard.Passkey, error) {
	var p *keycard.Passkey
	err := s.db.update(ctx, func(tx txn) error {
		var err error
		p, err = scanPasskey(tx.QueryRowContext(ctx, `DELETE FROM passkeys WHERE id = ? AND user_id = ? RETURNING `+passkeyColumns, id, userID))
		if errors.Is(err, sql.ErrNoRows) {
			return passkeyNotFound()
		}
		return err
	})
	if err != nil {
		return nil, wrap("delete passkey", err)
	}
	return p, nil
}

// UsePasskey implements keycard.PasskeyStore.
func (s *PasskeyStore) UsePasskey(ctx context.Context, id string, prevCount, signCount uint32, backupState bool, at time.Time) error {
	err := s.db.update(ctx, func(tx txn) error {
		var count int64
		err := tx.QueryRowContext(ctx, `SELECT sign_count FROM passkeys WHERE id = ?`, id).Scan(&count)
		if errors.Is(err, sql.ErrNoRows) {
			return passkeyNotFound()
		} else if err != nil {
			return err
		}
		if uint32(count) != prevCount {
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "The passkey's signature counter has moved."}
		}
		_, err = tx.ExecContext(ctx, `UPDATE passkeys SET sign_count = ?, backup_state = ?, last_used_at = ? WHERE id = ?`,
			int64(signCount), backupState, micros(at), id)
		return err
	})
	return wrap("use passkey", err)
}

const passkeyChallengeColumns = `id, purpose, user_id, binding, state, created_at, expires_at`

// CreatePasskeyChallenge implements keycard.PasskeyStore.
func (s *PasskeyStore) CreatePasskeyChallenge(ctx context.Context, c *keycard.PasskeyChallenge) error {
	if c.ID == "" || len(c.State) == 0 {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Challenge id and state are required."}
	}
	err := s.db.update(ctx, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO passkey_challenges (`+passkeyChallengeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Purpose, nullString(c.UserID), c.Binding, c.State, micros(c.CreatedAt), micros(c.ExpiresAt))
		if isConstraint(err) {
			if constraintCode(err) == constraintPrimaryKey || constraintCode(err) == constraintUnique {
				return &keycard.Error{Code: keycard.ECONFLICT, Message: "Challenge already exists."}
			}
			return &keycard.Error{Code: keycard.EINVALID, Message: "Unknown challenge purpose."}
		}
		return err
	})
	return wrap("create passkey challenge", err)
}

// TakePasskeyChallenge implements keycard.PasskeyStore.
func (s *PasskeyStore) TakePasskeyChallenge(ctx context.Context, id string, at time.Time) (*keycard.PasskeyChallenge, error) {
	var c keycard.PasskeyChallenge
	err := s.db.update(ctx, func(tx txn) error {
		var user sql.NullString
		var created, expires sql.NullInt64
		err := tx.QueryRowContext(ctx, `DELETE FROM passkey_challenges WHERE id = ? RETURNING `+passkeyChallengeColumns, id).
			Scan(&c.ID, &c.Purpose, &user, &c.Binding, &c.State, &created, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return passkeyChallengeNotFound()
		} else if err != nil {
			return err
		}
		c.UserID, c.CreatedAt, c.ExpiresAt = user.String, fromMicros(created), fromMicros(expires)
		return nil
	})
	if err != nil {
		return nil, wrap("take passkey challenge", err)
	}
	if !at.Before(c.ExpiresAt) {
		return nil, passkeyChallengeNotFound()
	}
	return &c, nil
}

func passkeyChallengeNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "This passkey request has expired or was already answered."}
}

// PrunePasskeyChallenges implements keycard.PasskeyStore.
func (s *PasskeyStore) PrunePasskeyChallenges(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM passkey_challenges WHERE expires_at < ?`, micros(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, wrap("prune passkey challenges", err)
}
