package keycard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"slices"
	"time"
)

// ClientSecretLen is the number of random bytes in a service client's
// secret: 256 bits.
const ClientSecretLen = 32

// Client is a registered OAuth 2.0 client (RFC 6749 section 2): a service
// client that gets access tokens of its own through the client_credentials
// grant, or an application that signs users in through the authorization
// endpoint (OpenID Connect), or both. A service client registered before
// applications existed has the zero OAuth settings and keeps working
// unchanged.
type Client struct {
	// ID is the client_id: opaque, random, and the sub and client_id of
	// the client's access tokens.
	ID string
	// Name is a human-readable label for listings and the consent page.
	Name string
	// SecretHash is the SHA-256 of the client secret (see
	// HashClientSecret); the secret itself is never stored. It is empty
	// for a public client (OAuth.Public), which has no secret, and may be
	// for a client that authenticates with private_key_jwt.
	SecretHash []byte
	// Scopes are the API scopes the client may ask for; a
	// client_credentials request without a scope gets all of them.
	Scopes []string
	// Audiences are the audiences the client's tokens may be for; the
	// first one is the aud of its tokens. Empty means the server's
	// default audience.
	Audiences []string
	// OAuth holds the settings of an application client.
	OAuth OAuthSettings

	CreatedAt time.Time
	UpdatedAt time.Time
}

// Grant types a client may be allowed (RFC 6749, RFC 8628, RFC 8693).
const (
	GrantClientCredentials = "client_credentials"
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Client authentication methods at the token endpoint (OpenID Connect
// Core section 9, RFC 7523).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
	AuthNone              = "none" // public clients
)

// OAuthSettings are the settings of a client that signs users in. The zero
// value is a confidential service client allowed client_credentials only.
type OAuthSettings struct {
	// Public clients (RFC 6749 section 2.1: single-page and native apps)
	// have no secret and cannot authenticate; they must use PKCE.
	Public bool `json:"public,omitempty"`
	// RedirectURIs are the registered redirection endpoints, compared
	// with a request's redirect_uri by exact string match, except that a
	// loopback http://127.0.0.1 or http://[::1] URI matches any port
	// (RFC 8252 section 7.3).
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// browser back (exact match).
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// GrantTypes are the grants the client may use; empty means
	// client_credentials alone (a service client).
	GrantTypes []string `json:"grant_types,omitempty"`
	// FirstParty clients are the operator's own applications: users are
	// not asked to consent, and they get refresh tokens without asking
	// for offline_access. Third-party clients need the user's consent.
	FirstParty bool `json:"first_party,omitempty"`
	// BackchannelLogoutURI receives a logout token whenever a session the
	// client was signed in through ends (OpenID Connect Back-Channel
	// Logout 1.0).
	BackchannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
	// TokenAuthMethod is how a confidential client authenticates at the
	// token endpoint; empty means client_secret_basic or
	// client_secret_post. AuthNone for public clients.
	TokenAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// JWKS or JWKSURI hold the client's public keys for private_key_jwt
	// (RFC 7523): the JWK Set itself, or where to fetch it.
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI string          `json:"jwks_uri,omitempty"`
	// AccessTTL, when not zero, shortens the lifetime of the access
	// tokens issued to the client's users (never beyond the server's).
	AccessTTL time.Duration `json:"access_ttl,omitempty"`
	// RefreshLifetime and RefreshIdle, when not zero, shorten the
	// absolute and idle lifetimes of the sessions the client's refresh
	// tokens belong to.
	RefreshLifetime time.Duration `json:"refresh_lifetime,omitempty"`
	RefreshIdle     time.Duration `json:"refresh_idle,omitempty"`
	// TokenExchangeAudiences are the audiences a client allowed
	// GrantTokenExchange may ask tokens for (RFC 8693 section 2.1: an
	// audience or resource parameter must be one of them, exactly).
	TokenExchangeAudiences []string `json:"token_exchange_audiences,omitempty"`
	// DPoP is the client's DPoP policy (RFC 9449): DPoPOptional (the
	// default, also when empty) binds its tokens to a key when it sends
	// a proof; DPoPRequired refuses its token requests without one.
	DPoP string `json:"dpop,omitempty"`
}

// MayExchangeFor reports whether the client may obtain, by token
// exchange, a token for the audience: it is allowed the grant and the
// audience is one of its TokenExchangeAudiences, compared exactly.
func (c *Client) MayExchangeFor(aud string) bool {
	return c.AllowsGrant(GrantTokenExchange) && slices.Contains(c.OAuth.TokenExchangeAudiences, aud)
}

// The DPoP policies of a client (OAuthSettings.DPoP).
const (
	DPoPOptional = "optional"
	DPoPRequired = "required"
)

// AllowsGrant reports whether the client may use the grant type. A client
// without GrantTypes is a service client: client_credentials only.
func (c *Client) AllowsGrant(grant string) bool {
	if len(c.OAuth.GrantTypes) == 0 {
		return grant == GrantClientCredentials
	}
	return slices.Contains(c.OAuth.GrantTypes, grant)
}

// Public reports whether the client is a public client, without a secret.
func (c *Client) Public() bool { return c.OAuth.Public }

// HasScope reports whether the client may ask for scope.
func (c *Client) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// CheckSecret reports whether secret is the client's secret. It compares
// SHA-256 hashes in constant time, so its duration does not depend on how
// much of the secret is right. A public client has no secret: false.
func (c *Client) CheckSecret(secret string) bool {
	if len(c.SecretHash) == 0 {
		return false
	}
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
	// and with EINVALID if ID or Name is empty, or SecretHash is empty
	// for a confidential client (except one that authenticates with
	// private_key_jwt, which needs none) or set for a public one.
	CreateClient(ctx context.Context, c *Client) error

	// UpdateClient replaces the client's Name, Scopes, Audiences and
	// OAuth settings (not its secret) with those of c, sets UpdatedAt to
	// c.UpdatedAt, and returns the stored client. It fails with
	// ENOTFOUND for an unknown client, and EINVALID for an empty Name or
	// a change of type: a client stays public or confidential, as it was
	// created (c.SecretHash is not looked at).
	UpdateClient(ctx context.Context, c *Client) (*Client, error)

	// Client returns the client, or an ENOTFOUND error.
	Client(ctx context.Context, id string) (*Client, error)

	// ClientWithKeyGeneration returns the client as Client does, and the
	// key store's generation (KeyStore.KeyGeneration) read with it, so
	// that a token minted for the client can be signed with a key known
	// to be current without a read of its own.
	ClientWithKeyGeneration(ctx context.Context, id string) (*Client, int64, error)

	// ListClients returns a page of clients ordered by ID.
	ListClients(ctx context.Context, f ClientFilter) ([]*Client, error)

	// DeleteClient deletes the client, and in the same transaction
	// revokes every live grant session granted to it (reason
	// RevokeClientDeleted, with feed entries, so that verifiers refuse
	// its users' tokens) and deletes the consents given to it, and its
	// codes and pushed requests. From then
	// on introspection reports the tokens issued to it inactive;
	// verifiers accept its own client_credentials tokens until they
	// expire. It fails with ENOTFOUND for an unknown client.
	DeleteClient(ctx context.Context, id string, at time.Time) error

	// SetClientSecret replaces the client's secret hash (or gives a
	// confidential client without one its first) and sets UpdatedAt to
	// at. It fails with ENOTFOUND for an unknown client and EINVALID for
	// an empty hash or a public client.
	SetClientSecret(ctx context.Context, id string, hash []byte, at time.Time) error
}
