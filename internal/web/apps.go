package web

import (
	"net/http"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// The applications with access to a user's account (auth.Service.Apps):
// on the account page, where the user takes the access back, and on the
// console's user page, where an admin does.

// appRow is one application of the list.
type appRow struct {
	*auth.App
	// Scopes describes the consented scopes.
	Scopes []consentScope
	// LastUsed is the last use of the app's grant sessions; zero for none.
	LastUsed time.Time
}

// appRows returns the rows of apps.
func appRows(apps []*auth.App) []appRow {
	rows := make([]appRow, 0, len(apps))
	for _, a := range apps {
		row := appRow{App: a}
		if a.Consent != nil {
			row.Scopes = scopeLines(a.Consent.Scopes)
		}
		for _, s := range a.Sessions {
			if s.LastUsedAt.After(row.LastUsed) {
				row.LastUsed = s.LastUsedAt
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// handleRemoveApp is POST /account/apps/{client}/revoke: the user takes
// back their consent to an application, which signs them out of it
// (auth.Service.RevokeConsent).
func (h *Handler) handleRemoveApp(w http.ResponseWriter, r *http.Request) {
	p := current(r)
	if err := h.svc.RevokeConsent(r.Context(), auth.UserActor(p.User.ID, browser.AgentOf(r)), p.User.ID, r.PathValue("client")); err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	http.Redirect(w, r, "/account?done=appremoved", http.StatusSeeOther)
}

// handleSignOutOfApp is POST /account/apps/{client}/signout: the user
// signs out of an application they need not consent to (a first-party
// one): its grant sessions end.
func (h *Handler) handleSignOutOfApp(w http.ResponseWriter, r *http.Request) {
	p := current(r)
	if _, err := h.svc.SignOutOfApp(r.Context(), auth.UserActor(p.User.ID, browser.AgentOf(r)), p.User.ID, r.PathValue("client")); err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	http.Redirect(w, r, "/account?done=appsignedout", http.StatusSeeOther)
}

// handleAdminRevokeConsent is POST /admin/users/{id}/consents/{client}/revoke.
func (h *Handler) handleAdminRevokeConsent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.svc.RevokeConsent(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), id, r.PathValue("client")); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	http.Redirect(w, r, userURL(id, "appremoved"), http.StatusSeeOther)
}

// handleAdminSignOutOfApp is POST /admin/users/{id}/apps/{client}/signout.
func (h *Handler) handleAdminSignOutOfApp(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := h.svc.SignOutOfApp(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), id, r.PathValue("client")); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	http.Redirect(w, r, userURL(id, "appsignedout"), http.StatusSeeOther)
}
