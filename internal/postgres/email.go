package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
)

// EmailStore implements keycard.EmailStore.
type EmailStore struct{ db *DB }

var _ keycard.EmailStore = (*EmailStore)(nil)

const emailTokenColumns = `id, secret_hash, purpose, user_id, email, password_changed_at, created_at, expires_at, used_at`

func scanEmailToken(row pgx.Row) (*keycard.EmailToken, error) {
	var t keycard.EmailToken
	var passwordChanged, used *time.Time
	if err := row.Scan(&t.ID, &t.SecretHash, &t.Purpose, &t.UserID, &t.Email, &passwordChanged, &t.CreatedAt, &t.ExpiresAt, &used); err != nil {
		return nil, err
	}
	t.PasswordChangedAt, t.UsedAt = fromNull(passwordChanged), fromNull(used)
	t.CreatedAt, t.ExpiresAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	return &t, nil
}

func emailTaken() error {
	return &keycard.Error{Code: keycard.ECONFLICT, Message: "Email address is already taken."}
}

func emailTokenNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Link not found."}
}

func emailTokenRefused() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "This link has expired or has already been used."}
}

// UserByEmail implements keycard.EmailStore.
func (s *EmailStore) UserByEmail(ctx context.Context, email string) (*keycard.User, error) {
	if email == "" {
		return nil, userNotFound()
	}
	u, err := getUser(ctx, s.db.reads(), "email", email, false)
	return u, wrap("user by email", err)
}

// SetEmail implements keycard.EmailStore.
func (s *EmailStore) SetEmail(ctx context.Context, userID, email string, verified bool, at time.Time) (*keycard.User, error) {
	if !validText(email) {
		return nil, invalidText()
	}
	var u *keycard.User
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		var err error
		if u, err = getUser(ctx, tx, "id", userID, true); err != nil {
			return err
		}
		if email != u.Email {
			if _, err := tx.Exec(ctx, `DELETE FROM email_tokens WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL`,
				userID, keycard.PurposeVerifyEmail); err != nil {
				return err
			}
		}
		u.Email, u.EmailVerified, u.UpdatedAt = email, email != "" && verified, at
		_, err = tx.Exec(ctx, `UPDATE users SET email = $1, email_verified = $2, updated_at = $3 WHERE id = $4`,
			nullString(u.Email), u.EmailVerified, at, userID)
		if pgCode(err) == uniqueViolation {
			return emailTaken()
		}
		return err
	})
	if err != nil {
		return nil, wrap("set email", err)
	}
	return u, nil
}

// CreateEmailToken implements keycard.EmailStore.
func (s *EmailStore) CreateEmailToken(ctx context.Context, t *keycard.EmailToken) error {
	if t.ID == "" || len(t.SecretHash) == 0 || t.UserID == "" || t.Email == "" ||
		(t.Purpose != keycard.PurposeVerifyEmail && t.Purpose != keycard.PurposeResetPassword) {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Link id, secret hash, purpose, user and email are required."}
	}
	if !validText(t.ID, t.Email) {
		return invalidText()
	}
	if !validText(t.UserID) {
		return userNotFound()
	}
	_, err := s.db.pool.Exec(ctx, `INSERT INTO email_tokens (`+emailTokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, t.SecretHash, t.Purpose, t.UserID, t.Email, nullTime(t.PasswordChangedAt), t.CreatedAt, t.ExpiresAt, nullTime(t.UsedAt))
	switch {
	case pgCode(err) == foreignKeyViolation:
		return userNotFound()
	case pgCode(err) == uniqueViolation:
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "Link already exists."}
	}
	return wrap("create email token", err)
}

// EmailToken implements keycard.EmailStore.
func (s *EmailStore) EmailToken(ctx context.Context, id string) (*keycard.EmailToken, error) {
	if !validText(id) {
		return nil, emailTokenNotFound()
	}
	t, err := scanEmailToken(s.db.reads().QueryRow(ctx, `SELECT `+emailTokenColumns+` FROM email_tokens WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, emailTokenNotFound()
	}
	return t, wrap("email token", err)
}

// usableToken locks the token id of the purpose in tx and checks that it
// is unused and unexpired at the given time.
func usableToken(ctx context.Context, tx pgx.Tx, id string, purpose keycard.EmailTokenPurpose, at time.Time) (*keycard.EmailToken, error) {
	if !validText(id) {
		return nil, emailTokenNotFound()
	}
	t, err := scanEmailToken(tx.QueryRow(ctx, `SELECT `+emailTokenColumns+` FROM email_tokens WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, emailTokenNotFound()
	} else if err != nil {
		return nil, err
	}
	if t.Purpose != purpose {
		return nil, emailTokenNotFound()
	}
	if !t.UsedAt.IsZero() || !at.Before(t.ExpiresAt) {
		return nil, emailTokenRefused()
	}
	return t, nil
}

// VerifyEmail implements keycard.EmailStore.
func (s *EmailStore) VerifyEmail(ctx context.Context, id string, at time.Time) (*keycard.User, error) {
	var u *keycard.User
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		t, err := usableToken(ctx, tx, id, keycard.PurposeVerifyEmail, at)
		if err != nil {
			return err
		}
		if u, err = getUser(ctx, tx, "id", t.UserID, true); err != nil {
			return err
		}
		if u.Email != t.Email {
			return emailTokenRefused()
		}
		if _, err := tx.Exec(ctx, `UPDATE email_tokens SET used_at = $1 WHERE id = $2`, at, id); err != nil {
			return err
		}
		u.EmailVerified, u.UpdatedAt = true, at
		_, err = tx.Exec(ctx, `UPDATE users SET email_verified = true, updated_at = $1 WHERE id = $2`, at, u.ID)
		return err
	})
	if err != nil {
		return nil, wrap("verify email", err)
	}
	return u, nil
}

// ResetPassword implements keycard.EmailStore.
func (s *EmailStore) ResetPassword(ctx context.Context, id, hash string, at time.Time) (*keycard.User, []string, error) {
	if hash == "" {
		return nil, nil, &keycard.Error{Code: keycard.EINVALID, Message: "Password hash is required."}
	}
	var u *keycard.User
	var revoked []string
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		revoked = nil
		t, err := usableToken(ctx, tx, id, keycard.PurposeResetPassword, at)
		if err != nil {
			return err
		}
		if u, err = getUser(ctx, tx, "id", t.UserID, true); err != nil {
			return err
		}
		if !u.PasswordChangedAt.Equal(t.PasswordChangedAt) {
			return emailTokenRefused()
		}
		if _, err := tx.Exec(ctx, `UPDATE email_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL`,
			at, u.ID, keycard.PurposeResetPassword); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE id = $3`,
			hash, at, u.ID); err != nil {
			return err
		}
		u.PasswordHash, u.PasswordChangedAt, u.UpdatedAt = hash, at, at
		revs, err := revokeUserSessions(ctx, tx, u.ID, "", at, keycard.RevokePasswordChanged)
		if err != nil {
			return err
		}
		revoked = revokedIDs(revs)
		revs = append(revs, &keycard.Revocation{Kind: keycard.RevokeUser, Value: u.ID, At: at})
		return appendFeed(ctx, tx, s.db.revocationTTL, revs...)
	})
	if err != nil {
		return nil, nil, wrap("reset password", err)
	}
	return u, revoked, nil
}

// PruneEmailTokens implements keycard.EmailStore.
func (s *EmailStore) PruneEmailTokens(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM email_tokens WHERE expires_at < $1`, before)
	if err != nil {
		return 0, wrap("prune email tokens", err)
	}
	return tag.RowsAffected(), nil
}
