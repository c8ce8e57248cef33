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
	// UpstreamProviderStore keeps the providers added at run time.
	UpstreamProviderStore
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

// UpstreamProvider is an upstream identity provider added at run time
// through the admin API (docs/federation.md), beside those of the
// configuration file. The store keeps its configuration as opaque JSON
// (internal/federation's Config without the client secret) and the client
// secret sealed under the master key; nothing here is ever the secret in
// clear.
type UpstreamProvider struct {
	Name string
	// Config is the provider's configuration as JSON, without the
	// client secret.
	Config []byte
	// SealedSecret is the client secret sealed under the master key;
	// nil for a public registration (PKCE only).
	SealedSecret []byte
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// MaxProviderConfigLen bounds UpstreamProvider.Config, in bytes.
const MaxProviderConfigLen = 64 << 10

// UpstreamProviderStore keeps the providers added at run time.
// Implementations are safe for concurrent use.
type UpstreamProviderStore interface {
	// CreateUpstreamProvider inserts p; ECONFLICT if the name is taken.
	CreateUpstreamProvider(ctx context.Context, p *UpstreamProvider) error
	// UpdateUpstreamProvider replaces the configuration, sealed secret
	// and UpdatedAt of the provider p.Name (CreatedAt is kept);
	// ENOTFOUND if there is none.
	UpdateUpstreamProvider(ctx context.Context, p *UpstreamProvider) error
	// DeleteUpstreamProvider removes the provider; ENOTFOUND if there
	// is none. Identities linked through it stay (a provider added
	// again under the same name finds them).
	DeleteUpstreamProvider(ctx context.Context, name string) error
	// UpstreamProvider returns the provider named name, or ENOTFOUND.
	UpstreamProvider(ctx context.Context, name string) (*UpstreamProvider, error)
	// UpstreamProviders returns every provider, ordered by name.
	UpstreamProviders(ctx context.Context) ([]*UpstreamProvider, error)
}
