package keycard

import (
	"context"
	"crypto/subtle"
	"time"
)

// Session defaults (docs/architecture.md, "Tokens").
const (
	DefaultIdleTimeout     = 7 * 24 * time.Hour
	DefaultSessionLifetime = 30 * 24 * time.Hour
)

// Reasons recorded when a session is revoked.
const (
	RevokeLogout          = "logout"
	RevokeLogoutAll       = "logout_all"
	RevokePasswordChanged = "password_changed"
	RevokeUserDisabled    = "user_disabled"
	RevokeUserDeleted     = "user_deleted"
	RevokeTokenReuse      = "refresh_token_reuse" // theft detected by rotation
	RevokeAdmin           = "admin"
	RevokeAll             = "revoke_all"       // every session of every user
	RevokeTokenRevocation = "token_revocation" // its refresh token was revoked (RFC 7009)
	RevokeSessionLimit    = "session_limit"    // a newer login went past the user's session cap
	RevokeParentEnded     = "parent_ended"     // the browser session it was granted through ended
	RevokeCodeReuse       = "code_reuse"       // its authorization code was presented again (RFC 6749 section 4.1.2)
	RevokeConsentRevoked  = "consent_revoked"  // the user took back the client's access
	RevokeClientDeleted   = "client_deleted"   // its client was deleted
	RevokeUpstreamLogout  = "upstream_logout"  // the upstream identity provider it signed in through logged the user out
)

// Session is one login: a family of refresh tokens of which at most one is
// live at a time.
//
// A session that an application got through the authorization endpoint
// (OpenID Connect) is a grant session: it has the browser session it was
// granted through as its parent and the application's client id, and it
// ends when its parent ends. Its access tokens carry its own id as sid, so
// that one application's tokens can be revoked alone; the ID tokens carry
// the parent's, the browser's single sign-on session.
type Session struct {
	ID     string
	UserID string
	// ParentID is the browser session a grant session was granted
	// through; empty for a session of its own (a sign-in).
	ParentID string
	// ClientID is the OAuth client of a grant session; empty for
	// Keycard's own sign-ins.
	ClientID string
	// Scope is the space-separated scope granted to a grant session's
	// tokens; empty for Keycard's own sign-ins, whose scope comes from
	// the user's roles.
	Scope string
	// CreatedAt is when the session began.
	CreatedAt time.Time
	// AuthTime is when the user authenticated: CreatedAt for a sign-in,
	// the parent's AuthTime for a grant session. Zero is read as
	// CreatedAt.
	AuthTime time.Time
	// AMR lists the authentication methods of that sign-in (RFC 8176:
	// "pwd", "otp", "hwk", …).
	AMR []string
	// LastUsedAt is the time of the last refresh.
	LastUsedAt time.Time
	UserAgent  string
	ClientAddr string
	// IdleTimeout ends the session when it is not refreshed for this long.
	IdleTimeout time.Duration
	// ExpiresAt is the absolute end of the session, however it is used.
	ExpiresAt time.Time
	// RevokedAt is zero while the session is not revoked.
	RevokedAt    time.Time
	RevokeReason string
	// DPoPJKT is the RFC 7638 thumbprint of the DPoP key a public
	// client's grant session is bound to (RFC 9449 section 5): its
	// refresh token is honoured only with a proof signed by that key.
	// Empty for an unbound session.
	DPoPJKT string
	// IdP is the name of the upstream identity provider the sign-in went
	// through (docs/federation.md), empty for a sign-in at Keycard; a
	// grant session has its parent's. IdPSubject and IdPSessionID are
	// the user's subject at that provider and the provider's session id
	// (the ID token's sid, if it sent one), which a back-channel logout
	// from the provider names.
	IdP          string
	IdPSubject   string
	IdPSessionID string
}

// AuthenticatedAt returns AuthTime, or CreatedAt when it is zero.
func (s *Session) AuthenticatedAt() time.Time {
	if s.AuthTime.IsZero() {
		return s.CreatedAt
	}
	return s.AuthTime
}

// Revoked reports whether the session has been revoked.
func (s *Session) Revoked() bool { return !s.RevokedAt.IsZero() }

// IdleExpiresAt returns when the session ends if it is not used again.
func (s *Session) IdleExpiresAt() time.Time { return s.LastUsedAt.Add(s.IdleTimeout) }

// Active reports whether the session is usable at now: not revoked, not
// idle for IdleTimeout or longer, and before ExpiresAt.
func (s *Session) Active(now time.Time) bool {
	return !s.Revoked() && now.Before(s.ExpiresAt) && now.Before(s.IdleExpiresAt())
}

// RefreshToken is the stored half of an opaque refresh token
// "<id>.<secret>" (see FormatRefreshToken): its id and the SHA-256 of its
// secret, never the secret itself.
type RefreshToken struct {
	ID         string
	SessionID  string
	SecretHash []byte
	CreatedAt  time.Time
	// RotatedAt is zero while the token is live.
	RotatedAt time.Time
	// SuccessorID is the token that replaced this one at RotatedAt.
	SuccessorID string
	// SuccessorSealed is the successor's full token string encrypted under
	// the master key, kept only for the rotation grace window so that a
	// repeated request with this token can be answered with the same
	// successor. It is nil once cleared (see SessionStore.PruneSessions).
	SuccessorSealed []byte
}

// Live reports whether the token has not been rotated.
func (t *RefreshToken) Live() bool { return t.RotatedAt.IsZero() }

// RotateOutcome says what SessionStore.RotateRefreshToken did.
type RotateOutcome int

const (
	// Rotated: the presented token was live; it is now rotated and the
	// successor from the request is the session's live token.
	Rotated RotateOutcome = iota + 1
	// Replayed: the presented token was rotated within the grace window;
	// nothing changed and the result carries the existing successor, whose
	// token string is in Presented.SuccessorSealed.
	Replayed
	// TheftDetected: the presented token was rotated before the grace
	// window; the whole session has now been revoked with reason
	// RevokeTokenReuse. The caller must refuse the request and record the
	// event.
	TheftDetected
)

// String returns the outcome's name.
func (o RotateOutcome) String() string {
	switch o {
	case Rotated:
		return "rotated"
	case Replayed:
		return "replayed"
	case TheftDetected:
		return "theft_detected"
	}
	return "unknown"
}

// RotateRequest asks SessionStore.RotateRefreshToken to rotate one token.
type RotateRequest struct {
	// TokenID and SecretHash identify the presented token; a secret hash
	// that does not match is treated as an unknown token.
	TokenID    string
	SecretHash []byte
	// Now is the time of the request.
	Now time.Time
	// Grace is the window after a rotation during which the rotated token
	// is still answered with its successor (DefaultRotationGrace).
	Grace time.Duration
	// Successor is the new token to make live if the presented one is
	// live: ID, SecretHash (SessionID and CreatedAt are filled in).
	Successor RefreshToken
	// SuccessorSealed is Successor's token string encrypted under the
	// master key, stored on the presented token for the grace window.
	SuccessorSealed []byte
	// Audit, when not nil, is appended to the audit log in the same
	// transaction if the outcome is Rotated, so that every real rotation is
	// recorded and nothing is recorded for one that did not happen. Its
	// Actor and Subject, when empty, are set to the session's user.
	Audit *AuditEvent
	// WithUser asks for the session's user in RotateResult.User, read in
	// the rotation's transaction, so that the caller needs no second read
	// to mint an access token.
	WithUser bool
	// WithKeyGeneration asks for the key store's generation
	// (KeyStore.KeyGeneration) in RotateResult.KeyGeneration, read in the
	// rotation's transaction, so that the caller can tell whether the
	// signing keys changed (an emergency revocation) without a read of
	// its own.
	WithKeyGeneration bool
	// Presenter, when not nil, is who presents the token. The store then
	// refuses, before anything changes, a token whose session is bound to
	// another presenter: a session with a DPoP key (Session.DPoPJKT) to a
	// presenter without a proof of that key, and a grant session
	// (Session.ClientID) to a presenter that is not its client. The
	// refusal is a *PresenterError, whatever state the token is in (live,
	// in its grace window or past it), so that someone holding the token
	// but not what it is bound to can neither spend it nor have the
	// session revoked as stolen. Nil checks nothing.
	Presenter *Presenter
}

// Presenter is who presents a refresh token (RotateRequest.Presenter).
type Presenter struct {
	// ClientID is the client that identified or authenticated itself and
	// may use the refresh grant; "" for none.
	ClientID string
	// DPoPKey is the RFC 7638 thumbprint of the key whose DPoP proof came
	// with the request, checked by the caller; "" for none.
	DPoPKey string
}

// PresenterError is RotateRefreshToken's refusal of a token presented by
// someone its session is not bound to (RotateRequest.Presenter); nothing
// changed. It wraps the *Error of an invalid refresh token.
type PresenterError struct {
	// Key is true when the session's DPoP key was not proven, false when
	// the presenter is not the grant session's client.
	Key bool
	// SessionID is the token's session, for the log.
	SessionID string
}

func (e *PresenterError) Error() string {
	if e.Key {
		return "keycard: refresh token presented without a proof of its DPoP key"
	}
	return "keycard: refresh token presented by another client than its own"
}

// Unwrap returns the *Error of an invalid refresh token (EUNAUTHORIZED).
func (e *PresenterError) Unwrap() error { return ErrInvalidRefreshToken() }

// CheckPresenter returns a *PresenterError if p is not nil and sess is
// bound to another presenter (RotateRequest.Presenter), and nil
// otherwise. The keys are compared in constant time.
func CheckPresenter(sess *Session, p *Presenter) error {
	if p == nil {
		return nil
	}
	if sess.DPoPJKT != "" && subtle.ConstantTimeCompare([]byte(sess.DPoPJKT), []byte(p.DPoPKey)) != 1 {
		return &PresenterError{Key: true, SessionID: sess.ID}
	}
	if sess.ClientID != "" && sess.ClientID != p.ClientID {
		return &PresenterError{SessionID: sess.ID}
	}
	return nil
}

// DefaultRotationGrace is the default grace window for repeated use of a
// refresh token.
const DefaultRotationGrace = 10 * time.Second

// RotateResult is the outcome of a rotation.
type RotateResult struct {
	Outcome RotateOutcome
	// Session is the token's session after the operation (with LastUsedAt
	// updated when Rotated, revoked when TheftDetected).
	Session *Session
	// Presented is the presented token after the operation.
	Presented *RefreshToken
	// Successor is the session's live token for Rotated and Replayed; nil
	// for TheftDetected.
	Successor *RefreshToken
	// User is the session's user as the rotation's transaction saw it,
	// for Rotated and Replayed when RotateRequest.WithUser is set; nil
	// otherwise. A disabled user is returned as it is: refusing it is the
	// caller's decision.
	User *User
	// KeyGeneration is KeyStore.KeyGeneration as the rotation's
	// transaction saw it, for Rotated and Replayed when
	// RotateRequest.WithKeyGeneration is set; 0 otherwise.
	KeyGeneration int64
}

// SessionFilter selects a page of a user's sessions, newest first.
type SessionFilter struct {
	UserID string
	// SignInsOnly leaves out grant sessions (those with a parent).
	SignInsOnly bool
	// ActiveAt, when not zero, returns only sessions Active at that time.
	ActiveAt time.Time
	// Before, when set, starts the page after the session with this id
	// (the last one of the previous page).
	Before string
	// Limit is the page size; see PageSize.
	Limit int
}

// CreateSessionOptions are what SessionStore.CreateSession does besides
// the session, in its transaction: a sign-in's one write.
type CreateSessionOptions struct {
	// Audit, when not nil, is appended to the audit log (with the
	// deliveries its webhook event owes), so that a sign-in's session and
	// its record are both made or neither. An invalid event is EINVALID,
	// and nothing is made.
	Audit *AuditEvent
	// WithKeyGeneration asks for the key store's generation
	// (KeyStore.KeyGeneration), read in the session's transaction, in
	// KeyGeneration: the caller can tell whether the signing keys changed
	// (an emergency revocation by another process) without a read of its
	// own before it signs the session's first token.
	WithKeyGeneration bool
	// KeyGeneration is set by CreateSession when WithKeyGeneration is.
	KeyGeneration int64
}

// SessionStore keeps sessions and their refresh tokens. Every method that
// revokes sessions also appends RevokeSession entries (or one RevokeAllUsers
// entry) to the revocation feed in the same transaction, and revoking a
// session revokes its live grant sessions with it (reason
// RevokeParentEnded, unless the same call revokes them for its own
// reason), each with its own feed entry. Implementations are safe for
// concurrent use.
//
// A grant session is one level deep: its parent is a sign-in, of the same
// user. The store ends a grant session with its parent when the parent is
// revoked; it does not follow the parent's idle and absolute expiry,
// which the caller bounds when it sets the grant session's own.
type SessionStore interface {
	// CreateSession inserts a session and its first refresh token (whose
	// SessionID is set to s.ID; nil for a grant session without refresh
	// tokens) in one transaction. It fails with ENOTFOUND if the user or
	// the parent session does not exist, EUNAUTHORIZED if the parent is
	// revoked, ECONFLICT if an id is taken, and EINVALID if the parent is
	// another user's or itself a grant session, or a sign-in comes without
	// its first refresh token. What opt, when not nil, asks is done in
	// the same transaction (see CreateSessionOptions).
	CreateSession(ctx context.Context, s *Session, first *RefreshToken, opt *CreateSessionOptions) error

	// Session returns the session, or an ENOTFOUND error.
	Session(ctx context.Context, id string) (*Session, error)

	// SessionWithUser returns the session and its user in one read (the
	// authorization endpoint's single sign-on session), or an ENOTFOUND
	// error when there is no such session (or, which the stores do not
	// let happen, its user is gone). It judges nothing: a revoked or
	// expired session, a grant session and a disabled user are returned
	// as they are, for the caller to refuse.
	SessionWithUser(ctx context.Context, id string) (*Session, *User, error)

	// ListSessions returns a page of the user's sessions, newest first.
	ListSessions(ctx context.Context, f SessionFilter) ([]*Session, error)

	// RevokeSession revokes the session at the given time for the reason,
	// and returns it. Revoking a revoked session changes nothing and is
	// not an error. It fails with ENOTFOUND for an unknown session.
	RevokeSession(ctx context.Context, id string, at time.Time, reason string) (*Session, error)

	// RevokeUserSessions revokes every live session of the user, grant
	// sessions included, for the reason, except exceptID (which may be
	// empty) and exceptID's grant sessions, and returns the revoked ids.
	// UserStore's ChangePassword, UpdateUser (disabling) and DeleteUser
	// revoke the same way.
	RevokeUserSessions(ctx context.Context, userID, exceptID string, at time.Time, reason string) ([]string, error)

	// Reauthenticated records that the user of a session signed in to it
	// again (step-up, or an application's prompt=login): its AuthTime
	// becomes at and its AMR amr, and LastUsedAt at. It fails with
	// ENOTFOUND for an unknown session and EUNAUTHORIZED for one that is
	// not Active at at.
	Reauthenticated(ctx context.Context, id string, at time.Time, amr []string) error

	// RevokeClientSessions revokes every live grant session of the user
	// for the client, and returns their ids (empty, not an error, if there
	// are none).
	RevokeClientSessions(ctx context.Context, userID, clientID string, at time.Time, reason string) ([]string, error)

	// RevokeAllSessions revokes every live session of every user and
	// appends one RevokeAllUsers entry to the feed, and returns the number
	// of sessions revoked.
	RevokeAllSessions(ctx context.Context, at time.Time, reason string) (int64, error)

	// RefreshToken returns a stored refresh token by id, or an ENOTFOUND
	// error.
	RefreshToken(ctx context.Context, id string) (*RefreshToken, error)

	// RotateRefreshToken is the atomic rotation of a presented refresh
	// token, in one transaction:
	//
	//   - unknown id, or a secret hash that does not match (compared in
	//     constant time): EUNAUTHORIZED;
	//   - req.Presenter is set and the session is bound to another
	//     presenter (CheckPresenter): a *PresenterError, nothing changes;
	//   - the token's session is not Active at req.Now: EUNAUTHORIZED;
	//   - the token is live: it is marked rotated at req.Now with
	//     req.Successor as successor, the successor is inserted as the
	//     session's only live token, and the session's LastUsedAt becomes
	//     req.Now: Rotated;
	//   - the token was rotated less than req.Grace before req.Now:
	//     nothing changes, and the successor it was rotated to is
	//     returned: Replayed;
	//   - the token was rotated req.Grace or longer before req.Now: the
	//     session is revoked with reason RevokeTokenReuse: TheftDetected,
	//     with a nil error so that the revocation is committed.
	//
	// Concurrent rotations of the same token therefore leave exactly one
	// live token: one caller gets Rotated, the others Replayed with the
	// same successor.
	RotateRefreshToken(ctx context.Context, req RotateRequest) (*RotateResult, error)

	// PruneSessions deletes sessions (and their tokens) that ended before
	// the given time: revoked, idle-expired or past ExpiresAt; grant
	// sessions like sign-ins, and a grant session that is still active
	// stays when its parent goes (its ParentID then names no session). It
	// also
	// clears SuccessorSealed on tokens rotated before sealedBefore, and
	// returns the number of sessions deleted.
	PruneSessions(ctx context.Context, before, sealedBefore time.Time) (int64, error)
}
