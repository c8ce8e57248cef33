package auth

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"slices"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// Authentication context classes (the "acr" claim of access and ID
// tokens, OpenID Connect Core section 2; RFC 9470 section 3), from the
// weakest: ACRPassword for a sign-in with one factor, ACRMFA for one with
// a second factor. acrOf maps a session's amr to them; docs/accounts.md
// lists them for services.
const (
	ACRPassword = "pwd"
	ACRMFA      = "mfa"
)

// ACRValues are the supported authentication context classes, weakest
// first: discovery's acr_values_supported.
var ACRValues = []string{ACRPassword, ACRMFA}

// "amr" values (RFC 8176 section 2): AMRPassword for a password,
// AMRMFA for a sign-in with more than one factor.
const (
	AMRPassword = "pwd"
	AMRMFA      = "mfa"
)

// IDClaims are the claims of an ID token (OpenID Connect Core section 2),
// and of the answer of the userinfo endpoint (section 5.3) where they
// overlap.
type IDClaims struct {
	jwt.RegisteredClaims
	Nonce    string          `json:"nonce,omitempty"`
	AuthTime jwt.NumericDate `json:"auth_time,omitzero"`
	ACR      string          `json:"acr,omitempty"`
	AMR      []string        `json:"amr,omitempty"`
	AZP      string          `json:"azp,omitempty"`
	// SessionID is the browser's single sign-on session, which
	// RP-initiated and back-channel logout name.
	SessionID string `json:"sid,omitempty"`
	// AccessTokenHash is at_hash: the left half of the hash of the access
	// token issued with the ID token (section 3.1.3.6).
	AccessTokenHash   string   `json:"at_hash,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Roles             []string `json:"roles,omitempty"`
	// Email and EmailVerified are the user's address and whether it is
	// verified (section 5.1), with the email scope, for a user who has
	// an address.
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
	// IdP names the upstream identity provider the user signed in at
	// (docs/federation.md); empty for a sign-in at Keycard.
	IdP string `json:"idp,omitempty"`
}

// setEmail sets the email claims for u if the scopes include email.
func (c *IDClaims) setEmail(u *keycard.User, scopes []string) {
	if u.Email != "" && slices.Contains(scopes, ScopeEmail) {
		verified := u.EmailVerified
		c.Email, c.EmailVerified = u.Email, &verified
	}
}

// errCode is the answer to every authorization code that is not honoured:
// the token endpoint's invalid_grant.
func errCode() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "Invalid authorization code."}
}

// AuditCodeReuse is recorded when an authorization code is presented a
// second time and the grant of its first use is revoked.
const AuditCodeReuse = "code.reuse_detected"

// ExchangeCode is the authorization_code grant (RFC 6749 section 4.1.3):
// client (authenticated, or a public client identified by its client_id)
// trades a code, with the redirect URI and the PKCE verifier of its
// request, for an access token, an ID token when openid was granted, and
// a refresh token when offline_access was granted or the client is first
// party. The tokens belong to a new grant session under the browser
// session the code was issued in, so that signing out there ends them. A
// code is good once: a second use revokes what the first one got (RFC 6749
// section 4.1.2). Every refusal is the same EUNAUTHORIZED error
// (invalid_grant).
func (s *Service) ExchangeCode(ctx context.Context, client *keycard.Client, code, redirectURI, verifier string, from Agent) (*Tokens, error) {
	from = from.clean()
	if err := requireDPoP(ctx, client); err != nil {
		return nil, err
	}
	if s.codes != nil && looksSealed(code) {
		return s.exchangeSealedCode(ctx, client, code, redirectURI, verifier, from)
	}
	// A stored code: issued by a server without a master key, or by an
	// instance of a version before sealed codes during a rolling upgrade.
	id, hash, ok := keycard.ParseOpaqueToken(code)
	if !ok {
		return nil, errCode()
	}
	c, err := s.stores.Grants.AuthCode(ctx, id)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, errCode()
	} else if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(c.SecretHash, hash) != 1 || c.ClientID != client.ID {
		return nil, errCode() // not this client's: it is left as it is
	}
	// A redeemed code goes on to Redeem, whatever else is wrong with the
	// request: presented again, it revokes what its first use got.
	if c.RedeemedAt.IsZero() && (!s.now().Before(c.ExpiresAt) || c.RedirectURI != redirectURI || !checkPKCE(c.CodeChallenge, verifier)) {
		return nil, errCode()
	}
	// A code issued for a DPoP key (dpop_jkt, RFC 9449 section 10) is
	// redeemed only with a proof of that key.
	if c.RedeemedAt.IsZero() && c.DPoPJKT != "" && subtle.ConstantTimeCompare([]byte(c.DPoPJKT), []byte(DPoPKey(ctx))) != 1 {
		return nil, errCode()
	}
	sess := &keycard.Session{UserID: c.UserID, ParentID: c.SessionID, ClientID: client.ID, Scope: c.Scope,
		AuthTime: c.AuthTime, AMR: c.AMR, UserAgent: from.UserAgent, ClientAddr: from.Addr}
	return s.grantTokens(ctx, keycard.RedeemRequest{Kind: keycard.GrantKindAuthCode, ID: id}, client, sess, nil, c.Nonce, from)
}

// exchangeSealedCode is ExchangeCode for a sealed code. One that does not
// open (tampered, sealed under another master key, not a code) or is
// another client's is refused and changes nothing. One refused for its
// expiry, redirect URI, verifier or DPoP key still goes to the store,
// which revokes what its first use got if it was used (RFC 6749 section
// 4.1.2), as a stored code does. A third-party client's code is redeemed
// only while the user's consent to the client exists.
func (s *Service) exchangeSealedCode(ctx context.Context, client *keycard.Client, code, redirectURI, verifier string, from Agent) (*Tokens, error) {
	c, err := s.codes.open(code)
	if err != nil || c.ClientID != client.ID {
		return nil, errCode()
	}
	r := sealedRedeem(c)
	if !s.now().Before(c.ExpiresAt) || !c.sameRedirect(redirectURI) || !checkPKCE(c.CodeChallenge, verifier) ||
		c.DPoPJKT != "" && subtle.ConstantTimeCompare([]byte(c.DPoPJKT), []byte(DPoPKey(ctx))) != 1 {
		r.At = s.now()
		outcome, err := s.stores.Grants.Redeem(ctx, r)
		switch {
		case err != nil && keycard.ErrorCode(err) != keycard.ENOTFOUND && keycard.ErrorCode(err) != keycard.EUNAUTHORIZED:
			return nil, err
		case outcome == keycard.Reused:
			s.codeReused(ctx, client, c.ID, from)
		}
		return nil, errCode()
	}
	r.NeedsConsent = !client.OAuth.FirstParty
	sess := &keycard.Session{UserID: c.UserID, ParentID: c.SessionID, ClientID: client.ID, Scope: c.Scope,
		AuthTime: c.AuthTime, AMR: c.AMR, UserAgent: from.UserAgent, ClientAddr: from.Addr}
	// The browser session as the code saw it: what grantTokens takes of
	// it never changes, and Redeem checks in its transaction that it is
	// still active.
	parent := &keycard.Session{ID: c.SessionID, UserID: c.UserID, ExpiresAt: c.ParentExpiresAt, AuthTime: c.AuthTime, AMR: c.AMR,
		IdP: c.IdP, IdPSubject: c.IdPSubject, IdPSessionID: c.IdPSessionID}
	return s.grantTokens(ctx, r, client, sess, parent, c.Nonce, from)
}

// codeReused records the second use of a code, whose first grant the
// store has revoked.
func (s *Service) codeReused(ctx context.Context, client *keycard.Client, id string, from Agent) {
	s.stats.SessionsRevoked(keycard.RevokeCodeReuse, 1)
	s.audit(ctx, AuditCodeReuse, ClientActor(client, from), client.ID, map[string]string{"code": id})
}

// grantTokens creates the grant session sess (filling in its id, times and
// lifetimes) by redeeming the code of r (its Kind, ID and, for a sealed
// code, ExpiresAt and NeedsConsent), and mints its tokens. parent is the
// browser session as a sealed code carries it (its id, user, expiry and
// upstream provider), or nil to read it, and refuse it unless it is
// active, first; Redeem checks in its transaction that it is active.
func (s *Service) grantTokens(ctx context.Context, r keycard.RedeemRequest, client *keycard.Client, sess *keycard.Session, parent *keycard.Session, nonce string, from Agent) (*Tokens, error) {
	errCode := errCode
	if r.Kind == keycard.GrantKindDeviceCode {
		errCode = errDeviceCode
	}
	u, err := s.stores.Users.UserByID(ctx, sess.UserID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, errCode()
	} else if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, errCode()
	}
	now := s.now()
	if parent == nil {
		if parent, err = s.stores.Sessions.Session(ctx, sess.ParentID); keycard.ErrorCode(err) == keycard.ENOTFOUND {
			return nil, errCode()
		} else if err != nil {
			return nil, err
		}
		if !parent.Active(now) {
			return nil, errCode()
		}
	}
	if sess.ID, err = keycard.NewID(s.rand); err != nil {
		return nil, err
	}
	pol := s.grantPolicy(u, client)
	sess.CreatedAt, sess.LastUsedAt = now, now
	sess.IdleTimeout = pol.IdleTimeout
	sess.ExpiresAt = now.Add(pol.SessionLifetime)
	if parent.ExpiresAt.Before(sess.ExpiresAt) {
		sess.ExpiresAt = parent.ExpiresAt
	}
	if sess.AuthTime.IsZero() {
		sess.AuthTime = parent.AuthenticatedAt()
	}
	if client.Public() {
		// A public client's refresh token is bound to its DPoP key
		// (RFC 9449 section 5): it has no other credential.
		sess.DPoPJKT = DPoPKey(ctx)
	}
	if len(sess.AMR) == 0 {
		sess.AMR = parent.AMR
	}
	sess.IdP, sess.IdPSubject, sess.IdPSessionID = parent.IdP, parent.IdPSubject, parent.IdPSessionID
	var refresh string
	var first *keycard.RefreshToken
	scopes := strings.Fields(sess.Scope)
	if client.AllowsGrant(keycard.GrantRefreshToken) && (client.OAuth.FirstParty || slices.Contains(scopes, ScopeOfflineAccess)) {
		var rid string
		var hash []byte
		if refresh, rid, hash, err = keycard.NewRefreshToken(s.rand); err != nil {
			return nil, err
		}
		first = &keycard.RefreshToken{ID: rid, SecretHash: hash, CreatedAt: now}
	}
	// The grant is recorded in Redeem's transaction: one write the fewer
	// per grant, and no grant without its record.
	audit := s.auditEvent(AuditGrant, UserActor(u.ID, from), u.ID, map[string]string{"client": client.ID, "session": sess.ID, "parent": parent.ID, "scope": sess.Scope})
	r.Session, r.First, r.At, r.Audit = sess, first, now, audit
	outcome, err := s.stores.Grants.Redeem(ctx, r)
	switch {
	case keycard.ErrorCode(err) == keycard.EUNAUTHORIZED || keycard.ErrorCode(err) == keycard.ENOTFOUND || keycard.ErrorCode(err) == keycard.EINVALID:
		return nil, errCode()
	case err != nil:
		return nil, err
	case outcome == keycard.Reused:
		// Another request redeemed it first; Redeem revoked that grant.
		s.codeReused(ctx, client, r.ID, from)
		return nil, errCode()
	}
	t, err := s.sessionTokens(ctx, u, client, sess, parent.ID, nonce)
	if err != nil {
		return nil, err
	}
	t.RefreshToken = refresh
	return t, nil
}

// AuditGrant is recorded when an application gets tokens for a user.
const AuditGrant = "grant.issued"

// grantPolicy returns the lifetimes of u's grant sessions for client: the
// user's (Config and role policies), shortened by the client's.
func (s *Service) grantPolicy(u *keycard.User, client *keycard.Client) SessionPolicy {
	p := s.cfg.policyFor(u)
	shorter := func(cur, o time.Duration) time.Duration {
		if o > 0 && o < cur {
			return o
		}
		return cur
	}
	if client != nil {
		p.AccessTTL = shorter(p.AccessTTL, client.OAuth.AccessTTL)
		p.IdleTimeout = shorter(p.IdleTimeout, client.OAuth.RefreshIdle)
		p.SessionLifetime = shorter(p.SessionLifetime, client.OAuth.RefreshLifetime)
	}
	return p
}

// sessionTokens mints the access token of a grant session, and its ID
// token when openid was granted. parentID is the browser session (the ID
// token's sid).
func (s *Service) sessionTokens(ctx context.Context, u *keycard.User, client *keycard.Client, sess *keycard.Session, parentID, nonce string) (*Tokens, error) {
	openid := slices.Contains(strings.Fields(sess.Scope), ScopeOpenID)
	custom, err := s.customClaims(ctx, u, sess, client, openid)
	if err != nil {
		return nil, err
	}
	access, ttl, err := s.mintFor(ctx, u, sess, client, custom)
	if err != nil {
		return nil, err
	}
	t := &Tokens{AccessToken: access, TokenType: tokenType(ctx), ExpiresIn: int64(ttl / time.Second), SessionID: sess.ID, Scope: sess.Scope}
	if openid {
		if t.IDToken, err = s.idToken(ctx, u, client, sess, parentID, nonce, access, ttl, custom.id()); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// idToken signs an ID token (OpenID Connect Core section 2) for u and
// client, with the active key and header typ "JWT".
func (s *Service) idToken(ctx context.Context, u *keycard.User, client *keycard.Client, sess *keycard.Session, parentID, nonce, access string, ttl time.Duration, custom map[string]json.RawMessage) (string, error) {
	signer, alg, err := s.keys.TypedSigner(ctx, "JWT")
	if err != nil {
		return "", err
	}
	now := s.now()
	c := &IDClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.cfg.Issuer, Subject: u.ID, Audience: jwt.Audience{client.ID},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), IssuedAt: jwt.NewNumericDate(now),
		},
		Nonce: nonce, AuthTime: jwt.NewNumericDate(sess.AuthenticatedAt()), AZP: client.ID, SessionID: parentID,
		AMR: sess.AMR, ACR: acrOf(sess.AMR), IdP: sess.IdP,
	}
	if access != "" {
		if c.AccessTokenHash, err = halfHash(alg, access); err != nil {
			return "", err
		}
	}
	if slices.Contains(strings.Fields(sess.Scope), ScopeProfile) {
		c.PreferredUsername, c.Roles = u.Username, u.Roles
	}
	c.setEmail(u, strings.Fields(sess.Scope))
	return s.sign(ctx, signer, extend(c, custom))
}

// acrOf returns the authentication context class of a sign-in by its
// amr: ACRMFA when amr has "mfa" (a second factor, whatever its kind:
// ["pwd","otp","mfa"], ["hwk","mfa"], …), ACRPassword for any other
// method (["pwd"], a passkey alone ["hwk"], a federated sign-in ["fed"]),
// and "" without one (no acr claim). A sign-in method that counts as
// multi-factor on its own must put "mfa" in its amr.
func acrOf(amr []string) string {
	switch {
	case len(amr) == 0:
		return ""
	case slices.Contains(amr, AMRMFA):
		return ACRMFA
	}
	return ACRPassword
}

// ACRSatisfies reports whether a sign-in of class acr meets a request for
// any of the classes in want (acr_values, RFC 9470's acr_values): an
// ACRMFA sign-in meets a request for ACRPassword too, since it is
// stronger. An empty want is met by any sign-in.
func ACRSatisfies(acr string, want []string) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		if w == acr || w == ACRPassword && acr == ACRMFA {
			return true
		}
	}
	return false
}

// halfHash returns the base64url of the left half of the hash of s, with
// the hash of the JWS algorithm alg (OpenID Connect Core section
// 3.1.3.6); SHA-512 for EdDSA (Ed25519).
func halfHash(alg jose.Algorithm, s string) (string, error) {
	var h hash.Hash
	switch alg {
	case jose.HS256, jose.RS256, jose.PS256, jose.ES256:
		h = sha256.New()
	case jose.HS384, jose.RS384, jose.PS384, jose.ES384:
		h = sha512.New384()
	case jose.HS512, jose.RS512, jose.PS512, jose.ES512, jose.EdDSA:
		h = sha512.New()
	default:
		return "", errors.New("auth: no at_hash for algorithm " + string(alg))
	}
	h.Write([]byte(s))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
}

// s256 is the PKCE S256 transformation: base64url(SHA-256(verifier)).
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// UserInfo answers the userinfo endpoint (OpenID Connect Core section
// 5.3) for an access token of a grant session with the openid scope:
// sub, and by scope preferred_username and roles (profile). A token that
// is not accepted, or has no openid scope, is EUNAUTHORIZED (the endpoint
// answers invalid_token) or EFORBIDDEN (insufficient_scope).
func (s *Service) UserInfo(ctx context.Context, token string) (*IDClaims, error) {
	var c jwt.AccessClaims
	if err := s.introspector.Parse(token, &c); err != nil {
		s.log.DebugContext(ctx, "userinfo: access token rejected", "err", err)
		return nil, errToken()
	}
	if c.SessionID == "" {
		return nil, errToken() // a service client's token: no user
	}
	if err := s.checkTokenKey(ctx, &c); err != nil {
		return nil, err
	}
	u, _, err := s.liveAccess(ctx, &c)
	if err != nil {
		return nil, err
	}
	scopes := strings.Fields(c.Scope)
	if !slices.Contains(scopes, ScopeOpenID) {
		return nil, keycard.Errorf(keycard.EFORBIDDEN, "The access token lacks the openid scope.")
	}
	info := &IDClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: u.ID}}
	if slices.Contains(scopes, ScopeProfile) {
		info.PreferredUsername = u.Username
		info.Roles = slices.Clone(u.Roles)
	}
	info.setEmail(u, scopes)
	return info, nil
}

// EndSessionRequest is an RP-initiated logout request's parameters
// (OpenID Connect RP-Initiated Logout 1.0, section 2).
type EndSessionRequest struct {
	IDTokenHint           string
	ClientID              string
	PostLogoutRedirectURI string
	State                 string
}

// EndSession is a checked logout request.
type EndSession struct {
	// Client is the relying party, from the hint's audience or client_id;
	// nil when neither was given.
	Client *keycard.Client
	// SessionID is the hint's sid: the browser session the relying
	// party knew; empty without a hint.
	SessionID string
	// Subject is the hint's sub.
	Subject string
	// RedirectURI is the registered post-logout redirect URI to send the
	// browser to afterwards, with State; empty for Keycard's own page.
	RedirectURI string
	State       string
}

// CheckEndSession checks an RP-initiated logout request. The hint, when
// given, must be an ID token this server signed (it may have expired, up
// to the longest session lifetime); a client_id must agree with its
// audience; a post_logout_redirect_uri must be registered, exactly, for
// the client, which it therefore needs. Errors are EINVALID: the logout
// page shows them and never redirects.
func (s *Service) CheckEndSession(ctx context.Context, req EndSessionRequest) (*EndSession, error) {
	out := &EndSession{State: req.State}
	clientID := req.ClientID
	if req.IDTokenHint != "" {
		var c IDClaims
		if err := s.hintParser.Parse(req.IDTokenHint, &c); err != nil {
			s.log.DebugContext(ctx, "end session: id_token_hint rejected", "err", err)
			return nil, keycard.Errorf(keycard.EINVALID, "The id_token_hint is not an ID token of this server.")
		}
		if len(c.Audience) != 1 {
			return nil, keycard.Errorf(keycard.EINVALID, "The id_token_hint is not an ID token of this server.")
		}
		if clientID != "" && clientID != c.Audience[0] {
			return nil, keycard.Errorf(keycard.EINVALID, "The client_id does not match the id_token_hint.")
		}
		clientID, out.SessionID, out.Subject = c.Audience[0], c.SessionID, c.Subject
	}
	if clientID != "" {
		cl, err := s.stores.Clients.Client(ctx, clientID)
		if keycard.ErrorCode(err) == keycard.ENOTFOUND {
			return nil, keycard.Errorf(keycard.EINVALID, "Unknown client.")
		} else if err != nil {
			return nil, err
		}
		out.Client = cl
	}
	if req.PostLogoutRedirectURI != "" {
		if out.Client == nil {
			return nil, keycard.Errorf(keycard.EINVALID, "A post_logout_redirect_uri needs the id_token_hint or client_id of its client.")
		}
		if !slices.Contains(out.Client.OAuth.PostLogoutRedirectURIs, req.PostLogoutRedirectURI) {
			return nil, keycard.Errorf(keycard.EINVALID, "The post_logout_redirect_uri is not registered for this client.")
		}
		out.RedirectURI = req.PostLogoutRedirectURI
	}
	if len(out.State) > maxStateLen {
		return nil, keycard.Errorf(keycard.EINVALID, "The state parameter is longer than %d bytes.", maxStateLen)
	}
	return out, nil
}

// SigningAlgorithms returns the JWS algorithms of the server's published
// keys, the active key's first: the id_token_signing_alg_values_supported
// of discovery.
func (s *Service) SigningAlgorithms(ctx context.Context) ([]string, error) {
	algs, err := s.keys.Algorithms(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out, nil
}

// EndBrowserSession signs the browser out: its session ends, and with it
// every grant session an application got through it (revoked through the
// revocation feed, and told by back-channel logout).
func (s *Service) EndBrowserSession(ctx context.Context, b *BrowserSession, from Agent) error {
	if _, err := s.stores.Sessions.RevokeSession(ctx, b.Session.ID, s.now(), keycard.RevokeLogout); err != nil {
		return err
	}
	s.stats.SessionsRevoked(keycard.RevokeLogout, 1)
	s.audit(ctx, keycard.AuditLogout, UserActor(b.User.ID, from), b.User.ID, map[string]string{"session": b.Session.ID, "reason": keycard.RevokeLogout})
	return nil
}
