package web

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// The passkey ceremonies are two JSON calls each, made by the pages'
// script (assets/app.js) around navigator.credentials: options, then the
// authenticator's answer. Their state stays on the server
// (auth.Service): a registration's is bound to the session that began
// it, a sign-in's to this browser by passkeyCookie, which holds the
// ceremony's id. Both are single use and expire after
// keycard.PasskeyChallengeLifetime.

// passkeyCookie holds the id of this browser's pending passkey sign-in.
const passkeyCookie = "__Host-keycard_passkey"

// maxPasskeyBody bounds the JSON of a ceremony's answer.
const maxPasskeyBody = 64 << 10

// passkeyRoutes registers the passkey routes.
func (h *Handler) passkeyRoutes() {
	h.handle("POST /signin/passkey/options", h.passkeysOn(h.handlePasskeySignInOptions))
	h.handle("POST /signin/passkey", h.passkeysOn(h.handlePasskeySignIn))
	h.handle("POST /signin/mfa/passkey/options", h.passkeysOn(h.handleMFAPasskeyOptions))
	h.handle("POST /signin/mfa/passkey", h.passkeysOn(h.handleMFAPasskey))
	h.handle("POST /account/passkeys/options", h.passkeysOn(h.handlePasskeyRegisterOptions))
	h.handle("POST /account/passkeys", h.passkeysOn(h.handlePasskeyRegister))
	h.handle("POST /account/passkeys/{id}/rename", h.user(h.handleRenamePasskey))
	h.handle("POST /account/passkeys/{id}/remove", h.user(h.handleRemovePasskey))
	h.handle("POST /admin/users/{id}/passkeys/{passkey}/remove", h.admin(h.handleAdminRemovePasskey))
}

// passkeysOn wraps a ceremony's endpoint: 404 when passkeys are off.
func (h *Handler) passkeysOn(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.svc.PasskeysEnabled() {
			jsonError(w, http.StatusNotFound, "Passkeys are not enabled on this server.")
			return
		}
		next(w, r)
	}
}

// jsonError writes {"error": message} with status.
func jsonError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// jsonServiceError answers an error of auth.Service as JSON; internal
// errors are logged and said as "Internal error.".
func (h *Handler) jsonServiceError(w http.ResponseWriter, r *http.Request, err error) {
	status := browser.StatusOf(err)
	if status >= 500 {
		h.log.ErrorContext(r.Context(), "web: passkey request failed", "path", r.URL.Path, "err", err)
	}
	if status == http.StatusTooManyRequests {
		var throttled *auth.ThrottledError
		if errors.As(err, &throttled) {
			w.Header().Set("Retry-After", fmt.Sprint(int64(throttled.RetryAfter/time.Second)))
		}
	}
	jsonError(w, status, keycard.ErrorMessage(err))
}

// readPasskeyJSON checks a ceremony call: a POST from an allowed origin,
// with a JSON body (bounded) whose CSRF token, in browser.CSRFHeader,
// equals want. It decodes the body into v (when not nil) and answers the
// refusal itself, returning false.
func (h *Handler) readPasskeyJSON(w http.ResponseWriter, r *http.Request, want string, v any) bool {
	if h.checkOrigin(r) != nil || want == "" ||
		subtle.ConstantTimeCompare([]byte(r.Header.Get(browser.CSRFHeader)), []byte(want)) != 1 {
		jsonError(w, http.StatusForbidden, "This request could not be accepted. Reload the page and try again.")
		return false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		jsonError(w, http.StatusUnsupportedMediaType, "Send JSON.")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPasskeyBody))
	if err != nil {
		jsonError(w, http.StatusRequestEntityTooLarge, "The request is too large.")
		return false
	}
	if v == nil {
		v = &struct{}{}
	}
	if err := json.Unmarshal(body, v); err != nil {
		jsonError(w, http.StatusBadRequest, "The request is not valid JSON of the expected form.")
		return false
	}
	return true
}

// formCookie returns the browser's pre-session CSRF token, "" if none.
func formCookie(r *http.Request) string {
	if c, err := r.Cookie(browser.FormCookie); err == nil {
		return c.Value
	}
	return ""
}

// passkeyAnswer is the body of a ceremony's second call.
type passkeyAnswer struct {
	// ID is the registration ceremony's id (a sign-in's is in
	// passkeyCookie).
	ID string `json:"id"`
	// Name is the new passkey's name (registration).
	Name string `json:"name"`
	// Next is where a sign-in goes on to (sign-in).
	Next string `json:"next"`
	// Credential is the PublicKeyCredential, as JSON
	// (PublicKeyCredential.toJSON(), WebAuthn Level 3 §5.1.8).
	Credential json.RawMessage `json:"credential"`
}

// handlePasskeySignInOptions is POST /signin/passkey/options: it begins
// a sign-in with any passkey of this site (a discoverable credential)
// and keeps its id in passkeyCookie.
func (h *Handler) handlePasskeySignInOptions(w http.ResponseWriter, r *http.Request) {
	if !h.readPasskeyJSON(w, r, formCookie(r), nil) {
		return
	}
	c, err := h.svc.BeginPasskeyLogin(r.Context(), browser.AgentOf(r))
	if err != nil {
		h.jsonServiceError(w, r, err)
		return
	}
	http.SetCookie(w, browser.Cookie(passkeyCookie, "/", c.ID, keycard.PasskeyChallengeLifetime, true))
	writeJSON(w, http.StatusOK, map[string]any{"options": c.Options})
}

// handlePasskeySignIn is POST /signin/passkey: the authenticator's
// answer to this browser's pending sign-in. On success the browser is
// signed in like a password sign-in (or its session of the same user
// renewed) and told where to go: {"redirect": next}.
func (h *Handler) handlePasskeySignIn(w http.ResponseWriter, r *http.Request) {
	var a passkeyAnswer
	if !h.readPasskeyJSON(w, r, formCookie(r), &a) {
		return
	}
	// The ceremony is used up whatever the outcome.
	id := ""
	if c, err := r.Cookie(passkeyCookie); err == nil {
		id = c.Value
	}
	http.SetCookie(w, browser.Cookie(passkeyCookie, "/", "", -1, true))
	if len(a.Credential) == 0 {
		jsonError(w, http.StatusBadRequest, "The passkey's answer is missing.")
		return
	}
	next := h.safeNext(a.Next)
	old, err := h.ssoSession(r)
	if err != nil {
		h.jsonServiceError(w, r, err)
		return
	}
	keep := ""
	if old != nil {
		keep = old.Session.ID
	}
	t, err := h.svc.PasskeyLogin(r.Context(), id, a.Credential, keep, browser.AgentOf(r))
	if err != nil {
		h.jsonServiceError(w, r, err)
		return
	}
	switch {
	case old != nil && t.SessionID == old.Session.ID:
		h.setAccessCookie(w, t)
	default:
		// A session of another user this browser still had is
		// replaced: end it, as the password sign-in does.
		if old != nil {
			if err := h.svc.EndBrowserSession(r.Context(), old, browser.AgentOf(r)); err != nil {
				h.log.ErrorContext(r.Context(), "web: ending the replaced session", "err", err)
			}
		}
		h.setSessionCookies(w, t)
	}
	writeJSON(w, http.StatusOK, map[string]string{"redirect": next})
}

// sessionJSON wraps a passkey call of a signed-in user: without one it is
// 401; its CSRF token is the session's.
func (h *Handler) sessionPrincipal(w http.ResponseWriter, r *http.Request) *auth.Principal {
	p, err := h.principal(r)
	if err != nil {
		h.jsonServiceError(w, r, err)
		return nil
	}
	if p == nil {
		jsonError(w, http.StatusUnauthorized, "Sign in again.")
		return nil
	}
	return p
}

// handlePasskeyRegisterOptions is POST /account/passkeys/options: the
// creation options of a new passkey for the signed-in user, bound to this
// session. Without a recent sign-in (auth.Config.ReauthWithin) it is 401
// with {"reauth": url}, the sign-in page to go through first.
func (h *Handler) handlePasskeyRegisterOptions(w http.ResponseWriter, r *http.Request) {
	p := h.sessionPrincipal(w, r)
	if p == nil || !h.readPasskeyJSON(w, r, h.csrfToken(p.Claims.SessionID), nil) {
		return
	}
	c, err := h.svc.BeginPasskeyRegistration(r.Context(), p)
	if _, ok := errors.AsType[*auth.ReauthRequiredError](err); ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Sign in again to add a passkey.",
			"reauth": "/signin?reauth=1&next=" + url.QueryEscape("/account")})
		return
	}
	if err != nil {
		h.jsonServiceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": c.ID, "options": c.Options})
}

// passkeyJSON is a passkey as the pages' script sees it.
type passkeyJSON struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	BackupEligible bool      `json:"backup_eligible"`
	CreatedAt      time.Time `json:"created_at"`
}

// handlePasskeyRegister is POST /account/passkeys: the authenticator's
// answer to this session's registration ceremony; 201 with the passkey.
func (h *Handler) handlePasskeyRegister(w http.ResponseWriter, r *http.Request) {
	p := h.sessionPrincipal(w, r)
	var a passkeyAnswer
	if p == nil || !h.readPasskeyJSON(w, r, h.csrfToken(p.Claims.SessionID), &a) {
		return
	}
	if len(a.Credential) == 0 {
		jsonError(w, http.StatusBadRequest, "The passkey's answer is missing.")
		return
	}
	pk, err := h.svc.FinishPasskeyRegistration(r.Context(), p, a.ID, a.Name, a.Credential, browser.AgentOf(r))
	if err != nil {
		h.jsonServiceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, passkeyJSON{ID: pk.ID, Name: pk.Name, BackupEligible: pk.BackupEligible, CreatedAt: pk.CreatedAt})
}

// handleRenamePasskey is POST /account/passkeys/{id}/rename.
func (h *Handler) handleRenamePasskey(w http.ResponseWriter, r *http.Request) {
	p := current(r)
	err := h.svc.RenamePasskey(r.Context(), auth.UserActor(p.User.ID, browser.AgentOf(r)), p.User.ID, r.PathValue("id"), formValue(r, "name"))
	if keycard.ErrorCode(err) == keycard.EINVALID {
		h.renderAccount(w, r, http.StatusBadRequest, &accountData{PasskeyError: keycard.ErrorMessage(err), PasskeyErrorID: r.PathValue("id")}, "")
		return
	}
	if err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	http.Redirect(w, r, "/account?done=passkeyrenamed#passkeys-h", http.StatusSeeOther)
}

// handleRemovePasskey is POST /account/passkeys/{id}/remove.
func (h *Handler) handleRemovePasskey(w http.ResponseWriter, r *http.Request) {
	p := current(r)
	if err := h.svc.RemovePasskey(r.Context(), auth.UserActor(p.User.ID, browser.AgentOf(r)), p.User.ID, r.PathValue("id")); err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	http.Redirect(w, r, "/account?done=passkeyremoved#passkeys-h", http.StatusSeeOther)
}

// handleMFAPasskeyOptions is POST /signin/mfa/passkey/options: the
// request options of the user's passkeys for the MFA step of the token
// in mfaCookie.
func (h *Handler) handleMFAPasskeyOptions(w http.ResponseWriter, r *http.Request) {
	if !h.readPasskeyJSON(w, r, formCookie(r), nil) {
		return
	}
	c, err := h.svc.BeginPasskeySecondFactor(r.Context(), mfaToken(r), browser.AgentOf(r))
	if err != nil {
		h.mfaPasskeyError(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": c.ID, "options": c.Options})
}

// handleMFAPasskey is POST /signin/mfa/passkey: a passkey's answer as the
// second factor of the MFA step. On success the browser is signed in and
// told where to go, {"redirect": next}.
func (h *Handler) handleMFAPasskey(w http.ResponseWriter, r *http.Request) {
	var a passkeyAnswer
	if !h.readPasskeyJSON(w, r, formCookie(r), &a) {
		return
	}
	next := h.safeNext(a.Next)
	if len(a.Credential) == 0 {
		jsonError(w, http.StatusBadRequest, "The passkey's answer is missing.")
		return
	}
	res, err := h.svc.CompleteMFA(r.Context(), mfaToken(r), auth.MFAProof{Factor: auth.FactorPasskey, Code: a.ID, Response: a.Credential},
		browser.AgentOf(r))
	if err != nil {
		h.mfaPasskeyError(w, r, err, next)
		return
	}
	h.finishMFA(w, r, res)
	writeJSON(w, http.StatusOK, map[string]string{"redirect": next})
}

// mfaPasskeyError answers a refused passkey of the MFA step: a wrong one
// gets the next MFA token in the cookie (the user may try again); an
// expired sign-in is sent back to the password, {"redirect": …}.
func (h *Handler) mfaPasskeyError(w http.ResponseWriter, r *http.Request, err error, next string) {
	var bad *auth.InvalidMFAProofError
	if errors.As(err, &bad) {
		setMFACookie(w, bad.Token, bad.ExpiresIn)
		jsonError(w, browser.StatusOf(bad.Err), "This passkey could not confirm your sign-in. Try again, or use a code.")
		return
	}
	if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
		clearMFACookie(w)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": keycard.ErrorMessage(err),
			"redirect": "/signin?mfaexpired=1&next=" + url.QueryEscape(h.safeNext(next))})
		return
	}
	h.jsonServiceError(w, r, err)
}

// handleAdminRemovePasskey is POST /admin/users/{id}/passkeys/{passkey}/remove:
// an admin removes a user's passkey (audited, mailed to the user).
func (h *Handler) handleAdminRemovePasskey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := h.svc.RemovePasskey(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), id, r.PathValue("passkey"))
	if _, ok := errors.AsType[*auth.ReauthRequiredError](err); ok {
		h.askReauth(w, r, userURL(id, "stepup"))
		return
	}
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	http.Redirect(w, r, userURL(id, "passkeyremoved"), http.StatusSeeOther)
}
