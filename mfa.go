package keycard

import (
	"bytes"
	"context"
	"time"
)

// RecoveryCodeCount is how many recovery codes a user gets at a time.
const RecoveryCodeCount = 10

// TOTPCredential is a user's authenticator-app second factor (RFC 6238).
// A user has at most one. It is pending from enrolment until the user
// confirms it with a code; only a confirmed credential is asked for at
// sign-in.
type TOTPCredential struct {
	UserID string
	// SecretSealed is the shared secret encrypted under the master key;
	// the store never sees it in the clear.
	SecretSealed []byte
	CreatedAt    time.Time
	// ConfirmedAt is zero while the credential is pending.
	ConfirmedAt time.Time
	// LastStep is the last time step (RFC 6238 section 4) whose code was
	// accepted: a code of that step or an earlier one is refused, so each
	// code works at most once (section 5.2).
	LastStep int64
}

// Confirmed reports whether the credential is active.
func (c *TOTPCredential) Confirmed() bool { return !c.ConfirmedAt.IsZero() }

// MFAStore keeps users' second factors: their TOTP credential and their
// recovery codes (only hashes). Implementations are safe for concurrent
// use. Deleting a user deletes its second factors.
type MFAStore interface {
	// PutPendingTOTP stores c as the user's pending TOTP credential,
	// replacing a pending one. It fails with ECONFLICT if the user has a
	// confirmed credential, ENOTFOUND for an unknown user, and EINVALID
	// for an empty user or secret.
	PutPendingTOTP(ctx context.Context, c *TOTPCredential) error

	// TOTP returns the user's TOTP credential, pending or confirmed, or
	// an ENOTFOUND error.
	TOTP(ctx context.Context, userID string) (*TOTPCredential, error)

	// ConfirmTOTP makes the user's pending credential active, in one
	// transaction: ConfirmedAt and LastStep (the step of the code that
	// confirmed it) are set, and the user's recovery codes are replaced
	// by codes (their hashes), like ReplaceRecoveryCodes. It fails with
	// ENOTFOUND when the user has no pending credential (none, or
	// already confirmed).
	ConfirmTOTP(ctx context.Context, userID string, step int64, codes [][]byte, at time.Time) error

	// UseTOTPStep records that a code of step was accepted for the
	// user's confirmed credential, only if step is later than its
	// LastStep: of two uses of one code, concurrent or not, exactly one
	// succeeds. It fails with EUNAUTHORIZED for a step not later than
	// LastStep, and ENOTFOUND when the user has no confirmed credential.
	UseTOTPStep(ctx context.Context, userID string, step int64) error

	// DeleteTOTP deletes the user's TOTP credential, pending or
	// confirmed, with the user's recovery codes, in one transaction. It
	// fails with ENOTFOUND when the user has no credential.
	DeleteTOTP(ctx context.Context, userID string) error

	// ReplaceRecoveryCodes replaces every recovery code of the user,
	// used or not, by codes (their hashes), in one transaction. It fails
	// with ENOTFOUND for an unknown user and EINVALID for an empty or
	// repeated hash.
	ReplaceRecoveryCodes(ctx context.Context, userID string, codes [][]byte, at time.Time) error

	// UseRecoveryCode marks the user's unused recovery code with this
	// hash used at the given time. Of two uses of one code, exactly one
	// succeeds. It fails with EUNAUTHORIZED when the user has no such
	// unused code.
	UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error

	// RecoveryCodesLeft returns how many unused recovery codes the user
	// has.
	RecoveryCodesLeft(ctx context.Context, userID string) (int, error)

	// Factors returns the second factors the user has, in one read: the
	// MFA step of every sign-in asks. An unknown user has none.
	Factors(ctx context.Context, userID string) (MFAFactors, error)
}

// MFAFactors is what MFAStore.Factors returns: the second factors a user
// has.
type MFAFactors struct {
	// TOTP is whether the user has a confirmed TOTP credential (a
	// pending one does not count).
	TOTP bool
	// RecoveryCodesLeft is how many unused recovery codes the user has.
	RecoveryCodesLeft int
	// Passkeys is how many passkeys the user has (PasskeyStore).
	Passkeys int
}

// CheckRecoveryCodeHashes returns an EINVALID error when a hash is empty
// or repeated: the stores' check of MFAStore.ConfirmTOTP and
// ReplaceRecoveryCodes.
func CheckRecoveryCodeHashes(codes [][]byte) error {
	for i, c := range codes {
		if len(c) == 0 {
			return &Error{Code: EINVALID, Message: "A recovery code hash is empty."}
		}
		for _, d := range codes[:i] {
			if bytes.Equal(c, d) {
				return &Error{Code: EINVALID, Message: "A recovery code hash is repeated."}
			}
		}
	}
	return nil
}
