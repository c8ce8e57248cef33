package httpapi

import (
	"errors"
	"net/http"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// deviceAuthorizationResponse is the answer of the device authorization
// endpoint (RFC 8628 §3.2).
type deviceAuthorizationResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// handleDeviceAuthorization is POST /oauth/device_authorization (RFC 8628
// §3.1): a client (authenticated, or public with its client_id) asks for
// a device code and a user code for scope. Refusals are 400 with RFC
// 6749 §5.2's codes (unauthorized_client, invalid_scope, invalid_request);
// a client that fails to authenticate, or none, is 401 invalid_client.
func (s *Server) handleDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	form, err := parseForm(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	client := s.requireTokenClient(w, r, form) // oidc.go
	if client == nil {
		return
	}
	d, err := s.svc.StartDevice(r.Context(), client, form["scope"])
	if err != nil {
		s.writeError(w, r, asAuthorizeError(err))
		return
	}
	writeJSON(w, http.StatusOK, deviceAuthorizationResponse{
		DeviceCode: d.DeviceCode, UserCode: d.UserCode, VerificationURI: d.VerificationURI,
		VerificationURIComplete: d.VerificationURIComplete, ExpiresIn: int64(d.ExpiresIn.Seconds()), Interval: int64(d.Interval.Seconds()),
	})
}

// deviceCodeGrant is grant_type=urn:ietf:params:oauth:grant-type:device_code
// (RFC 8628 §3.4): the client (authenticated, or public with its
// client_id) polls with its device code. Until the user approves, the
// answer is 400 with authorization_pending or slow_down; then
// access_denied, expired_token (§3.5) or the tokens. A device code that is
// not honoured — malformed, unknown, another client's, used already — is
// 400 invalid_grant.
func (s *Server) deviceCodeGrant(w http.ResponseWriter, r *http.Request, form map[string]string) {
	client := s.requireTokenClient(w, r, form)
	if client == nil {
		return
	}
	if !client.AllowsGrant(keycard.GrantDeviceCode) {
		s.writeError(w, r, errorf(http.StatusBadRequest, codeUnauthorizedClient, "This client may not use the device code grant."))
		return
	}
	if form["device_code"] == "" {
		s.writeError(w, r, badRequest(`Parameter "device_code" is required.`))
		return
	}
	t, err := s.svc.DeviceToken(r.Context(), client, form["device_code"], browser.AgentOf(r))
	if de, ok := errors.AsType[*auth.DeviceTokenError](err); ok {
		s.writeError(w, r, errorf(http.StatusBadRequest, de.Code, de.Description))
		return
	} else if err != nil {
		s.writeError(w, r, asGrantError(err, http.StatusBadRequest))
		return
	}
	writeTokens(w, t)
}
