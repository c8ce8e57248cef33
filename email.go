package keycard

import (
	"context"
	"time"
)

// MaxEmailLen is the longest email address a user can have, in bytes: the
// longest address that fits an SMTP path (RFC 5321 section 4.5.3.1.3,
// 256 octets with its angle brackets).
const MaxEmailLen = 254

// Lifetimes of the links sent by email.
const (
	EmailVerifyLifetime   = 24 * time.Hour
	PasswordResetLifetime = 30 * time.Minute
)

// EmailTokenPurpose says what an EmailToken proves.
type EmailTokenPurpose string

const (
	// PurposeVerifyEmail: the holder receives mail at EmailToken.Email.
	PurposeVerifyEmail EmailTokenPurpose = "verify_email"
	// PurposeResetPassword: the holder may set the user's password once.
	PurposeResetPassword EmailTokenPurpose = "reset_password"
)

// EmailToken is the stored half of a link sent by email: the link holds
// "<id>.<secret>" (made like a refresh token, by NewOpaqueToken) and the
// store keeps the id and the SHA-256 of the secret.
type EmailToken struct {
	ID         string
	SecretHash []byte
	Purpose    EmailTokenPurpose
	UserID     string
	// Email is the address the link was sent to: a verification proves
	// this address, and only while it is still the user's.
	Email string
	// PasswordChangedAt is, for a password reset, the user's
	// PasswordChangedAt when the link was made: the link is good only
	// while the password has not changed since.
	PasswordChangedAt time.Time
	CreatedAt         time.Time
	ExpiresAt         time.Time
	// UsedAt is zero until the link is used.
	UsedAt time.Time
}

// EmailStore keeps users' email addresses and the single-use links sent
// to them. Implementations are safe for concurrent use.
type EmailStore interface {
	// UserByEmail returns the user with this normalized email address,
	// or an ENOTFOUND error (also for an empty address).
	UserByEmail(ctx context.Context, email string) (*User, error)

	// SetEmail sets the user's email address (empty removes it) with the
	// verified flag, and UpdatedAt, and returns the updated user. When
	// the address changes, the user's unused verification links are
	// deleted in the same transaction. It fails with ENOTFOUND for an
	// unknown user and ECONFLICT if another user has the address.
	SetEmail(ctx context.Context, userID, email string, verified bool, at time.Time) (*User, error)

	// CreateEmailToken inserts t. It fails with ECONFLICT if the id is
	// taken, ENOTFOUND if the user does not exist, and EINVALID if the
	// id, secret hash, user or email is empty or the purpose is unknown.
	// A token goes with its user: deleting the user deletes it.
	CreateEmailToken(ctx context.Context, t *EmailToken) error

	// EmailToken returns the token with this id, used or not, or an
	// ENOTFOUND error.
	EmailToken(ctx context.Context, id string) (*EmailToken, error)

	// VerifyEmail uses the verification token id, in one transaction: if
	// it is a PurposeVerifyEmail token, unused, unexpired at the given
	// time, and its Email is still the user's, the token is marked used
	// and the user's EmailVerified set; the updated user is returned.
	// It fails with ENOTFOUND for an unknown token or one of another
	// purpose, and EUNAUTHORIZED for a used or expired token or one
	// whose address is no longer the user's. Of concurrent uses of one
	// token, exactly one succeeds.
	VerifyEmail(ctx context.Context, id string, at time.Time) (*User, error)

	// ResetPassword uses the password-reset token id, in one
	// transaction: if it is a PurposeResetPassword token, unused,
	// unexpired at the given time, and the user's PasswordChangedAt is
	// still the token's, it sets the password hash and PasswordChangedAt
	// like UserStore.ChangePassword (revoking every live session of the
	// user with reason RevokePasswordChanged and appending a RevokeUser
	// cut-off to the feed), and marks every unused reset token of the
	// user used. It returns the user as updated and the ids of the
	// revoked sessions. It fails with ENOTFOUND for an unknown token or
	// one of another purpose, EUNAUTHORIZED for a used or expired token
	// or a password changed since it was made, and EINVALID for an empty
	// hash. Of concurrent uses of one token, exactly one succeeds.
	ResetPassword(ctx context.Context, id, hash string, at time.Time) (*User, []string, error)

	// PruneEmailTokens deletes tokens, used or not, that expired before
	// the given time, and returns how many.
	PruneEmailTokens(ctx context.Context, before time.Time) (int64, error)
}
