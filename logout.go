package keycard

import (
	"context"
	"time"
)

// LogoutState says where a back-channel logout delivery stands.
type LogoutState string

const (
	// LogoutPending: not yet delivered; it is claimed when due.
	LogoutPending LogoutState = "pending"
	// LogoutDelivered: the client answered 2xx.
	LogoutDelivered LogoutState = "delivered"
	// LogoutFailed: given up, after the last attempt or an answer that
	// retrying cannot change.
	LogoutFailed LogoutState = "failed"
)

// Valid reports whether s is one of the defined states.
func (s LogoutState) Valid() bool {
	switch s {
	case LogoutPending, LogoutDelivered, LogoutFailed:
		return true
	}
	return false
}

// LogoutDelivery is one back-channel logout (OpenID Connect Back-Channel
// Logout 1.0) owed to a client: a grant session of the client ended, and
// the client registered a back-channel logout URI.
//
// The store makes deliveries by itself, in the transaction that revokes
// the grant session (whatever revokes it), so that no way of ending a
// session can forget one; it keeps everything the logout token needs,
// since the session may be pruned, or deleted with its user, before the
// token is sent.
type LogoutDelivery struct {
	// SessionID is the grant session that ended. It identifies the
	// delivery: a grant session belongs to one client and ends once, so
	// it is owed one delivery.
	SessionID string
	ClientID  string
	// UserID is the logout token's sub.
	UserID string
	// BrowserSessionID is the logout token's sid: the grant session's
	// parent, the sid of the ID tokens the client got.
	BrowserSessionID string
	// Reason is the grant session's revoke reason (RevokeLogout, …).
	Reason string
	// EndedAt is when the grant session was revoked.
	EndedAt time.Time
	State   LogoutState
	// Attempts is how many times the delivery has been claimed.
	Attempts int
	// NextAttemptAt is, for a pending delivery, when it can next be
	// claimed: when it is due, or when the lease of the attempt under
	// way runs out.
	NextAttemptAt time.Time
	// LastError says why the last attempt failed; empty if none did.
	LastError string
	// UpdatedAt is the time of the last change: the end of the session,
	// or the last attempt's outcome.
	UpdatedAt time.Time
	// URI is the client's back-channel logout URI as the store read it
	// with the delivery (not stored with it, so that a changed URI is
	// used at once); empty when the client is gone or no longer has
	// one.
	URI string
}

// LogoutFilter selects a page of deliveries, the most recently ended
// first.
type LogoutFilter struct {
	// State and ClientID, when set, must match exactly.
	State    LogoutState
	ClientID string
	// Limit is the page size; see PageSize.
	Limit int
}

// LogoutStore keeps the outbox of back-channel logout deliveries.
// Deliveries are added by the session store (see LogoutDelivery) for
// every grant session that is revoked while its client has a back-channel
// logout URI, once per session; a worker claims due ones with a lease,
// sends them and records the outcome. Implementations are safe for
// concurrent use, also by several processes on one database: each due
// delivery is claimed by one caller at a time.
type LogoutStore interface {
	// ClaimLogouts claims up to limit (at most PageSize) pending
	// deliveries that are due at the given time, oldest due first: each
	// has its Attempts increased by one, and its NextAttemptAt set to at
	// plus lease, so that no other caller claims it until then. If the
	// claimer does not record an outcome by then (it crashed, or is
	// slow), the delivery is claimed again. URI is filled in.
	ClaimLogouts(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]*LogoutDelivery, error)

	// LogoutDelivered records that the attempt number attempt of the
	// delivery for the session succeeded at the given time. attempt is
	// the Attempts of the claimed delivery: the outcome of an attempt
	// whose lease ran out and was claimed again is refused with
	// ECONFLICT, as is one for a delivery no longer pending; an unknown
	// session is ENOTFOUND.
	LogoutDelivered(ctx context.Context, sessionID string, attempt int, at time.Time) error

	// RetryLogout records that the attempt failed at the given time with
	// the reason, and that the delivery is due again at next. Errors as
	// LogoutDelivered.
	RetryLogout(ctx context.Context, sessionID string, attempt int, at, next time.Time, reason string) error

	// GiveUpLogout records that the attempt failed with the reason, and
	// marks the delivery LogoutFailed at the given time: it is not tried
	// again. Errors as LogoutDelivered.
	GiveUpLogout(ctx context.Context, sessionID string, attempt int, at time.Time, reason string) error

	// ListLogouts returns a page of deliveries, the most recently ended
	// first, with URI filled in. It fails with EINVALID for an unknown
	// state.
	ListLogouts(ctx context.Context, f LogoutFilter) ([]*LogoutDelivery, error)

	// PruneLogouts deletes delivered and failed deliveries last updated
	// before the given time, and returns how many. Pending ones stay.
	PruneLogouts(ctx context.Context, before time.Time) (int64, error)
}
