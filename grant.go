package keycard

import (
	"context"
	"time"
)

// AuthCodeLifetime is how long an authorization code can be redeemed (RFC
// 6749 section 4.1.2 recommends at most ten minutes; a browser redirect
// takes seconds).
const AuthCodeLifetime = 60 * time.Second

// AuthCode is a stored authorization code (RFC 6749 section 4.1): its id,
// the SHA-256 of its secret part (the code is "<id>.<secret>", made like a
// refresh token), and everything the token request must match or carries
// on into the tokens.
type AuthCode struct {
	ID         string
	SecretHash []byte
	ClientID   string
	// UserID and SessionID are the signed-in user and the browser
	// session the code was issued in: the grant session's parent.
	UserID    string
	SessionID string
	// RedirectURI is the redirect_uri of the authorization request,
	// which the token request must repeat exactly.
	RedirectURI string
	// CodeChallenge is the PKCE S256 challenge (RFC 7636).
	CodeChallenge string
	Scope         string
	Nonce         string
	// DPoPJKT is the dpop_jkt of the authorization request (RFC 9449
	// section 10): the thumbprint of the DPoP key the token request must
	// prove, or empty.
	DPoPJKT string
	// AuthTime and AMR describe the user's authentication.
	AuthTime  time.Time
	AMR       []string
	CreatedAt time.Time
	ExpiresAt time.Time
	// RedeemedAt is zero until the code is redeemed; GrantSessionID is
	// then the session its tokens belong to.
	RedeemedAt     time.Time
	GrantSessionID string
}

// DeviceCodeLifetime is how long a device authorization lasts (RFC 8628
// section 3.2 expires_in).
const DeviceCodeLifetime = 10 * time.Minute

// DeviceCodeState is where a device authorization stands.
type DeviceCodeState string

const (
	DevicePending  DeviceCodeState = "pending"
	DeviceApproved DeviceCodeState = "approved"
	DeviceDenied   DeviceCodeState = "denied"
)

// DeviceCode is a stored device authorization (RFC 8628): the device code
// "<id>.<secret>" kept as an id and a hash, and the short user code a
// person types on another device.
type DeviceCode struct {
	ID         string
	SecretHash []byte
	// UserCode is the normalized user code (upper case, no separator).
	UserCode string
	ClientID string
	Scope    string
	State    DeviceCodeState
	// Interval is the least time between two polls.
	Interval  time.Duration
	CreatedAt time.Time
	ExpiresAt time.Time
	// LastPolledAt is the time of the last token request with the code.
	LastPolledAt time.Time
	// UserID, SessionID, AuthTime and AMR are set when a user approves.
	UserID    string
	SessionID string
	AuthTime  time.Time
	AMR       []string
	// RedeemedAt and GrantSessionID are set when the device gets its
	// tokens.
	RedeemedAt     time.Time
	GrantSessionID string
}

// Consent is a user's consent to a third-party client: the scopes it may
// have without asking again.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PushedRequestLifetime is how long a pushed authorization request can be
// used (RFC 9126 section 2.2 expires_in).
const PushedRequestLifetime = 60 * time.Second

// PushedRequest is a pushed authorization request (RFC 9126): the
// parameters a client sent to the PAR endpoint, which the authorization
// endpoint reads back by request_uri.
type PushedRequest struct {
	ID       string
	ClientID string
	// Params is the request's parameters, a JSON object of strings.
	Params    []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// GrantKind says which kind of grant a RedeemRequest redeems.
type GrantKind int

const (
	// GrantKindAuthCode is a stored authorization code (CreateAuthCode):
	// what servers before sealed codes issued, redeemable until the last
	// of them has expired.
	GrantKindAuthCode GrantKind = iota + 1
	GrantKindDeviceCode
	// GrantKindSealedCode is a sealed authorization code: no row holds
	// it until it is redeemed, when Redeem records its single use by ID
	// until ExpiresAt (docs/decisions/sealed-codes.md).
	GrantKindSealedCode
)

// RedeemRequest asks GrantStore.Redeem to exchange a code for a grant
// session.
type RedeemRequest struct {
	Kind GrantKind
	// ID is the code's id; the caller has checked its secret, client,
	// expiry and the rest.
	ID string
	// Session is the grant session to create (with ParentID set), and
	// First its first refresh token, or nil when the grant has none.
	Session *Session
	First   *RefreshToken
	At      time.Time
	// Audit, when not nil, is appended to the audit log in the same
	// transaction if the outcome is Redeemed, so that every grant is
	// recorded and nothing is recorded for one that did not happen.
	Audit *AuditEvent

	// ExpiresAt is a sealed code's expiry (GrantKindSealedCode only): its
	// use is recorded until then. The caller opened the code, so ID and
	// ExpiresAt are the code's; Session's UserID, ParentID and ClientID are
	// the code's too, which the store cannot check.
	ExpiresAt time.Time
	// NeedsConsent, for a sealed code, has Redeem refuse it unless the
	// user's consent to the client (a third-party client's) still exists
	// and was given no later than the code was issued (ExpiresAt less
	// AuthCodeLifetime), checked in the transaction: revoking a consent
	// refuses the sealed codes issued under it for good, as it deletes
	// stored ones — a consent given again later (perhaps to fewer scopes)
	// does not bring them back.
	NeedsConsent bool
}

// MaxSealedCodeIDLen is the longest id of a sealed code Redeem takes, in
// bytes.
const MaxSealedCodeIDLen = 64

// RedeemOutcome says what Redeem did.
type RedeemOutcome int

const (
	// Redeemed: the code was unused; it is now redeemed and the session
	// created.
	Redeemed RedeemOutcome = iota + 1
	// Reused: the code had been redeemed before. Nothing was created, and
	// the session of the first redemption has been revoked with reason
	// RevokeCodeReuse (RFC 6749 section 4.1.2: an attacker may hold its
	// tokens).
	Reused
)

// MaxUseOnceKeyLen is the longest key GrantStore.UseOnce takes, in bytes.
const MaxUseOnceKeyLen = 256

// GrantStore keeps what the OAuth flows carry between requests:
// authorization codes, device codes, consents, pushed requests and
// single-use markers. Implementations are safe for concurrent use.
type GrantStore interface {
	// CreateAuthCode inserts c. It fails with ECONFLICT if the id is
	// taken, ENOTFOUND if the client does not exist or the session does
	// not exist or is not the user's, and EINVALID if the id, secret
	// hash, client, user or session is empty. A code goes with its
	// session and with its client: deleting either deletes it.
	CreateAuthCode(ctx context.Context, c *AuthCode) error

	// AuthCode returns the code with this id, redeemed or not, or an
	// ENOTFOUND error.
	AuthCode(ctx context.Context, id string) (*AuthCode, error)

	// CreateDeviceCode inserts d, which must be DevicePending. It fails
	// with ECONFLICT if the id is taken, or the user code by a device code
	// that has not expired at d.CreatedAt (an expired one is deleted to
	// make way), ENOTFOUND if the client does not exist, and EINVALID if
	// the id, secret hash, user code or client is empty.
	CreateDeviceCode(ctx context.Context, d *DeviceCode) error

	// DeviceCode returns the device code with this id, or ENOTFOUND.
	DeviceCode(ctx context.Context, id string) (*DeviceCode, error)

	// DeviceCodeByUserCode returns the unexpired device code with this
	// normalized user code at the given time, or ENOTFOUND.
	DeviceCodeByUserCode(ctx context.Context, userCode string, at time.Time) (*DeviceCode, error)

	// DecideDeviceCode approves (with the user, session, auth time and
	// methods of d) or denies the pending, unexpired device code d.ID. It
	// fails with ENOTFOUND if the code is unknown, expired or no longer
	// pending, or, for an approval, the session is not the user's; and
	// with EINVALID for a state other than DeviceApproved or DeviceDenied,
	// or an approval without a user and session.
	DecideDeviceCode(ctx context.Context, d *DeviceCode, state DeviceCodeState, at time.Time) error

	// PollDeviceCode records a poll of the device code at the given time
	// and returns the code as it was before the poll (its LastPolledAt is
	// the previous poll, for slow_down). It fails with ENOTFOUND for an
	// unknown code.
	PollDeviceCode(ctx context.Context, id string, at time.Time) (*DeviceCode, error)

	// Redeem exchanges an authorization or device code for a grant
	// session, in one transaction: an unused code (an approved one, for a
	// device code) is marked redeemed and r.Session created with r.First
	// (Redeemed); a redeemed code, expired or not, revokes the session of
	// its first redemption (Reused, with a nil error so that the
	// revocation commits). It fails with ENOTFOUND for an unknown code,
	// EUNAUTHORIZED for an unused code that has expired at r.At or whose
	// parent session (the code's SessionID) is not Active at r.At, and
	// EINVALID for a device code that is not approved, or an r.Session
	// whose ParentID, UserID or ClientID is not the code's. Of concurrent
	// Redeems of one code, exactly one gets Redeemed.
	//
	// A sealed code (GrantKindSealedCode) has no row until its first
	// redemption, which inserts one (id, ExpiresAt, the grant session)
	// in the same transaction. A code used before is Reused as above,
	// expired or not; an unused one fails with EUNAUTHORIZED if it has
	// expired at r.At, its parent (r.Session.ParentID) is not Active or
	// NeedsConsent finds no consent, and is then left unused. With a nil
	// r.Session (a request the caller refused: wrong verifier, expired
	// code, …) Redeem only looks for an earlier use: Reused, revoking,
	// if there was one, ENOTFOUND otherwise. It fails with EINVALID for
	// an id that is empty or longer than MaxSealedCodeIDLen, or a zero
	// ExpiresAt.
	Redeem(ctx context.Context, r RedeemRequest) (RedeemOutcome, error)

	// Consent returns the user's consent to the client, or ENOTFOUND.
	Consent(ctx context.Context, userID, clientID string) (*Consent, error)

	// SaveConsent inserts the user's consent to the client, or replaces
	// the Scopes and UpdatedAt of the existing one (its CreatedAt stays).
	// It fails with ENOTFOUND if the user or the client does not exist.
	SaveConsent(ctx context.Context, c *Consent) error

	// ListConsents returns the user's consents, ordered by client id.
	ListConsents(ctx context.Context, userID string) ([]*Consent, error)

	// RevokeConsent deletes the user's consent to the client and, in the
	// same transaction, the user's unredeemed authorization and device
	// codes for it (issued under the consent), and revokes the user's live
	// grant sessions for it (reason RevokeConsentRevoked, with feed
	// entries), returning their ids. It fails with ENOTFOUND when there is
	// no such consent.
	RevokeConsent(ctx context.Context, userID, clientID string, at time.Time) ([]string, error)

	// CreatePushedRequest inserts p. It fails with ECONFLICT if the id is
	// taken, ENOTFOUND if the client does not exist, and EINVALID if the
	// id or client is empty or Params is not a JSON object.
	CreatePushedRequest(ctx context.Context, p *PushedRequest) error

	// PushedRequest returns the unexpired pushed request with this id at
	// the given time, or ENOTFOUND.
	PushedRequest(ctx context.Context, id string, at time.Time) (*PushedRequest, error)

	// DeletePushedRequest deletes the pushed request, used up (RFC 9126
	// section 4: a request_uri is used once). Deleting an unknown one is
	// not an error.
	DeletePushedRequest(ctx context.Context, id string) error

	// UseOnce records the single use of key until expiresAt and reports
	// whether this is its first use: true when no marker of key exists
	// or its marker had expired at the given time (it is then replaced);
	// false, changing nothing, while a marker of key lives. It is how a
	// client assertion's jti is used once (RFC 7523 section 3) across every
	// instance: of concurrent calls with one key, exactly one gets true.
	// It fails with EINVALID for an empty key or one longer than
	// MaxUseOnceKeyLen bytes, or an expiresAt not after at.
	UseOnce(ctx context.Context, key string, at, expiresAt time.Time) (bool, error)

	// PruneGrants deletes codes (redeemed or not), the use records of
	// sealed codes, pushed requests and single-use markers (UseOnce)
	// that expired before the given time,
	// and returns how many. Consents stay until revoked. A redeemed code kept after its expiry still detects
	// reuse, so callers may keep codes a while past expiry.
	PruneGrants(ctx context.Context, before time.Time) (int64, error)
}
