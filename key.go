package keycard

import (
	"context"
	"time"
)

// KeyState is the life-cycle state of a signing key: next → active →
// retired → removed.
type KeyState string

const (
	// KeyNext keys are published in the JWKS but do not sign yet.
	KeyNext KeyState = "next"
	// KeyActive is the one key that signs new tokens.
	KeyActive KeyState = "active"
	// KeyRetired keys no longer sign but stay published until RemoveAfter,
	// when the last token they signed has expired.
	KeyRetired KeyState = "retired"
)

// Valid reports whether s is one of the defined states.
func (s KeyState) Valid() bool { return s == KeyNext || s == KeyActive || s == KeyRetired }

// SigningKey is a stored signing key.
type SigningKey struct {
	// KID is the key id, the RFC 7638 thumbprint of the public key.
	KID string
	// Alg is the JWS algorithm the key is bound to, such as "ES256".
	Alg   string
	State KeyState
	// PrivateSealed is the private key (or HMAC secret) encrypted under
	// the master key. Stores never see it in plaintext.
	PrivateSealed []byte
	// PublicJWK is the public key as a JWK (public members only), nil for
	// symmetric keys, which are never published.
	PublicJWK []byte

	CreatedAt time.Time
	// ActivatesAt is when a next key is planned to become active.
	ActivatesAt time.Time
	// RetiredAt is when the key stopped signing; zero before.
	RetiredAt time.Time
	// RemoveAfter is when a retired key may be deleted; zero before.
	RemoveAfter time.Time
}

// KeyStore keeps signing keys. Implementations are safe for concurrent use.
type KeyStore interface {
	// CreateKey inserts a key, normally in state KeyNext. It fails with
	// ECONFLICT if the kid exists or if k is active while another key is.
	CreateKey(ctx context.Context, k *SigningKey) error

	// Key returns a key by kid, or an ENOTFOUND error.
	Key(ctx context.Context, kid string) (*SigningKey, error)

	// ListKeys returns every stored key, oldest first.
	ListKeys(ctx context.Context) ([]*SigningKey, error)

	// ActivateKey makes the next key kid the active one at the given
	// time, and in the same transaction retires the previously active key
	// (RetiredAt = at, RemoveAfter = removeAfter). It fails with
	// ENOTFOUND for an unknown kid and ECONFLICT if kid is not in state
	// KeyNext, so two servers rotating at once cannot both win.
	ActivateKey(ctx context.Context, kid string, at, removeAfter time.Time) error

	// RevokeKey deletes a key at once — an emergency, for a key that must
	// not verify anything any more — and appends a RevokeKey entry to the
	// revocation feed in the same transaction. It fails with ENOTFOUND for
	// an unknown kid.
	RevokeKey(ctx context.Context, kid string, at time.Time) error

	// DeleteRemovedKeys deletes retired keys whose RemoveAfter is not
	// after now, and returns how many.
	DeleteRemovedKeys(ctx context.Context, now time.Time) (int64, error)

	// KeyGeneration returns the generation of the stored keys: a number,
	// at least 1, that every change to them (a key created, activated,
	// retired, revoked or deleted, by any process) increases in the
	// change's own transaction, and that nothing else changes. A server
	// that knows the generation its copy of the keys was read at can tell
	// from this one number whether it is still current. Reads made for
	// other purposes return it too (RotateRequest.WithKeyGeneration,
	// ClientStore.ClientWithKeyGeneration), so that minting a token can
	// check its signing key without a read of its own.
	KeyGeneration(ctx context.Context) (int64, error)
}
