package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// Page sizes of the console's lists.
const (
	usersPerPage    = 25
	sessionsPerPage = 50
	clientsPerPage  = 50
	eventsPerPage   = 50
	// maxFilterLen bounds a search or filter value, as the admin API does.
	maxFilterLen = 256
)

// The typed confirmations of the console's most destructive actions.
const (
	confirmRevokeAll = "sign out everyone"
	confirmRevokeKey = "revoke"
)

// auditTypes returns the audit event types offered by the audit log's
// filter.
func auditTypes() []string {
	return []string{
		keycard.AuditUserCreated, keycard.AuditPasswordChanged, auth.AuditUserDisabled, auth.AuditUserEnabled,
		auth.AuditUserRolesChanged, auth.AuditUserCreatedByAdmin, auth.AuditUserDeleted, keycard.AuditLoginSucceeded, keycard.AuditLoginFailed,
		keycard.AuditLoginThrottled, keycard.AuditTokenReuse, keycard.AuditLogout, auth.AuditTokenRevoked,
		keycard.AuditKeyRotated, keycard.AuditKeyRevoked, keycard.AuditRevokeAll, auth.AuditClientCreated,
		auth.AuditClientSecretRotated, auth.AuditClientDeleted, auth.AuditWebhookCreated, auth.AuditWebhookDeleted,
		auth.AuditWebhookReplayed, auth.AuditWebhookFailed,
	}
}

// adminPage returns the page of a console section.
func (h *Handler) adminPage(r *http.Request, title, section string, data any) *page {
	p := current(r)
	return &page{Title: title, Section: section, User: p.User, CSRF: h.csrfToken(p.Claims.SessionID), Notice: notice(r), Data: data}
}

func (h *Handler) handleAdminRoot(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
}

// usersData is the users page's data.
type usersData struct {
	Query      string
	QueryError string
	Users      []*keycard.User
	// Next is the link to the next page, "" on the last.
	Next string
	// New is the creation form's values after a refused creation (never
	// the password), and NewError why it was refused.
	New      newUserForm
	NewError string
}

// newUserForm is the values of the form that creates a user.
type newUserForm struct {
	Username, Email, Roles string
}

// handleUsers is GET /admin/users?q=&after=: users by username, searched
// by prefix, a page at a time.
func (h *Handler) handleUsers(w http.ResponseWriter, r *http.Request) {
	h.renderUsers(w, r, http.StatusOK, &usersData{})
}

// renderUsers renders the users page with d (the creation form's values
// and error, for a refused creation), and the list the query asks for.
func (h *Handler) renderUsers(w http.ResponseWriter, r *http.Request, status int, d *usersData) {
	q := r.URL.Query()
	d.Query = q.Get("q")
	after := q.Get("after")
	if len(d.Query) > maxFilterLen || len(after) > 4*keycard.MaxUsernameLen {
		d.QueryError = "The search is too long."
	} else {
		users, err := h.svc.ListUsers(r.Context(), d.Query, after, usersPerPage+1)
		switch keycard.ErrorCode(err) {
		case "":
			if len(users) > usersPerPage {
				users = users[:usersPerPage]
				v := url.Values{"after": {users[len(users)-1].NormalizedUsername}}
				if d.Query != "" {
					v.Set("q", d.Query)
				}
				d.Next = "/admin/users?" + v.Encode()
			}
			d.Users = users
		case keycard.EINVALID:
			d.QueryError = "No username starts like this: search by the start of a username."
		default:
			h.serviceError(w, r, err, current(r).User)
			return
		}
	}
	if d.QueryError != "" {
		status = http.StatusBadRequest
	}
	h.render(w, r, status, "users", h.adminPage(r, "Users", "users", d))
}

// handleCreateUser is POST /admin/users: a user with a username, a
// password, and optionally an email address (a verification link is
// mailed to it) and roles (split at spaces and commas), whether or not
// registration is open. A refused creation shows the form again with
// why, and its values but the password.
func (h *Handler) handleCreateUser(w http.ResponseWriter, r *http.Request) {
	form := newUserForm{Username: formValue(r, "username"), Email: formValue(r, "email"), Roles: formValue(r, "roles")}
	roles := strings.FieldsFunc(form.Roles, func(c rune) bool { return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r' })
	u, err := h.svc.CreateUserWithEmail(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), form.Username, formValue(r, "password"), form.Email, roles)
	switch keycard.ErrorCode(err) {
	case "":
		http.Redirect(w, r, userURL(u.ID, "usercreated"), http.StatusSeeOther)
	case keycard.EINVALID, keycard.ECONFLICT:
		h.renderUsers(w, r, browser.StatusOf(err), &usersData{New: form, NewError: keycard.ErrorMessage(err)})
	default:
		h.serviceError(w, r, err, current(r).User)
	}
}

// userData is the page of one user.
type userData struct {
	Subject    *keycard.User
	Self       bool
	Sessions   []*keycard.Session
	Apps       []appRow
	Next       string
	Roles      string
	RolesError string
	// DeleteError is why a deletion was refused (the typed confirmation
	// does not match).
	DeleteError string
	// MFA is what the user has of second factors.
	MFA *auth.MFAStatus
	// Identities are the user's linked identities at upstream providers.
	Identities []identityRow
	// Passkeys are the user's passkeys.
	Passkeys []*keycard.Passkey
}

// handleUser is GET /admin/users/{id}?before=: a user, their sessions and
// what an admin can do to them.
func (h *Handler) handleUser(w http.ResponseWriter, r *http.Request) {
	h.renderUser(w, r, http.StatusOK, &userData{})
}

func (h *Handler) renderUser(w http.ResponseWriter, r *http.Request, status int, d *userData) {
	ctx, id := r.Context(), r.PathValue("id")
	u, err := h.svc.User(ctx, id)
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	before := ""
	if r.Method == http.MethodGet {
		before = r.URL.Query().Get("before")
	}
	sessions, err := h.svc.UserSessions(ctx, id, before, sessionsPerPage+1)
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	if len(sessions) > sessionsPerPage {
		sessions = sessions[:sessionsPerPage]
		d.Next = "/admin/users/" + url.PathEscape(id) + "?before=" + url.QueryEscape(sessions[len(sessions)-1].ID)
	}
	apps, err := h.svc.Apps(ctx, id)
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	if d.Identities, _, err = h.accountIdentities(r, u); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	d.Subject, d.Sessions, d.Apps, d.Self = u, sessions, appRows(apps), u.ID == current(r).User.ID
	if d.MFA, err = h.svc.MFAStatus(ctx, u); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	if d.Passkeys, err = h.svc.ListPasskeys(ctx, u.ID); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	if d.RolesError == "" {
		d.Roles = strings.Join(u.Roles, " ")
	}
	h.render(w, r, status, "user", h.adminPage(r, u.Username, "users", d))
}

// handleDeleteUser is POST /admin/users/{id}/delete: behind the user's
// username typed as confirmation, and a step-up (a sign-in within
// auth.Config.StepUpWithin, else the admin signs in again and comes back
// to confirm once more), the user's sessions end through the revocation
// feed and the user is deleted.
func (h *Handler) handleDeleteUser(w http.ResponseWriter, r *http.Request) {
	p, id := current(r), r.PathValue("id")
	u, err := h.svc.User(r.Context(), id)
	if err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	if !confirmed(formValue(r, "confirm"), u.Username) {
		h.renderUser(w, r, http.StatusBadRequest, &userData{DeleteError: "Type the username, " + u.Username + ", to delete this user."})
		return
	}
	err = h.svc.DeleteUser(r.Context(), auth.AdminActor(p, browser.AgentOf(r)), id)
	if _, ok := errors.AsType[*auth.ReauthRequiredError](err); ok {
		h.askReauth(w, r, userURL(id, "stepup"))
		return
	}
	if err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	http.Redirect(w, r, "/admin/users?done=userdeleted", http.StatusSeeOther)
}

// userURL is the page of a user, with a notice.
func userURL(id, done string) string { return "/admin/users/" + url.PathEscape(id) + "?done=" + done }

// handleSetDisabled returns the handler of POST /admin/users/{id}/disable
// (disabled) or …/enable. Disabling signs the user out everywhere.
func (h *Handler) handleSetDisabled(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, err := h.svc.SetUserDisabled(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), id, disabled); err != nil {
			h.serviceError(w, r, err, current(r).User)
			return
		}
		done := "enabled"
		if disabled {
			done = "disabled"
		}
		http.Redirect(w, r, userURL(id, done), http.StatusSeeOther)
	}
}

// handleSetRoles is POST /admin/users/{id}/roles: the roles field, split
// at spaces and commas, replaces the user's roles.
func (h *Handler) handleSetRoles(w http.ResponseWriter, r *http.Request) {
	id, field := r.PathValue("id"), formValue(r, "roles")
	roles := strings.FieldsFunc(field, func(c rune) bool { return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r' })
	if roles == nil {
		roles = []string{}
	}
	_, err := h.svc.SetUserRoles(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), id, roles)
	switch keycard.ErrorCode(err) {
	case "":
		http.Redirect(w, r, userURL(id, "roles"), http.StatusSeeOther)
	case keycard.EINVALID, keycard.ECONFLICT:
		h.renderUser(w, r, browser.StatusOf(err), &userData{Roles: field, RolesError: keycard.ErrorMessage(err)})
	default:
		h.serviceError(w, r, err, current(r).User)
	}
}

// handleAdminRevokeSession is POST /admin/users/{id}/sessions/{sid}/revoke.
func (h *Handler) handleAdminRevokeSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.svc.RevokeUserSession(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), id, r.PathValue("sid")); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	h.afterOwnSessionGone(w, r, userURL(id, "revoked"))
}

// handleAdminRevokeSessions is POST /admin/users/{id}/sessions/revoke:
// every session of the user.
func (h *Handler) handleAdminRevokeSessions(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := h.svc.RevokeUserSessions(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), id); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	h.afterOwnSessionGone(w, r, userURL(id, "revokeall"))
}

// afterOwnSessionGone redirects to target, or to sign in when the admin's
// own session is no longer active (they revoked it).
func (h *Handler) afterOwnSessionGone(w http.ResponseWriter, r *http.Request, target string) {
	if p, err := h.principal(r); err == nil && p == nil {
		h.clearSessionCookies(w)
		http.Redirect(w, r, "/signin?signedout=1", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// keysData is the keys page's data.
type keysData struct {
	Keys         []*keycard.SigningKey
	Confirm      string
	RevokeKID    string
	ConfirmError string
}

// handleKeys is GET /admin/keys: the signing keys and their states.
func (h *Handler) handleKeys(w http.ResponseWriter, r *http.Request) {
	h.renderKeys(w, r, http.StatusOK, &keysData{Confirm: confirmRevokeKey})
}

func (h *Handler) renderKeys(w http.ResponseWriter, r *http.Request, status int, d *keysData) {
	keys, err := h.svc.Keys().Keys(r.Context())
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	d.Keys = keys
	h.render(w, r, status, "keys", h.adminPage(r, "Signing keys", "keys", d))
}

// handleRotateKey is POST /admin/keys/rotate: publish a new key, signing
// after the publication lead, or at once with "immediate".
func (h *Handler) handleRotateKey(w http.ResponseWriter, r *http.Request) {
	immediate := formValue(r, "immediate") == "on"
	if _, err := h.svc.RotateKey(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), immediate); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	http.Redirect(w, r, "/admin/keys?done=rotated", http.StatusSeeOther)
}

// handleRevokeKey is POST /admin/keys/{kid}/revoke, the emergency
// revocation of a key, behind a typed confirmation.
func (h *Handler) handleRevokeKey(w http.ResponseWriter, r *http.Request) {
	kid := r.PathValue("kid")
	if !confirmed(formValue(r, "confirm"), confirmRevokeKey) {
		h.renderKeys(w, r, http.StatusBadRequest, &keysData{Confirm: confirmRevokeKey, RevokeKID: kid,
			ConfirmError: `Type "` + confirmRevokeKey + `" to revoke this key.`})
		return
	}
	if _, err := h.svc.RevokeKey(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), kid); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	// The admin's own access token may be of the revoked key: renew it.
	http.Redirect(w, r, browser.PageRefreshPath+"?next="+url.QueryEscape("/admin/keys?done=keyrevoked"), http.StatusSeeOther)
}

// confirmed reports whether a typed confirmation matches, ignoring case
// and surrounding spaces.
func confirmed(typed, want string) bool {
	return strings.EqualFold(strings.Join(strings.Fields(typed), " "), want)
}

// auditData is the audit log page's data.
type auditData struct {
	User, Type, Since, Until string
	Types                    []string
	SinceError, UntilError   string
	FilterError              string
	Events                   []*keycard.AuditEvent
	Next                     string
}

// auditTimeLayout is the value format of a datetime-local input, read as
// UTC.
const auditTimeLayout = "2006-01-02T15:04"

// parseFilterTime reads a datetime-local value (UTC) or an RFC 3339 time.
func parseFilterTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, true
	}
	if t, err := time.Parse(auditTimeLayout, s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// handleAudit is GET /admin/audit?user=&type=&since=&until=&before=: the
// audit log, newest first, filtered.
func (h *Handler) handleAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := &auditData{User: q.Get("user"), Type: q.Get("type"), Since: q.Get("since"), Until: q.Get("until"), Types: auditTypes()}
	f := keycard.AuditFilter{User: d.User, Type: d.Type, Limit: eventsPerPage + 1}
	var ok bool
	if f.Since, ok = parseFilterTime(d.Since); !ok {
		d.SinceError = "Give a date and time such as 2026-11-01T09:30 (UTC)."
	}
	if f.Until, ok = parseFilterTime(d.Until); !ok {
		d.UntilError = "Give a date and time such as 2026-11-01T17:00 (UTC)."
	}
	if d.UntilError == "" && !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		d.UntilError = "The end is before the start."
	}
	if len(d.User) > maxFilterLen || len(d.Type) > maxFilterLen {
		d.FilterError = "A filter is too long."
	}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			d.FilterError = "The page link is broken; start again from the first page."
		}
		f.Before = n
	}
	if d.SinceError != "" || d.UntilError != "" || d.FilterError != "" {
		h.render(w, r, http.StatusBadRequest, "audit", h.adminPage(r, "Audit log", "audit", d))
		return
	}
	events, err := h.svc.AuditEvents(r.Context(), f)
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	if len(events) > eventsPerPage {
		events = events[:eventsPerPage]
		v := url.Values{}
		for k, val := range map[string]string{"user": d.User, "type": d.Type, "since": d.Since, "until": d.Until} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set("before", strconv.FormatInt(events[len(events)-1].ID, 10))
		d.Next = "/admin/audit?" + v.Encode()
	}
	d.Events = events
	h.render(w, r, http.StatusOK, "audit", h.adminPage(r, "Audit log", "audit", d))
}

// revokeAllData is the force-sign-in page's data.
type revokeAllData struct {
	Confirm      string
	ConfirmError string
}

// handleRevokeAllPage is GET /admin/signout-all: the typed confirmation
// of "force every user to sign in again".
func (h *Handler) handleRevokeAllPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "revokeall", h.adminPage(r, "Sign out everyone", "revokeall", &revokeAllData{Confirm: confirmRevokeAll}))
}

// handleRevokeAll is POST /admin/signout-all: revokes every session of
// every user, the admin's own included, once the confirmation is typed.
func (h *Handler) handleRevokeAll(w http.ResponseWriter, r *http.Request) {
	if !confirmed(formValue(r, "confirm"), confirmRevokeAll) {
		h.render(w, r, http.StatusBadRequest, "revokeall", h.adminPage(r, "Sign out everyone", "revokeall",
			&revokeAllData{Confirm: confirmRevokeAll, ConfirmError: `Type "` + confirmRevokeAll + `" to confirm.`}))
		return
	}
	if _, err := h.svc.RevokeAll(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r))); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	h.clearSessionCookies(w)
	http.Redirect(w, r, "/signin?ended=1", http.StatusSeeOther)
}
