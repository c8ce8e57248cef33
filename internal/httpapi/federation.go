package httpapi

import (
	"net/http"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// identityJSON is a linked identity in the admin API.
type identityJSON struct {
	Provider   string    `json:"provider"`
	Subject    string    `json:"subject"`
	Email      string    `json:"email,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
}

// handleAdminIdentities is GET /admin/v1/users/{id}/identities: the
// user's linked identities at upstream providers (docs/federation.md).
func (s *Server) handleAdminIdentities(w http.ResponseWriter, r *http.Request) {
	u, err := s.svc.User(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ids, err := s.svc.Identities(r.Context(), u.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Identities []identityJSON `json:"identities"`
	}{Identities: make([]identityJSON, 0, len(ids))}
	for _, id := range ids {
		out.Identities = append(out.Identities, identityJSON{Provider: id.Provider, Subject: id.Subject, Email: id.Email,
			CreatedAt: id.CreatedAt.UTC(), LastUsedAt: id.LastUsedAt.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAdminUnlink is DELETE /admin/v1/users/{id}/identities/{provider}/{subject}:
// unlink, unless it is the last way in of a user without a password (403).
func (s *Server) handleAdminUnlink(w http.ResponseWriter, r *http.Request) {
	err := s.svc.UnlinkIdentity(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)),
		r.PathValue("id"), r.PathValue("provider"), r.PathValue("subject"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleAdminProviders is GET /admin/v1/federation/providers: the
// configured upstream providers, without their secrets.
func (s *Server) handleAdminProviders(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Providers []Provider `json:"providers"`
	}{Providers: []Provider{}}
	switch {
	case s.federation != nil:
		list, err := s.federation.List(r.Context())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out.Providers = append(out.Providers, list...)
	case s.providers != nil:
		out.Providers = append(out.Providers, s.providers()...)
	}
	writeJSON(w, http.StatusOK, out)
}

// errNoFederation answers the provider changes of a server that cannot
// make them.
var errNoFederation = errorf(http.StatusNotImplemented, codeInvalidRequest, "This server does not manage identity providers through the API.")

// providerInput decodes the body of a provider change; false when it
// answered the request with an error.
func (s *Server) providerInput(w http.ResponseWriter, r *http.Request) (*ProviderInput, bool) {
	if s.federation == nil {
		s.writeError(w, r, errNoFederation)
		return nil, false
	}
	var in ProviderInput
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return &in, true
}

// handleAdminCreateProvider is POST /admin/v1/federation/providers: add
// an upstream provider (201 with it, without its secret).
func (s *Server) handleAdminCreateProvider(w http.ResponseWriter, r *http.Request) {
	in, ok := s.providerInput(w, r)
	if !ok {
		return
	}
	p, err := s.federation.Create(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

// handleAdminUpdateProvider is PUT /admin/v1/federation/providers/{name}:
// replace a provider added at run time; a client_secret member replaces
// its secret, none keeps it.
func (s *Server) handleAdminUpdateProvider(w http.ResponseWriter, r *http.Request) {
	in, ok := s.providerInput(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	if in.Name == "" {
		in.Name = name
	} else if in.Name != name {
		s.writeError(w, r, badRequest("The name in the body differs from the URL's; a provider cannot be renamed."))
		return
	}
	p, err := s.federation.Update(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), name, in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// handleAdminDeleteProvider is DELETE /admin/v1/federation/providers/{name}.
func (s *Server) handleAdminDeleteProvider(w http.ResponseWriter, r *http.Request) {
	if s.federation == nil {
		s.writeError(w, r, errNoFederation)
		return
	}
	if err := s.federation.Delete(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
