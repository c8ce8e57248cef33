package keycard

import (
	"context"
	"time"
)

// Limits of passkeys (WebAuthn credentials).
const (
	// MaxPasskeysPerUser is how many passkeys one user may register.
	MaxPasskeysPerUser = 20
	// MaxPasskeyNameLen is the longest name of a passkey, in bytes.
	MaxPasskeyNameLen = 64
	// MaxCredentialIDLen is the longest credential id accepted, in bytes
	// (WebAuthn Level 3 §7.1 step 21 limits it to 1023).
	MaxCredentialIDLen = 1023
	// PasskeyChallengeLifetime is how long a WebAuthn ceremony's
	// challenge may be answered.
	PasskeyChallengeLifetime = 5 * time.Minute
)

// Passkey is a WebAuthn public key credential registered to a user (the
// specification's credential record, WebAuthn Level 3 §4).
type Passkey struct {
	// ID is Keycard's identifier of the passkey, for the pages and APIs.
	ID     string
	UserID string
	// CredentialID is the authenticator's credential id: unique among
	// all passkeys.
	CredentialID []byte
	// PublicKey is the credential public key, COSE_Key encoded.
	PublicKey []byte
	// AAGUID names the authenticator model (16 bytes, or empty).
	AAGUID []byte
	// SignCount is the last signature counter the authenticator reported.
	SignCount uint32
	// Transports are the transports the browser reported at registration
	// ("internal", "hybrid", "usb", …): hints for later ceremonies.
	Transports []string
	// AttestationFormat is the attestation statement format of the
	// registration ("none", "packed", …).
	AttestationFormat string
	// BackupEligible is the BE flag: the credential may be synced to
	// other devices (a "synced passkey"). It never changes.
	BackupEligible bool
	// BackupState is the BS flag of its last use: the credential is
	// backed up now.
	BackupState bool
	// UserVerified reports whether the registration verified the user.
	UserVerified bool
	// Name is what the user calls it ("Work laptop").
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero until first used to sign in
}

// PasskeyPurpose says what a PasskeyChallenge is for.
type PasskeyPurpose string

const (
	// PasskeyRegister: a registration ceremony of UserID's, from the
	// browser session SessionID.
	PasskeyRegister PasskeyPurpose = "register"
	// PasskeyLogin: a sign-in with a discoverable credential, any user.
	PasskeyLogin PasskeyPurpose = "login"
	// PasskeySecondFactor: a sign-in of UserID's after the password.
	PasskeySecondFactor PasskeyPurpose = "second_factor"
)

// PasskeyChallenge is the server-side state of one WebAuthn ceremony:
// its challenge and options, kept until the answer comes back and then
// taken, once.
type PasskeyChallenge struct {
	// ID names the ceremony; the browser holds it (a cookie or the
	// signed-in session), never the challenge alone.
	ID      string
	Purpose PasskeyPurpose
	// UserID is the user of a registration or a second factor; empty for
	// PasskeyLogin.
	UserID string
	// Binding ties the ceremony to who started it: the session id of a
	// registration, the MFA step of a second factor; empty otherwise.
	Binding string
	// State is the ceremony's state as the WebAuthn library keeps it
	// (the challenge, the relying party, the allowed credentials).
	State     []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// PasskeyStore keeps passkeys and the state of their ceremonies.
// Implementations are safe for concurrent use.
type PasskeyStore interface {
	// CreatePasskey inserts p. It fails with ECONFLICT if its id or
	// credential id is taken, ENOTFOUND if the user does not exist, and
	// EINVALID if the id, user, credential id or public key is empty. A
	// passkey goes with its user: deleting the user deletes it.
	CreatePasskey(ctx context.Context, p *Passkey) error

	// Passkey returns the user's passkey with this id, or ENOTFOUND.
	Passkey(ctx context.Context, userID, id string) (*Passkey, error)

	// PasskeyByCredentialID returns the passkey with this credential id,
	// or ENOTFOUND.
	PasskeyByCredentialID(ctx context.Context, credentialID []byte) (*Passkey, error)

	// ListPasskeys returns the user's passkeys, oldest first.
	ListPasskeys(ctx context.Context, userID string) ([]*Passkey, error)

	// RenamePasskey sets the name of the user's passkey id. It fails with
	// ENOTFOUND if the user has no such passkey.
	RenamePasskey(ctx context.Context, userID, id, name string) error

	// DeletePasskey deletes the user's passkey id and returns it. It
	// fails with ENOTFOUND if the user has no such passkey.
	DeletePasskey(ctx context.Context, userID, id string) (*Passkey, error)

	// UsePasskey records a sign-in with passkey id: its signature counter
	// becomes signCount, its BackupState backupState and its LastUsedAt
	// at, provided its counter is still prevCount. It fails with
	// ENOTFOUND for an unknown passkey and ECONFLICT when the counter
	// moved meanwhile (a concurrent use of the same assertion's
	// counter): of two sign-ins with the same counter, one succeeds.
	UsePasskey(ctx context.Context, id string, prevCount, signCount uint32, backupState bool, at time.Time) error

	// CreatePasskeyChallenge inserts c. It fails with ECONFLICT if the id
	// is taken and EINVALID if the id or state is empty.
	CreatePasskeyChallenge(ctx context.Context, c *PasskeyChallenge) error

	// TakePasskeyChallenge deletes the challenge id and returns it, if it
	// had not expired at the given time. It fails with ENOTFOUND for an
	// unknown, already taken or expired challenge. Of concurrent takes of
	// one challenge, exactly one succeeds.
	TakePasskeyChallenge(ctx context.Context, id string, at time.Time) (*PasskeyChallenge, error)

	// PrunePasskeyChallenges deletes challenges that expired before the
	// given time, and returns how many.
	PrunePasskeyChallenges(ctx context.Context, before time.Time) (int64, error)
}
