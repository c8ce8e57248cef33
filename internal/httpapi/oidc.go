package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// Error codes of the OpenID Connect endpoints.
const (
	codeInsufficientScope = "insufficient_scope" // RFC 6750 §3.1
)

// tokenClient returns the client of a request to the token endpoint or a
// like one: when the request presents client authentication (a Basic
// header, a client_secret, or a client_assertion), the client it
// authenticates, which must succeed (401 invalid_client otherwise, RFC
// 6749 §2.3, §6); otherwise the public client its client_id alone names
// (RFC 6749 §2.3, §4.1.3); otherwise nil. A client_id that is not a
// public client's authenticates nothing and is ignored: the grant decides
// whether it needs a client.
func (s *Server) tokenClient(w http.ResponseWriter, r *http.Request, form map[string]string) (*keycard.Client, error) {
	return s.tokenClientWith(w, r, form, s.svc.AuthenticateClient)
}

// tokenClientWith is tokenClient with the given check of a client id and
// secret: the introspection endpoint's, which mints nothing, may use the
// cached one (auth.Service.AuthenticateClientCached).
func (s *Server) tokenClientWith(w http.ResponseWriter, r *http.Request, form map[string]string, authenticate func(ctx context.Context, id, secret string) (*keycard.Client, error)) (*keycard.Client, error) {
	_, _, basic, _ := basicCredentials(r)
	if form["client_assertion"] != "" || form["client_assertion_type"] != "" {
		if basic || form["client_secret"] != "" {
			return nil, badRequest("Use one client authentication method: a client assertion, HTTP Basic or client_secret_post, not several.")
		}
		return s.assertionClient(w, r, form)
	}
	if basic || form["client_secret"] != "" {
		return s.authenticateClientWith(w, r, form, authenticate)
	}
	id := form["client_id"]
	if id == "" {
		return nil, nil
	}
	c, err := s.svc.PublicClient(r.Context(), id)
	if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
		return nil, nil
	}
	return c, err
}

// requireTokenClient is tokenClient for a request that needs a client:
// without one it is 401 invalid_client. When it returns nil it has
// answered the request.
func (s *Server) requireTokenClient(w http.ResponseWriter, r *http.Request, form map[string]string) *keycard.Client {
	client, err := s.tokenClient(w, r, form)
	if err == nil && client == nil {
		err = errInvalidClient(w)
	}
	if err != nil {
		s.writeError(w, r, err)
		return nil
	}
	return client
}

// asAuthorizeError turns the refusal of a request that is checked like
// an authorization request (*auth.AuthorizeError) into a 400 with its
// code, for the endpoints that answer in JSON (PAR, device
// authorization); other errors pass through.
func asAuthorizeError(err error) error {
	if ae, ok := errors.AsType[*auth.AuthorizeError](err); ok {
		return errorf(http.StatusBadRequest, ae.Code, ae.Description)
	}
	return err
}

// assertionClient authenticates the client of a request by a signed JWT,
// the private_key_jwt method (RFC 7523 §2.2, OpenID Connect Core §9):
// client_assertion_type must be auth.ClientAssertionType (400
// invalid_request otherwise), client_assertion the JWT, and client_id,
// when present, name the same client. The JWT's aud must name this
// server: its issuer, its token endpoint URL, or the URL of the endpoint
// called (RFC 9126 §2 lets a pushed request name the PAR endpoint). Any
// failure of the assertion itself is 401 invalid_client.
func (s *Server) assertionClient(w http.ResponseWriter, r *http.Request, form map[string]string) (*keycard.Client, error) {
	if form["client_assertion_type"] != auth.ClientAssertionType {
		return nil, badRequest(`Parameter "client_assertion_type" must be "` + auth.ClientAssertionType + `".`)
	}
	if form["client_assertion"] == "" {
		return nil, badRequest(`Parameter "client_assertion" is required with "client_assertion_type".`)
	}
	issuer := s.svc.Config().Issuer
	base := strings.TrimRight(issuer, "/")
	audiences := []string{issuer, base + "/oauth/token", base + r.URL.Path}
	c, err := s.svc.AuthenticateClientAssertion(r.Context(), form["client_id"], form["client_assertion"], audiences)
	if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
		return nil, errInvalidClient(w)
	}
	return c, err
}

// authorizationCodeGrant is grant_type=authorization_code (RFC 6749
// §4.1.3): the client (authenticated, or public with its client_id)
// trades a code with the redirect_uri and code_verifier of its request
// for an access token, an ID token (with openid) and a refresh token
// (with offline_access, or for a first-party client). A refused code is
// 400 invalid_grant, whatever was wrong with it.
func (s *Server) authorizationCodeGrant(w http.ResponseWriter, r *http.Request, form map[string]string) {
	client := s.requireTokenClient(w, r, form)
	if client == nil {
		return
	}
	if !client.AllowsGrant(keycard.GrantAuthorizationCode) {
		s.writeError(w, r, errorf(http.StatusBadRequest, codeUnauthorizedClient, "This client may not use the authorization_code grant."))
		return
	}
	for _, p := range []string{"code", "redirect_uri", "code_verifier"} {
		if form[p] == "" {
			s.writeError(w, r, badRequest(`Parameter "`+p+`" is required.`))
			return
		}
	}
	t, err := s.svc.ExchangeCode(r.Context(), client, form["code"], form["redirect_uri"], form["code_verifier"], browser.AgentOf(r))
	if err != nil {
		s.writeError(w, r, asGrantError(err, http.StatusBadRequest))
		return
	}
	writeTokens(w, t)
}

// userInfoResponse is the userinfo endpoint's answer (OpenID Connect Core
// §5.3.2).
type userInfoResponse struct {
	Subject           string   `json:"sub"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Roles             []string `json:"roles,omitempty"`
	Email             string   `json:"email,omitempty"`
	EmailVerified     *bool    `json:"email_verified,omitempty"`
}

// handleUserInfo is GET and POST /oauth/userinfo (OpenID Connect Core
// §5.3): the claims of the user an access token with the openid scope was
// issued for, by scope. The token comes in the Authorization header only
// (RFC 6750 §2.1). A missing token is 401 with a bare Bearer challenge, a
// refused one 401 invalid_token, one without openid 403
// insufficient_scope, each with WWW-Authenticate (RFC 6750 §3).
func (s *Server) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	r, ok := s.resourceDPoP(w, r) // dpop.go
	if !ok {
		return
	}
	if auth.DPoPKey(r.Context()) != "" {
		s.userInfo(w, r, dpopToken(r), "DPoP")
		return
	}
	token, present, problem := bearerToken(r)
	switch {
	case !present:
		w.Header().Set("WWW-Authenticate", `Bearer realm="keycard"`)
		s.writeError(w, r, errorf(http.StatusUnauthorized, codeUnauthorized, "Send the access token in an Authorization: Bearer header."))
		return
	case problem != "":
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+challengeText(problem)+`"`)
		s.writeError(w, r, errorf(http.StatusUnauthorized, codeInvalidToken, problem))
		return
	}
	s.userInfo(w, r, token, "Bearer")
}

// userInfo answers a userinfo request with token, checked, which came
// under scheme (Bearer or DPoP, the scheme of the challenges).
func (s *Server) userInfo(w http.ResponseWriter, r *http.Request, token, scheme string) {
	info, err := s.svc.UserInfo(r.Context(), token)
	switch keycard.ErrorCode(err) {
	case "":
	case keycard.EUNAUTHORIZED:
		w.Header().Set("WWW-Authenticate", scheme+` error="invalid_token"`)
		s.writeError(w, r, errorf(http.StatusUnauthorized, codeInvalidToken, keycard.ErrorMessage(err)))
		return
	case keycard.EFORBIDDEN:
		w.Header().Set("WWW-Authenticate", scheme+` error="insufficient_scope", scope="openid"`)
		s.writeError(w, r, errorf(http.StatusForbidden, codeInsufficientScope, keycard.ErrorMessage(err)))
		return
	default:
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userInfoResponse{Subject: info.Subject, PreferredUsername: info.PreferredUsername, Roles: info.Roles,
		Email: info.Email, EmailVerified: info.EmailVerified})
}

// parResponse is the answer of the pushed authorization request endpoint
// (RFC 9126 §2.2).
type parResponse struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int64  `json:"expires_in"`
}

// handlePAR is POST /oauth/par (RFC 9126): a client (authenticated, or
// public with its client_id) pushes an authorization request, which is
// checked as the authorization endpoint would, and gets a request_uri to
// send the browser with. Refusals are 400 with the authorization
// endpoint's error codes; a client that fails to authenticate 401.
func (s *Server) handlePAR(w http.ResponseWriter, r *http.Request) {
	form, err := parseForm(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	client := s.requireTokenClient(w, r, form)
	if client == nil {
		return
	}
	params := url.Values{}
	for k, v := range form {
		switch k {
		case "client_secret", "client_assertion", "client_assertion_type":
			continue // authentication, not the request
		}
		params.Set(k, v)
	}
	// A DPoP proof with the pushed request binds its code to the key
	// (RFC 9449 section 10.1), as dpop_jkt does; both must agree.
	r, err = s.tokenDPoP(w, r) // dpop.go
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if jkt := auth.DPoPKey(r.Context()); jkt != "" {
		if v := params.Get("dpop_jkt"); v != "" && v != jkt {
			s.writeError(w, r, errorf(http.StatusBadRequest, codeInvalidDPoPProof, "The dpop_jkt is not the thumbprint of the DPoP proof's key."))
			return
		}
		params.Set("dpop_jkt", jkt)
	}
	uri, ttl, err := s.svc.PushAuthorization(r.Context(), client, params)
	if err != nil {
		s.writeError(w, r, asAuthorizeError(err))
		return
	}
	writeJSON(w, http.StatusCreated, parResponse{RequestURI: uri, ExpiresIn: int64(ttl.Seconds())})
}
