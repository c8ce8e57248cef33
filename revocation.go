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
	// revoked.
	RevokeUser RevocationKind = "user"
	// RevokeAllUsers: every token issued before At is revoked; Value is
	// empty.
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

// Revocation is one entry of the revocation feed that verifiers follow
// (GET /v1/revocations?after=SEQ).
type Revocation struct {
	// Seq is assigned by the store, increasing in commit order.
	Seq   int64
	Kind  RevocationKind
	Value string
	At    time.Time
}

// RevocationStore keeps the revocation feed. Implementations are safe for
// concurrent use.
type RevocationStore interface {
	// AddRevocation appends r to the feed and sets r.Seq. It fails with
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

	// PruneRevocations deletes entries with At before the given time, once
	// no token they could match can still be valid, and returns how many.
	PruneRevocations(ctx context.Context, before time.Time) (int64, error)
}
