package httpapi

import (
	"net/http"

	"github.com/keycard-auth/keycard/internal/browser"
)

// credentials is the body of POST /v1/users and POST /v1/login. Pointers
// tell a missing member from an empty one.
type credentials struct {
	Username *string `json:"username"`
	Password *string `json:"password"`
}

func (c *credentials) check() error {
	switch {
	case c.Username == nil:
		return badRequest(`Field "username" is required.`)
	case c.Password == nil:
		return badRequest(`Field "password" is required.`)
	}
	return nil
}

// registerRequest is the body of POST /v1/users.
type registerRequest struct {
	Username *string `json:"username"`
	Password *string `json:"password"`
	Email    *string `json:"email"`
}

type userResponse struct {
	ID            string `json:"id"`
	Username      string `json:"username"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified"`
}

// handleRegister is POST /v1/users: self-service registration, when the
// configuration allows it. New users get no roles.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if !s.svc.Config().Registration {
		s.writeError(w, r, errorf(http.StatusForbidden, codeRegistrationDisabled, "Registration is disabled on this server."))
		return
	}
	var req registerRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := (&credentials{Username: req.Username, Password: req.Password}).check(); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.svc.RegisterWithEmail(r.Context(), *req.Username, *req.Password, deref(req.Email), nil)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, userResponse{ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified})
}

type meResponse struct {
	ID            string   `json:"id"`
	Username      string   `json:"username"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified"`
	Roles         []string `json:"roles"`
	SessionID     string   `json:"session_id"`
}

// handleMe is GET /v1/me: the caller's identity.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	p := principal(r.Context())
	roles := p.User.Roles
	if roles == nil {
		roles = []string{}
	}
	writeJSON(w, http.StatusOK, meResponse{ID: p.User.ID, Username: p.User.Username, Email: p.User.Email, EmailVerified: p.User.EmailVerified,
		Roles: roles, SessionID: p.Claims.SessionID})
}

type passwordRequest struct {
	CurrentPassword *string `json:"current_password"`
	NewPassword     *string `json:"new_password"`
}

// handleChangePassword is POST /v1/password: the caller changes their
// password, proving the current one; every other session of the user is
// revoked, the calling one stays.
func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	var req passwordRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case req.CurrentPassword == nil:
		s.writeError(w, r, badRequest(`Field "current_password" is required.`))
		return
	case req.NewPassword == nil:
		s.writeError(w, r, badRequest(`Field "new_password" is required.`))
		return
	}
	if err := s.svc.ChangePassword(r.Context(), principal(r.Context()), *req.CurrentPassword, *req.NewPassword, browser.AgentOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
