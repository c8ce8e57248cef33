package web

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// linkData is the data of the page after a mailed link: where to go on.
type linkData struct {
	// Again, when set, is the page to ask for a new link.
	Again          string
	Next, NextText string
}

// handleVerifyEmail is GET /verify-email?token=: the link of a
// verification mail. Following it marks the address verified; a link
// that is not good shows one message, whatever the reason.
func (h *Handler) handleVerifyEmail(w http.ResponseWriter, r *http.Request) {
	_, err := h.svc.VerifyEmail(r.Context(), r.URL.Query().Get("token"), browser.AgentOf(r))
	switch keycard.ErrorCode(err) {
	case "":
		h.render(w, r, http.StatusOK, "linkdone", &page{Title: "Email address confirmed",
			Notice: "Thank you: your email address is confirmed.", Data: &linkData{}})
	case keycard.EUNAUTHORIZED:
		h.render(w, r, http.StatusBadRequest, "linkdone", &page{Title: "Link not valid",
			Error: "This link is invalid, has expired or was used already. Ask for a new one on your account page.", Data: &linkData{}})
	default:
		h.serviceError(w, r, err, nil)
	}
}

// forgotData is the forgot-password page's data.
type forgotData struct {
	Email, EmailError string
	Sent              bool
}

// handleForgotPage is GET /forgot-password: the form asking for the
// address to mail a reset link to.
func (h *Handler) handleForgotPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "forgot", &page{Title: "Forgot your password?", CSRF: formToken(w, r), Data: &forgotData{}})
}

// handleForgot is POST /forgot-password: it asks the service to mail a
// reset link, and shows the same page whether or not an account has the
// address (auth.Service.RequestPasswordReset).
func (h *Handler) handleForgot(w http.ResponseWriter, r *http.Request) {
	if err := h.checkAnonymousForm(w, r); err != nil {
		h.message(w, r, http.StatusForbidden, "Request refused", "This form could not be accepted. Reload the page and try again.", nil)
		return
	}
	d := &forgotData{Email: formValue(r, "email")}
	pg := &page{Title: "Forgot your password?", CSRF: formToken(w, r), Data: d}
	err := h.svc.RequestPasswordReset(r.Context(), d.Email, browser.AgentOf(r))
	var throttled *auth.ThrottledError
	switch {
	case err == nil:
		d.Sent = true
		h.render(w, r, http.StatusOK, "forgot", pg)
	case errors.As(err, &throttled):
		pg.Error = "Too many requests. Try again later."
		h.render(w, r, http.StatusTooManyRequests, "forgot", pg)
	case keycard.ErrorCode(err) == keycard.EINVALID:
		d.EmailError = keycard.ErrorMessage(err)
		h.render(w, r, http.StatusBadRequest, "forgot", pg)
	default:
		h.serviceError(w, r, err, nil)
	}
}

// resetData is the reset page's data.
type resetData struct {
	Token, PasswordError string
}

// badResetLink shows the page of a reset link that cannot be used.
func (h *Handler) badResetLink(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusBadRequest, "linkdone", &page{Title: "Link not valid",
		Error: "This link is invalid, has expired, was used already, or your password changed since it was sent.",
		Data:  &linkData{Again: "/forgot-password", Next: "/signin", NextText: "Back to sign-in"}})
}

// handleResetPage is GET /reset-password?token=: the form for the new
// password, if the link can still be used. Opening it uses nothing up.
func (h *Handler) handleResetPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	switch err := h.svc.CheckResetLink(r.Context(), token); keycard.ErrorCode(err) {
	case "":
		h.render(w, r, http.StatusOK, "reset", &page{Title: "Choose a new password", CSRF: formToken(w, r), Data: &resetData{Token: token}})
	case keycard.EUNAUTHORIZED:
		h.badResetLink(w, r)
	default:
		h.serviceError(w, r, err, nil)
	}
}

// handleReset is POST /reset-password: set the new password. Every
// session of the user ends, this browser's too, so it signs in again.
func (h *Handler) handleReset(w http.ResponseWriter, r *http.Request) {
	if err := h.checkAnonymousForm(w, r); err != nil {
		h.message(w, r, http.StatusForbidden, "Request refused", "This form could not be accepted. Reload the page and try again.", nil)
		return
	}
	d := &resetData{Token: formValue(r, "token")}
	pg := &page{Title: "Choose a new password", CSRF: formToken(w, r), Data: d}
	next, confirm := formValue(r, "new_password"), formValue(r, "confirm_password")
	switch {
	case next == "":
		d.PasswordError = "Choose a new password of at least 8 characters."
	case next != confirm:
		d.PasswordError = "The two new passwords differ."
	}
	if d.PasswordError != "" {
		h.render(w, r, http.StatusBadRequest, "reset", pg)
		return
	}
	err := h.svc.ResetPassword(r.Context(), d.Token, next, browser.AgentOf(r))
	var throttled *auth.ThrottledError
	switch {
	case err == nil:
		h.clearSessionCookies(w)
		http.Redirect(w, r, "/signin?reset=1", http.StatusSeeOther)
	case errors.As(err, &throttled):
		pg.Error = "Too many attempts. Try again later."
		h.render(w, r, http.StatusTooManyRequests, "reset", pg)
	case keycard.ErrorCode(err) == keycard.EINVALID:
		d.PasswordError = keycard.ErrorMessage(err)
		h.render(w, r, http.StatusBadRequest, "reset", pg)
	case keycard.ErrorCode(err) == keycard.EUNAUTHORIZED:
		h.badResetLink(w, r)
	default:
		h.serviceError(w, r, err, nil)
	}
}

// handleChangeEmail is POST /account/email: set, change or remove my
// address, or (the same address again) ask for a new verification link.
func (h *Handler) handleChangeEmail(w http.ResponseWriter, r *http.Request) {
	p := current(r)
	_, err := h.svc.ChangeEmail(r.Context(), p, formValue(r, "email"), browser.AgentOf(r))
	if _, ok := errors.AsType[*auth.ReauthRequiredError](err); ok {
		h.askReauth(w, r, "/account")
		return
	}
	switch keycard.ErrorCode(err) {
	case "":
		http.Redirect(w, r, "/account?done=email", http.StatusSeeOther)
	case keycard.EINVALID, keycard.ECONFLICT:
		d := &accountData{EmailError: keycard.ErrorMessage(err), Email: formValue(r, "email")}
		h.renderAccount(w, r, browser.StatusOf(err), d, "")
	default:
		h.serviceError(w, r, err, p.User)
	}
}

// handleAdminSetEmail is POST /admin/users/{id}/email: set or remove a
// user's address, verified or not (the admin vouches for it).
func (h *Handler) handleAdminSetEmail(w http.ResponseWriter, r *http.Request) {
	p := current(r)
	id := r.PathValue("id")
	_, err := h.svc.SetEmail(r.Context(), auth.AdminActor(p, browser.AgentOf(r)), id, formValue(r, "email"), formValue(r, "verified") == "on")
	if err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	http.Redirect(w, r, "/admin/users/"+url.PathEscape(id)+"?done=email", http.StatusSeeOther)
}

// handleAdminSendReset is POST /admin/users/{id}/password-reset: mail
// the user a reset link.
func (h *Handler) handleAdminSendReset(w http.ResponseWriter, r *http.Request) {
	p := current(r)
	id := r.PathValue("id")
	if err := h.svc.SendPasswordReset(r.Context(), auth.AdminActor(p, browser.AgentOf(r)), id); err != nil {
		h.serviceError(w, r, err, p.User)
		return
	}
	http.Redirect(w, r, "/admin/users/"+url.PathEscape(id)+"?done=resetsent", http.StatusSeeOther)
}
