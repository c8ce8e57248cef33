package httpapi

import (
	"net/http"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// Passkeys in the JSON API (docs/http-api.md, "Passkeys"): a user lists,
// renames and removes their passkeys, an admin lists and removes a
// user's. Registering one and signing in with one are WebAuthn
// ceremonies a browser runs, on the pages (internal/web).

// passkeyRoutes registers the passkey routes.
func (s *Server) passkeyRoutes(mux *http.ServeMux) {
	s.handle(mux, "GET /v1/me/passkeys", s.bearer(s.handleListMyPasskeys))
	s.handle(mux, "PATCH /v1/me/passkeys/{id}", s.bearer(s.handleRenameMyPasskey))
	s.handle(mux, "DELETE /v1/me/passkeys/{id}", s.bearer(s.handleRemoveMyPasskey))
	s.handle(mux, "GET /admin/v1/users/{id}/passkeys", s.admin(s.handleAdminListPasskeys))
	s.handle(mux, "DELETE /admin/v1/users/{id}/passkeys/{passkey}", s.admin(s.handleAdminRemovePasskey))
}

// passkeyResponse is a passkey as the API shows it: never its key.
type passkeyResponse struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	BackupEligible bool       `json:"backup_eligible"`
	BackupState    bool       `json:"backup_state"`
	UserVerified   bool       `json:"user_verified"`
	Transports     []string   `json:"transports"`
	SignCount      uint32     `json:"sign_count"`
	CreatedAt      time.Time  `json:"created_at"`
	LastUsedAt     *time.Time `json:"last_used_at"`
}

func passkeyJSON(p *keycard.Passkey) passkeyResponse {
	r := passkeyResponse{ID: p.ID, Name: p.Name, BackupEligible: p.BackupEligible, BackupState: p.BackupState,
		UserVerified: p.UserVerified, Transports: p.Transports, SignCount: p.SignCount, CreatedAt: p.CreatedAt}
	if r.Transports == nil {
		r.Transports = []string{}
	}
	if !p.LastUsedAt.IsZero() {
		t := p.LastUsedAt
		r.LastUsedAt = &t
	}
	return r
}

type passkeysResponse struct {
	Passkeys []passkeyResponse `json:"passkeys"`
}

func (s *Server) writePasskeys(w http.ResponseWriter, r *http.Request, userID string) {
	pks, err := s.svc.ListPasskeys(r.Context(), userID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := passkeysResponse{Passkeys: []passkeyResponse{}}
	for _, p := range pks {
		out.Passkeys = append(out.Passkeys, passkeyJSON(p))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleListMyPasskeys is GET /v1/me/passkeys.
func (s *Server) handleListMyPasskeys(w http.ResponseWriter, r *http.Request) {
	s.writePasskeys(w, r, principal(r.Context()).User.ID)
}

// handleRenameMyPasskey is PATCH /v1/me/passkeys/{id} {"name"}.
func (s *Server) handleRenameMyPasskey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	p := principal(r.Context())
	id := r.PathValue("id")
	if err := s.svc.RenamePasskey(r.Context(), auth.UserActor(p.User.ID, browser.AgentOf(r)), p.User.ID, id, req.Name); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writePasskey(w, r, p.User.ID, id)
}

func (s *Server) writePasskey(w http.ResponseWriter, r *http.Request, userID, id string) {
	pks, err := s.svc.ListPasskeys(r.Context(), userID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, pk := range pks {
		if pk.ID == id {
			writeJSON(w, http.StatusOK, passkeyJSON(pk))
			return
		}
	}
	s.writeError(w, r, &keycard.Error{Code: keycard.ENOTFOUND, Message: "Passkey not found."})
}

// handleRemoveMyPasskey is DELETE /v1/me/passkeys/{id}.
func (s *Server) handleRemoveMyPasskey(w http.ResponseWriter, r *http.Request) {
	p := principal(r.Context())
	if err := s.svc.RemovePasskey(r.Context(), auth.UserActor(p.User.ID, browser.AgentOf(r)), p.User.ID, r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleAdminListPasskeys is GET /admin/v1/users/{id}/passkeys.
func (s *Server) handleAdminListPasskeys(w http.ResponseWriter, r *http.Request) {
	u, err := s.svc.User(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writePasskeys(w, r, u.ID)
}

// handleAdminRemovePasskey is DELETE /admin/v1/users/{id}/passkeys/{passkey}.
func (s *Server) handleAdminRemovePasskey(w http.ResponseWriter, r *http.Request) {
	by := auth.AdminActor(principal(r.Context()), browser.AgentOf(r))
	if err := s.svc.RemovePasskey(r.Context(), by, r.PathValue("id"), r.PathValue("passkey")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
