package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// The second factor on the pages. POST /signin of a user with a second
// factor keeps the MFA token (auth.MFARequiredError) in mfaCookie and
// sends the browser to /signin/mfa, which asks for a code; a user the
// policy requires to have one goes to /signin/enroll instead, which
// shows the authenticator app's QR code. The authorization endpoint
// signs users in through /signin, so single sign-on takes the same step.
// The account page sets up, renews and removes the factor.

// mfaCookie holds the MFA token between the password and the code:
// HttpOnly, SameSite=Strict, for as long as the token lives.
const mfaCookie = "__Host-keycard_mfa"

func setMFACookie(w http.ResponseWriter, token string, ttl time.Duration) {
	http.SetCookie(w, browser.Cookie(mfaCookie, "/", token, ttl, true))
}

func clearMFACookie(w http.ResponseWriter) {
	http.SetCookie(w, browser.Cookie(mfaCookie, "/", "", -1, true))
}

func mfaToken(r *http.Request) string {
	if c, err := r.Cookie(mfaCookie); err == nil {
		return c.Value
	}
	return ""
}

// startMFAStep answers a password accepted by the MFA step: the token
// goes in the cookie and the browser to the code's page.
func (h *Handler) startMFAStep(w http.ResponseWriter, r *http.Request, mfa *auth.MFARequiredError, next string) {
	setMFACookie(w, mfa.Token, mfa.ExpiresIn)
	page := "/signin/mfa"
	if mfa.Enroll {
		page = "/signin/enroll"
	}
	http.Redirect(w, r, page+"?next="+url.QueryEscape(next), http.StatusSeeOther)
}

// mfaData is the data of the code's page and the enrolment pages.
type mfaData struct {
	Next      string
	CodeError string
	// Enrollment is the authenticator app being set up, and QR its
	// otpauth URI as an inline SVG.
	Enrollment *auth.TOTPEnrollment
	QR         any
	// Action is where the enrolment form posts.
	Action string
	// Codes are new recovery codes, shown once; Continue is where to go
	// after.
	Codes    []string
	Continue string
	// Passkey: the user can answer with a passkey; NoCode: with nothing
	// else (no authenticator app, no recovery codes).
	Passkey, NoCode bool
}

// mfaFactors fills in which factors the code's page offers for the MFA
// token tok.
func (h *Handler) mfaFactors(r *http.Request, tok string, d *mfaData) {
	factors, err := h.svc.MFAFactors(r.Context(), tok)
	if err != nil {
		return // the page's form then says the sign-in expired
	}
	d.Passkey = slices.Contains(factors, auth.FactorPasskey)
	d.NoCode = d.Passkey && !slices.Contains(factors, auth.FactorTOTP) && !slices.Contains(factors, auth.FactorRecoveryCode)
}

// mfaExpired sends the browser back to sign in with the password.
func (h *Handler) mfaExpired(w http.ResponseWriter, r *http.Request, next string) {
	clearMFACookie(w)
	http.Redirect(w, r, "/signin?mfaexpired=1&next="+url.QueryEscape(next), http.StatusSeeOther)
}

// handleMFAPage is GET /signin/mfa: the code's form.
func (h *Handler) handleMFAPage(w http.ResponseWriter, r *http.Request) {
	next := h.safeNext(r.URL.Query().Get("next"))
	if mfaToken(r) == "" {
		h.mfaExpired(w, r, next)
		return
	}
	d := &mfaData{Next: next}
	h.mfaFactors(r, mfaToken(r), d)
	h.render(w, r, http.StatusOK, "mfa", &page{Title: "Two-step sign-in", CSRF: formToken(w, r), Data: d})
}

// handleMFA is POST /signin/mfa and POST /signin/enroll: the code (of
// the authenticator app, or a recovery code) that finishes the sign-in.
func (h *Handler) handleMFA(w http.ResponseWriter, r *http.Request) {
	if err := h.checkAnonymousForm(w, r); err != nil {
		h.message(w, r, http.StatusForbidden, "Request refused", "This form could not be accepted. Reload the page and try again.", nil)
		return
	}
	enrol := r.URL.Path == "/signin/enroll"
	d := &mfaData{Next: h.safeNext(formValue(r, "next"))}
	tmpl, title := "mfa", "Two-step sign-in"
	if enrol {
		tmpl, title = "totp", "Set up two-step sign-in"
	}
	pg := &page{Title: title, CSRF: formToken(w, r), Data: d}
	tok := mfaToken(r)
	if tok == "" {
		h.mfaExpired(w, r, d.Next)
		return
	}
	code := formValue(r, "code")
	if code == "" {
		d.CodeError = "Enter the code."
		h.renderMFA(w, r, http.StatusBadRequest, tmpl, pg, tok)
		return
	}
	proof := auth.MFAProof{Code: code}
	if enrol {
		proof.Factor = auth.FactorTOTP
	}
	res, err := h.svc.CompleteMFA(r.Context(), tok, proof, browser.AgentOf(r))
	if err != nil {
		var bad *auth.InvalidMFAProofError
		var throttled *auth.ThrottledError
		switch {
		case errors.As(err, &bad):
			setMFACookie(w, bad.Token, bad.ExpiresIn)
			d.CodeError = "That code is not right. Try the current one."
			h.renderMFA(w, r, http.StatusUnauthorized, tmpl, pg, bad.Token)
		case errors.As(err, &throttled):
			secs := int64(throttled.RetryAfter / time.Second)
			w.Header().Set("Retry-After", fmt.Sprint(secs))
			pg.Error = fmt.Sprintf("Too many attempts. Wait %s and try again.", seconds(secs))
			h.renderMFA(w, r, http.StatusTooManyRequests, tmpl, pg, tok)
		case keycard.ErrorCode(err) == keycard.EUNAUTHORIZED:
			h.mfaExpired(w, r, d.Next)
		default:
			h.serviceError(w, r, err, nil)
		}
		return
	}
	h.finishMFA(w, r, res)
	if len(res.RecoveryCodes) > 0 {
		h.render(w, r, http.StatusOK, "recoverycodes", &page{Title: "Your recovery codes",
			Data: &mfaData{Codes: res.RecoveryCodes, Continue: d.Next}})
		return
	}
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

// finishMFA sets the cookies of a sign-in the MFA step completed: a new
// session (ending another user's this browser had), or the new access
// token of the session signed in to again.
func (h *Handler) finishMFA(w http.ResponseWriter, r *http.Request, res *auth.MFAResult) {
	clearMFACookie(w)
	if res.Reauthenticated {
		h.setAccessCookie(w, res.Tokens)
		return
	}
	if old, err := h.ssoSession(r); err == nil && old != nil {
		if err := h.svc.EndBrowserSession(r.Context(), old, browser.AgentOf(r)); err != nil {
			h.log.ErrorContext(r.Context(), "web: ending the replaced session", "err", err)
		}
	}
	h.setSessionCookies(w, res.Tokens)
}

// renderMFA renders the code's page, or the enrolment page with the app
// of the MFA token.
func (h *Handler) renderMFA(w http.ResponseWriter, r *http.Request, status int, tmpl string, pg *page, tok string) {
	if tmpl == "totp" {
		d := pg.Data.(*mfaData)
		e, err := h.svc.BeginTOTPWithMFAToken(r.Context(), tok)
		if err != nil {
			if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
				h.mfaExpired(w, r, d.Next)
				return
			}
			h.serviceError(w, r, err, nil)
			return
		}
		if err := h.withEnrollment(d, e, "/signin/enroll"); err != nil {
			h.serviceError(w, r, err, nil)
			return
		}
	}
	if tmpl == "mfa" {
		h.mfaFactors(r, tok, pg.Data.(*mfaData))
	}
	h.render(w, r, status, tmpl, pg)
}

func (h *Handler) withEnrollment(d *mfaData, e *auth.TOTPEnrollment, action string) error {
	qr, err := qrSVG(e.URI, "QR code of the authenticator app's secret")
	if err != nil {
		return err
	}
	d.Enrollment, d.QR, d.Action = e, qr, action
	return nil
}

// handleEnrollPage is GET /signin/enroll: the authenticator app a user
// the policy stopped must set up.
func (h *Handler) handleEnrollPage(w http.ResponseWriter, r *http.Request) {
	next := h.safeNext(r.URL.Query().Get("next"))
	tok := mfaToken(r)
	if tok == "" {
		h.mfaExpired(w, r, next)
		return
	}
	pg := &page{Title: "Set up two-step sign-in", CSRF: formToken(w, r), Data: &mfaData{Next: next},
		Notice: "Your account must use two-step sign-in. Set up an authenticator app to continue."}
	h.renderMFA(w, r, http.StatusOK, "totp", pg, tok)
}

// handleTOTPPage is GET /account/totp: set up an authenticator app (the
// same pending secret until it is confirmed).
func (h *Handler) handleTOTPPage(w http.ResponseWriter, r *http.Request) {
	h.renderTOTP(w, r, http.StatusOK, &mfaData{})
}

func (h *Handler) renderTOTP(w http.ResponseWriter, r *http.Request, status int, d *mfaData) {
	p := current(r)
	e, err := h.svc.BeginTOTP(r.Context(), p)
	if err != nil {
		if _, ok := errors.AsType[*auth.ReauthRequiredError](err); ok {
			h.askReauth(w, r, "/account/totp")
			return
		}
		if keycard.ErrorCode(err) == keycard.ECONFLICT {
			http.Redirect(w, r, "/account", http.StatusSeeOther)
			return
		}
		h.serviceError(w, r, err, p.User)
		return
	}
	if err := h.withEnrollment(d, e, "/account/totp"); err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	h.render(w, r, status, "totp", &page{Title: "Set up two-step sign-in", Section: "account", User: p.User,
		CSRF: h.csrfToken(p.Claims.SessionID), Data: d})
}

// handleConfirmTOTP is POST /account/totp: the app's first code turns it
// on; the recovery codes are shown once.
func (h *Handler) handleConfirmTOTP(w http.ResponseWriter, r *http.Request) {
	p := current(r)
	code := formValue(r, "code")
	if code == "" {
		h.renderTOTP(w, r, http.StatusBadRequest, &mfaData{CodeError: "Enter the code the app shows."})
		return
	}
	codes, err := h.svc.ConfirmTOTP(r.Context(), p, code, browser.AgentOf(r))
	var throttled *auth.ThrottledError
	switch {
	case err == nil:
		h.render(w, r, http.StatusOK, "recoverycodes", &page{Title: "Your recovery codes", Section: "account", User: p.User,
			Notice: "Two-step sign-in is on.", Data: &mfaData{Codes: codes, Continue: "/account"}})
	case errors.As(err, &throttled):
		w.Header().Set("Retry-After", fmt.Sprint(int64(throttled.RetryAfter/time.Second)))
		h.renderTOTP(w, r, http.StatusTooManyRequests, &mfaData{CodeError: "Too many attempts. Wait " + seconds(int64(throttled.RetryAfter/time.Second)) + " and try again."})
	case keycard.ErrorCode(err) == keycard.EUNAUTHORIZED:
		if _, ok := errors.AsType[*auth.ReauthRequiredError](err); ok {
			h.askReauth(w, r, "/account/totp")
			return
		}
		h.renderTOTP(w, r, http.StatusBadRequest, &mfaData{CodeError: "That code is not right. Check the app's clock, and try the current code."})
	default:
		h.serviceError(w, r, err, p.User)
	}
}

// handleRemoveTOTP is POST /account/totp/remove.
func (h *Handler) handleRemoveTOTP(w http.ResponseWriter, r *http.Request) {
	err := h.svc.RemoveTOTP(r.Context(), current(r), browser.AgentOf(r))
	if _, ok := errors.AsType[*auth.ReauthRequiredError](err); ok {
		h.askReauth(w, r, "/account")
		return
	}
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	http.Redirect(w, r, "/account?done=mfaoff", http.StatusSeeOther)
}

// handleRecoveryCodes is POST /account/recovery-codes: new codes, shown
// once; the old ones stop working.
func (h *Handler) handleRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	p := current(r)
	codes, err := h.svc.RegenerateRecoveryCodes(r.Context(), p, browser.AgentOf(r))
	if _, ok := errors.AsType[*auth.ReauthRequiredError](err); ok {
		h.askReauth(w, r, "/account")
		return
	}
	if err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	h.render(w, r, http.StatusOK, "recoverycodes", &page{Title: "Your recovery codes", Section: "account", User: p.User,
		Notice: "New recovery codes are made; the old ones no longer work.", Data: &mfaData{Codes: codes, Continue: "/account"}})
}

// handleAdminRemoveMFA is POST /admin/users/{id}/mfa/remove: an admin
// removes a user's second factors (the console's step-up applies).
func (h *Handler) handleAdminRemoveMFA(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := h.svc.RemoveSecondFactors(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), id)
	if _, ok := errors.AsType[*auth.ReauthRequiredError](err); ok {
		h.askReauth(w, r, userURL(id, "stepup"))
		return
	}
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	http.Redirect(w, r, userURL(id, "mfaremoved"), http.StatusSeeOther)
}
