package keycard

import (
	"context"
	"time"
)

// RevocationKind says what a revocation feed entry revokes.
type RevocationKind string

const (
	// RevokeSession: Value is a session id (the access token's sid).
	RevokeSession RevocationKind = "session"
	// RevokeToken: Value is an access token id (jti).
	RevokeToken RevocationKind = "token"
	// RevokeUser: Value is a user id; tokens issued to it before At are
	// revoked (a cut-off: password changed, user disabled).
	RevokeUser RevocationKind = "user"
	// RevokeAllUsers: every user token issued before At is revoked (a
	// global cut-off); Value is empty.
	RevokeAllUsers RevocationKind = "all"
	// RevokeKey: Value is a key id; every token it signed is revoked.
	RevokeKey RevocationKind = "key"
)

// Valid reports whether k is one of the defined kinds.
func (k RevocationKind) Valid() bool {
	switch k {
	case RevokeSession, RevokeToken, RevokeUser, RevokeAllUsers, RevokeKey:
		return true
	}
	return false
}

// DefaultRevocationTTL is how long a feed entry stays in the feed when its
// store is not told otherwise: the default access-token lifetime (15
// minutes) plus the default verification leeway (30 seconds). After that no
// token the entry could match is still valid.
const DefaultRevocationTTL = 15*time.Minute + 30*time.Second

// Revocation is one entry of the revocation feed that verifiers follow
// (GET /v1/revocations?after=SEQ).
type Revocation struct {
	// Seq is assigned by the store, increasing in commit order.
	Seq   int64
	Kind  RevocationKind
	Value string
	// At is when the revocation happened; for RevokeUser and
	// RevokeAllUsers it is the cut-off.
	At time.Time
	// ExpiresAt is when the entry can no longer match a valid token: At
	// plus the access-token lifetime plus the verification leeway. The
	// entry is pruned after it.
	ExpiresAt time.Time
}

// RevocationStore keeps the revocation feed. Implementations are safe for
// concurrent use.
type RevocationStore interface {
	// AddRevocation appends r to the feed and sets r.Seq. A zero
	// r.ExpiresAt is set to r.At plus the store's revocation lifetime
	// (DefaultRevocationTTL unless the store was configured otherwise),
	// the lifetime that the entries a store appends by itself (session
	// revocations, cut-offs, key revocations) get too. It fails with
	// EINVALID for an unknown kind.
	AddRevocation(ctx context.Context, r *Revocation) error

	// Revocations returns up to limit entries (see PageSize) with Seq
	// greater than after, in Seq order.
	Revocations(ctx context.Context, after int64, limit int) ([]*Revocation, error)

	// HasRevocation reports whether the feed holds an entry of the kind
	// with the value, such as a RevokeToken entry for a jti. Entries that
	// PruneRevocations deleted are gone: by then no token they could
	// match is still valid.
	HasRevocation(ctx context.Context, kind RevocationKind, value string) (bool, error)

	// LastRevocationSeq returns the highest Seq ever assigned, 0 if none.
	LastRevocationSeq(ctx context.Context) (int64, error)

	// FirstRevocationSeq returns the lowest Seq still stored, 0 if the feed
	// is empty. Sequence numbers start at 1, so a first Seq above 1 means
	// entries were pruned: a follower whose cursor is below it minus one
	// has missed entries and must start again from a snapshot.
	FirstRevocationSeq(ctx context.Context) (int64, error)

	// PruneRevocations deletes entries whose ExpiresAt is before the given
	// time (normally now) — no token they could match is still valid —
	// and returns how many.
	PruneRevocations(ctx context.Context, before time.Time) (int64, error)
}
