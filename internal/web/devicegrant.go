package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// The device verification pages of the device authorization grant (RFC
// 8628 section 3.3): the user types the code a device shows, sees which
// application it is and what it asks for, and approves or denies. Like
// the authorization endpoint they find the browser's session through the
// single sign-on cookie; a browser that is not signed in signs in first
// and comes back with the code it followed.

// deviceData is the code form's data.
type deviceData struct {
	UserCode string
}

// deviceConfirmData is the confirmation page's data.
type deviceConfirmData struct {
	Client     string
	UserCode   string
	Scopes     []consentScope
	ThirdParty bool
}

// devicePath returns the code form's path, with the user code filled in
// when there is one.
func devicePath(userCode string) string {
	if userCode == "" || len(userCode) > 64 {
		return auth.DeviceVerificationPath
	}
	return auth.DeviceVerificationPath + "?" + url.Values{"user_code": {userCode}}.Encode()
}

// deviceSignIn sends a browser that is not signed in to sign in, and back
// to the code form.
func (h *Handler) deviceSignIn(w http.ResponseWriter, r *http.Request, userCode string) {
	http.Redirect(w, r, "/signin?"+url.Values{"next": {devicePath(userCode)}}.Encode(), http.StatusSeeOther)
}

// handleDevicePage is GET /device: the form to type the code a device
// shows, filled in from ?user_code= (the verification_uri_complete a
// device may show as a link or a QR code; the user still confirms).
func (h *Handler) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("user_code")
	if len(code) > 64 {
		code = ""
	}
	b, err := h.ssoSession(r)
	if err != nil {
		h.serviceError(w, r, err, nil)
		return
	}
	if b == nil {
		h.deviceSignIn(w, r, code)
		return
	}
	h.deviceForm(w, r, b, http.StatusOK, code, "")
}

// deviceForm shows the code form, with an error about the code typed.
func (h *Handler) deviceForm(w http.ResponseWriter, r *http.Request, b *auth.BrowserSession, status int, code, problem string) {
	h.render(w, r, status, "device", &page{Title: "Sign in a device", User: b.User, CSRF: h.csrfToken(b.Session.ID), Error: problem,
		Data: deviceData{UserCode: code}})
}

// deviceSession returns the signed-in browser of a POST to a device page,
// whose form must carry the session's CSRF token and come from the pages'
// origin. It answers the request itself (and returns nil) when there is
// no session — the browser signs in and comes back to the code form — or
// the form is refused.
func (h *Handler) deviceSession(w http.ResponseWriter, r *http.Request) *auth.BrowserSession {
	b, err := h.ssoSession(r)
	if err != nil {
		h.serviceError(w, r, err, nil)
		return nil
	}
	if b == nil {
		code := ""
		if parseForm(w, r) == nil {
			code = formValue(r, "user_code")
		}
		h.deviceSignIn(w, r, code)
		return nil
	}
	if h.checkSessionForm(w, r, b.Session.ID) != nil {
		h.message(w, r, http.StatusForbidden, "Request refused", "This form could not be accepted. Reload the page and try again.", b.User)
		return nil
	}
	return b
}

// deviceError shows the code form again for a code that is refused: not
// a code, unknown or expired, used already, or too many attempts (with
// Retry-After).
func (h *Handler) deviceError(w http.ResponseWriter, r *http.Request, b *auth.BrowserSession, code string, err error) {
	if throttled, ok := errors.AsType[*auth.ThrottledError](err); ok {
		secs := int64(throttled.RetryAfter / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		h.deviceForm(w, r, b, http.StatusTooManyRequests, code, fmt.Sprintf("Too many codes tried. Wait %s and try again.", seconds(secs)))
		return
	}
	switch keycard.ErrorCode(err) {
	case keycard.EINVALID, keycard.ENOTFOUND, keycard.ECONFLICT:
		h.deviceForm(w, r, b, browser.StatusOf(err), code, keycard.ErrorMessage(err))
	default:
		h.serviceError(w, r, err, b.User)
	}
}

// handleDeviceCode is POST /device: the code typed. A pending device
// authorization is shown for the user to confirm: the application's name,
// the code to compare with the device's screen, and what it asks for.
func (h *Handler) handleDeviceCode(w http.ResponseWriter, r *http.Request) {
	b := h.deviceSession(w, r)
	if b == nil {
		return
	}
	code := formValue(r, "user_code")
	req, err := h.svc.LookupDevice(r.Context(), b, code, browser.AgentOf(r))
	if err != nil {
		h.deviceError(w, r, b, code, err)
		return
	}
	d := deviceConfirmData{Client: req.Client.Name, UserCode: req.UserCode, ThirdParty: !req.Client.OAuth.FirstParty, Scopes: scopeLines(req.Scopes)}
	h.render(w, r, http.StatusOK, "deviceconfirm", &page{Title: "Sign in a device", User: b.User, CSRF: h.csrfToken(b.Session.ID), Data: d})
}

// handleDeviceDecide is POST /device/decide: the user approves or denies
// the device. The device, polling, gets its tokens or access_denied.
func (h *Handler) handleDeviceDecide(w http.ResponseWriter, r *http.Request) {
	b := h.deviceSession(w, r)
	if b == nil {
		return
	}
	code := formValue(r, "user_code")
	var approve bool
	switch formValue(r, "decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		h.message(w, r, http.StatusBadRequest, "Request refused", "Choose Approve or Deny.", b.User)
		return
	}
	req, err := h.svc.DecideDevice(r.Context(), b, code, approve, browser.AgentOf(r))
	if err != nil {
		h.deviceError(w, r, b, code, err)
		return
	}
	if !approve {
		h.render(w, r, http.StatusOK, "message", &page{Title: "Device denied", User: b.User,
			Notice: req.Client.Name + " was not signed in. You can close this page."})
		return
	}
	h.render(w, r, http.StatusOK, "message", &page{Title: "Device signed in", User: b.User,
		Notice: req.Client.Name + " is signed in as " + b.User.Username + ". Go back to your device; you can close this page."})
}
