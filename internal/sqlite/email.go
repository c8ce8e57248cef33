package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keycard-auth/keycard"
)

// EmailStore implements keycard.EmailStore.
type EmailStore struct{ db *DB }

var _ keycard.EmailStore = (*EmailStore)(nil)

const emailTokenColumns = `id, secret_hash, purpose, user_id, email, password_changed_at, created_at, expires_at, used_at`

func scanEmailToken(row scanner) (*keycard.EmailToken, error) {
	var t keycard.EmailToken
	var passwordChanged, created, expires, used sql.NullInt64
	if err := row.Scan(&t.ID, &t.SecretHash, &t.Purpose, &t.UserID, &t.Email, &passwordChanged, &created, &expires, &used); err != nil {
		return nil, err
	}
	t.PasswordChangedAt, t.CreatedAt, t.ExpiresAt, t.UsedAt = fromMicros(passwordChanged), fromMicros(created), fromMicros(expires), fromMicros(used)
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

// emailFree fails with ECONFLICT if a user other than exceptID has email.
func emailFree(ctx context.Context, tx txn, email, exceptID string) error {
	if email == "" {
		return nil
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE email = ? AND id != ?`, email, exceptID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return emailTaken()
	}
	return nil
}

// UserByEmail implements keycard.EmailStore.
func (s *EmailStore) UserByEmail(ctx context.Context, email string) (*keycard.User, error) {
	if email == "" {
		return nil, userNotFound()
	}
	u, err := scanUser(s.db.reader().QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, email))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, userNotFound()
	}
	return u, wrap("user by email", err)
}

// SetEmail implements keycard.EmailStore.
func (s *EmailStore) SetEmail(ctx context.Context, userID, email string, verified bool, at time.Time) (*keycard.User, error) {
	var u *keycard.User
	err := s.db.update(ctx, func(tx txn) error {
		var err error
		if u, err = getUser(ctx, tx, userID); err != nil {
			return err
		}
		if err := emailFree(ctx, tx, email, userID); err != nil {
			return err
		}
		if email != u.Email {
			if _, err := tx.ExecContext(ctx, `DELETE FROM email_tokens WHERE user_id = ? AND purpose = ? AND used_at IS NULL`,
				userID, keycard.PurposeVerifyEmail); err != nil {
				return err
			}
		}
		u.Email, u.EmailVerified, u.UpdatedAt = email, email != "" && verified, at
		_, err = tx.ExecContext(ctx, `UPDATE users SET email = ?, email_verified = ?, updated_at = ? WHERE id = ?`,
			nullString(u.Email), u.EmailVerified, micros(at), userID)
		if isConstraint(err) {
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
	err := s.db.update(ctx, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO email_tokens (`+emailTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.SecretHash, t.Purpose, t.UserID, t.Email, nullMicros(t.PasswordChangedAt),
			micros(t.CreatedAt), micros(t.ExpiresAt), nullMicros(t.UsedAt))
		switch {
		case isForeignKey(err):
			return userNotFound()
		case isConstraint(err):
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "Link already exists."}
		}
		return err
	})
	return wrap("create email token", err)
}

// EmailToken implements keycard.EmailStore.
func (s *EmailStore) EmailToken(ctx context.Context, id string) (*keycard.EmailToken, error) {
	t, err := scanEmailToken(s.db.reader().QueryRowContext(ctx, `SELECT `+emailTokenColumns+` FROM email_tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, emailTokenNotFound()
	}
	return t, wrap("email token", err)
}

// usableToken reads the token id of the purpose in tx and checks that it
// is unused and unexpired at the given time.
func usableToken(ctx context.Context, tx txn, id string, purpose keycard.EmailTokenPurpose, at time.Time) (*keycard.EmailToken, error) {
	t, err := scanEmailToken(tx.QueryRowContext(ctx, `SELECT `+emailTokenColumns+` FROM email_tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
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
	err := s.db.update(ctx, func(tx txn) error {
		t, err := usableToken(ctx, tx, id, keycard.PurposeVerifyEmail, at)
		if err != nil {
			return err
		}
		if u, err = getUser(ctx, tx, t.UserID); err != nil {
			return err
		}
		if u.Email != t.Email {
			return emailTokenRefused()
		}
		if _, err := tx.ExecContext(ctx, `UPDATE email_tokens SET used_at = ? WHERE id = ?`, micros(at), id); err != nil {
			return err
		}
		u.EmailVerified, u.UpdatedAt = true, at
		_, err = tx.ExecContext(ctx, `UPDATE users SET email_verified = 1, updated_at = ? WHERE id = ?`, micros(at), u.ID)
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
	err := s.db.update(ctx, func(tx txn) error {
		t, err := usableToken(ctx, tx, id, keycard.PurposeResetPassword, at)
		if err != nil {
			return err
		}
		if u, err = getUser(ctx, tx, t.UserID); err != nil {
			return err
		}
		if !u.PasswordChangedAt.Equal(t.PasswordChangedAt) {
			return emailTokenRefused()
		}
		if _, err := tx.ExecContext(ctx, `UPDATE email_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL`,
			micros(at), u.ID, keycard.PurposeResetPassword); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE id = ?`,
			hash, micros(at), micros(at), u.ID); err != nil {
			return err
		}
		u.PasswordHash, u.PasswordChangedAt, u.UpdatedAt = hash, at, at
		if revoked, err = revokeUserSessions(ctx, tx, u.ID, "", at, keycard.RevokePasswordChanged); err != nil {
			return err
		}
		return addRevocation(ctx, tx, &keycard.Revocation{Kind: keycard.RevokeUser, Value: u.ID, At: at})
	})
	if err != nil {
		return nil, nil, wrap("reset password", err)
	}
	return u, revoked, nil
}

// PruneEmailTokens implements keycard.EmailStore.
func (s *EmailStore) PruneEmailTokens(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM email_tokens WHERE expires_at < ?`, micros(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, wrap("prune email tokens", err)
}
