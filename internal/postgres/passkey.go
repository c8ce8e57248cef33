package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
)

// PasskeyStore implements keycard.PasskeyStore.
type PasskeyStore struct{ db *DB }

var _ keycard.PasskeyStore = (*PasskeyStore)(nil)

const passkeyColumns = `id, user_id, credential_id, public_key, aaguid, sign_count, transports, attestation_format,
	backup_eligible, backup_state, user_verified, name, created_at, last_used_at`

func scanPasskey(row pgx.Row) (*keycard.Passkey, error) {
	var p keycard.Passkey
	var used *time.Time
	var count int64
	if err := row.Scan(&p.ID, &p.UserID, &p.CredentialID, &p.PublicKey, &p.AAGUID, &count, &p.Transports, &p.AttestationFormat,
		&p.BackupEligible, &p.BackupState, &p.UserVerified, &p.Name, &p.CreatedAt, &used); err != nil {
		return nil, err
	}
	if len(p.Transports) == 0 {
		p.Transports = nil
	}
	if len(p.AAGUID) == 0 {
		p.AAGUID = nil
	}
	p.SignCount = uint32(count)
	p.CreatedAt, p.LastUsedAt = p.CreatedAt.UTC(), fromNull(used)
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
	if !validText(append([]string{p.ID, p.AttestationFormat, p.Name}, p.Transports...)...) {
		return invalidText()
	}
	if !validText(p.UserID) {
		return userNotFound()
	}
	_, err := s.db.pool.Exec(ctx, `INSERT INTO passkeys (`+passkeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		p.ID, p.UserID, p.CredentialID, p.PublicKey, p.AAGUID, int64(p.SignCount), orEmpty(p.Transports), p.AttestationFormat,
		p.BackupEligible, p.BackupState, p.UserVerified, p.Name, p.CreatedAt, nullTime(p.LastUsedAt))
	switch {
	case pgCode(err) == foreignKeyViolation:
		return userNotFound()
	case pgCode(err) == uniqueViolation:
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "This passkey is already registered."}
	}
	return wrap("create passkey", err)
}

// Passkey implements keycard.PasskeyStore.
func (s *PasskeyStore) Passkey(ctx context.Context, userID, id string) (*keycard.Passkey, error) {
	if !validText(userID, id) {
		return nil, passkeyNotFound()
	}
	p, err := scanPasskey(s.db.reads().QueryRow(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE id = $1 AND user_id = $2`, id, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, passkeyNotFound()
	}
	return p, wrap("passkey", err)
}

// PasskeyByCredentialID implements keycard.PasskeyStore.
func (s *PasskeyStore) PasskeyByCredentialID(ctx context.Context, credentialID []byte) (*keycard.Passkey, error) {
	if len(credentialID) == 0 {
		return nil, passkeyNotFound()
	}
	p, err := scanPasskey(s.db.reads().QueryRow(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE credential_id = $1`, credentialID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, passkeyNotFound()
	}
	return p, wrap("passkey by credential id", err)
}

// ListPasskeys implements keycard.PasskeyStore.
func (s *PasskeyStore) ListPasskeys(ctx context.Context, userID string) ([]*keycard.Passkey, error) {
	if !validText(userID) {
		return nil, nil
	}
	rows, err := s.db.reads().Query(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE user_id = $1 ORDER BY created_at, id`, userID)
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
	if !validText(userID, id) {
		return passkeyNotFound()
	}
	if !validText(name) {
		return invalidText()
	}
	tag, err := s.db.pool.Exec(ctx, `UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3`, name, id, userID)
	if err != nil {
		return wrap("rename passkey", err)
	}
	if tag.RowsAffected() == 0 {
		return passkeyNotFound()
	}
	return nil
}

// DeletePasskey implements keycard.PasskeyStore.
func (s *PasskeyStore) DeletePasskey(ctx context.Context, userID, id string) (*keycard.Passkey, error) {
	if !validText(userID, id) {
		return nil, passkeyNotFound()
	}
	p, err := scanPasskey(s.db.pool.QueryRow(ctx, `DELETE FROM passkeys WHERE id = $1 AND user_id = $2 RETURNING `+passkeyColumns, id, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, passkeyNotFound()
	}
	if err != nil {
		return nil, wrap("delete passkey", err)
	}
	return p, nil
}

// UsePasskey implements keycard.PasskeyStore.
func (s *PasskeyStore) UsePasskey(ctx context.Context, id string, prevCount, signCount uint32, backupState bool, at time.Time) error {
	if !validText(id) {
		return passkeyNotFound()
	}
	// One statement: the row is updated only while its counter is the
	// one the caller checked; otherwise tell a missing row from a moved
	// counter.
	tag, err := s.db.pool.Exec(ctx, `UPDATE passkeys SET sign_count = $1, backup_state = $2, last_used_at = $3 WHERE id = $4 AND sign_count = $5`,
		int64(signCount), backupState, at, id, int64(prevCount))
	if err != nil {
		return wrap("use passkey", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var n int
	if err := s.db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM passkeys WHERE id = $1`, id).Scan(&n); err != nil {
		return wrap("use passkey", err)
	}
	if n == 0 {
		return passkeyNotFound()
	}
	return &keycard.Error{Code: keycard.ECONFLICT, Message: "The passkey's signature counter has moved."}
}

const passkeyChallengeColumns = `id, purpose, user_id, binding, state, created_at, expires_at`

// CreatePasskeyChallenge implements keycard.PasskeyStore.
func (s *PasskeyStore) CreatePasskeyChallenge(ctx context.Context, c *keycard.PasskeyChallenge) error {
	if c.ID == "" || len(c.State) == 0 {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Challenge id and state are required."}
	}
	if !validText(c.ID, string(c.Purpose), c.UserID, c.Binding) {
		return invalidText()
	}
	_, err := s.db.pool.Exec(ctx, `INSERT INTO passkey_challenges (`+passkeyChallengeColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		c.ID, c.Purpose, nullString(c.UserID), c.Binding, c.State, c.CreatedAt, c.ExpiresAt)
	switch pgCode(err) {
	case uniqueViolation:
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "Challenge already exists."}
	case "23514": // check_violation
		return &keycard.Error{Code: keycard.EINVALID, Message: "Unknown challenge purpose."}
	}
	return wrap("create passkey challenge", err)
}

func passkeyChallengeNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "This passkey request has expired or was already answered."}
}

// TakePasskeyChallenge implements keycard.PasskeyStore.
func (s *PasskeyStore) TakePasskeyChallenge(ctx context.Context, id string, at time.Time) (*keycard.PasskeyChallenge, error) {
	if !validText(id) {
		return nil, passkeyChallengeNotFound()
	}
	var c keycard.PasskeyChallenge
	var user *string
	err := s.db.pool.QueryRow(ctx, `DELETE FROM passkey_challenges WHERE id = $1 RETURNING `+passkeyChallengeColumns, id).
		Scan(&c.ID, &c.Purpose, &user, &c.Binding, &c.State, &c.CreatedAt, &c.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, passkeyChallengeNotFound()
	} else if err != nil {
		return nil, wrap("take passkey challenge", err)
	}
	if user != nil {
		c.UserID = *user
	}
	c.CreatedAt, c.ExpiresAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC()
	if !at.Before(c.ExpiresAt) {
		return nil, passkeyChallengeNotFound()
	}
	return &c, nil
}

// PrunePasskeyChallenges implements keycard.PasskeyStore.
func (s *PasskeyStore) PrunePasskeyChallenges(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM passkey_challenges WHERE expires_at < $1`, before)
	if err != nil {
		return 0, wrap("prune passkey challenges", err)
	}
	return tag.RowsAffected(), nil
}
