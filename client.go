package keycard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"slices"
	"time"
)

// ClientSecretLen is the number of random bytes in a service client's
// secret: 256 bits.
const ClientSecretLen = 32

// Client is a registered service client (an OAuth 2.0 confidential client,
// RFC 6749 section 2.1) that authenticates with an id and a secret and gets
// access tokens of its own through the client_credentials grant.
type Client struct {
	// ID is the client_id: opaque, random, and the sub and client_id of
	// the client's access tokens.
	ID string
	// Name is a human-readable label for listings.
	Name string
	// SecretHash is the SHA-256 of the client secret (see
	// HashClientSecret); the secret itself is never stored.
	SecretHash []byte
	// Scopes are the scopes the client may ask for; a token request
	// without a scope gets all of them.
	Scopes []string
	// Audiences are the audiences the client's tokens may be for; the
	// first one is the aud of its tokens. Empty means the server's
	// default audience.
	Audiences []string

	CreatedAt time.Time
	UpdatedAt time.Time
}

// HasScope reports whether the client may ask for scope.
func (c *Client) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// CheckSecret reports whether secret is the client's secret. It compares
// SHA-256 hashes in constant time, so its duration does not depend on how
// much of the secret is right.
func (c *Client) CheckSecret(secret string) bool {
	return subtle.ConstantTimeCompare(HashClientSecret(secret), c.SecretHash) == 1
}

// HashClientSecret returns the SHA-256 of a client secret, the form kept at
// rest. A fast hash is enough: secrets are ClientSecretLen random bytes,
// not passwords a person chose, so there is nothing to guess.
func HashClientSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// ClientFilter selects a page of clients, ordered by ID.
type ClientFilter struct {
	// After, when set, starts the page after the client with this id (the
	// last one of the previous page).
	After string
	// Limit is the page size; see PageSize.
	Limit int
}

// ClientStore keeps service clients. Implementations are safe for
// concurrent use.
type ClientStore interface {
	// CreateClient inserts c. It fails with ECONFLICT if the ID is taken,
	// and with EINVALID if ID, Name or SecretHash is empty.
	CreateClient(ctx context.Context, c *Client) error

	// Client returns the client, or an ENOTFOUND error.
	Client(ctx context.Context, id string) (*Client, error)

	// ClientWithKeyGeneration returns the client as Client does, and the
	// key store's generation (KeyStore.KeyGeneration) read with it, so
	// that a token minted for the client can be signed with a key known
	// to be current without a read of its own.
	ClientWithKeyGeneration(ctx context.Context, id string) (*Client, int64, error)

	// ListClients returns a page of clients ordered by ID.
	ListClients(ctx context.Context, f ClientFilter) ([]*Client, error)

	// DeleteClient deletes the client. From then on introspection reports
	// the tokens issued to it inactive; verifiers that check tokens
	// locally accept them until they expire. It fails with ENOTFOUND for
	// an unknown client.
	DeleteClient(ctx context.Context, id string) error

	// SetClientSecret replaces the client's secret hash and sets UpdatedAt
	// to at. It fails with ENOTFOUND for an unknown client and EINVALID
	// for an empty hash.
	SetClientSecret(ctx context.Context, id string, hash []byte, at time.Time) error
}
