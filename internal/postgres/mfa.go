package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

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
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		// Locking the user orders this against a concurrent enrolment.
		if _, err := getUser(ctx, tx, "id", c.UserID, true); err != nil {
			return err
		}
		var confirmed *time.Time
		err := tx.QueryRow(ctx, `SELECT confirmed_at FROM totp_credentials WHERE user_id = $1`, c.UserID).Scan(&confirmed)
		switch {
		case err == nil && confirmed != nil:
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "An authenticator app is already set up."}
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO totp_credentials (user_id, secret_sealed, created_at, confirmed_at, last_step) VALUES ($1, $2, $3, NULL, -1)
			ON CONFLICT (user_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed, created_at = EXCLUDED.created_at, confirmed_at = NULL, last_step = -1`,
			c.UserID, c.SecretSealed, c.CreatedAt)
		return err
	})
	return wrap("put pending totp", err)
}

// TOTP implements keycard.MFAStore.
func (s *MFAStore) TOTP(ctx context.Context, userID string) (*keycard.TOTPCredential, error) {
	if !validText(userID) {
		return nil, totpNotFound()
	}
	c := keycard.TOTPCredential{UserID: userID}
	var confirmed *time.Time
	err := s.db.reads().QueryRow(ctx, `SELECT secret_sealed, created_at, confirmed_at, last_step FROM totp_credentials WHERE user_id = $1`, userID).
		Scan(&c.SecretSealed, &c.CreatedAt, &confirmed, &c.LastStep)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, totpNotFound()
	} else if err != nil {
		return nil, wrap("totp", err)
	}
	c.CreatedAt, c.ConfirmedAt = c.CreatedAt.UTC(), fromNull(confirmed)
	return &c, nil
}

// ConfirmTOTP implements keycard.MFAStore.
func (s *MFAStore) ConfirmTOTP(ctx context.Context, userID string, step int64, codes [][]byte, at time.Time) error {
	if err := keycard.CheckRecoveryCodeHashes(codes); err != nil {
		return err
	}
	if !validText(userID) {
		return totpNotFound()
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE totp_credentials SET confirmed_at = $1, last_step = $2 WHERE user_id = $3 AND confirmed_at IS NULL`,
			at, step, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return &keycard.Error{Code: keycard.ENOTFOUND, Message: "No authenticator app is waiting for confirmation."}
		}
		return replaceCodes(ctx, tx, userID, codes, at)
	})
	return wrap("confirm totp", err)
}

// UseTOTPStep implements keycard.MFAStore. The conditional UPDATE is
// atomic: of two uses of one step, the second finds last_step already
// there.
func (s *MFAStore) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	if !validText(userID) {
		return totpNotFound()
	}
	tag, err := s.db.pool.Exec(ctx, `UPDATE totp_credentials SET last_step = $1 WHERE user_id = $2 AND confirmed_at IS NOT NULL AND last_step < $1`, step, userID)
	if err != nil {
		return wrap("use totp step", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	c, err := s.TOTP(ctx, userID)
	if err != nil {
		return err
	}
	if !c.Confirmed() {
		return totpNotFound()
	}
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "This code was already used."}
}

// DeleteTOTP implements keycard.MFAStore.
func (s *MFAStore) DeleteTOTP(ctx context.Context, userID string) error {
	if !validText(userID) {
		return totpNotFound()
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM totp_credentials WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return totpNotFound()
		}
		_, err = tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID)
		return err
	})
	return wrap("delete totp", err)
}

// replaceCodes replaces the user's recovery codes in tx.
func replaceCodes(ctx context.Context, tx pgx.Tx, userID string, codes [][]byte, at time.Time) error {
	if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
		return err
	}
	for _, c := range codes {
		if _, err := tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)`, userID, c, at); err != nil {
			if pgCode(err) == foreignKeyViolation {
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
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		if _, err := getUser(ctx, tx, "id", userID, true); err != nil {
			return err
		}
		return replaceCodes(ctx, tx, userID, codes, at)
	})
	return wrap("replace recovery codes", err)
}

// UseRecoveryCode implements keycard.MFAStore.
func (s *MFAStore) UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error {
	if !validText(userID) {
		return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "Unknown or used recovery code."}
	}
	tag, err := s.db.pool.Exec(ctx, `UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL`, at, userID, hash)
	if err != nil {
		return wrap("use recovery code", err)
	}
	if tag.RowsAffected() == 0 {
		return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "Unknown or used recovery code."}
	}
	return nil
}

// Factors implements keycard.MFAStore.
func (s *MFAStore) Factors(ctx context.Context, userID string) (keycard.MFAFactors, error) {
	var f keycard.MFAFactors
	if !validText(userID) {
		return f, nil
	}
	err := s.db.reads().QueryRow(ctx, `SELECT `+factorColumns("$1"), userID).Scan(factorDest(&f)...)
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
	if !validText(userID) {
		return 0, nil
	}
	var n int
	err := s.db.reads().QueryRow(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL`, userID).Scan(&n)
	return n, wrap("recovery codes left", err)
}
