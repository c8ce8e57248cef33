package httpapi

import (
	"net/http"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/browser"
)

// handleToken is POST /oauth/token, the token endpoint (RFC 6749 §3.2).
// It takes form-encoded parameters from the body only, each at most once,
// and answers errors as RFC 6749 §5.2 says: 400 with invalid_request,
// unsupported_grant_type, invalid_scope or invalid_grant.
//
// handleToken is the token endpoint. grant_type=authorization_code
// (oidc.go) and the device code grant (device.go) are the applications'
// grants. grant_type=refresh_token (RFC 6749 §6):
// refresh tokens of user sessions are not bound to a client, so no client
// authentication is asked for, but client authentication that is
// presented must succeed (see presentedClient); a client_id alone
// identifies a client without authenticating it and is ignored like any
// parameter this endpoint does not know (RFC 6749 §3.2).
// grant_type=client_credentials (RFC 6749 §4.4): a service client
// authenticates (see authenticateClient) and gets an access token of its
// own.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, err := parseForm(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r, err = s.tokenDPoP(w, r); err != nil { // dpop.go
		s.writeError(w, r, err)
		return
	}
	switch gt := form["grant_type"]; gt {
	case "":
		s.writeError(w, r, badRequest(`Parameter "grant_type" is required.`))
	case "refresh_token":
		s.refreshGrant(w, r, form)
	case "client_credentials":
		s.clientCredentialsGrant(w, r, form)
	case "authorization_code":
		s.authorizationCodeGrant(w, r, form) // oidc.go
	case keycard.GrantDeviceCode:
		s.deviceCodeGrant(w, r, form) // device.go
	case keycard.GrantTokenExchange:
		s.tokenExchangeGrant(w, r, form) // exchange.go
	default:
		s.writeError(w, r, errorf(http.StatusBadRequest, codeUnsupportedGrantType,
			`Unsupported grant_type; this server supports "authorization_code", "refresh_token", "client_credentials", "`+keycard.GrantDeviceCode+`" and "`+keycard.GrantTokenExchange+`".`))
	}
}

// refreshGrant rotates a refresh token (RFC 6749 §6). In cookie mode,
// without a refresh_token parameter, it takes the refresh cookie
// (cookieRefresh). Client authentication, when the request presents any,
// is checked first: a wrong secret or an unknown client is 401
// invalid_client, as for client_credentials, and the refresh token is
// left untouched. The client (tokenClient) must be the one an
// application's refresh token was issued to.
func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request, form map[string]string) {
	client, err := s.tokenClient(w, r, form) // oidc.go
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	token := form["refresh_token"]
	cookie, err := s.cookieRefreshToken(r, token != "") // cookies.go
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if token == "" && cookie == "" {
		s.writeError(w, r, badRequest(`Parameter "refresh_token" is required.`))
		return
	}
	// A refresh grants the session's scopes again (those of the user's
	// roles); narrowing them is not supported, so a scope parameter is
	// refused rather than silently ignored (RFC 6749 §6).
	if form["scope"] != "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, codeInvalidScope, "Omit scope: a refresh grants the session's scopes again."))
		return
	}
	if cookie != "" {
		s.cookieRefresh(w, r, cookie)
		return
	}
	t, err := s.svc.RefreshFor(r.Context(), token, client, browser.AgentOf(r))
	if err != nil {
		s.writeError(w, r, asGrantError(err, http.StatusBadRequest))
		return
	}
	writeTokens(w, t)
}
