package httpapi

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
	"github.com/keycard-auth/keycard/jwt"
)

// Error codes of client authentication and token revocation (RFC 6749
// §5.2, RFC 7009 §2.2.1).
const (
	codeInvalidClient      = "invalid_client"      // client authentication failed
	codeUnauthorizedClient = "unauthorized_client" // the client may not do this
)

// basicChallenge is the WWW-Authenticate challenge of endpoints that take
// client credentials (RFC 7617 §2).
const basicChallenge = `Basic realm="keycard"`

// errInvalidClient is the answer to every failed client authentication: 401
// invalid_client with a Basic challenge (RFC 6749 §5.2; a 401 must name a
// scheme the client can use, RFC 9110 §15.5.2). The description is the
// same whatever failed.
func errInvalidClient(w http.ResponseWriter) error {
	w.Header().Set("WWW-Authenticate", basicChallenge)
	return errorf(http.StatusUnauthorized, codeInvalidClient, "Client authentication failed.")
}

// basicCredentials returns the client id and secret of an "Authorization:
// Basic" header (RFC 7617), each form-urlencoded as RFC 6749 §2.3.1 says,
// so that '+' is a space and %XX an octet. present is false when the
// request has no Authorization header with the Basic scheme (the scheme is
// case-insensitive, RFC 9110 §11.1); ok is false when it has one that
// cannot be decoded.
func basicCredentials(r *http.Request) (id, secret string, present, ok bool) {
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0:
		return "", "", false, false
	case len(values) > 1:
		return "", "", true, false // ambiguous: refused like bad credentials
	}
	scheme, creds, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", false, false
	}
	creds = strings.Trim(creds, " ")
	raw, err := base64.StdEncoding.DecodeString(creds)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(creds)
		if err != nil {
			return "", "", true, false
		}
	}
	encID, encSecret, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", true, false
	}
	id, err1 := url.QueryUnescape(encID)
	secret, err2 := url.QueryUnescape(encSecret)
	if err1 != nil || err2 != nil {
		return "", "", true, false
	}
	return id, secret, true, true
}

// authenticateClient authenticates the calling service client by HTTP
// Basic (client_secret_basic, RFC 6749 §2.3.1) or by client_id and
// client_secret in the form body (client_secret_post). Using both is a 400
// invalid_request (RFC 6749 §2.3: one method per request), except that a
// client_id in the body equal to the Basic one is tolerated, as many OAuth
// libraries send it. Every failure to authenticate — no credentials,
// unknown id, wrong secret, undecodable header — is the same 401
// invalid_client.
func (s *Server) authenticateClient(w http.ResponseWriter, r *http.Request, form map[string]string) (*keycard.Client, error) {
	return s.authenticateClientWith(w, r, form, s.svc.AuthenticateClient)
}

// authenticateClientWith is authenticateClient with the given check of a
// client id and secret (see tokenClientWith).
func (s *Server) authenticateClientWith(w http.ResponseWriter, r *http.Request, form map[string]string, authenticate func(ctx context.Context, id, secret string) (*keycard.Client, error)) (*keycard.Client, error) {
	id, secret, basic, ok := basicCredentials(r)
	postID, postSecret := form["client_id"], form["client_secret"]
	switch {
	case basic && (postSecret != "" || (postID != "" && ok && postID != id)):
		return nil, badRequest("Use one client authentication method: HTTP Basic or client_secret_post, not both.")
	case basic && !ok:
		return nil, errInvalidClient(w)
	case !basic:
		id, secret = postID, postSecret
		if id == "" || secret == "" {
			return nil, errInvalidClient(w)
		}
	}
	c, err := authenticate(r.Context(), id, secret)
	if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
		return nil, errInvalidClient(w)
	}
	return c, err
}

// clientTokenResponse is the token response of the client_credentials
// grant (RFC 6749 §4.4.3, §5.1): no refresh token and no session.
type clientTokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// clientCredentialsGrant issues an access token to an authenticated
// service client (RFC 6749 §4.4): one that authenticates with a secret or
// a client assertion (tokenClient), and is allowed the grant (400
// unauthorized_client otherwise). A scope the client is not allowed is a
// 400 invalid_scope.
func (s *Server) clientCredentialsGrant(w http.ResponseWriter, r *http.Request, form map[string]string) {
	c, err := s.tokenClient(w, r, form) // oidc.go
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if c == nil || c.Public() { // a client_id alone authenticates nothing
		s.writeError(w, r, errInvalidClient(w))
		return
	}
	if !c.AllowsGrant(keycard.GrantClientCredentials) {
		s.writeError(w, r, errorf(http.StatusBadRequest, codeUnauthorizedClient, "This client may not use the client_credentials grant."))
		return
	}
	t, err := s.svc.ClientCredentials(r.Context(), c, form["scope"])
	if code := keycard.ErrorCode(err); code == keycard.EFORBIDDEN || code == keycard.EINVALID {
		s.writeError(w, r, errorf(http.StatusBadRequest, codeInvalidScope, keycard.ErrorMessage(err)))
		return
	} else if err != nil {
		s.writeError(w, r, err)
		return
	}
	answer := clientTokenResponse{AccessToken: t.AccessToken, TokenType: t.TokenType, ExpiresIn: t.ExpiresIn, Scope: t.Scope}
	n := len(answer.AccessToken) + len(answer.TokenType) + len(answer.Scope) + 80
	writeJSONBody(w, http.StatusOK, appendClientTokenResponse(make([]byte, 0, n), &answer))
}

// appendClientTokenResponse appends r as writeJSON encodes it (see
// appendTokenResponse) to b.
func appendClientTokenResponse(b []byte, r *clientTokenResponse) []byte {
	b = appendAccessToken(b, r.AccessToken, r.TokenType, r.ExpiresIn)
	b = appendOptional(b, `,"scope":`, r.Scope)
	return append(b, "}\n"...)
}

// introspectionResponse is RFC 7662 §2.2's response; an inactive token
// gets {"active":false} alone.
type introspectionResponse struct {
	Active   bool   `json:"active"`
	Scope    string `json:"scope,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Username string `json:"username,omitempty"`
	// TokenType is an RFC 6749 §5.1 access token type, as RFC 7662 §2.2
	// says: "Bearer" for access tokens; refresh tokens, which are no
	// access token of any type, have none.
	TokenType string `json:"token_type,omitempty"`
	// TokenUse says which kind of token it is, in the names of RFC 7009
	// §2.1's token type hints ("access_token", "refresh_token"): Keycard's
	// own member (RFC 7662 §2.2 allows them), as Ory Hydra's.
	TokenUse  string       `json:"token_use,omitempty"`
	ExpiresAt int64        `json:"exp,omitempty"`
	IssuedAt  int64        `json:"iat,omitempty"`
	Subject   string       `json:"sub,omitempty"`
	Audience  jwt.Audience `json:"aud,omitempty"`
	Issuer    string       `json:"iss,omitempty"`
	JTI       string       `json:"jti,omitempty"`
	SessionID string       `json:"sid,omitempty"`
	// Confirmation is the cnf of a token bound to a DPoP key (RFC 9449
	// section 6.2).
	Confirmation *jwt.Confirmation `json:"cnf,omitempty"`
	// AuthTime, ACR and AMR say when and how the user signed in (RFC
	// 9470 section 6); absent for a service client's token.
	AuthTime int64    `json:"auth_time,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// handleIntrospect is POST /oauth/introspect, token introspection (RFC
// 7662) for authenticated clients: by secret (client_secret_basic,
// client_secret_post) or by client assertion (private_key_jwt, its aud
// the issuer, the token endpoint or this endpoint), as at the token
// endpoint (tokenClient). A public client, which cannot authenticate, is
// 401 invalid_client. It takes a form-encoded token (and an optional
// token_type_hint, which is not needed: the form of the token tells) and
// answers 200 with {"active":false} for anything expired, revoked,
// unknown or malformed.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	form, err := parseForm(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Introspection mints nothing, so the client's lookup may be cached
	// (auth.Service.AuthenticateClientCached).
	c, err := s.tokenClientWith(w, r, form, s.svc.AuthenticateClientCached) // oidc.go
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if c == nil || c.Public() { // a client_id alone authenticates nothing
		s.writeError(w, r, errInvalidClient(w))
		return
	}
	token := form["token"]
	if token == "" {
		s.writeError(w, r, badRequest(`Parameter "token" is required.`))
		return
	}
	in, err := s.svc.Introspect(r.Context(), token)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !in.Active {
		writeJSON(w, http.StatusOK, introspectionResponse{})
		return
	}
	tokenType := ""
	var cnf *jwt.Confirmation
	if in.TokenType == auth.TokenTypeAccess {
		tokenType = auth.TokenTypeBearer
		if in.KeyThumbprint != "" {
			tokenType, cnf = auth.TokenTypeDPoP, &jwt.Confirmation{JKT: in.KeyThumbprint}
		}
	}
	writeJSON(w, http.StatusOK, introspectionResponse{
		Active: true, Scope: in.Scope, ClientID: in.ClientID, Username: in.Username, TokenType: tokenType, TokenUse: in.TokenType,
		ExpiresAt: unixOrZero(in.ExpiresAt), IssuedAt: unixOrZero(in.IssuedAt), Subject: in.Subject,
		Audience: in.Audience, Issuer: in.Issuer, JTI: in.JTI, SessionID: in.SessionID, Confirmation: cnf,
		AuthTime: unixOrZero(in.AuthTime), ACR: in.ACR, AMR: in.AMR,
	})
}

// handleRevoke is POST /oauth/revoke, token revocation (RFC 7009) for
// authenticated service clients. A refresh token revokes its whole
// session; an access token is revoked by its jti through the revocation
// feed. Unknown, invalid and expired tokens are answered 200 like revoked
// ones (RFC 7009 §2.2); a service client's token presented by another
// client is 400 unauthorized_client. token_type_hint is accepted and not
// needed.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, err := parseForm(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.tokenClient(w, r, form) // a public client names itself (oidc.go)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if c == nil {
		s.writeError(w, r, errInvalidClient(w))
		return
	}
	token := form["token"]
	if token == "" {
		s.writeError(w, r, badRequest(`Parameter "token" is required.`))
		return
	}
	err = s.svc.RevokeToken(r.Context(), c, token, browser.AgentOf(r))
	if keycard.ErrorCode(err) == keycard.EFORBIDDEN {
		s.writeError(w, r, errorf(http.StatusBadRequest, codeUnauthorizedClient, keycard.ErrorMessage(err)))
		return
	} else if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
