package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// The MFA step of the JSON API (docs/http-api.md, "Second factors"):
// POST /v1/login answers a user with a second factor 403 mfa_required
// with an MFA token; POST /v1/login/mfa completes the sign-in with the
// token and a code. A user whose role requires a second factor and who
// has none gets 403 mfa_enrollment_required: POST /v1/login/mfa/enroll
// shows the authenticator app's secret, and POST /v1/login/mfa with its
// first code confirms it and signs in. A user with a passkey answers
// with it: POST /v1/login/mfa/passkey/options gives the WebAuthn request
// options bound to that sign-in attempt, and POST /v1/login/mfa with
// "factor": "passkey", the ceremony's id and the assertion signs in.

// Error codes of the MFA step.
const (
	codeMFARequired           = "mfa_required"
	codeMFAEnrollmentRequired = "mfa_enrollment_required"
)

// mfaRoutes registers the routes of second factors.
func (s *Server) mfaRoutes(mux *http.ServeMux) {
	s.handle(mux, "POST /v1/login/mfa", http.HandlerFunc(s.handleLoginMFA))
	s.handle(mux, "POST /v1/login/mfa/enroll", http.HandlerFunc(s.handleLoginMFAEnroll))
	s.handle(mux, "POST /v1/login/mfa/passkey/options", http.HandlerFunc(s.handleLoginMFAPasskeyOptions))
	s.handle(mux, "GET /v1/me/mfa", s.bearer(s.handleMFAStatus))
	s.handle(mux, "POST /v1/me/mfa/totp", s.bearer(s.handleBeginTOTP))
	s.handle(mux, "POST /v1/me/mfa/totp/confirm", s.bearer(s.handleConfirmTOTP))
	s.handle(mux, "DELETE /v1/me/mfa/totp", s.bearer(s.handleRemoveTOTP))
	s.handle(mux, "POST /v1/me/mfa/recovery-codes", s.bearer(s.handleRegenerateRecoveryCodes))
	s.handle(mux, "DELETE /admin/v1/users/{id}/mfa", s.admin(s.handleAdminRemoveMFA))
}

// mfaRequiredBody is the 403 of a password sign-in that needs a second
// factor (or an enrolment), and the 401 of a wrong code, which carries
// the next MFA token.
type mfaRequiredBody struct {
	Error       string   `json:"error"`
	Description string   `json:"error_description"`
	MFAToken    string   `json:"mfa_token"`
	Factors     []string `json:"mfa_factors,omitempty"`
	ExpiresIn   int64    `json:"expires_in"`
}

// writeMFAStep answers a sign-in stopped at the MFA step, and reports
// whether err was one.
func (s *Server) writeMFAStep(w http.ResponseWriter, r *http.Request, err error) bool {
	if mfa, ok := errors.AsType[*auth.MFARequiredError](err); ok {
		body := mfaRequiredBody{Error: codeMFARequired, Description: "A second factor is required: POST it with the mfa_token to /v1/login/mfa.",
			MFAToken: mfa.Token, Factors: mfa.Factors, ExpiresIn: int64(mfa.ExpiresIn / time.Second)}
		if mfa.Enroll {
			body.Error = codeMFAEnrollmentRequired
			body.Description = "Your account must set up a second factor: POST the mfa_token to /v1/login/mfa/enroll, then the app's first code to /v1/login/mfa."
		}
		writeJSON(w, http.StatusForbidden, body)
		return true
	}
	if bad, ok := errors.AsType[*auth.InvalidMFAProofError](err); ok {
		status, code, desc := errorResponse(bad.Err)
		if status == http.StatusUnauthorized {
			code = codeInvalidGrant
			w.Header().Set("WWW-Authenticate", "Bearer")
		}
		writeJSON(w, status, mfaRequiredBody{Error: code, Description: desc, MFAToken: bad.Token, ExpiresIn: int64(bad.ExpiresIn / time.Second)})
		return true
	}
	return false
}

type mfaLoginRequest struct {
	MFAToken *string `json:"mfa_token"`
	Code     *string `json:"code"`
	Factor   string  `json:"factor"`
	Cookies  bool    `json:"cookies"`
	// Ceremony and Response are a passkey's proof (factor "passkey"):
	// the id from /v1/login/mfa/passkey/options and the
	// PublicKeyCredential the authenticator answered, as JSON.
	Ceremony string          `json:"ceremony"`
	Response json.RawMessage `json:"response"`
}

// maxCeremonyID bounds a passkey ceremony's id (ids are 26 characters).
const maxCeremonyID = 64

// mfaProof reads the proof of a POST /v1/login/mfa: a code, or a
// passkey's ceremony id and assertion.
func (req *mfaLoginRequest) mfaProof() (auth.MFAProof, error) {
	if req.Factor == auth.FactorPasskey {
		if req.Code != nil {
			return auth.MFAProof{}, badRequest(`A passkey's proof is "ceremony" and "response", not "code".`)
		}
		if req.Ceremony == "" || len(req.Response) == 0 {
			return auth.MFAProof{}, badRequest(`Fields "ceremony" and "response" are required with "factor": "passkey".`)
		}
		if len(req.Ceremony) > maxCeremonyID {
			return auth.MFAProof{}, badRequest(`Field "ceremony" is too long.`)
		}
		if req.Response[0] != '{' {
			return auth.MFAProof{}, badRequest(`Field "response" must be the authenticator's PublicKeyCredential, a JSON object.`)
		}
		return auth.MFAProof{Factor: auth.FactorPasskey, Code: req.Ceremony, Response: req.Response}, nil
	}
	if req.Ceremony != "" || len(req.Response) != 0 {
		return auth.MFAProof{}, badRequest(`Fields "ceremony" and "response" go with "factor": "passkey".`)
	}
	if req.Code == nil {
		return auth.MFAProof{}, badRequest(`Fields "mfa_token" and "code" are required.`)
	}
	if len(*req.Code) > 64 {
		return auth.MFAProof{}, badRequest(`Field "code" is too long.`)
	}
	return auth.MFAProof{Factor: req.Factor, Code: *req.Code}, nil
}

// mfaTokensResponse is a token response with the recovery codes of an
// enrolment the policy required, or the count left after a recovery code.
type mfaTokensResponse struct {
	tokenResponse
	RecoveryCodes     []string `json:"recovery_codes,omitempty"`
	RecoveryCodesLeft *int     `json:"recovery_codes_left,omitempty"`
}

// handleLoginMFA is POST /v1/login/mfa {"mfa_token", "code", "factor"?,
// "cookies"?}, or for a passkey {"mfa_token", "factor": "passkey",
// "ceremony", "response", "cookies"?}: the second step of a sign-in.
// → 200 tokens (or cookies); 401 invalid_grant with a new mfa_token for a
// wrong code or a refused assertion;
// 401 invalid_grant with a new mfa_token for a wrong code; 401
// invalid_grant without one for an expired or used token; 429 when the
// account's second-factor attempts are throttled.
func (s *Server) handleLoginMFA(w http.ResponseWriter, r *http.Request) {
	var req mfaLoginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.MFAToken == nil {
		s.writeError(w, r, badRequest(`Fields "mfa_token" and "code" are required.`))
		return
	}
	proof, err := req.mfaProof()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Cookies {
		if err := s.checkCookieLogin(r); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	res, err := s.svc.CompleteMFA(r.Context(), *req.MFAToken, proof, browser.AgentOf(r))
	if err != nil {
		if !s.writeMFAStep(w, r, err) {
			s.writeError(w, r, asGrantError(err, http.StatusUnauthorized))
		}
		return
	}
	if req.Cookies {
		s.writeCookieTokens(w, res.Tokens)
		return
	}
	t := res.Tokens
	body := mfaTokensResponse{tokenResponse: tokenResponse{AccessToken: t.AccessToken, TokenType: t.TokenType, ExpiresIn: t.ExpiresIn,
		RefreshToken: t.RefreshToken, Scope: t.Scope, SessionID: t.SessionID}, RecoveryCodes: res.RecoveryCodes}
	if body.TokenType == "" {
		body.TokenType = auth.TokenTypeBearer
	}
	if res.RecoveryCodesLeft >= 0 {
		body.RecoveryCodesLeft = &res.RecoveryCodesLeft
	}
	writeJSON(w, http.StatusOK, body)
}

type totpEnrollmentResponse struct {
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
}

// handleLoginMFAEnroll is POST /v1/login/mfa/enroll {"mfa_token"}: the
// authenticator app to set up for a sign-in that got
// mfa_enrollment_required. → 200 {"secret", "otpauth_uri"}.
func (s *Server) handleLoginMFAEnroll(w http.ResponseWriter, r *http.Request) {
	var req mfaLoginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.MFAToken == nil {
		s.writeError(w, r, badRequest(`Field "mfa_token" is required.`))
		return
	}
	e, err := s.svc.BeginTOTPWithMFAToken(r.Context(), *req.MFAToken)
	if err != nil {
		s.writeError(w, r, asGrantError(err, http.StatusUnauthorized))
		return
	}
	writeJSON(w, http.StatusOK, totpEnrollmentResponse{Secret: e.Secret, OTPAuthURI: e.URI})
}

// passkeyOptionsResponse is the start of a passkey ceremony: its id, to
// send back with the answer, and the options for
// navigator.credentials.get (WebAuthn Level 3 §5.5), as {"publicKey": …}.
type passkeyOptionsResponse struct {
	Ceremony  string          `json:"ceremony"`
	Options   json.RawMessage `json:"options"`
	ExpiresIn int64           `json:"expires_in"`
}

// handleLoginMFAPasskeyOptions is POST /v1/login/mfa/passkey/options
// {"mfa_token"}: the WebAuthn request options for the passkeys of the
// sign-in waiting for its second factor, bound to that attempt (the MFA
// token's; the token is not used up). → 200 {"ceremony", "options",
// "expires_in"}; 401 invalid_grant for an expired or used token; 403
// when the account has no passkey to use here.
func (s *Server) handleLoginMFAPasskeyOptions(w http.ResponseWriter, r *http.Request) {
	var req mfaLoginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.MFAToken == nil || req.Code != nil || req.Ceremony != "" || len(req.Response) != 0 {
		s.writeError(w, r, badRequest(`Send only "mfa_token".`))
		return
	}
	c, err := s.svc.BeginPasskeySecondFactor(r.Context(), *req.MFAToken, browser.AgentOf(r))
	if err != nil {
		s.writeError(w, r, asGrantError(err, http.StatusUnauthorized))
		return
	}
	writeJSON(w, http.StatusOK, passkeyOptionsResponse{Ceremony: c.ID, Options: c.Options, ExpiresIn: int64(keycard.PasskeyChallengeLifetime / time.Second)})
}

type mfaStatusResponse struct {
	TOTP              bool `json:"totp"`
	TOTPPending       bool `json:"totp_pending"`
	RecoveryCodesLeft int  `json:"recovery_codes_left"`
	Required          bool `json:"required"`
}

// handleMFAStatus is GET /v1/me/mfa: the caller's second factors.
func (s *Server) handleMFAStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.svc.MFAStatus(r.Context(), principal(r.Context()).User)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, mfaStatusResponse{TOTP: st.TOTP, TOTPPending: st.TOTPPending, RecoveryCodesLeft: st.RecoveryCodesLeft, Required: st.Required})
}

// handleBeginTOTP is POST /v1/me/mfa/totp: start setting up an
// authenticator app. → 200 {"secret", "otpauth_uri"}; 409 when one is
// set up.
func (s *Server) handleBeginTOTP(w http.ResponseWriter, r *http.Request) {
	e, err := s.svc.BeginTOTP(r.Context(), principal(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, totpEnrollmentResponse{Secret: e.Secret, OTPAuthURI: e.URI})
}

type recoveryCodesResponse struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// handleConfirmTOTP is POST /v1/me/mfa/totp/confirm {"code"}: activate
// the app with its first code. → 200 {"recovery_codes"} (shown once).
func (s *Server) handleConfirmTOTP(w http.ResponseWriter, r *http.Request) {
	var req mfaLoginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Code == nil {
		s.writeError(w, r, badRequest(`Field "code" is required.`))
		return
	}
	codes, err := s.svc.ConfirmTOTP(r.Context(), principal(r.Context()), *req.Code, browser.AgentOf(r))
	if err != nil {
		s.writeError(w, r, asGrantError(err, http.StatusBadRequest))
		return
	}
	writeJSON(w, http.StatusOK, recoveryCodesResponse{RecoveryCodes: codes})
}

// handleRemoveTOTP is DELETE /v1/me/mfa/totp: remove the app and the
// recovery codes. → 204.
func (s *Server) handleRemoveTOTP(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.RemoveTOTP(r.Context(), principal(r.Context()), browser.AgentOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleRegenerateRecoveryCodes is POST /v1/me/mfa/recovery-codes: ten
// new recovery codes; the old ones stop working. → 200 {"recovery_codes"}.
func (s *Server) handleRegenerateRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	codes, err := s.svc.RegenerateRecoveryCodes(r.Context(), principal(r.Context()), browser.AgentOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, recoveryCodesResponse{RecoveryCodes: codes})
}

// handleAdminRemoveMFA is DELETE /admin/v1/users/{id}/mfa: remove a
// user's second factors (audited, mailed to the user). → 204; 404 when
// the user has none.
func (s *Server) handleAdminRemoveMFA(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.RemoveSecondFactors(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
