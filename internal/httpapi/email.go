package httpapi

import (
	"net/http"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// deref returns *p, or "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

type emailRequest struct {
	Email *string `json:"email"`
}

type emailResponse struct {
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified"`
}

// handleChangeEmail is PUT /v1/me/email {"email"}: the caller sets their
// address ("" removes it), which is unverified until they follow the link
// mailed to it. It needs a recent sign-in, like a password change.
func (s *Server) handleChangeEmail(w http.ResponseWriter, r *http.Request) {
	var req emailRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Email == nil {
		s.writeError(w, r, badRequest(`Field "email" is required ("" removes the address).`))
		return
	}
	u, err := s.svc.ChangeEmail(r.Context(), principal(r.Context()), *req.Email, browser.AgentOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emailResponse{Email: u.Email, EmailVerified: u.EmailVerified})
}

type tokenRequest struct {
	Token       *string `json:"token"`
	NewPassword *string `json:"new_password"`
}

// handleVerifyEmail is POST /v1/email/verify {"token"}: the link of a
// verification mail, for an application that shows its own page (the
// server's is GET /verify-email). → 200 with the verified address.
func (s *Server) handleVerifyEmail(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Token == nil {
		s.writeError(w, r, badRequest(`Field "token" is required.`))
		return
	}
	u, err := s.svc.VerifyEmail(r.Context(), *req.Token, browser.AgentOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emailResponse{Email: u.Email, EmailVerified: u.EmailVerified})
}

// resetRequested is the one answer to a password-reset request that is
// not refused for its form or by the throttles, whether or not a user has
// the address.
type resetRequested struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// handleResetRequest is POST /v1/password/reset-request {"email"}: mail a
// password-reset link to the address if a user has it. The answer, 202,
// is the same for an address no one has (auth.RequestPasswordReset).
func (s *Server) handleResetRequest(w http.ResponseWriter, r *http.Request) {
	var req emailRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Email == nil {
		s.writeError(w, r, badRequest(`Field "email" is required.`))
		return
	}
	if err := s.svc.RequestPasswordReset(r.Context(), *req.Email, browser.AgentOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, resetRequested{Status: "accepted",
		Message: "If an account has this address, a link to reset its password is on its way."})
}

// handleReset is POST /v1/password/reset {"token","new_password"}: set a
// new password with the link of a reset mail; every session of the user
// ends. → 204; a link that is not good (used, expired, outdated by a
// password change) is 401 invalid_token.
func (s *Server) handleReset(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case req.Token == nil:
		s.writeError(w, r, badRequest(`Field "token" is required.`))
		return
	case req.NewPassword == nil:
		s.writeError(w, r, badRequest(`Field "new_password" is required.`))
		return
	}
	if err := s.svc.ResetPassword(r.Context(), *req.Token, *req.NewPassword, browser.AgentOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type adminEmailRequest struct {
	Email    *string `json:"email"`
	Verified bool    `json:"verified"`
}

// handleAdminSetEmail is PUT /admin/v1/users/{id}/email
// {"email","verified"?}: set a user's address ("" removes it); verified
// true vouches for it (no link is mailed). → 200 with the user.
func (s *Server) handleAdminSetEmail(w http.ResponseWriter, r *http.Request) {
	var req adminEmailRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Email == nil {
		s.writeError(w, r, badRequest(`Field "email" is required ("" removes the address).`))
		return
	}
	u, err := s.svc.SetEmail(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), r.PathValue("id"), *req.Email, req.Verified)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, adminUser(u))
}

// handleAdminSendReset is POST /admin/v1/users/{id}/password-reset: mail
// the user a password-reset link. → 202.
func (s *Server) handleAdminSendReset(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.SendPasswordReset(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
