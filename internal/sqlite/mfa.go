package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keycard-auth/keycard"
)

// MFAStore implements keycard.MFAStore.
type MFAStore struct{ db *DB }

var _ keycard.MFAStore = (*MFAStore)(nil)

func totpNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "No authenticator app is set up."}
}

// PutPendingTOTP implements keycard.MFAStore.
func (s *MFAStore) PutPendingTOTP(ctx context.Context, c *keycard.TOTPCredential) error {
	if c.UserID == "" || len(c.SecretSealed) == 0 {
		return &keycard.Error{Code: keycard.EINVALID, Message: "User and secret are required."}
	}
	err := s.db.update(ctx, func(tx txn) error {
		if _, err := getUser(ctx, tx, c.UserID); err != nil {
			return err
		}
		var confirmed sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT confirmed_at FROM totp_credentials WHERE user_id = ?`, c.UserID).Scan(&confirmed)
		switch {
		case err == nil && confirmed.Valid:
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "An authenticator app is already set up."}
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO totp_credentials (user_id, secret_sealed, created_at, confirmed_at, last_step) VALUES (?, ?, ?, NULL, -1)`,
			c.UserID, c.SecretSealed, micros(c.CreatedAt))
		return err
	})
	return wrap("put pending totp", err)
}

// TOTP implements keycard.MFAStore.
func (s *MFAStore) TOTP(ctx context.Context, userID string) (*keycard.TOTPCredential, error) {
	c := keycard.TOTPCredential{UserID: userID}
	var created, confirmed sql.NullInt64
	err := s.db.reader().QueryRowContext(ctx, `SELECT secret_sealed, created_at, confirmed_at, last_step FROM totp_credentials WHERE user_id = ?`, userID).
		Scan(&c.SecretSealed, &created, &confirmed, &c.LastStep)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, totpNotFound()
	} else if err != nil {
		return nil, wrap("totp", err)
	}
	c.CreatedAt, c.ConfirmedAt = fromMicros(created), fromMicros(confirmed)
	return &c, nil
}

// ConfirmTOTP implements keycard.MFAStore.
func (s *MFAStore) ConfirmTOTP(ctx context.Context, userID string, step int64, codes [][]byte, at time.Time) error {
	if err := keycard.CheckRecoveryCodeHashes(codes); err != nil {
		return err
	}
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE totp_credentials SET confirmed_at = ?, last_step = ? WHERE user_id = ? AND confirmed_at IS NULL`,
			micros(at), step, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return &keycard.Error{Code: keycard.ENOTFOUND, Message: "No authenticator app is waiting for confirmation."}
		}
		return replaceCodes(ctx, tx, userID, codes, at)
	})
	return wrap("confirm totp", err)
}

// UseTOTPStep implements keycard.MFAStore.
func (s *MFAStore) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	err := s.db.update(ctx, func(tx txn) error {
		var last int64
		var confirmed sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT last_step, confirmed_at FROM totp_credentials WHERE user_id = ?`, userID).Scan(&last, &confirmed)
		if errors.Is(err, sql.ErrNoRows) || err == nil && !confirmed.Valid {
			return totpNotFound()
		} else if err != nil {
			return err
		}
		if step <= last {
			return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "This code was already used."}
		}
		_, err = tx.ExecContext(ctx, `UPDATE totp_credentials SET last_step = ? WHERE user_id = ?`, step, userID)
		return err
	})
	return wrap("use totp step", err)
}

// DeleteTOTP implements keycard.MFAStore.
func (s *MFAStore) DeleteTOTP(ctx context.Context, userID string) error {
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM totp_credentials WHERE user_id = ?`, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return totpNotFound()
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID)
		return err
	})
	return wrap("delete totp", err)
}

// replaceCodes replaces the user's recovery codes in tx.
func replaceCodes(ctx context.Context, tx txn, userID string, codes [][]byte, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return err
	}
	for _, c := range codes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)`, userID, c, micros(at)); err != nil {
			if isForeignKey(err) {
				return userNotFound()
			}
			return err
		}
	}
	return nil
}

// ReplaceRecoveryCodes implements keycard.MFAStore.
func (s *MFAStore) ReplaceRecoveryCodes(ctx context.Context, userID string, codes [][]byte, at time.Time) error {
	if err := keycard.CheckRecoveryCodeHashes(codes); err != nil {
		return err
	}
	err := s.db.update(ctx, func(tx txn) error {
		if _, err := getUser(ctx, tx, userID); err != nil {
			return err
		}
		return replaceCodes(ctx, tx, userID, codes, at)
	})
	return wrap("replace recovery codes", err)
}

// UseRecoveryCode implements keycard.MFAStore.
func (s *MFAStore) UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error {
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`,
			micros(at), userID, hash)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "Unknown or used recovery code."}
		}
		return nil
	})
	return wrap("use recovery code", err)
}

// Factors implements keycard.MFAStore.
func (s *MFAStore) Factors(ctx context.Context, userID string) (keycard.MFAFactors, error) {
	var f keycard.MFAFactors
	err := s.db.reader().QueryRowContext(ctx, `SELECT `+factorColumns("?1"), userID).Scan(factorDest(&f)...)
	return f, wrap("second factors", err)
}

// factorColumns are the columns of keycard.MFAFactors for the user whose
// id is the SQL expression id, scanned by factorDest.
func factorColumns(id string) string {
	return `EXISTS (SELECT 1 FROM totp_credentials WHERE user_id = ` + id + ` AND confirmed_at IS NOT NULL),
		(SELECT COUNT(*) FROM recovery_codes WHERE user_id = ` + id + ` AND used_at IS NULL),
		(SELECT COUNT(*) FROM passkeys WHERE user_id = ` + id + `)`
}

func factorDest(f *keycard.MFAFactors) []any {
	return []any{&f.TOTP, &f.RecoveryCodesLeft, &f.Passkeys}
}

// RecoveryCodesLeft implements keycard.MFAStore.
func (s *MFAStore) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.db.reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`, userID).Scan(&n)
	return n, wrap("recovery codes left", err)
}
