package keycard

import (
	"context"
	"slices"
	"time"
)

// Username limits, in bytes of the normalized form.
const (
	MinUsernameLen = 1
	MaxUsernameLen = 254 // the longest e-mail address, so addresses fit
)

// User is an account that can log in with a password.
type User struct {
	// ID is the stable, opaque identifier, used as the access token's sub.
	ID string
	// Username is the name as the user registered it, for display.
	Username string
	// NormalizedUsername is the form usernames are compared and looked up
	// by; it is unique among users. It is computed by the caller (see
	// docs/decisions/storage.md); stores treat it as an opaque key.
	NormalizedUsername string
	// PasswordHash is the argon2id hash in PHC string format.
	PasswordHash string
	// Roles are the user's roles, such as "admin", copied into access tokens.
	Roles []string
	// Disabled users cannot log in or refresh.
	Disabled bool
	// Email is the user's email address in its normalized form (see
	// docs/decisions/accounts.md), unique among users; empty when the
	// user has none. Like NormalizedUsername, it is normalized by the
	// caller and stores treat it as an opaque key.
	Email string
	// EmailVerified reports whether the user proved they receive mail
	// at Email (a verification link). Changing Email clears it.
	EmailVerified bool

	CreatedAt         time.Time
	UpdatedAt         time.Time
	PasswordChangedAt time.Time
}

// HasRole reports whether the user has the role.
func (u *User) HasRole(role string) bool { return slices.Contains(u.Roles, role) }

// UserUpdate lists the fields of a user to change; nil fields are left as
// they are.
type UserUpdate struct {
	Roles    *[]string
	Disabled *bool
}

// UserFilter selects a page of users, ordered by NormalizedUsername.
type UserFilter struct {
	// After, when set, starts the page after the user with this
	// normalized username (the last one of the previous page).
	After string
	// Prefix, when set, selects only users whose NormalizedUsername
	// starts with it (compared byte for byte, so the caller normalizes
	// it first).
	Prefix string
	// Limit is the page size; 0 means DefaultPageSize, and it is capped
	// at MaxPageSize.
	Limit int
}

// Page sizes for the List… methods of the stores.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// PageSize returns limit clamped to (0, MaxPageSize], with 0 or less
// meaning DefaultPageSize. Stores use it for every Limit field.
func PageSize(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageSize
	case limit > MaxPageSize:
		return MaxPageSize
	}
	return limit
}

// UserStore keeps users. Implementations are safe for concurrent use.
type UserStore interface {
	// CreateUser inserts u. It fails with ECONFLICT if the ID, the
	// NormalizedUsername or the Email (when not empty) is taken, and with EINVALID if ID,
	// NormalizedUsername or PasswordHash is empty.
	CreateUser(ctx context.Context, u *User) error

	// UserByID returns the user, or an ENOTFOUND error.
	UserByID(ctx context.Context, id string) (*User, error)

	// UserByUsername returns the user with the normalized username, or an
	// ENOTFOUND error.
	UserByUsername(ctx context.Context, normalized string) (*User, error)

	// SignInUser is UserByUsername with the user's second factors
	// (MFAStore.Factors) read by the same statement: a password sign-in's
	// one read before its hash.
	SignInUser(ctx context.Context, normalized string) (*User, MFAFactors, error)

	// ListUsers returns a page of users ordered by normalized username.
	ListUsers(ctx context.Context, f UserFilter) ([]*User, error)

	// UpdateUser changes the fields set in upd and UpdatedAt, and returns
	// the updated user. Disabling a user also revokes all of its live
	// sessions with reason RevokeUserDisabled and appends a RevokeUser
	// cut-off at the given time to the revocation feed, in the same
	// transaction.
	UpdateUser(ctx context.Context, id string, upd UserUpdate, at time.Time) (*User, error)

	// ChangePassword sets a new password hash and PasswordChangedAt, and
	// in the same transaction revokes every live session of the user
	// except keepSessionID (which may be empty) with reason
	// RevokePasswordChanged, and appends a RevokeUser cut-off at the given
	// time to the revocation feed. It returns the ids of the revoked
	// sessions.
	ChangePassword(ctx context.Context, id, hash, keepSessionID string, at time.Time) ([]string, error)

	// RehashPassword replaces the password hash with newHash only if it
	// is still oldHash: the parameter upgrade after a successful login,
	// which must not undo a concurrent password change. It reports
	// whether the hash was replaced. Sessions and PasswordChangedAt are
	// left alone.
	RehashPassword(ctx context.Context, id, oldHash, newHash string, at time.Time) (bool, error)

	// DeleteUser deletes the user, in one transaction: it first revokes
	// every live session of the user with reason RevokeUserDeleted (so
	// the revocation feed tells verifiers), then deletes the user with
	// its sessions and refresh tokens. It returns the ids of the revoked
	// sessions, and fails with ENOTFOUND for an unknown user.
	DeleteUser(ctx context.Context, id string, at time.Time) ([]string, error)
}
