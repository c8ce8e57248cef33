package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// Limits on what a service client is registered with.
const (
	MaxClientNameLen  = 200 // bytes
	MaxClientScopes   = 100
	MaxScopeLen       = 128 // bytes
	MaxClientAudience = 20
	MaxAudienceLen    = 256 // bytes

	// maxClientIDLen and maxClientSecretLen bound what AuthenticateClient
	// looks at; Keycard's own ids are 22 and secrets 43 characters.
	maxClientIDLen     = 128
	maxClientSecretLen = 512
)

// Audit event types of service clients and token revocation.
const (
	AuditClientCreated       = "client.created"
	AuditClientUpdated       = "client.updated"
	AuditClientSecretRotated = "client.secret_rotated"
	AuditTokenRevoked        = "token.revoked"
)

// newClientSecret returns a new client secret: keycard.ClientSecretLen
// random bytes, unpadded base64url (43 characters).
func newClientSecret(r io.Reader) (string, error) {
	b := make([]byte, keycard.ClientSecretLen)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("auth: reading random client secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// isScopeToken reports whether s is a scope-token of RFC 6749 section 3.3:
// one or more of %x21 / %x23-5B / %x5D-7E (printable ASCII without space,
// '"' and '\').
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// cleanList checks each value with valid and returns the values without
// repeats, in their first order.
func cleanList(what string, values []string, maxN, maxLen int, valid func(string) bool) ([]string, error) {
	out := []string{}
	for _, v := range values {
		if len(v) > maxLen || !valid(v) {
			return nil, keycard.Errorf(keycard.EINVALID, "Invalid %s %q: use 1 to %d printable ASCII characters without spaces, quotes or backslashes.",
				what, truncate(v, 64), maxLen)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) > maxN {
		return nil, keycard.Errorf(keycard.EINVALID, "At most %d %ss are allowed.", maxN, what)
	}
	return out, nil
}

// truncate shortens s to at most n bytes for an error message, on a rune
// boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func checkClientName(name string) error {
	if name == "" || len(name) > MaxClientNameLen || !utf8.ValidString(name) ||
		strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return keycard.Errorf(keycard.EINVALID, "Client name must be 1 to %d bytes of UTF-8 text without control characters.", MaxClientNameLen)
	}
	return nil
}

// CreateClient registers a client as spec describes (see ClientSpec for
// the rules) and returns it with its secret: shown only this once, as only
// its SHA-256 hash is stored. A public client, or one that authenticates
// with private_key_jwt, gets no secret ("").
func (s *Service) CreateClient(ctx context.Context, by Actor, spec ClientSpec) (*keycard.Client, string, error) {
	c, err := spec.client()
	if err != nil {
		return nil, "", err
	}
	if c.ID, err = keycard.NewID(s.rand); err != nil {
		return nil, "", err
	}
	secret := ""
	if !c.Public() && c.OAuth.TokenAuthMethod != keycard.AuthPrivateKeyJWT {
		if secret, err = newClientSecret(s.rand); err != nil {
			return nil, "", err
		}
		c.SecretHash = keycard.HashClientSecret(secret)
	}
	c.CreatedAt, c.UpdatedAt = s.now(), s.now()
	if err := s.stores.Clients.CreateClient(ctx, c); err != nil {
		return nil, "", err
	}
	s.audit(ctx, AuditClientCreated, by, c.ID, clientAuditDetail(c))
	return c, secret, nil
}

// UpdateClient replaces a client's registration with spec (its secret
// stays). A client cannot change between public and confidential, nor
// start authenticating with a secret it does not have: register a new one.
// It fails with ENOTFOUND for an unknown client.
func (s *Service) UpdateClient(ctx context.Context, by Actor, id string, spec ClientSpec) (*keycard.Client, error) {
	old, err := s.stores.Clients.Client(ctx, id)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, keycard.Errorf(keycard.ENOTFOUND, "Client not found.")
	} else if err != nil {
		return nil, err
	}
	c, err := spec.client()
	if err != nil {
		return nil, err
	}
	if c.Public() != old.Public() {
		return nil, keycard.Errorf(keycard.ECONFLICT, "A client cannot change between public and confidential; register a new one.")
	}
	if !c.Public() && len(old.SecretHash) == 0 && c.OAuth.TokenAuthMethod != keycard.AuthPrivateKeyJWT {
		return nil, keycard.Errorf(keycard.ECONFLICT, "This client has no secret; give it one with rotate-secret first.")
	}
	c.ID, c.SecretHash, c.CreatedAt, c.UpdatedAt = id, old.SecretHash, old.CreatedAt, s.now()
	updated, err := s.stores.Clients.UpdateClient(ctx, c)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, AuditClientUpdated, by, id, clientAuditDetail(updated))
	return updated, nil
}

// Client returns a registered client, or ENOTFOUND.
func (s *Service) Client(ctx context.Context, id string) (*keycard.Client, error) {
	c, err := s.stores.Clients.Client(ctx, id)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, keycard.Errorf(keycard.ENOTFOUND, "Client not found.")
	}
	return c, err
}

// clientAuditDetail is what the audit log records of a registration.
func clientAuditDetail(c *keycard.Client) map[string]any {
	d := map[string]any{"name": c.Name, "scopes": nonNilRoles(c.Scopes), "audiences": nonNilRoles(c.Audiences)}
	if len(c.OAuth.GrantTypes) > 0 {
		d["grant_types"], d["redirect_uris"], d["public"], d["first_party"] = c.OAuth.GrantTypes, nonNilRoles(c.OAuth.RedirectURIs), c.OAuth.Public, c.OAuth.FirstParty
	}
	return d
}

// RotateClientSecret gives the client a new secret and returns it, shown
// only this once. The old secret stops working at once; tokens already
// issued stay valid. It fails with ENOTFOUND for an unknown client.
func (s *Service) RotateClientSecret(ctx context.Context, by Actor, id string) (string, error) {
	secret, err := newClientSecret(s.rand)
	if err != nil {
		return "", err
	}
	c, err := s.Client(ctx, id)
	if err != nil {
		return "", err
	}
	if c.Public() {
		return "", keycard.Errorf(keycard.ECONFLICT, "A public client has no secret.")
	}
	if err := s.stores.Clients.SetClientSecret(ctx, id, keycard.HashClientSecret(secret), s.now()); err != nil {
		return "", err
	}
	s.audit(ctx, AuditClientSecretRotated, by, id, nil)
	return secret, nil
}

// errClient is the one answer to every failed client authentication.
func errClient() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "Invalid client credentials."}
}

// AuthenticateClient checks a client id and secret (RFC 6749 section
// 2.3.1) and returns the client. An unknown id, a wrong secret, a client
// registered for private_key_jwt (AuthenticateClientAssertion) and
// malformed input all give the same EUNAUTHORIZED error. An unknown id and
// a wrong secret also cost the same work — one store lookup, one SHA-256
// and one constant-time comparison — so timing does not tell which ids
// exist; an id longer than any Keycard makes skips the lookup.
//
// The lookup also reads the key generation and tells the key manager
// (KeyManager.Observe), so that a token then minted for the client
// (ClientCredentials) is signed with a key that was current at the
// lookup, and a token then introspected is verified with such keys.
func (s *Service) AuthenticateClient(ctx context.Context, id, secret string) (*keycard.Client, error) {
	var c *keycard.Client
	if id != "" && len(id) <= maxClientIDLen {
		var (
			gen int64
			err error
		)
		c, gen, err = s.stores.Clients.ClientWithKeyGeneration(ctx, id)
		if err != nil && keycard.ErrorCode(err) != keycard.ENOTFOUND {
			return nil, err
		}
		if c != nil && s.keys != nil {
			s.keys.Observe(gen)
		}
	}
	return checkClientSecret(c, secret)
}

// AuthenticateClientCached is AuthenticateClient for the introspection
// endpoint, with the store's read cached (Config.IntrospectionCache): a
// client, or the absence of one, looked up within the last
// Config.IntrospectionCacheFor is used again unless a client was
// created, changed or deleted, or its secret rotated, by this Service
// since (at once), or by another process more than
// IntrospectionCacheFor ago. The secret is hashed and compared on every
// call, unknown ids are cached too, so that the cache does not tell
// unknown ids from wrong secrets either. It does not observe the key
// generation: a token minted for the client must not follow it (use
// AuthenticateClient). Without the cache it is AuthenticateClient.
func (s *Service) AuthenticateClientCached(ctx context.Context, id, secret string) (*keycard.Client, error) {
	if s.clientCache == nil {
		return s.AuthenticateClient(ctx, id, secret)
	}
	var c *keycard.Client
	if id != "" && len(id) <= maxClientIDLen {
		now := s.now()
		cached, ok := s.clientCache.get(id, now)
		if ok {
			c = cached
		} else {
			epoch := s.feed.epochs.now()
			var err error
			c, err = s.stores.Clients.Client(ctx, id)
			if err != nil && keycard.ErrorCode(err) != keycard.ENOTFOUND {
				return nil, err
			}
			s.clientCache.put(id, c, now, epoch)
		}
	}
	return checkClientSecret(c, secret)
}

// checkClientSecret is AuthenticateClient's check of secret against the
// client c found for the id (nil: none), in the same work whether c is
// nil or not.
func checkClientSecret(c *keycard.Client, secret string) (*keycard.Client, error) {
	if len(secret) > maxClientSecretLen {
		secret = secret[:maxClientSecretLen]
	}
	// Against an unknown id, compare with a hash no secret has, so that
	// the work does not tell unknown ids from wrong secrets.
	want := make([]byte, len(keycard.HashClientSecret("")))
	if c != nil {
		want = c.SecretHash
	}
	ok := subtle.ConstantTimeCompare(keycard.HashClientSecret(secret), want) == 1
	if c == nil || !ok || secret == "" {
		return nil, errClient()
	}
	// A client registered for private_key_jwt authenticates with its
	// keys alone, even if a secret from before is still stored.
	if c.OAuth.TokenAuthMethod == keycard.AuthPrivateKeyJWT {
		return nil, errClient()
	}
	return c, nil
}

// errScope returns the refusal of a requested scope; the HTTP layer
// answers it as invalid_scope (RFC 6749 section 5.2).
func errScope(format string, args ...any) error {
	return keycard.Errorf(keycard.EFORBIDDEN, format, args...)
}

// grantScopes returns the scopes to grant for a requested scope parameter
// (RFC 6749 section 3.3): every one must be allowed to the client; none
// means all of the client's scopes.
func grantScopes(c *keycard.Client, requested string) ([]string, error) {
	if strings.Trim(requested, " ") == "" {
		return slices.Clone(c.Scopes), nil
	}
	var out []string
	for _, sc := range strings.Split(requested, " ") {
		if sc == "" {
			continue
		}
		if !isScopeToken(sc) {
			return nil, errScope("The scope parameter is malformed.")
		}
		if !c.HasScope(sc) {
			return nil, errScope("Scope %q is not allowed for this client.", truncate(sc, 64))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// ClientCredentials issues an access token to an authenticated service
// client (the client_credentials grant, RFC 6749 section 4.4) in the RFC
// 9068 profile: sub and client_id are the client's id, scope the requested
// scopes (all of the client's when none are requested), aud the client's
// first audience or the server's default one. There is no sid and no
// refresh token (RFC 6749 section 4.4.3). A scope the client is not
// allowed fails with EFORBIDDEN, which the token endpoint answers as
// invalid_scope. c comes from AuthenticateClient, whose lookup tells the
// key manager of any change to the signing keys, so the token is never
// signed with a key revoked before that lookup.
func (s *Service) ClientCredentials(ctx context.Context, c *keycard.Client, scope string) (*Tokens, error) {
	if err := requireDPoP(ctx, c); err != nil {
		return nil, err
	}
	scopes, err := grantScopes(c, scope)
	if err != nil {
		return nil, err
	}
	if s.cfg.Issuer == "" || s.keys == nil {
		return nil, errors.New("auth: minting tokens needs an issuer and signing keys")
	}
	signer, _, err := s.keys.Signer(ctx)
	if err != nil {
		return nil, err
	}
	jti, err := keycard.NewID(s.rand)
	if err != nil {
		return nil, err
	}
	aud := s.cfg.Audience
	if len(c.Audiences) > 0 {
		aud = c.Audiences[0]
	}
	now := s.now()
	claims := &jwt.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   c.ID,
			Audience:  jwt.Audience{aud},
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		ClientID: c.ID,
		Scope:    strings.Join(scopes, " "),
	}
	claims.Confirmation.JKT = DPoPKey(ctx)
	token, err := s.sign(ctx, signer, claims)
	if err != nil {
		return nil, err
	}
	return &Tokens{AccessToken: token, TokenType: tokenType(ctx), ExpiresIn: int64(s.cfg.AccessTTL / time.Second), Scope: claims.Scope}, nil
}

// The kinds of token introspection and revocation take, named as RFC
// 7009 section 2.1's token type hints. They are not RFC 6749 section 5.1
// token types: an access token's type, in an introspection response, is
// "Bearer".
const (
	TokenTypeAccess  = "access_token"
	TokenTypeRefresh = "refresh_token"
)

// Introspection is the answer to a token introspection (RFC 7662 section
// 2.2). When Active is false no other field is set.
type Introspection struct {
	Active    bool
	TokenType string // TokenTypeAccess or TokenTypeRefresh: which kind of token
	Scope     string
	ClientID  string
	Username  string // for tokens of users
	Subject   string
	Audience  []string
	Issuer    string
	JTI       string
	SessionID string
	ExpiresAt time.Time
	IssuedAt  time.Time
	// KeyThumbprint is the cnf.jkt of an access token bound to a DPoP
	// key (RFC 9449 section 6.2), or empty.
	KeyThumbprint string
	// AuthTime, ACR and AMR say when and how the user signed in, for
	// tokens of users (RFC 9470 section 6: a resource server that
	// introspects decides step-up from them).
	AuthTime time.Time
	ACR      string
	AMR      []string
}

// liveAccess checks, after the signature and claims of an access token
// have been verified, the server-side state that can end it before its
// expiry: a revocation of its jti, its session (for tokens of users) or
// its client (for tokens of service clients). It returns the user or the
// client the token is for, and errToken() for a dead token.
func (s *Service) liveAccess(ctx context.Context, c *jwt.AccessClaims) (*keycard.User, *keycard.Client, error) {
	u, cl, _, err := s.liveAccessUntil(ctx, c)
	return u, cl, err
}

// liveAccessUntil is liveAccess that also returns, for a user's token,
// when its session ends unless it is used again (the earlier of its
// expiry and its idle expiry); the zero time for a service client's.
func (s *Service) liveAccessUntil(ctx context.Context, c *jwt.AccessClaims) (*keycard.User, *keycard.Client, time.Time, error) {
	revoked, err := s.stores.Revocations.HasRevocation(ctx, keycard.RevokeToken, c.ID)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	if revoked {
		return nil, nil, time.Time{}, errToken()
	}
	if c.SessionID == "" {
		// A service client's token: sub and client_id are its id.
		if c.ClientID != c.Subject {
			return nil, nil, time.Time{}, errToken()
		}
		cl, err := s.stores.Clients.Client(ctx, c.ClientID)
		if keycard.ErrorCode(err) == keycard.ENOTFOUND {
			return nil, nil, time.Time{}, errToken()
		} else if err != nil {
			return nil, nil, time.Time{}, err
		}
		return nil, cl, time.Time{}, nil
	}
	u, sess, err := s.liveSessionUser(ctx, c.SessionID, c.Subject)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	until := sess.ExpiresAt
	if idle := sess.IdleExpiresAt(); idle.Before(until) {
		until = idle
	}
	return u, nil, until, nil
}

// liveSessionUser returns the user of an active session, and the
// session, after checking that the session belongs to userID and the
// user is enabled; errToken() otherwise.
func (s *Service) liveSessionUser(ctx context.Context, sessionID, userID string) (*keycard.User, *keycard.Session, error) {
	sess, err := s.stores.Sessions.Session(ctx, sessionID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, nil, errToken()
	} else if err != nil {
		return nil, nil, err
	}
	if sess.UserID != userID || !sess.Active(s.now()) {
		return nil, nil, errToken()
	}
	u, err := s.stores.Users.UserByID(ctx, userID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, nil, errToken()
	} else if err != nil {
		return nil, nil, err
	}
	if u.Disabled {
		return nil, nil, errToken()
	}
	return u, sess, nil
}

// Introspect says whether a token issued by this server is active (RFC
// 7662 section 2.2) and, if it is, what it is. Access tokens are active
// while their signature verifies under a published key, they have not
// expired (no leeway: the server's clock is the reference), their jti is
// not revoked, and their session is active and its user enabled (for
// tokens of users) or their client still registered (for tokens of service
// clients). Refresh tokens are active while they are their session's live
// token and the session is active. Anything else — expired, revoked,
// rotated, unknown or malformed — is answered {Active: false} with a nil
// error; only a failing store gives an error.
//
// With Config.IntrospectionCache, the answer for an active access token
// is kept (introCache) and given again without the signature check and
// the store's reads while the token and its session last, for at most
// Config.IntrospectionCacheFor, while the key that signed it is still
// one the server verifies with, and until any change that could end it:
// a revocation, a user or client changed (see epochs).
func (s *Service) Introspect(ctx context.Context, token string) (*Introspection, error) {
	inactive := &Introspection{}
	if _, _, err := keycard.ParseRefreshToken(token); err == nil {
		return s.introspectRefresh(ctx, token)
	}
	var epoch uint64
	if s.introCache != nil {
		in, h, ok := s.introCache.get(token, s.now())
		if ok {
			if s.keyVerifies(ctx, h) {
				return in, nil
			}
			return inactive, nil
		}
		// Taken before the first read: a change committed after it
		// keeps this lookup's answer out of the cache.
		epoch = s.feed.epochs.now()
	}
	var c jwt.AccessClaims
	h, err := s.introspector.ParseWithHeader(token, &c)
	if err != nil {
		s.log.DebugContext(ctx, "introspected token rejected", "err", err)
		return inactive, nil
	}
	now := s.now()
	if !now.Before(c.ExpiresAt.Time) {
		return inactive, nil
	}
	u, _, sessionEnd, err := s.liveAccessUntil(ctx, &c)
	if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
		return inactive, nil
	} else if err != nil {
		return nil, err
	}
	in := &Introspection{
		Active: true, TokenType: TokenTypeAccess, Scope: c.Scope, ClientID: c.ClientID,
		Subject: c.Subject, Audience: slices.Clone(c.Audience), Issuer: c.Issuer, JTI: c.ID,
		SessionID: c.SessionID, ExpiresAt: c.ExpiresAt.Time, IssuedAt: c.IssuedAt.Time,
		KeyThumbprint: c.Confirmation.JKT,
		AuthTime:      c.AuthTime.Time, ACR: c.ACR, AMR: slices.Clone(c.AMR),
	}
	if u != nil {
		in.Username = u.Username
	}
	if s.introCache != nil {
		until := c.ExpiresAt.Time
		if !sessionEnd.IsZero() && sessionEnd.Before(until) {
			until = sessionEnd
		}
		s.introCache.put(token, in, jose.Header{Algorithm: h.Algorithm, KeyID: h.KeyID}, until, now, epoch)
	}
	return in, nil
}

// keyVerifies says whether the key a token header names is still one
// the server verifies with: a cached introspection answer is given only
// then.
func (s *Service) keyVerifies(ctx context.Context, h *jose.Header) bool {
	if s.keys == nil {
		return false
	}
	set, err := s.keys.VerificationKeys(ctx)
	if err != nil {
		return false
	}
	_, err = set.ResolveKey(h)
	return err == nil
}

// refreshTokenOf looks up a refresh token and checks its secret in
// constant time; a malformed, unknown or mismatching token gives nil.
func (s *Service) refreshTokenOf(ctx context.Context, token string) (*keycard.RefreshToken, error) {
	id, hash, err := keycard.ParseRefreshToken(token)
	if err != nil {
		return nil, nil
	}
	rt, err := s.stores.Sessions.RefreshToken(ctx, id)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(rt.SecretHash, hash) != 1 {
		return nil, nil
	}
	return rt, nil
}

func (s *Service) introspectRefresh(ctx context.Context, token string) (*Introspection, error) {
	inactive := &Introspection{}
	rt, err := s.refreshTokenOf(ctx, token)
	if err != nil || rt == nil || !rt.Live() {
		return inactive, err
	}
	sess, err := s.stores.Sessions.Session(ctx, rt.SessionID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return inactive, nil
	} else if err != nil {
		return nil, err
	}
	u, _, err := s.liveSessionUser(ctx, sess.ID, sess.UserID)
	if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
		return inactive, nil
	} else if err != nil {
		return nil, err
	}
	exp := sess.ExpiresAt
	if idle := sess.IdleExpiresAt(); idle.Before(exp) {
		exp = idle
	}
	return &Introspection{
		Active: true, TokenType: TokenTypeRefresh, ClientID: s.cfg.ClientID, Username: u.Username,
		Subject: u.ID, Issuer: s.cfg.Issuer, SessionID: sess.ID, ExpiresAt: exp, IssuedAt: rt.CreatedAt,
		AuthTime: sess.AuthenticatedAt(), ACR: acrOf(sess.AMR), AMR: slices.Clone(sess.AMR),
	}, nil
}

// mayRevoke says whether caller may revoke a user's token of the client
// issuedTo ("" for Keycard's own sign-ins): an application's tokens only
// by that application (RFC 7009 section 2.1); Keycard's own by a
// confidential client (a trusted back end), not by a public one.
func mayRevoke(caller *keycard.Client, issuedTo string) error {
	if issuedTo != "" && issuedTo != caller.ID || issuedTo == "" && caller.Public() {
		return keycard.Errorf(keycard.EFORBIDDEN, "This token was issued to another client.")
	}
	return nil
}

// RevokeToken revokes a token on behalf of an authenticated client (RFC
// 7009 section 2.1), or of a public client that named itself. A refresh
// token revokes its whole session, which puts the session's sid in the
// revocation feed. An access token gets a RevokeToken (jti) entry in the
// feed; for a user's token nothing else changes: its session and refresh
// token live on. A confidential client may revoke the tokens of Keycard's
// own sign-ins (service clients are trusted back ends: a gateway or a back
// end ending a user's session); an application's tokens, and a service
// client's, only that client may revoke: EFORBIDDEN otherwise. Tokens that are
// unknown, malformed, expired or already revoked are not an error (RFC
// 7009 section 2.2). The token type hint is not needed: Keycard tells
// refresh tokens from access tokens by their form.
func (s *Service) RevokeToken(ctx context.Context, caller *keycard.Client, token string, c Agent) error {
	c = c.clean()
	if _, _, err := keycard.ParseRefreshToken(token); err == nil {
		rt, err := s.refreshTokenOf(ctx, token)
		if err != nil || rt == nil {
			return err
		}
		owner, err := s.stores.Sessions.Session(ctx, rt.SessionID)
		if keycard.ErrorCode(err) == keycard.ENOTFOUND {
			return nil
		} else if err != nil {
			return err
		}
		if err := mayRevoke(caller, owner.ClientID); err != nil {
			return err
		}
		sess, err := s.stores.Sessions.RevokeSession(ctx, rt.SessionID, s.now(), keycard.RevokeTokenRevocation)
		if keycard.ErrorCode(err) == keycard.ENOTFOUND {
			return nil
		} else if err != nil {
			return err
		}
		s.stats.SessionsRevoked(keycard.RevokeTokenRevocation, 1)
		s.audit(ctx, keycard.AuditLogout, ClientActor(caller, c), sess.UserID, map[string]string{"session": sess.ID, "reason": keycard.RevokeTokenRevocation})
		return nil
	}
	var claims jwt.AccessClaims
	if err := s.introspector.Parse(token, &claims); err != nil || !s.now().Before(claims.ExpiresAt.Time) {
		return nil // nothing a verifier would accept, so nothing to revoke
	}
	switch {
	case claims.SessionID == "" && claims.ClientID != caller.ID:
		return keycard.Errorf(keycard.EFORBIDDEN, "This token was issued to another client.")
	case claims.SessionID != "" && claims.ClientID != s.cfg.ClientID:
		if err := mayRevoke(caller, claims.ClientID); err != nil {
			return err
		}
	case claims.SessionID != "":
		if err := mayRevoke(caller, ""); err != nil {
			return err
		}
	}
	revoked, err := s.stores.Revocations.HasRevocation(ctx, keycard.RevokeToken, claims.ID)
	if err != nil || revoked {
		return err
	}
	if err := s.stores.Revocations.AddRevocation(ctx, &keycard.Revocation{Kind: keycard.RevokeToken, Value: claims.ID, At: s.now()}); err != nil {
		return err
	}
	s.audit(ctx, AuditTokenRevoked, ClientActor(caller, c), claims.Subject, map[string]string{"jti": claims.ID})
	return nil
}

// PublicClient returns the public client with this id: a token request
// that names a client by client_id alone (RFC 6749 section 2.3) is for a
// public client; a confidential one must authenticate. Anything else is
// the same EUNAUTHORIZED error as a failed authentication.
func (s *Service) PublicClient(ctx context.Context, id string) (*keycard.Client, error) {
	if id == "" || len(id) > maxClientIDLen {
		return nil, errClient()
	}
	c, err := s.stores.Clients.Client(ctx, id)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, errClient()
	} else if err != nil {
		return nil, err
	}
	if !c.Public() {
		return nil, errClient()
	}
	return c, nil
}
