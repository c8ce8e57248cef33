package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// ClientAssertionType is the client_assertion_type of a JWT client
// assertion (RFC 7523 section 2.2): how a client that authenticates with
// private_key_jwt (OpenID Connect Core section 9) presents itself.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Limits on client assertions.
const (
	// MaxAssertionLifetime bounds how far after its iat (or, without iat,
	// after now) a client assertion may expire: an assertion is made for
	// one request, and its jti is remembered until it expires.
	MaxAssertionLifetime = 5 * time.Minute
	// maxAssertionLen bounds the assertion looked at, in bytes.
	maxAssertionLen = jose.DefaultMaxTokenSize
)

// assertionAlgorithms are the algorithms a client assertion may be signed
// with: asymmetric ones only. An HMAC assertion would need a secret shared
// with the server, which private_key_jwt clients do not have; accepting one
// would let anyone "sign" with the client's public key as the HMAC secret.
var assertionAlgorithms = []jose.Algorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// AssertionAlgorithms returns the algorithms client assertions may be
// signed with, for discovery's token_endpoint_auth_signing_alg_values_supported.
func AssertionAlgorithms() []string {
	out := make([]string, len(assertionAlgorithms))
	for i, a := range assertionAlgorithms {
		out[i] = string(a)
	}
	return out
}

// ClientKeys fetches the JWK Sets clients publish at their jwks_uri
// (keycard.OAuthSettings.JWKSURI), for private_key_jwt. The auth server
// implements it with an HTTP client (internal/server); auth itself makes
// no network calls. Implementations are safe for concurrent use.
type ClientKeys interface {
	// KeySet returns the key set published at uri, from a cache or
	// fetched. refresh says that a token named a key the set returned
	// before lacks (the client may have rotated its keys):
	// implementations fetch again, unless they fetched uri very recently,
	// so that unknown kids cannot make them fetch at will.
	KeySet(ctx context.Context, uri string, refresh bool) (*jose.KeySet, error)
}

// assertionKeys returns the keys of a client's JWK Set that may verify its
// assertions: asymmetric public keys. HMAC keys and private keys (a client
// that publishes its private key has lost it) are left out.
func assertionKeys(set *jose.KeySet) (*jose.KeySet, error) {
	var keys []*jose.Key
	for _, k := range set.Keys() {
		if k.PublicKey() != nil && !k.IsPrivate() && slices.Contains(assertionAlgorithms, k.Algorithm()) {
			keys = append(keys, k)
		}
	}
	return jose.NewKeySet(keys...)
}

// refuseClient logs why a client authentication failed and returns the
// one error every failure gets.
func (s *Service) refuseClient(ctx context.Context, clientID, why string, err error) error {
	args := []any{"client_id", truncate(clientID, maxClientIDLen), "reason", why}
	if err != nil {
		args = append(args, "err", err)
	}
	s.log.InfoContext(ctx, "client assertion refused", args...)
	return errClient()
}

// AuthenticateClientAssertion authenticates a client by a signed JWT (the
// private_key_jwt method: RFC 7523 sections 2.2 and 3, OpenID Connect Core
// section 9) and returns it. clientID is the request's client_id, or ""
// to take it from the assertion's sub; audiences are the values of aud
// that name this server at the endpoint called (its issuer, its token
// endpoint URL, …). The assertion must
//
//   - be signed with an asymmetric algorithm by one of the keys of the
//     client's JWK Set (OAuth.JWKS, or OAuth.JWKSURI fetched through
//     Deps.ClientKeys, fetched again once when it names an unknown key);
//   - have iss and sub equal to the client_id;
//   - have an aud of one or more values, each one of audiences, so that an
//     assertion made for another server as well is refused;
//   - have exp, at most MaxAssertionLifetime after iat (or now), not
//     passed, and nbf and iat, when present, not in the future (with
//     DefaultLeeway of clock skew);
//   - have a jti not seen before: it is recorded until the assertion
//     expires (GrantStore.UseOnce), on every instance.
//
// The client must be registered for private_key_jwt. Every failure is the
// same EUNAUTHORIZED error as AuthenticateClient's; the log says why. As
// AuthenticateClient, the lookup tells the key manager of the key
// generation it read.
func (s *Service) AuthenticateClientAssertion(ctx context.Context, clientID, assertion string, audiences []string) (*keycard.Client, error) {
	if assertion == "" || len(assertion) > maxAssertionLen {
		return nil, s.refuseClient(ctx, clientID, "assertion empty or too long", nil)
	}
	if clientID == "" {
		// Only to find the client: everything is checked once its keys
		// are known.
		m, err := jose.UnsafeParse(assertion)
		var peek struct {
			Subject string `json:"sub"`
		}
		if err != nil || json.Unmarshal(m.Payload, &peek) != nil {
			return nil, s.refuseClient(ctx, "", "assertion malformed", err)
		}
		clientID = peek.Subject
	}
	if clientID == "" || len(clientID) > maxClientIDLen {
		return nil, s.refuseClient(ctx, clientID, "no client id", nil)
	}
	c, gen, err := s.stores.Clients.ClientWithKeyGeneration(ctx, clientID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, s.refuseClient(ctx, clientID, "unknown client", nil)
	} else if err != nil {
		return nil, err
	}
	if s.keys != nil {
		s.keys.Observe(gen)
	}
	if c.OAuth.TokenAuthMethod != keycard.AuthPrivateKeyJWT {
		return nil, s.refuseClient(ctx, clientID, "the client does not authenticate with private_key_jwt", nil)
	}
	claims, err := s.verifyAssertion(ctx, c, assertion, false)
	if errors.Is(err, jose.ErrKeyNotFound) && c.OAuth.JWKSURI != "" {
		claims, err = s.verifyAssertion(ctx, c, assertion, true)
	}
	if err != nil {
		return nil, s.refuseClient(ctx, clientID, "assertion does not verify", err)
	}
	if claims.Issuer != c.ID || claims.Subject != c.ID {
		return nil, s.refuseClient(ctx, clientID, "iss and sub must be the client_id", nil)
	}
	if claims.ID == "" {
		return nil, s.refuseClient(ctx, clientID, "jti empty", nil)
	}
	if len(claims.Audience) == 0 {
		return nil, s.refuseClient(ctx, clientID, "aud empty", nil)
	}
	for _, a := range claims.Audience {
		if !slices.Contains(audiences, a) {
			return nil, s.refuseClient(ctx, clientID, "aud names another audience", nil)
		}
	}
	now := s.now()
	from := now
	if !claims.IssuedAt.IsZero() {
		from = claims.IssuedAt.Time
	}
	if claims.ExpiresAt.Sub(from) > MaxAssertionLifetime {
		return nil, s.refuseClient(ctx, clientID, "exp too far after iat", nil)
	}
	// Accepted until exp plus the leeway, so remembered as long.
	first, err := s.stores.Grants.UseOnce(ctx, assertionKey(c.ID, claims.ID), now, claims.ExpiresAt.Add(DefaultLeeway))
	if err != nil {
		return nil, err
	}
	if !first {
		return nil, s.refuseClient(ctx, clientID, "jti used before (a replay)", nil)
	}
	return c, nil
}

// verifyAssertion verifies the assertion's signature with the client's
// keys and its registered claims: exp, nbf, iat, and the presence of iss,
// sub, aud and jti. refresh asks ClientKeys for a fresh copy of a fetched
// key set.
func (s *Service) verifyAssertion(ctx context.Context, c *keycard.Client, assertion string, refresh bool) (*jwt.RegisteredClaims, error) {
	var (
		set *jose.KeySet
		err error
	)
	switch {
	case len(c.OAuth.JWKS) > 0:
		set, err = jose.ParseKeySet(c.OAuth.JWKS)
	case s.clientKeys == nil:
		return nil, errors.New("auth: the client has a jwks_uri, and the server fetches none (no Deps.ClientKeys)")
	default:
		set, err = s.clientKeys.KeySet(ctx, c.OAuth.JWKSURI, refresh)
	}
	if err != nil {
		return nil, err
	}
	if set, err = assertionKeys(set); err != nil {
		return nil, err
	}
	p := jwt.NewParser(set, jwt.WithAlgorithms(assertionAlgorithms...), jwt.WithRequired("iss", "sub", "aud", "jti"),
		jwt.WithLeeway(DefaultLeeway), jwt.WithNow(s.now))
	var claims jwt.RegisteredClaims
	if err := p.Parse(assertion, &claims); err != nil {
		return nil, err
	}
	return &claims, nil
}

// assertionKey is the single-use marker of a client's assertion jti: a
// hash, so that a jti of any length and content makes a key of fixed size,
// and one client's jti cannot block another's.
func assertionKey(clientID, jti string) string {
	h := sha256.Sum256([]byte(clientID + "\x00" + jti))
	return "client-assertion:" + base64.RawURLEncoding.EncodeToString(h[:])
}
