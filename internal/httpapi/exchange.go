package httpapi

import (
	"errors"
	"net/http"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// exchangeResponse is the token exchange response (RFC 8693 §2.2.1): an
// access token, and never a refresh token.
type exchangeResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
}

// tokenExchangeGrant is grant_type=urn:ietf:params:oauth:grant-type:token-exchange
// (RFC 8693): a confidential client, authenticated as for
// client_credentials (tokenClient: Basic, client_secret_post or
// private_key_jwt; 401 invalid_client otherwise), trades a user's access
// token for one to another service (auth.Service.ExchangeToken). Its
// refusals are 400 with their RFC 8693 / RFC 6749 code: invalid_request,
// invalid_target, invalid_scope or unauthorized_client.
func (s *Server) tokenExchangeGrant(w http.ResponseWriter, r *http.Request, form map[string]string) {
	c, err := s.tokenClient(w, r, form) // oidc.go
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if c == nil || c.Public() { // a client_id alone authenticates nothing
		s.writeError(w, r, errInvalidClient(w))
		return
	}
	t, err := s.svc.ExchangeToken(r.Context(), c, auth.ExchangeRequest{
		SubjectToken: form["subject_token"], SubjectTokenType: form["subject_token_type"],
		ActorToken: form["actor_token"], ActorTokenType: form["actor_token_type"],
		RequestedTokenType: form["requested_token_type"],
		Audience:           form["audience"], Resource: form["resource"], Scope: form["scope"],
	}, browser.AgentOf(r))
	if ee, ok := errors.AsType[*auth.ExchangeError](err); ok {
		s.writeError(w, r, errorf(http.StatusBadRequest, ee.Code, ee.Description))
		return
	} else if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, exchangeResponse{
		AccessToken: t.AccessToken, IssuedTokenType: t.IssuedTokenType, TokenType: t.TokenType, ExpiresIn: t.ExpiresIn, Scope: t.Scope,
	})
}
