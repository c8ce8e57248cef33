package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
)

// The OpenID Connect scopes (Core section 5.4, 11) Keycard knows besides
// a client's API scopes.
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeOfflineAccess = "offline_access"
)

// oidcScopes are the scopes every application client may ask for.
var oidcScopes = []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess}

// OIDCScopes returns the scopes every application client may ask for.
func OIDCScopes() []string { return slices.Clone(oidcScopes) }

// PushedRequestURIPrefix begins every request_uri the server issues (RFC
// 9126 section 2.2).
const PushedRequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// Limits on an authorization request's parameters.
const (
	maxStateLen     = 1024
	maxNonceLen     = 512
	maxLoginHintLen = 256
	// maxIDTokenHintLen bounds an id_token_hint: an ID token is about a
	// kilobyte.
	maxIDTokenHintLen = 8192
	maxScopeParam     = 2048
	// InteractionLifetime is how long an authorization request waits for
	// the user to sign in or consent.
	InteractionLifetime = 10 * time.Minute
)

// AuthorizeError is the refusal of an authorization request: an OAuth
// error code (RFC 6749 section 4.1.2.1, OpenID Connect Core section
// 3.1.2.6) and a description for the developer. When Redirect is false the
// client or its redirect URI is not established, and the error must be
// shown to the user, never sent to the redirect URI (RFC 6749 section
// 4.1.2.1, RFC 9700 section 4.11).
type AuthorizeError struct {
	Code        string
	Description string
	Redirect    bool
}

func (e *AuthorizeError) Error() string {
	return fmt.Sprintf("auth: authorization refused: %s: %s", e.Code, e.Description)
}

func noRedirect(format string, args ...any) *AuthorizeError {
	return &AuthorizeError{Code: "invalid_request", Description: errorDescription(fmt.Sprintf(format, args...))}
}

func redirectError(code, format string, args ...any) *AuthorizeError {
	return &AuthorizeError{Code: code, Description: errorDescription(fmt.Sprintf(format, args...)), Redirect: true}
}

// maxErrorDescription is the longest error_description sent, in bytes.
const maxErrorDescription = 200

// errorDescription makes s, which may quote what a request held, an
// error_description RFC 6749 section 4.1.2.1 allows: the printable ASCII
// characters but '"' and '\' (which become ' and /, and anything else
// ?), at most maxErrorDescription bytes. The description of a refused
// request goes to the client's redirect URI, where an application may
// show it: an attacker's request must not put markup, quotes or text of
// its choosing beyond a short quote there.
func errorDescription(s string) string {
	s = strings.ReplaceAll(s, "…", "...")
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxErrorDescription-3 {
			b.WriteString("...")
			break
		}
		switch {
		case r == '"':
			b.WriteByte('\'')
		case r == '\\':
			b.WriteByte('/')
		case r < 0x20 || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// AuthorizationRequest is an authorization request's parameters (RFC 6749
// section 4.1.1, RFC 7636, OpenID Connect Core section 3.1.2.1), as the
// client sent them or pushed them (RFC 9126).
type AuthorizationRequest struct {
	ClientID            string `json:"client_id"`
	RedirectURI         string `json:"redirect_uri"`
	ResponseType        string `json:"response_type"`
	ResponseMode        string `json:"response_mode,omitempty"`
	Scope               string `json:"scope"`
	State               string `json:"state,omitempty"`
	Nonce               string `json:"nonce,omitempty"`
	CodeChallenge       string `json:"code_challenge"`
	CodeChallengeMethod string `json:"code_challenge_method"`
	Prompt              string `json:"prompt,omitempty"`
	MaxAge              string `json:"max_age,omitempty"`
	LoginHint           string `json:"login_hint,omitempty"`
	ACRValues           string `json:"acr_values,omitempty"`
	IDTokenHint         string `json:"id_token_hint,omitempty"`
	// DPoPJKT binds the code to a DPoP key (RFC 9449 section 10): the
	// token request must carry a proof of the key with this thumbprint.
	DPoPJKT string `json:"dpop_jkt,omitempty"`
}

// Authorization is a checked authorization request: what the client
// asked for and may get.
type Authorization struct {
	Request AuthorizationRequest
	Client  *keycard.Client
	// Scopes are the requested scopes, each allowed to the client.
	Scopes []string
	// Prompt holds the prompt values (none, login, consent,
	// select_account).
	Prompt []string
	// MaxAge is the largest acceptable time since the user signed in; -1
	// when the request set none.
	MaxAge time.Duration
	// RequestURI is the pushed request the parameters came from; "" when
	// they came with the request.
	RequestURI string
	// Since is when the request began (its push, for a pushed one): a
	// sign-in at or after it satisfies prompt=login and max_age.
	Since time.Time
	// HintSubject is the subject of the request's id_token_hint: the user
	// the client expects to be signed in; "" without a hint.
	HintSubject string
	// ACRValues are the authentication context classes the request asks
	// for (acr_values, OpenID Connect Core section 3.1.2.1) that this
	// server knows (ACRValues), in the request's order; unknown ones are
	// ignored. Empty when it asks for none the server knows.
	ACRValues []string
}

// HasPrompt reports whether the request's prompt holds v.
func (a *Authorization) HasPrompt(v string) bool { return slices.Contains(a.Prompt, v) }

// ResponseMode returns "query" or "form_post".
func (a *Authorization) ResponseMode() string {
	if a.Request.ResponseMode == "" {
		return "query"
	}
	return a.Request.ResponseMode
}

// singleParams turns parameters into single values, the first of each,
// and names one parameter sent more than once (an error, RFC 6749 section
// 3.1), client_id, redirect_uri or request_uri first; an empty one is
// absent.
func singleParams(params url.Values) (map[string]string, string) {
	out := make(map[string]string, len(params))
	repeated := ""
	for k, v := range params {
		if len(v) > 1 && (repeated == "" || k == "client_id" || k == "redirect_uri" || k == "request_uri") {
			repeated = k
		}
		if len(v) > 0 && v[0] != "" {
			out[k] = v[0]
		}
	}
	return out, repeated
}

// Authorize checks an authorization request, from the authorization
// endpoint's parameters (query or form). Errors are *AuthorizeError: ones
// that may not be redirected when the client, or its redirect URI, is not
// established — unknown client, unregistered redirect_uri, a parameter of
// theirs repeated — and redirectable ones otherwise. A request_uri brings
// the parameters of a pushed request (RFC 9126); the other parameters but
// client_id are then ignored.
func (s *Service) Authorize(ctx context.Context, params url.Values) (*Authorization, error) {
	p, repeated := singleParams(params)
	if repeated == "client_id" || repeated == "redirect_uri" || repeated == "request_uri" {
		return nil, noRedirect("The %s parameter is repeated.", repeated)
	}
	clientID := p["client_id"]
	if clientID == "" {
		return nil, noRedirect("The client_id parameter is missing.")
	}
	client, err := s.appClient(ctx, clientID)
	if err != nil {
		return nil, err
	}
	var req AuthorizationRequest
	since := s.now()
	requestURI := p["request_uri"]
	if requestURI != "" {
		pushed, at, err := s.pushedRequest(ctx, client, requestURI)
		if err != nil {
			return nil, err
		}
		req, since = *pushed, at
	} else {
		req = AuthorizationRequest{
			ClientID: clientID, RedirectURI: p["redirect_uri"], ResponseType: p["response_type"], ResponseMode: p["response_mode"],
			Scope: p["scope"], State: p["state"], Nonce: p["nonce"], CodeChallenge: p["code_challenge"],
			CodeChallengeMethod: p["code_challenge_method"], Prompt: p["prompt"], MaxAge: p["max_age"],
			LoginHint: p["login_hint"], ACRValues: p["acr_values"], IDTokenHint: p["id_token_hint"],
			DPoPJKT: p["dpop_jkt"],
		}
	}
	if req.RedirectURI == "" {
		return nil, noRedirect("The redirect_uri parameter is missing.")
	}
	if !MatchRedirectURI(client.OAuth.RedirectURIs, req.RedirectURI) {
		return nil, noRedirect("The redirect_uri is not registered for this client.")
	}
	// From here on the client and its redirect URI are established.
	a := &Authorization{Request: req, Client: client, RequestURI: requestURI, MaxAge: -1, Since: since}
	if len(req.State) > maxStateLen {
		a.Request.State = "" // not echoed: it is not the client's to read back
		return a, redirectError("invalid_request", "The state parameter is longer than %d bytes.", maxStateLen)
	}
	if requestURI == "" && repeated != "" {
		return a, redirectError("invalid_request", "The %s parameter is repeated.", truncate(repeated, 32))
	}
	if requestURI == "" {
		if err := s.checkRequestParams(p); err != nil {
			return a, err
		}
	}
	if err := s.checkAuthorization(a); err != nil {
		return a, err
	}
	return a, nil
}

// checkRequestParams refuses the parameters Keycard does not support.
func (s *Service) checkRequestParams(p map[string]string) error {
	if _, ok := p["request"]; ok {
		return redirectError("request_not_supported", "Request objects are not supported; push the request (PAR) instead.")
	}
	if _, ok := p["registration"]; ok {
		return redirectError("registration_not_supported", "Passing a registration is not supported.")
	}
	return nil
}

// checkAuthorization checks the parameters other than client_id and
// redirect_uri, and fills in a.
func (s *Service) checkAuthorization(a *Authorization) error {
	req := &a.Request
	if !a.Client.AllowsGrant(keycard.GrantAuthorizationCode) {
		return redirectError("unauthorized_client", "This client may not use the authorization code grant.")
	}
	switch req.ResponseType {
	case "code":
	case "":
		return redirectError("invalid_request", "The response_type parameter is missing; it must be code.")
	default:
		return redirectError("unsupported_response_type", "Only response_type=code is supported (no implicit or hybrid flow).")
	}
	switch req.ResponseMode {
	case "", "query", "form_post":
	default:
		return redirectError("invalid_request", "The response_mode must be query or form_post.")
	}
	// PKCE is required of every client (RFC 9700 section 2.1.1), with
	// S256 only: plain gives an attacker who sees the request the
	// verifier.
	switch {
	case req.CodeChallenge == "":
		return redirectError("invalid_request", "PKCE is required: send code_challenge and code_challenge_method=S256.")
	case req.CodeChallengeMethod != "S256":
		return redirectError("invalid_request", "The code_challenge_method must be S256.")
	case len(req.CodeChallenge) != 43 || !isBase64URLString(req.CodeChallenge):
		return redirectError("invalid_request", "The code_challenge must be the base64url SHA-256 of the verifier: 43 characters.")
	}
	if req.DPoPJKT != "" && (len(req.DPoPJKT) != 43 || !isBase64URLString(req.DPoPJKT)) {
		return redirectError("invalid_request", "The dpop_jkt must be the base64url SHA-256 JWK thumbprint of the DPoP key: 43 characters.")
	}
	if len(req.Nonce) > maxNonceLen {
		return redirectError("invalid_request", "The nonce parameter is longer than %d bytes.", maxNonceLen)
	}
	if len(req.LoginHint) > maxLoginHintLen {
		return redirectError("invalid_request", "The login_hint parameter is longer than %d bytes.", maxLoginHintLen)
	}
	if req.IDTokenHint != "" {
		// OpenID Connect Core section 3.1.2.1: an ID token this server
		// issued to this client (it may have expired), naming the user
		// the client expects.
		var c IDClaims
		if len(req.IDTokenHint) > maxIDTokenHintLen || s.hintParser.Parse(req.IDTokenHint, &c) != nil ||
			len(c.Audience) != 1 || c.Audience[0] != a.Client.ID {
			return redirectError("invalid_request", "The id_token_hint is not an ID token this server issued to this client.")
		}
		a.HintSubject = c.Subject
	}
	scopes, err := requestedScopes(a.Client, req.Scope)
	if err != nil {
		return err
	}
	a.Scopes = scopes
	for _, v := range strings.Fields(req.Prompt) {
		switch v {
		case "none", "login", "consent", "select_account":
		default:
			return redirectError("invalid_request", "Unknown prompt value %q.", truncate(v, 32))
		}
		if !slices.Contains(a.Prompt, v) {
			a.Prompt = append(a.Prompt, v)
		}
	}
	if a.HasPrompt("none") && len(a.Prompt) > 1 {
		return redirectError("invalid_request", "prompt=none may not be combined with other values.")
	}
	if req.MaxAge != "" {
		n, err := strconv.ParseUint(req.MaxAge, 10, 31)
		if err != nil {
			return redirectError("invalid_request", "The max_age parameter must be a number of seconds.")
		}
		a.MaxAge = time.Duration(n) * time.Second
	}
	if len(req.ACRValues) > maxACRValuesParam {
		return redirectError("invalid_request", "The acr_values parameter is longer than %d bytes.", maxACRValuesParam)
	}
	for _, v := range strings.Fields(req.ACRValues) {
		if slices.Contains(ACRValues, v) && !slices.Contains(a.ACRValues, v) {
			a.ACRValues = append(a.ACRValues, v)
		}
	}
	return nil
}

// maxACRValuesParam bounds the acr_values parameter.
const maxACRValuesParam = 512

// requestedScopes checks a scope parameter: one to a few space-separated
// scope-tokens, each an OpenID Connect scope or one of the client's API
// scopes (RFC 6749 section 3.3).
func requestedScopes(c *keycard.Client, scope string) ([]string, error) {
	if len(scope) > maxScopeParam {
		return nil, redirectError("invalid_scope", "The scope parameter is too long.")
	}
	var out []string
	for _, sc := range strings.Split(scope, " ") {
		if sc == "" {
			continue
		}
		if !isScopeToken(sc) {
			return nil, redirectError("invalid_scope", "The scope parameter is malformed.")
		}
		if !slices.Contains(oidcScopes, sc) && !c.HasScope(sc) {
			return nil, redirectError("invalid_scope", "Scope %q is not allowed for this client.", truncate(sc, 64))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, redirectError("invalid_scope", "The scope parameter is missing: ask for openid and what the application needs.")
	}
	return out, nil
}

// appClient returns the client of an authorization request, or the error
// that may not be redirected.
func (s *Service) appClient(ctx context.Context, id string) (*keycard.Client, error) {
	if len(id) > maxClientIDLen {
		return nil, noRedirect("Unknown client.")
	}
	c, err := s.stores.Clients.Client(ctx, id)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, noRedirect("Unknown client.")
	} else if err != nil {
		return nil, err
	}
	if len(c.OAuth.RedirectURIs) == 0 {
		return nil, noRedirect("This client has no redirect URI: it does not sign users in.")
	}
	return c, nil
}

// pushedRequest returns the parameters a pushed request_uri stands for,
// and when they were pushed.
func (s *Service) pushedRequest(ctx context.Context, c *keycard.Client, requestURI string) (*AuthorizationRequest, time.Time, error) {
	id, ok := strings.CutPrefix(requestURI, PushedRequestURIPrefix)
	if !ok || len(id) > maxClientIDLen || !isBase64URLString(id) {
		return nil, time.Time{}, &AuthorizeError{Code: "invalid_request_uri", Description: "The request_uri is not one this server issued."}
	}
	p, err := s.stores.Grants.PushedRequest(ctx, id, s.now())
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, time.Time{}, &AuthorizeError{Code: "invalid_request_uri", Description: "The request_uri is unknown or has expired."}
	} else if err != nil {
		return nil, time.Time{}, err
	}
	if p.ClientID != c.ID {
		return nil, time.Time{}, &AuthorizeError{Code: "invalid_request_uri", Description: "The request_uri was pushed by another client."}
	}
	var req AuthorizationRequest
	if err := json.Unmarshal(p.Params, &req); err != nil {
		return nil, time.Time{}, fmt.Errorf("auth: pushed request %s: %w", id, err)
	}
	return &req, p.CreatedAt, nil
}

// PushAuthorization checks an authorization request pushed by an
// authenticated client (RFC 9126) exactly as the authorization endpoint
// would, stores it, and returns its request_uri and lifetime. Its errors
// are *AuthorizeError, answered as JSON errors.
func (s *Service) PushAuthorization(ctx context.Context, client *keycard.Client, params url.Values) (string, time.Duration, error) {
	if _, ok := params["request_uri"]; ok {
		return "", 0, &AuthorizeError{Code: "invalid_request", Description: "A pushed request may not itself hold a request_uri."}
	}
	if ids := params["client_id"]; len(ids) > 0 && (len(ids) != 1 || ids[0] != client.ID) {
		return "", 0, &AuthorizeError{Code: "invalid_request", Description: "The client_id does not match the authenticated client."}
	}
	params = cloneValues(params)
	params.Set("client_id", client.ID)
	a, err := s.Authorize(ctx, params)
	if err != nil {
		return "", 0, err
	}
	uri, err := s.saveRequest(ctx, a, keycard.PushedRequestLifetime)
	return uri, keycard.PushedRequestLifetime, err
}

// SaveAuthorization keeps a checked request while the user signs in or
// consents, and returns the request_uri that stands for it (at most
// InteractionLifetime): the sign-in page sends the browser back to the
// authorization endpoint with it, so that the parameters survive the
// detour whatever their length, on any instance.
func (s *Service) SaveAuthorization(ctx context.Context, a *Authorization) (string, error) {
	if a.RequestURI != "" {
		return a.RequestURI, nil
	}
	uri, err := s.saveRequest(ctx, a, InteractionLifetime)
	if err == nil {
		a.RequestURI = uri
	}
	return uri, err
}

func (s *Service) saveRequest(ctx context.Context, a *Authorization, lifetime time.Duration) (string, error) {
	id, err := keycard.NewID(s.rand)
	if err != nil {
		return "", err
	}
	params, err := json.Marshal(a.Request)
	if err != nil {
		return "", err
	}
	now := s.now()
	p := &keycard.PushedRequest{ID: id, ClientID: a.Client.ID, Params: params, CreatedAt: now, ExpiresAt: now.Add(lifetime)}
	if err := s.stores.Grants.CreatePushedRequest(ctx, p); err != nil {
		return "", err
	}
	return PushedRequestURIPrefix + id, nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// BrowserSession is a signed-in browser's session, as the authorization
// and logout endpoints see it through the single sign-on cookie.
type BrowserSession struct {
	Session *keycard.Session
	User    *keycard.User
}

// BrowserSession returns the session with this id and its user, if the
// session is a sign-in (not a grant session), still active, and its user
// enabled; ENOTFOUND otherwise.
func (s *Service) BrowserSession(ctx context.Context, sessionID string) (*BrowserSession, error) {
	gone := keycard.Errorf(keycard.ENOTFOUND, "No active session.")
	sess, u, err := s.stores.Sessions.SessionWithUser(ctx, sessionID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, gone
	} else if err != nil {
		return nil, err
	}
	if sess.ParentID != "" || !sess.Active(s.now()) || u.Disabled {
		return nil, gone
	}
	return &BrowserSession{Session: sess, User: u}, nil
}

// NeedsLogin reports whether the signed-in browser b (nil: nobody) must
// sign in (again) before a can be answered: no session; prompt=login or
// select_account, an id_token_hint naming another user than b's (OpenID
// Connect Core section 3.1.2.1), or a sign-in whose class does not meet
// acr_values (a password-only session asked for mfa: RFC 9470's step-up),
// unless the user signed in after the request began (the sign-in it asked
// for); or a sign-in older than max_age. With prompt=none, the answer is
// then login_required.
//
// acr_values are voluntary (section 3.1.2.1): a sign-in made for the
// request that still falls short (a user with no second factor) is
// answered all the same, and the ID token's acr says what it was; the
// application decides.
func (s *Service) NeedsLogin(a *Authorization, b *BrowserSession) bool {
	if b == nil {
		return true
	}
	at := b.Session.AuthenticatedAt()
	// A sign-in since the request began is the one it asked for (both
	// times as the store keeps them, to the microsecond).
	fresh := !at.IsZero() && !at.Before(a.Since)
	if fresh {
		return false
	}
	if a.HasPrompt("login") || a.HasPrompt("select_account") || (a.HintSubject != "" && a.HintSubject != b.User.ID) {
		return true
	}
	if !ACRSatisfies(acrOf(b.Session.AMR), a.ACRValues) {
		return true
	}
	return a.MaxAge >= 0 && (at.IsZero() || s.now().Sub(at) > a.MaxAge)
}

// NeedsConsent reports whether the user must consent before a is
// answered: never for a first-party client; for a third-party one when
// prompt=consent or the user's stored consent does not cover every
// requested scope.
func (s *Service) NeedsConsent(ctx context.Context, a *Authorization, b *BrowserSession) (bool, error) {
	if a.Client.OAuth.FirstParty {
		return false, nil
	}
	if a.HasPrompt("consent") {
		return true, nil
	}
	c, err := s.stores.Grants.Consent(ctx, b.User.ID, a.Client.ID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return true, nil
	} else if err != nil {
		return false, err
	}
	for _, sc := range a.Scopes {
		if !slices.Contains(c.Scopes, sc) {
			return true, nil
		}
	}
	return false, nil
}

// Consent records the user's consent to a's client for a's scopes (added
// to those consented before).
func (s *Service) Consent(ctx context.Context, b *BrowserSession, a *Authorization, from Agent) error {
	return s.saveConsent(ctx, b.User.ID, a.Client.ID, a.Scopes, from)
}

// saveConsent records the user's consent to the client for scopes, added
// to those consented before.
func (s *Service) saveConsent(ctx context.Context, userID, clientID string, scopes []string, from Agent) error {
	now := s.now()
	c := &keycard.Consent{UserID: userID, ClientID: clientID, Scopes: slices.Clone(scopes), CreatedAt: now, UpdatedAt: now}
	old, err := s.stores.Grants.Consent(ctx, userID, clientID)
	switch {
	case err == nil:
		c.CreatedAt = old.CreatedAt
		for _, sc := range old.Scopes {
			if !slices.Contains(c.Scopes, sc) {
				c.Scopes = append(c.Scopes, sc)
			}
		}
	case keycard.ErrorCode(err) != keycard.ENOTFOUND:
		return err
	}
	if err := s.stores.Grants.SaveConsent(ctx, c); err != nil {
		return err
	}
	s.audit(ctx, AuditConsentGiven, UserActor(userID, from), userID, map[string]any{"client": clientID, "scopes": scopes})
	return nil
}

// Audit event types of consents.
const (
	AuditConsentGiven   = "consent.given"
	AuditConsentRevoked = "consent.revoked"
)

// Consents returns the clients the user has consented to, with their
// names, for the account page.
func (s *Service) Consents(ctx context.Context, userID string) ([]*keycard.Consent, error) {
	return s.stores.Grants.ListConsents(ctx, userID)
}

// RevokeConsent takes back a user's consent to a client: the client's
// refresh tokens for the user end, and its access tokens are refused by
// every verifier through the revocation feed. It fails with ENOTFOUND
// when the user has not consented to the client.
func (s *Service) RevokeConsent(ctx context.Context, by Actor, userID, clientID string) error {
	ids, err := s.stores.Grants.RevokeConsent(ctx, userID, clientID, s.now())
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return keycard.Errorf(keycard.ENOTFOUND, "No such consent.")
	} else if err != nil {
		return err
	}
	s.stats.SessionsRevoked(keycard.RevokeConsentRevoked, len(ids))
	s.audit(ctx, AuditConsentRevoked, by, userID, map[string]any{"client": clientID, "sessions": ids})
	return nil
}

// IssueCode issues an authorization code for a to the user signed in in
// browser session b, and uses up a's pushed request. The code lives
// keycard.AuthCodeLifetime and is bound to the client, the redirect URI,
// the PKCE challenge and the nonce. With a master key (Deps.Sealer) it is
// sealed and nothing is written (sealedcode.go,
// docs/decisions/sealed-codes.md); without one it is stored, as
// "<id>.<secret>".
func (s *Service) IssueCode(ctx context.Context, a *Authorization, b *BrowserSession) (string, error) {
	now := s.now()
	scope := strings.Join(s.grantedScopes(a.Scopes, b.User), " ")
	var code string
	if s.codes != nil {
		var err error
		code, err = s.codes.seal(&sealedCode{
			ExpiresAt: now.Add(keycard.AuthCodeLifetime), AuthTime: b.Session.AuthenticatedAt(),
			ClientID: a.Client.ID, UserID: b.User.ID, SessionID: b.Session.ID,
			RedirectHash: redirectHash(a.Request.RedirectURI), CodeChallenge: a.Request.CodeChallenge,
			Scope: scope, Nonce: a.Request.Nonce, DPoPJKT: a.Request.DPoPJKT, AMR: b.Session.AMR,
			ParentExpiresAt: b.Session.ExpiresAt, IdP: b.Session.IdP, IdPSubject: b.Session.IdPSubject, IdPSessionID: b.Session.IdPSessionID,
		})
		if err != nil {
			return "", err
		}
	} else {
		var id string
		var hash []byte
		var err error
		if code, id, hash, err = keycard.NewOpaqueToken(s.rand); err != nil {
			return "", err
		}
		c := &keycard.AuthCode{
			ID: id, SecretHash: hash, ClientID: a.Client.ID, UserID: b.User.ID, SessionID: b.Session.ID,
			RedirectURI: a.Request.RedirectURI, CodeChallenge: a.Request.CodeChallenge,
			Scope: scope, Nonce: a.Request.Nonce, DPoPJKT: a.Request.DPoPJKT,
			AuthTime: b.Session.AuthenticatedAt(), AMR: b.Session.AMR, CreatedAt: now, ExpiresAt: now.Add(keycard.AuthCodeLifetime),
		}
		if err := s.stores.Grants.CreateAuthCode(ctx, c); err != nil {
			return "", err
		}
	}
	if id, ok := strings.CutPrefix(a.RequestURI, PushedRequestURIPrefix); ok {
		if err := s.stores.Grants.DeletePushedRequest(ctx, id); err != nil {
			s.log.WarnContext(ctx, "deleting a used pushed request", "err", err)
		}
	}
	return code, nil
}

// grantedScopes returns the scopes a user's grant gets of those requested:
// the OpenID Connect scopes, and the API scopes the user's roles allow
// (Config.RoleScopes) when role scopes are configured; all requested API
// scopes when they are not.
func (s *Service) grantedScopes(requested []string, u *keycard.User) []string {
	if len(s.cfg.RoleScopes) == 0 {
		return requested
	}
	userScopes := strings.Fields(s.cfg.userScope(u))
	var out []string
	for _, sc := range requested {
		if slices.Contains(oidcScopes, sc) || slices.Contains(userScopes, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// isBase64URLString reports whether s is unpadded base64url.
func isBase64URLString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// checkPKCE reports whether verifier (RFC 7636 section 4.1: 43 to 128
// unreserved characters) hashes to challenge, compared in constant time.
func checkPKCE(challenge, verifier string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		c := verifier[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(challenge)) == 1
}
