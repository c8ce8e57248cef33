// Package cliauth is the OAuth 2.0 and OpenID Connect client of "keycard
// login": a native public client (RFC 8252) of a Keycard server. It signs
// a user in through the system browser with the authorization code flow
// (a loopback redirect on 127.0.0.1 with a port the system picks, PKCE
// S256, state, nonce and the iss response parameter of RFC 9207), or
// through the device authorization grant (RFC 8628); it verifies the ID
// token with the issuer's JWKS, refreshes and revokes tokens, and keeps
// them in a credentials file only the user can read.
//
// It speaks to the server over HTTP only, like any other application: it
// imports neither the server nor its logic, only the jose and jwt
// libraries.
package cliauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// DefaultScope is what a login asks for unless told otherwise: who the
// user is, their username and roles, and a refresh token.
const DefaultScope = "openid profile offline_access"

// scopeOpenID is always asked for: a login verifies who signed in with
// the ID token.
const scopeOpenID = "openid"

// Limits and defaults.
const (
	// maxResponse bounds what is read of a server's answer.
	maxResponse = 1 << 20
	// DefaultHTTPTimeout bounds one request to the server.
	DefaultHTTPTimeout = 30 * time.Second
)

// Errors of the flows, matched with errors.Is.
var (
	// ErrIssuerMismatch: an authorization response whose iss is not the
	// issuer the login started with (RFC 9207: a mix-up attack, or a
	// response meant for another login), or none from a server that
	// promises one.
	ErrIssuerMismatch = errors.New("cliauth: the authorization response is not from the issuer this login started with")
	// ErrAccessDenied: the user (or the server) refused.
	ErrAccessDenied = errors.New("cliauth: access denied")
	// ErrExpired: the device code expired before the user approved.
	ErrExpired = errors.New("cliauth: the device code expired before it was approved")
	// ErrInvalidIDToken: the ID token does not verify.
	ErrInvalidIDToken = errors.New("cliauth: invalid ID token")
)

// OAuthError is an error answer of the server (RFC 6749 sections 4.1.2.1
// and 5.2): its code (invalid_grant, access_denied, …) and description.
type OAuthError struct {
	// Status is the HTTP status of a token endpoint's answer; 0 for an
	// authorization response.
	Status      int
	Code        string
	Description string
}

func (e *OAuthError) Error() string {
	if e.Description == "" {
		return "cliauth: " + e.Code
	}
	return "cliauth: " + e.Code + ": " + e.Description
}

// Provider is what a client needs of the server's metadata (OpenID
// Connect Discovery 1.0, RFC 8414).
type Provider struct {
	Issuer                      string `json:"issuer"`
	AuthorizationEndpoint       string `json:"authorization_endpoint"`
	TokenEndpoint               string `json:"token_endpoint"`
	JWKSURI                     string `json:"jwks_uri"`
	RevocationEndpoint          string `json:"revocation_endpoint"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	// IssParameterSupported says every authorization response carries
	// iss (RFC 9207 section 3): one without it is then refused.
	IssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
}

// checkServerURL checks a URL the client sends requests or the browser
// to: absolute https, or http on a loopback address (a server on this
// machine), without user information or fragment.
func checkServerURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("cliauth: %s %q is not an absolute URL", what, raw)
	}
	if u.Scheme == "https" {
		return nil
	}
	if u.Scheme == "http" {
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("cliauth: %s %q must be https (http only on this machine's loopback address)", what, raw)
}

// Discover reads the issuer's metadata from
// ISSUER/.well-known/openid-configuration. The document's issuer must be
// the one asked for exactly (OpenID Connect Discovery 1.0 section 4.3),
// and the issuer and endpoints https (or http on a loopback address). hc
// nil means a client with DefaultHTTPTimeout.
func Discover(ctx context.Context, hc *http.Client, issuer string) (*Provider, error) {
	if err := checkServerURL("issuer", issuer); err != nil {
		return nil, err
	}
	if u, _ := url.Parse(issuer); u.RawQuery != "" {
		return nil, fmt.Errorf("cliauth: issuer %q has a query", issuer)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, fmt.Errorf("cliauth: discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	var p Provider
	if err := doJSON(httpClient(hc), req, &p); err != nil {
		return nil, fmt.Errorf("cliauth: discovery at %s: %w", issuer, err)
	}
	if p.Issuer != issuer {
		return nil, fmt.Errorf("cliauth: discovery at %s names the issuer %q: use exactly that", issuer, p.Issuer)
	}
	for _, e := range []struct{ name, url string }{
		{"authorization_endpoint", p.AuthorizationEndpoint}, {"token_endpoint", p.TokenEndpoint}, {"jwks_uri", p.JWKSURI},
	} {
		if err := checkServerURL(e.name, e.url); err != nil {
			return nil, err
		}
	}
	for _, e := range []struct{ name, url string }{
		{"revocation_endpoint", p.RevocationEndpoint}, {"device_authorization_endpoint", p.DeviceAuthorizationEndpoint},
	} {
		if e.url != "" {
			if err := checkServerURL(e.name, e.url); err != nil {
				return nil, err
			}
		}
	}
	return &p, nil
}

func httpClient(hc *http.Client) *http.Client {
	if hc != nil {
		return hc
	}
	return &http.Client{Timeout: DefaultHTTPTimeout}
}

// doJSON sends req and decodes a 200 JSON answer into out (nil: the body
// is not read as anything). Other answers are errors: an *OAuthError when
// the body is an OAuth error.
func doJSON(hc *http.Client, req *http.Request, out any) error {
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxResponse+1))
	if err != nil {
		return err
	}
	if len(body) > maxResponse {
		return fmt.Errorf("the answer is larger than %d bytes", maxResponse)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return &OAuthError{Status: res.StatusCode, Code: e.Error, Description: e.Description}
		}
		return fmt.Errorf("status %d", res.StatusCode)
	}
	if out == nil {
		return nil
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("the answer is %q, not JSON", res.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("the answer does not parse: %w", err)
	}
	return nil
}

// Token is what a grant gives, as kept in the credentials file.
type Token struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	// Expiry is when the access token expires, from expires_in and the
	// time it was received.
	Expiry time.Time `json:"expiry"`
}

// ValidFor reports whether the access token is still good for at least d
// at now.
func (t *Token) ValidFor(now time.Time, d time.Duration) bool {
	return t.AccessToken != "" && !t.Expiry.IsZero() && t.Expiry.Sub(now) >= d
}

// Identity is who signed in, from the ID token.
type Identity struct {
	Subject  string
	Username string
	// SessionID is the browser session (the ID token's sid).
	SessionID string
}

// Client is an OAuth client of one server: a public client, identified by
// its client_id. It is safe for concurrent use once set up.
type Client struct {
	Provider *Provider
	ClientID string
	// HTTP sends the requests; nil means a client with
	// DefaultHTTPTimeout.
	HTTP *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Sleep waits between two polls of the device grant; nil means a
	// timer (ctx ends it early).
	Sleep func(ctx context.Context, d time.Duration) error
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// tokenAnswer is the token endpoint's answer (RFC 6749 section 5.1).
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Scope        string `json:"scope"`
}

// postForm posts form, with the client's client_id (a public client
// identifies itself so, RFC 6749 section 2.3), to endpoint and decodes the
// answer into out.
func (c *Client) postForm(ctx context.Context, endpoint string, form url.Values, out any) error {
	form.Set("client_id", c.ClientID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return doJSON(httpClient(c.HTTP), req, out)
}

// token posts a token request and returns its tokens.
func (c *Client) token(ctx context.Context, form url.Values) (*Token, error) {
	var a tokenAnswer
	if err := c.postForm(ctx, c.Provider.TokenEndpoint, form, &a); err != nil {
		return nil, err
	}
	if a.AccessToken == "" || !strings.EqualFold(a.TokenType, "Bearer") {
		return nil, fmt.Errorf("cliauth: the token endpoint answered no bearer access token")
	}
	t := &Token{AccessToken: a.AccessToken, TokenType: "Bearer", RefreshToken: a.RefreshToken, IDToken: a.IDToken, Scope: a.Scope}
	if a.ExpiresIn > 0 {
		t.Expiry = c.now().Add(time.Duration(a.ExpiresIn) * time.Second)
	}
	return t, nil
}

// idClaims are the ID token's claims a login reads.
type idClaims struct {
	jwt.RegisteredClaims
	Nonce             string `json:"nonce"`
	AZP               string `json:"azp"`
	SessionID         string `json:"sid"`
	PreferredUsername string `json:"preferred_username"`
}

// keySet fetches the issuer's JWKS.
func (c *Client) keySet(ctx context.Context) (*jose.KeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Provider.JWKSURI, nil)
	if err != nil {
		return nil, err
	}
	res, err := httpClient(c.HTTP).Do(req)
	if err != nil {
		return nil, fmt.Errorf("cliauth: fetching the JWKS: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("cliauth: fetching the JWKS: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cliauth: fetching the JWKS: status %d", res.StatusCode)
	}
	return jose.ParsePublicKeySet(body)
}

// verifyIDToken verifies an ID token (OpenID Connect Core section
// 3.1.3.7): its signature with a key of the issuer's JWKS, iss, aud
// (this client), exp and iat, azp when there is more than one audience,
// its type (not an access token), and its nonce when one was sent.
func (c *Client) verifyIDToken(ctx context.Context, raw, nonce string) (*Identity, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: the server sent none", ErrInvalidIDToken)
	}
	keys, err := c.keySet(ctx)
	if err != nil {
		return nil, err
	}
	p := jwt.NewParser(keys, jwt.WithIssuer(c.Provider.Issuer), jwt.WithAudience(c.ClientID),
		jwt.WithRequired("sub", "iat"), jwt.WithNow(c.now))
	var claims idClaims
	h, err := p.ParseWithHeader(raw, &claims)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidIDToken, err)
	}
	if h.Type != "" && !strings.EqualFold(h.Type, "JWT") {
		return nil, fmt.Errorf("%w: its type is %q", ErrInvalidIDToken, h.Type)
	}
	if len(claims.Audience) > 1 && claims.AZP == "" || claims.AZP != "" && claims.AZP != c.ClientID {
		return nil, fmt.Errorf("%w: it was issued to another party (azp %q)", ErrInvalidIDToken, claims.AZP)
	}
	if nonce != "" && claims.Nonce != nonce {
		return nil, fmt.Errorf("%w: its nonce is not this login's (a replayed token)", ErrInvalidIDToken)
	}
	return &Identity{Subject: claims.Subject, Username: claims.PreferredUsername, SessionID: claims.SessionID}, nil
}

// finish verifies the ID token of a grant that asked for scope.
func (c *Client) finish(ctx context.Context, t *Token, scope, nonce string) (*Token, *Identity, error) {
	if !slices.Contains(strings.Fields(scope), scopeOpenID) {
		return t, nil, nil
	}
	id, err := c.verifyIDToken(ctx, t.IDToken, nonce)
	if err != nil {
		return nil, nil, err
	}
	return t, id, nil
}

// Refresh trades a refresh token for fresh tokens (RFC 6749 section 6).
// The server rotates refresh tokens: the answer's replaces the one given,
// which is kept only when the answer has none. A new ID token, when the
// answer has one, is verified.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*Token, *Identity, error) {
	t, err := c.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
	if err != nil {
		return nil, nil, err
	}
	if t.RefreshToken == "" {
		t.RefreshToken = refreshToken
	}
	if t.IDToken == "" {
		return t, nil, nil
	}
	return c.finish(ctx, t, scopeOpenID, "")
}

// Revoke revokes a token at the server (RFC 7009); hint is
// "refresh_token" or "access_token". Revoking a Keycard refresh token ends
// its session: its access tokens are refused within a second.
func (c *Client) Revoke(ctx context.Context, token, hint string) error {
	if c.Provider.RevocationEndpoint == "" {
		return errors.New("cliauth: the server has no revocation endpoint")
	}
	if err := c.postForm(ctx, c.Provider.RevocationEndpoint, url.Values{"token": {token}, "token_type_hint": {hint}}, nil); err != nil {
		return fmt.Errorf("cliauth: revoking the %s: %w", strings.ReplaceAll(hint, "_", " "), err)
	}
	return nil
}

// withOpenID returns scope with openid in it.
func withOpenID(scope string) string {
	fields := strings.Fields(scope)
	if !slices.Contains(fields, scopeOpenID) {
		fields = append([]string{scopeOpenID}, fields...)
	}
	return strings.Join(fields, " ")
}
