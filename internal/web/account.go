package web

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// notice returns the message a page shows after a redirect, chosen by its
// "done" parameter, so that no text a link could forge is ever shown.
func notice(r *http.Request) string {
	switch r.URL.Query().Get("done") {
	case "session":
		return "The session is signed out."
	case "password":
		return "Your password is changed. Your other sessions are signed out."
	case "email":
		return "Your email address is saved. If it is new, open the link we sent to it to confirm it."
	case "resetsent":
		return "A link to reset the password is on its way to the user's address."
	case "disabled":
		return "The user is disabled and signed out everywhere."
	case "enabled":
		return "The user is enabled."
	case "roles":
		return "The roles are saved."
	case "revoked":
		return "The session is revoked."
	case "revokeall":
		return "Every session of the user is revoked."
	case "rotated":
		return "A new key is published."
	case "keyrevoked":
		return "The key is revoked."
	case "provideradded":
		return "The identity provider is added: its button shows from the next sign-in on."
	case "providerremoved":
		return "The identity provider is removed: sign-ins through it are refused."
	case "deleted":
		return "The client is deleted."
	case "usercreated":
		return "The user is created."
	case "userdeleted":
		return "The user is deleted, and signed out everywhere."
	case "stepup":
		return "You signed in again: you can now go on with the change."
	case "saved":
		return "The client's settings are saved."
	case "appremoved":
		return "The app's access is removed: it is signed out, and must ask again."
	case "appsignedout":
		return "Signed out of the app."
	case "passkeyadded":
		return "The passkey is added: you can sign in with it."
	case "passkeyrenamed":
		return "The passkey is renamed."
	case "passkeyremoved":
		return "The passkey is removed: it can no longer sign in."
	case "mfaoff":
		return "Two-step sign-in is off: the authenticator app and the recovery codes are removed."
	case "mfaremoved":
		return "The user's second factors are removed. They sign in with the password alone, or set one up again if their role requires it."
	case "linked":
		return "The provider is linked: you can sign in with it."
	case "unlinked":
		return "The provider is unlinked."
	case "replayed":
		return "The delivery will be sent again within a second."
	}
	return ""
}

// accountSession is one row of the sessions table.
type accountSession struct {
	*keycard.Session
	Current bool
}

// accountData is the account page's data.
type accountData struct {
	// Sessions are the user's sign-ins; the apps' grant sessions under
	// them are in Apps.
	Sessions []accountSession
	Apps     []appRow
	// CurrentError, NewError and ConfirmError are the password form's
	// errors, next to their fields.
	CurrentError, NewError, ConfirmError string
	// Email and EmailError are the email form's value and error, after a
	// refused change.
	Email, EmailError string
	// Passkeys are the user's passkeys; PasskeysEnabled says whether new
	// ones can be added. PasskeyError is the rename form's error, for
	// the passkey PasskeyErrorID.
	Passkeys                     []*keycard.Passkey
	PasskeysEnabled              bool
	PasskeyError, PasskeyErrorID string
	// MFA is what the user has of second factors.
	MFA *auth.MFAStatus
	// Identities are the user's linked upstream identities, and
	// Linkable the providers not linked yet (docs/federation.md).
	Identities []identityRow
	Linkable   []providerButton
}

// handleAccount is GET /account: who I am, my sessions, the apps with
// access to my account, my password.
func (h *Handler) handleAccount(w http.ResponseWriter, r *http.Request) {
	h.renderAccount(w, r, http.StatusOK, &accountData{}, notice(r))
}

func (h *Handler) renderAccount(w http.ResponseWriter, r *http.Request, status int, d *accountData, note string) {
	p := current(r)
	list, err := h.svc.Sessions(r.Context(), p)
	if err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	for _, s := range list {
		if s.ParentID == "" {
			d.Sessions = append(d.Sessions, accountSession{Session: s, Current: s.ID == p.Claims.SessionID})
		}
	}
	apps, err := h.svc.Apps(r.Context(), p.User.ID)
	if err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	d.Apps = appRows(apps)
	if d.Passkeys, err = h.svc.ListPasskeys(r.Context(), p.User.ID); err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	d.PasskeysEnabled = h.svc.PasskeysEnabled()
	if d.MFA, err = h.svc.MFAStatus(r.Context(), p.User); err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	if d.Identities, d.Linkable, err = h.accountIdentities(r, p.User); err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	h.allowProviderRedirects(w)
	h.render(w, r, status, "account", &page{Title: "Your account", Section: "account", User: p.User,
		CSRF: h.csrfToken(p.Claims.SessionID), Notice: note, Data: d})
}

// handleChangePassword is POST /account/password. It keeps this session
// and signs out the others; the access token is then renewed, since
// verifiers refuse tokens issued before the change.
func (h *Handler) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	p := current(r)
	cur, next, confirm := formValue(r, "current_password"), formValue(r, "new_password"), formValue(r, "confirm_password")
	d := &accountData{}
	switch {
	case cur == "":
		d.CurrentError = "Enter your current password."
	case next == "":
		d.NewError = "Choose a new password of at least 8 characters."
	case next != confirm:
		d.ConfirmError = "The two new passwords differ."
	}
	if d.CurrentError == "" && d.NewError == "" && d.ConfirmError == "" {
		err := h.svc.ChangePassword(r.Context(), p, cur, next, browser.AgentOf(r))
		if _, ok := errors.AsType[*auth.ReauthRequiredError](err); ok {
			h.askReauth(w, r, "/account")
			return
		}
		switch keycard.ErrorCode(err) {
		case "":
			http.Redirect(w, r, browser.PageRefreshPath+"?next="+url.QueryEscape("/account?done=password"), http.StatusSeeOther)
			return
		case keycard.EFORBIDDEN:
			d.CurrentError = "Your current password is wrong."
		case keycard.EINVALID:
			d.NewError = keycard.ErrorMessage(err)
		default:
			h.serviceError(w, r, err, p.User)
			return
		}
	}
	status := http.StatusBadRequest
	if d.CurrentError != "" && cur != "" {
		status = http.StatusForbidden
	}
	h.renderAccount(w, r, status, d, "")
}

// handleRevokeSession is POST /account/sessions/{id}/revoke: sign out one
// of my sessions. Signing out this one is signing out.
func (h *Handler) handleRevokeSession(w http.ResponseWriter, r *http.Request) {
	p := current(r)
	id := r.PathValue("id")
	if err := h.svc.RevokeSession(r.Context(), p, id, browser.AgentOf(r)); err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	if id == p.Claims.SessionID {
		h.clearSessionCookies(w)
		http.Redirect(w, r, "/signin?signedout=1", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/account?done=session", http.StatusSeeOther)
}

// handleSignOutEverywhere is POST /account/signout-everywhere: every
// session of mine, this one included.
func (h *Handler) handleSignOutEverywhere(w http.ResponseWriter, r *http.Request) {
	p := current(r)
	if err := h.svc.LogoutAll(r.Context(), p, browser.AgentOf(r)); err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	h.clearSessionCookies(w)
	http.Redirect(w, r, "/signin?signedout=1", http.StatusSeeOther)
}
