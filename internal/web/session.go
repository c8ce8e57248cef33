package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// The cookies of the pages are browser's: the access token in
// browser.AccessCookie, the same cookie as the JSON API's cookie mode, so
// that a gateway in front of other applications on the same host accepts
// it; the refresh token in browser.PageRefreshCookie, sent only to the
// page that refreshes; the session's CSRF token in browser.CSRFCookie for
// the pages' scripts (and those of applications using cookie mode); and
// the pre-session token of the sign-in forms in browser.FormCookie.
const (
	// csrfField is the name of the hidden CSRF input of every form.
	csrfField = "csrf_token"
	// maxFormBytes bounds a form body.
	maxFormBytes = 16 << 10
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// setSessionCookies stores a login's or a refresh's tokens in cookies.
func (h *Handler) setSessionCookies(w http.ResponseWriter, t *auth.Tokens) {
	cfg := h.svc.Config()
	keep := min(cfg.IdleTimeout, cfg.SessionLifetime)
	http.SetCookie(w, browser.Cookie(browser.AccessCookie, "/", t.AccessToken, time.Duration(t.ExpiresIn)*time.Second, true))
	http.SetCookie(w, browser.Cookie(browser.PageRefreshCookie, browser.PageRefreshPath, t.RefreshToken, keep, true))
	http.SetCookie(w, browser.Cookie(browser.CSRFCookie, "/", h.csrfToken(t.SessionID), keep, false))
	http.SetCookie(w, browser.SSOCookieOf(h.csrfKey, t.SessionID, keep))
}

// setAccessCookie stores a new access token of the session the browser
// already has (a sign-in again): its other cookies stay.
func (h *Handler) setAccessCookie(w http.ResponseWriter, t *auth.Tokens) {
	http.SetCookie(w, browser.Cookie(browser.AccessCookie, "/", t.AccessToken, time.Duration(t.ExpiresIn)*time.Second, true))
}

// sameUser returns the id of this browser's session when it is a session
// of the user the name (as typed) belongs to, and "" otherwise.
func (h *Handler) sameUser(r *http.Request, name string) (string, error) {
	b, err := h.ssoSession(r)
	if err != nil || b == nil {
		return "", err
	}
	u, err := h.svc.UserByName(r.Context(), name)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND || keycard.ErrorCode(err) == keycard.EINVALID {
		return "", nil
	} else if err != nil {
		return "", err
	}
	if u.ID != b.User.ID {
		return "", nil
	}
	return b.Session.ID, nil
}

// clearSessionCookies expires the session's cookies.
func (h *Handler) clearSessionCookies(w http.ResponseWriter) {
	http.SetCookie(w, browser.Cookie(browser.AccessCookie, "/", "", -1, true))
	http.SetCookie(w, browser.Cookie(browser.PageRefreshCookie, browser.PageRefreshPath, "", -1, true))
	http.SetCookie(w, browser.Cookie(browser.CSRFCookie, "/", "", -1, false))
	http.SetCookie(w, browser.SSOCookieOf(h.csrfKey, "", -1))
}

// csrfToken returns the CSRF token of a session: browser.CSRFToken, so
// that the pages' tokens and the JSON API's cookie mode agree when they
// share a key.
func (h *Handler) csrfToken(sessionID string) string { return browser.CSRFToken(h.csrfKey, sessionID) }

// errCSRF is the error of a form that fails the CSRF defence.
var errCSRF = errors.New("web: CSRF check failed")

// checkOrigin checks that a POST comes from a page of an allowed origin
// (the issuer's, or one of Options.Origins): browser.Origins.Check.
func (h *Handler) checkOrigin(r *http.Request) error {
	if h.origins.Check(r) != nil {
		return errCSRF
	}
	return nil
}

// parseForm reads a POST's form body (bounded, url-encoded only). The
// query string is not merged in.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(strings.ToLower(mt)) != "application/x-www-form-urlencoded" {
		return errors.New("web: not a form")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return err
	}
	for k, v := range r.PostForm {
		if len(v) > 1 || !utf8.ValidString(k) || !utf8.ValidString(v[0]) {
			return fmt.Errorf("web: form field repeated or not UTF-8")
		}
	}
	return nil
}

// formValue returns a field of the parsed POST body.
func formValue(r *http.Request, name string) string { return r.PostForm.Get(name) }

// checkSessionForm checks a POST of a signed-in user: origin, then the
// session's CSRF token in the form, compared in constant time.
func (h *Handler) checkSessionForm(w http.ResponseWriter, r *http.Request, sessionID string) error {
	if err := h.checkOrigin(r); err != nil {
		return err
	}
	if err := parseForm(w, r); err != nil {
		return err
	}
	got, want := formValue(r, csrfField), h.csrfToken(sessionID)
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errCSRF
	}
	return nil
}

// formToken returns the pre-session CSRF token of the browser, setting a
// new one when it has none.
func formToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(browser.FormCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	v := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	http.SetCookie(w, browser.Cookie(browser.FormCookie, "/", v, 24*time.Hour, true))
	return v
}

// checkAnonymousForm checks a POST of the sign-in or registration form:
// origin, then the form's token equal to the form cookie.
func (h *Handler) checkAnonymousForm(w http.ResponseWriter, r *http.Request) error {
	if err := h.checkOrigin(r); err != nil {
		return err
	}
	if err := parseForm(w, r); err != nil {
		return err
	}
	c, err := r.Cookie(browser.FormCookie)
	if err != nil || c.Value == "" {
		return errCSRF
	}
	if subtle.ConstantTimeCompare([]byte(formValue(r, csrfField)), []byte(c.Value)) != 1 {
		return errCSRF
	}
	return nil
}

// principal returns the signed-in user of the request's access cookie, or
// nil when there is none or it is no longer accepted (expired, its
// session revoked, its user disabled).
func (h *Handler) principal(r *http.Request) (*auth.Principal, error) {
	c, err := r.Cookie(browser.AccessCookie)
	if err != nil || c.Value == "" || len(c.Value) > browser.MaxTokenLen {
		return nil, nil
	}
	p, err := h.svc.Authenticate(r.Context(), c.Value)
	if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
		return nil, nil
	}
	return p, err
}

type principalKey struct{}

// current returns the principal that user or admin authenticated.
func current(r *http.Request) *auth.Principal {
	return r.Context().Value(principalKey{}).(*auth.Principal)
}

// user wraps a page that needs a signed-in user. Without one, the browser
// goes to the refresh page, which renews the access token from the
// refresh cookie or sends it on to sign in, and then back: to this page
// for a GET, to the page the form was on (its "back" field, when safe) for
// a POST, whose action is not replayed. A POST must pass the session's
// CSRF check (403 otherwise).
func (h *Handler) user(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.principal(r)
		if err != nil {
			h.serviceError(w, r, err, nil)
			return
		}
		if p == nil {
			back := r.URL.RequestURI()
			if r.Method == http.MethodPost {
				back = "/account"
				if parseForm(w, r) == nil {
					back = formValue(r, "back")
				}
			}
			http.Redirect(w, r, browser.PageRefreshPath+"?next="+url.QueryEscape(h.safeNext(back)), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if err := h.checkSessionForm(w, r, p.Claims.SessionID); err != nil {
				h.message(w, r, http.StatusForbidden, "Request refused",
					"This form could not be accepted. Reload the page and try again.", p.User)
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

// admin wraps a page of the admin console: a signed-in user with the admin
// role now (read from the stored user, as the admin API does).
func (h *Handler) admin(next http.HandlerFunc) http.HandlerFunc {
	return h.user(func(w http.ResponseWriter, r *http.Request) {
		p := current(r)
		if !p.User.HasRole(auth.RoleAdmin) {
			h.message(w, r, http.StatusForbidden, "Admins only", "This page needs the admin role.", p.User)
			return
		}
		if h.svc.CheckRecentAuth(p) != nil {
			back := "/admin/"
			if r.Method == http.MethodGet {
				back = r.URL.RequestURI()
			}
			h.askReauth(w, r, back)
			return
		}
		next(w, r)
	})
}

// askReauth sends the browser to sign in again (step-up, RFC 9470's
// situation for pages), then back to back.
func (h *Handler) askReauth(w http.ResponseWriter, r *http.Request, back string) {
	http.Redirect(w, r, "/signin?reauth=1&next="+url.QueryEscape(h.safeNext(back)), http.StatusSeeOther)
}

// safeNext returns target if it is a path the browser may be sent to
// after signing in, and "/account" otherwise. Allowed are the pages'
// own paths and Options.RedirectPrefixes, as a relative reference that
// starts with a single "/": no scheme, no host, no "//" or "/\" (which
// browsers read as another host), no backslash, no control character, no
// percent-encoded "/" or "\" that a server behind might decode, and no
// dot segments.
func (h *Handler) safeNext(target string) string {
	const fallback = "/account"
	if target == "" || len(target) > 2048 || !strings.HasPrefix(target, "/") {
		return fallback
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c < 0x21 || c == 0x7f || c == '\\' {
			return fallback
		}
	}
	if strings.HasPrefix(target, "//") {
		return fallback
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return fallback
	}
	lower := strings.ToLower(u.EscapedPath())
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%00") {
		return fallback
	}
	p := u.Path
	if strings.HasPrefix(p, "//") || p != cleanPath(p) {
		return fallback
	}
	if !h.redirectAllowed(p) {
		return fallback
	}
	return target
}

// cleanPath reports p without dot segments or repeated slashes, keeping a
// trailing slash; safeNext refuses paths it would change.
func cleanPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if s == "." || s == ".." || s == "" && i > 0 && i < len(segs)-1 {
			return ""
		}
	}
	return p
}

// redirectAllowed reports whether p is a page of this handler or under a
// configured prefix.
func (h *Handler) redirectAllowed(p string) bool {
	switch {
	case p == "/" || p == "/account" || p == "/account/totp" || p == "/admin/" || p == "/admin/users" || p == "/admin/keys" ||
		p == "/admin/clients" || p == "/admin/audit" || p == "/admin/signout-all" || p == "/oauth/authorize" || p == "/device":
		return true
	case strings.HasPrefix(p, "/admin/users/") && !strings.Contains(p[len("/admin/users/"):], "/"):
		return true
	case strings.HasPrefix(p, "/admin/clients/") && !strings.Contains(p[len("/admin/clients/"):], "/"):
		return true // a client's page, or the registration form
	}
	for _, prefix := range h.redirects {
		if p == prefix || strings.HasSuffix(prefix, "/") && strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// handleRefresh is GET /session/refresh?next=…: it renews the access token
// with the refresh cookie (sent to this path only) and sends the browser
// back to next, or, when the session is gone, clears the cookies and sends
// it to sign in. It is a GET so that plain links and redirects reach it;
// the SameSite=Strict refresh cookie is never sent by another site's
// navigation, and the rotation it does is harmless to repeat.
func (h *Handler) handleRefresh(w http.ResponseWriter, r *http.Request) {
	next := h.safeNext(r.URL.Query().Get("next"))
	c, err := r.Cookie(browser.PageRefreshCookie)
	if err != nil || c.Value == "" {
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	t, err := h.svc.Refresh(r.Context(), c.Value, browser.AgentOf(r))
	if err != nil {
		if code := keycard.ErrorCode(err); code != keycard.EUNAUTHORIZED && code != keycard.EINVALID {
			h.serviceError(w, r, err, nil)
			return
		}
		h.clearSessionCookies(w)
		http.Redirect(w, r, "/signin?ended=1&next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	h.setSessionCookies(w, t)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signInData is the sign-in and registration forms' data.
type signInData struct {
	Next string
	// Username is prefilled: the signed-in user's, or an application's
	// login_hint.
	Username string
	// UsernameError and PasswordError are shown next to their fields.
	UsernameError string
	PasswordError string
	// Email and EmailError are the registration form's optional address.
	Email, EmailError string
	// Providers are the buttons of the upstream identity providers.
	Providers []providerButton
	// Passkeys reports whether the sign-in page offers passkeys.
	Passkeys bool
}

func (h *Handler) handleSignInPage(w http.ResponseWriter, r *http.Request) {
	next := h.safeNext(r.URL.Query().Get("next"))
	reauth := r.URL.Query().Get("reauth") != ""
	d := signInData{Next: next, Providers: h.signInButtons(next), Passkeys: h.svc.PasskeysEnabled()}
	if hint := r.URL.Query().Get("login_hint"); len(hint) <= 256 {
		d.Username = hint
		// An address of a domain routed to a provider signs in there
		// (docs/federation.md, "Routing by domain").
		if p := h.fed.ForEmail(hint); p != nil && r.URL.Query().Get("reauth") == "" {
			http.Redirect(w, r, "/signin/"+p.Name()+"?"+url.Values{"next": {next}, "login_hint": {hint}}.Encode(), http.StatusSeeOther)
			return
		}
	}
	if b, err := h.ssoSession(r); err == nil && b != nil {
		if !reauth {
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
		d.Username = b.User.Username
	}
	pg := &page{Title: "Sign in", CSRF: formToken(w, r), Data: d}
	h.allowAuthorizeRedirect(w, r, next)
	h.allowProviderRedirects(w)
	switch {
	case reauth:
		// Step-up (auth.Config.ReauthWithin): the action needs a recent
		// sign-in; signing in again replaces this session.
		pg.Notice = "For your security, enter your password again to continue."
	case r.URL.Query().Get("ended") != "":
		pg.Notice = "Your session has ended. Sign in again."
	case r.URL.Query().Get("signedout") != "":
		pg.Notice = "You are signed out."
	case r.URL.Query().Get("registered") != "":
		pg.Notice = "Your account is ready. Sign in."
	case r.URL.Query().Get("mfaexpired") != "":
		pg.Notice = "Your sign-in took too long, or was already used. Sign in again."
	case r.URL.Query().Get("reset") != "":
		pg.Notice = "Your password is changed, and every device is signed out. Sign in with the new password."
	}
	h.render(w, r, http.StatusOK, "signin", pg)
}

// handleSignIn is POST /signin: a password login. Every refusal shows the
// same message, whatever its reason; a throttled login says how long to
// wait. A user with a second factor goes on to /signin/mfa (mfa.go). A session the browser was still signed in to is ended.
func (h *Handler) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if err := h.checkAnonymousForm(w, r); err != nil {
		h.message(w, r, http.StatusForbidden, "Request refused", "This form could not be accepted. Reload the page and try again.", nil)
		return
	}
	d := signInData{Next: h.safeNext(formValue(r, "next")), Username: formValue(r, "username"), Passkeys: h.svc.PasskeysEnabled()}
	d.Providers = h.signInButtons(d.Next)
	if p := h.fed.ForEmail(d.Username); p != nil {
		// Users of a routed domain sign in at their provider, whatever
		// password they typed here.
		h.startFlow(w, r, p, d.Next, d.Username, "")
		return
	}
	pg := &page{Title: "Sign in", CSRF: formToken(w, r), Data: &d}
	h.allowAuthorizeRedirect(w, r, d.Next)
	h.allowProviderRedirects(w)
	pass := formValue(r, "password")
	if d.Username == "" {
		d.UsernameError = "Enter your username."
	}
	if pass == "" {
		d.PasswordError = "Enter your password."
	}
	if d.UsernameError != "" || d.PasswordError != "" {
		h.render(w, r, http.StatusBadRequest, "signin", pg)
		return
	}
	// The user of this browser's session signing in again (step-up, or
	// an application's prompt=login) renews that session rather than
	// replacing it, so the applications signed in through it stay in.
	var t *auth.Tokens
	var err error
	same, err := h.sameUser(r, d.Username)
	if err != nil {
		h.serviceError(w, r, err, nil)
		return
	}
	if same != "" {
		t, err = h.svc.Reauthenticate(r.Context(), same, d.Username, pass, browser.AgentOf(r))
	} else {
		t, err = h.svc.Login(r.Context(), d.Username, pass, browser.AgentOf(r))
	}
	if err != nil {
		var throttled *auth.ThrottledError
		var mfa *auth.MFARequiredError
		switch {
		case errors.As(err, &mfa):
			h.startMFAStep(w, r, mfa, d.Next) // mfa.go
		case errors.As(err, &throttled):
			secs := int64(throttled.RetryAfter / time.Second)
			w.Header().Set("Retry-After", fmt.Sprint(secs))
			pg.Error = fmt.Sprintf("Too many sign-in attempts. Wait %s and try again.", seconds(secs))
			h.render(w, r, http.StatusTooManyRequests, "signin", pg)
		case keycard.ErrorCode(err) == keycard.EUNAUTHORIZED:
			d.PasswordError = "Wrong username or password."
			h.render(w, r, http.StatusUnauthorized, "signin", pg)
		default:
			h.serviceError(w, r, err, nil)
		}
		return
	}
	if same != "" {
		h.setAccessCookie(w, t)
		http.Redirect(w, r, d.Next, http.StatusSeeOther)
		return
	}
	// A session of another user this browser still had is replaced: end
	// it rather than leave it behind, unreachable.
	if old, err := h.ssoSession(r); err == nil && old != nil {
		if err := h.svc.EndBrowserSession(r.Context(), old, browser.AgentOf(r)); err != nil {
			h.log.ErrorContext(r.Context(), "web: ending the replaced session", "err", err)
		}
	}
	h.setSessionCookies(w, t)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

// seconds says a number of seconds in words.
func seconds(n int64) string {
	switch {
	case n == 1:
		return "1 second"
	case n < 120:
		return fmt.Sprintf("%d seconds", n)
	}
	return fmt.Sprintf("%d minutes", (n+59)/60)
}

func (h *Handler) handleRegisterPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "register", &page{Title: "Create an account", CSRF: formToken(w, r), Data: signInData{}})
}

// handleRegister is POST /register (only when registration is open): it
// creates the account, then sends the browser to sign in.
func (h *Handler) handleRegister(w http.ResponseWriter, r *http.Request) {
	if err := h.checkAnonymousForm(w, r); err != nil {
		h.message(w, r, http.StatusForbidden, "Request refused", "This form could not be accepted. Reload the page and try again.", nil)
		return
	}
	d := signInData{Username: formValue(r, "username"), Email: formValue(r, "email")}
	pg := &page{Title: "Create an account", CSRF: formToken(w, r), Data: &d}
	pass, confirm := formValue(r, "password"), formValue(r, "confirm")
	switch {
	case d.Username == "":
		d.UsernameError = "Choose a username."
	case pass == "":
		d.PasswordError = "Choose a password of at least 8 characters."
	case pass != confirm:
		d.PasswordError = "The two passwords differ."
	}
	if d.UsernameError != "" || d.PasswordError != "" {
		h.render(w, r, http.StatusBadRequest, "register", pg)
		return
	}
	_, err := h.svc.RegisterWithEmail(r.Context(), d.Username, pass, d.Email, nil)
	switch code := keycard.ErrorCode(err); {
	case err == nil:
		http.Redirect(w, r, "/signin?registered=1", http.StatusSeeOther)
	case code == keycard.ECONFLICT && strings.TrimSpace(d.Email) != "":
		d.UsernameError = "This username or email address is taken."
		h.render(w, r, http.StatusConflict, "register", pg)
	case code == keycard.ECONFLICT:
		d.UsernameError = "This username is taken."
		h.render(w, r, http.StatusConflict, "register", pg)
	case code == keycard.EINVALID:
		msg := keycard.ErrorMessage(err)
		if strings.Contains(strings.ToLower(msg), "password") {
			d.PasswordError = msg
		} else if strings.HasPrefix(msg, "Email") {
			d.EmailError = msg
		} else {
			d.UsernameError = msg
		}
		h.render(w, r, http.StatusBadRequest, "register", pg)
	default:
		h.serviceError(w, r, err, nil)
	}
}

// handleSignOut is POST /signout: it ends this session and clears the
// cookies.
func (h *Handler) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.Logout(r.Context(), current(r), browser.AgentOf(r)); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	h.clearSessionCookies(w)
	http.Redirect(w, r, "/signin?signedout=1", http.StatusSeeOther)
}
