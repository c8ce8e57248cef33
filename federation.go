package keycard

import (
	"context"
	"time"
)

// NoPassword is the PasswordHash of a user created by a sign-in at an
// upstream identity provider (docs/federation.md): no password verifies
// against it, so the user signs in only through a linked identity until
// they set a password with a reset link.
const NoPassword = "!federated"

// HasPassword reports whether the user can sign in with a password.
func (u *User) HasPassword() bool { return u.PasswordHash != "" && u.PasswordHash != NoPassword }

// Limits of a linked identity's fields, in bytes.
const (
	MaxProviderNameLen = 64
	MaxSubjectLen      = 255 // OpenID Connect Core section 2: sub is at most 255 ASCII characters
)

// FederatedIdentity links a user to their account at an upstream identity
// provider: the provider's name in Keycard's configuration and the
// subject the provider knows them by. A (Provider, Subject) pair is linked
// to at most one user.
type FederatedIdentity struct {
	Provider string
	Subject  string
	UserID   string
	// Email is the address the provider gave at the last sign-in, for
	// display on the account page; it proves nothing.
	Email      string
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// FederationStore keeps linked identities. Implementations are safe for
// concurrent use.
type FederationStore interface {
	// CreateFederatedUser inserts the user u (as UserStore.CreateUser,
	// with u.Email and u.EmailVerified as given) and links id to it, in
	// one transaction. It fails with ECONFLICT if the username, the
	// email or the identity is taken, and then writes nothing.
	CreateFederatedUser(ctx context.Context, u *User, id *FederatedIdentity) error
	// LinkIdentity links id to the existing user id.UserID. It fails
	// with ENOTFOUND if there is no such user and ECONFLICT if the
	// identity is already linked (to this user or another).
	LinkIdentity(ctx context.Context, id *FederatedIdentity) error
	// Identity returns the identity (provider, subject), or ENOTFOUND.
	Identity(ctx context.Context, provider, subject string) (*FederatedIdentity, error)
	// UserIdentities returns the user's identities ordered by provider,
	// then subject.
	UserIdentities(ctx context.Context, userID string) ([]*FederatedIdentity, error)
	// IdentityUsed records a sign-in through the identity at the given
	// time, and the address the provider gave (see Email). ENOTFOUND if
	// it is not linked.
	IdentityUsed(ctx context.Context, provider, subject, email string, at time.Time) error
	// UnlinkIdentity removes the user's identity (provider, subject) in
	// one transaction, unless it is the user's last way to sign in: a
	// user without a password (see User.HasPassword) keeps their last
	// identity (EFORBIDDEN). ENOTFOUND if the user has no such identity.
	UnlinkIdentity(ctx context.Context, userID, provider, subject string) error
	// UpstreamSessions returns the ids of the live sessions (not
	// revoked, not expired at the given time) started by a sign-in at
	// provider whose upstream session id is sid or, when sid is empty,
	// whose upstream subject is subject (Session.IdP, IdPSubject and
	// IdPSessionID): the sessions a back-channel logout from the
	// provider ends.
	UpstreamSessions(ctx context.Context, provider, subject, sid string, at time.Time) ([]string, error)
}
