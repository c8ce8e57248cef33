package web

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// The OpenID Connect pages: the authorization endpoint and its consent
// page, and the end-session endpoint (RP-initiated logout). They find the
// browser's session through the single sign-on cookie (browser.SSOCookie,
// SameSite=Lax), which an application on another site can send the
// browser here with; the access cookie (SameSite=Strict) would not come.

// ssoSession returns the browser's single sign-on session, or nil when
// the browser has none that is still active.
func (h *Handler) ssoSession(r *http.Request) (*auth.BrowserSession, error) {
	c, err := r.Cookie(browser.SSOCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	sid, ok := browser.ParseSSOValue(h.csrfKey, c.Value)
	if !ok {
		return nil, nil
	}
	b, err := h.svc.BrowserSession(r.Context(), sid)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, nil
	}
	return b, err
}

// authorizeParams returns the parameters of an authorization request:
// the query of a GET, the form of a POST (OpenID Connect Core section
// 3.1.2.1 allows both).
func authorizeParams(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method != http.MethodPost {
		return r.URL.Query(), nil
	}
	if err := parseFormValues(w, r); err != nil {
		return nil, err
	}
	return r.PostForm, nil
}

// parseFormValues reads a POST's url-encoded body (bounded), repeats
// allowed: the authorization request's parser says what a repeat means.
func parseFormValues(w http.ResponseWriter, r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(strings.ToLower(mt)) != "application/x-www-form-urlencoded" {
		return errors.New("web: not a form")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	return r.ParseForm()
}

// handleAuthorize is GET and POST /oauth/authorize, the authorization
// endpoint (RFC 6749 section 3.1, OpenID Connect Core section 3.1.2): it
// checks the request, signs the user in or asks for consent when needed,
// and answers the client with a code. Errors before the client and its
// redirect URI are established are shown here and never redirected.
func (h *Handler) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	params, err := authorizeParams(w, r)
	if err != nil {
		h.authorizeErrorPage(w, r, &auth.AuthorizeError{Code: "invalid_request", Description: "The request body must be a form."})
		return
	}
	a, err := h.svc.Authorize(r.Context(), params)
	if err != nil {
		h.authorizeError(w, r, a, err)
		return
	}
	b, err := h.ssoSession(r)
	if err != nil {
		h.authorizeError(w, r, a, err)
		return
	}
	if h.svc.NeedsLogin(a, b) {
		if a.HasPrompt("none") {
			h.authorizeError(w, r, a, &auth.AuthorizeError{Code: "login_required", Description: "The user is not signed in.", Redirect: true})
			return
		}
		page := "/signin"
		if idp := params.Get("idp"); idp != "" {
			// idp=NAME sends the user straight to that provider
			// (docs/federation.md).
			if h.fed.Provider(idp) == nil {
				h.authorizeError(w, r, a, &auth.AuthorizeError{Code: "invalid_request", Description: "The idp parameter names no provider.", Redirect: true})
				return
			}
			page = "/signin/" + idp
		}
		h.authorizeDetour(w, r, a, page, b != nil)
		return
	}
	consent, err := h.svc.NeedsConsent(r.Context(), a, b)
	if err != nil {
		h.authorizeError(w, r, a, err)
		return
	}
	if consent {
		if a.HasPrompt("none") {
			h.authorizeError(w, r, a, &auth.AuthorizeError{Code: "consent_required", Description: "The user has not consented to this application.", Redirect: true})
			return
		}
		h.consentPage(w, r, a, b)
		return
	}
	h.issueCode(w, r, a, b)
}

// authorizeDetour keeps the request (auth.Service.SaveAuthorization) and
// sends the browser to the sign-in page, which sends it back to the
// authorization endpoint with the request_uri that stands for it.
// reauth asks a signed-in user to sign in again.
func (h *Handler) authorizeDetour(w http.ResponseWriter, r *http.Request, a *auth.Authorization, page string, reauth bool) {
	uri, err := h.svc.SaveAuthorization(r.Context(), a)
	if err != nil {
		h.authorizeError(w, r, a, err)
		return
	}
	back := "/oauth/authorize?" + url.Values{"client_id": {a.Client.ID}, "request_uri": {uri}}.Encode()
	q := url.Values{"next": {back}}
	if a.Request.LoginHint != "" {
		q.Set("login_hint", a.Request.LoginHint)
	}
	if reauth {
		q.Set("reauth", "1")
	}
	http.Redirect(w, r, page+"?"+q.Encode(), http.StatusSeeOther)
}

// issueCode answers the client with a new code.
func (h *Handler) issueCode(w http.ResponseWriter, r *http.Request, a *auth.Authorization, b *auth.BrowserSession) {
	code, err := h.svc.IssueCode(r.Context(), a, b)
	if err != nil {
		h.authorizeError(w, r, a, err)
		return
	}
	h.respond(w, r, a, url.Values{"code": {code}})
}

// respond sends the authorization response (RFC 6749 section 4.1.2) to
// the client's redirect URI: params, the state, and the issuer (RFC 9207,
// against mix-up attacks), in the query of a 303 redirect or, with
// response_mode=form_post, in a form the browser posts at once (OAuth 2.0
// Form Post Response Mode).
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, a *auth.Authorization, params url.Values) {
	if a.Request.State != "" {
		params.Set("state", a.Request.State)
	}
	params.Set("iss", h.svc.Config().Issuer)
	if a.ResponseMode() == "form_post" {
		h.formPost(w, r, a.Request.RedirectURI, params)
		return
	}
	target := a.Request.RedirectURI
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	http.Redirect(w, r, target+sep+params.Encode(), http.StatusSeeOther)
}

// formPostField is one hidden field of a form_post response.
type formPostField struct{ Name, Value string }

// formPost answers with a page whose form posts params to target at once
// (the pages' script submits it; without scripts, a button does). Its
// Content-Security-Policy lets the form post to target's origin alone.
func (h *Handler) formPost(w http.ResponseWriter, r *http.Request, target string, params url.Values) {
	var fields []formPostField
	for name, vs := range params {
		for _, v := range vs {
			fields = append(fields, formPostField{name, v})
		}
	}
	slices.SortFunc(fields, func(a, b formPostField) int { return strings.Compare(a.Name, b.Name) })
	action := formActionSource(target)
	if action == "" {
		action = "'self'"
	}
	w.Header().Set("Content-Security-Policy", strings.Replace(contentSecurityPolicy, "form-action 'self'", "form-action "+action, 1))
	h.render(w, r, http.StatusOK, "formpost", &page{Title: "Signing you in", Data: struct {
		Action string
		Fields []formPostField
	}{target, fields}})
}

// formActionSource returns the Content-Security-Policy source of
// target's origin — scheme, host and port; the scheme alone for a
// private-use scheme — or "" when it has none.
func formActionSource(target string) string {
	if o := browser.Origin(target); o != "" {
		return o
	}
	if u, err := url.Parse(target); err == nil && u.Scheme != "" {
		return u.Scheme + ":"
	}
	return ""
}

// allowRedirectTo lets the forms of the page being answered end at
// target, an application's redirect URI: browsers apply the page's
// form-action to every redirect that follows a form's post (Content
// Security Policy Level 3, form-action), so a sign-in or consent whose
// post is answered, through the authorization endpoint, by a redirect to
// the application would otherwise stop halfway.
func allowRedirectTo(w http.ResponseWriter, target string) {
	if src := formActionSource(target); src != "" {
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "form-action 'self'") {
			csp = contentSecurityPolicy
		}
		w.Header().Set("Content-Security-Policy", strings.Replace(csp, "form-action 'self'", "form-action 'self' "+src, 1))
	}
}

// allowAuthorizeRedirect is allowRedirectTo for a page whose form goes
// on to next: when next is the authorization endpoint, with an
// authorization request whose redirect URI is established, its redirect
// URI.
func (h *Handler) allowAuthorizeRedirect(w http.ResponseWriter, r *http.Request, next string) {
	u, err := url.Parse(next)
	if err != nil || u.Path != "/oauth/authorize" {
		return
	}
	if a, _ := h.svc.Authorize(r.Context(), u.Query()); a != nil {
		allowRedirectTo(w, a.Request.RedirectURI)
	}
}

// authorizeError answers an authorization request that fails: on the
// error page when the request may not be redirected, to the client
// otherwise. Internal errors become server_error (RFC 6749 section
// 4.1.2.1) after they are logged.
func (h *Handler) authorizeError(w http.ResponseWriter, r *http.Request, a *auth.Authorization, err error) {
	ae, ok := errors.AsType[*auth.AuthorizeError](err)
	if !ok {
		h.log.ErrorContext(r.Context(), "web: authorization request failed", "err", err)
		ae = &auth.AuthorizeError{Code: "server_error", Description: "The server could not complete the request.", Redirect: a != nil}
	}
	if !ae.Redirect || a == nil {
		h.authorizeErrorPage(w, r, ae)
		return
	}
	h.respond(w, r, a, url.Values{"error": {ae.Code}, "error_description": {ae.Description}})
}

// authorizeErrorPage shows an authorization error to the user.
func (h *Handler) authorizeErrorPage(w http.ResponseWriter, r *http.Request, ae *auth.AuthorizeError) {
	status := http.StatusBadRequest
	if ae.Code == "server_error" {
		status = http.StatusInternalServerError
	}
	h.message(w, r, status, "Sign-in request refused",
		"The application sent a sign-in request this server cannot accept ("+ae.Code+": "+ae.Description+") Go back to the application and try again.", nil)
}

// scopeDescriptions say what each scope lets an application do, for the
// consent page.
var scopeDescriptions = map[string]string{
	auth.ScopeOpenID:        "Know who you are (your account id)",
	auth.ScopeProfile:       "See your username and roles",
	auth.ScopeEmail:         "See your email address",
	auth.ScopeOfflineAccess: "Stay signed in while you are away (a refresh token)",
}

// scopeDescription says what a scope lets an application do.
func scopeDescription(sc string) string {
	if desc := scopeDescriptions[sc]; desc != "" {
		return desc
	}
	return "Use the API with the permission " + sc
}

// consentScope is one line of the consent page.
type consentScope struct{ Name, Description string }

// scopeLines describes scopes as the consent page and the account page's
// apps list show them.
func scopeLines(scopes []string) []consentScope {
	var out []consentScope
	for _, sc := range scopes {
		out = append(out, consentScope{sc, scopeDescription(sc)})
	}
	return out
}

// consentData is the consent page's data.
type consentData struct {
	Client     string
	ClientID   string
	RequestURI string
	RedirectTo string
	Scopes     []consentScope
}

// consentPage asks the user to let a third-party application in.
func (h *Handler) consentPage(w http.ResponseWriter, r *http.Request, a *auth.Authorization, b *auth.BrowserSession) {
	uri, err := h.svc.SaveAuthorization(r.Context(), a)
	if err != nil {
		h.authorizeError(w, r, a, err)
		return
	}
	d := consentData{Client: a.Client.Name, ClientID: a.Client.ID, RequestURI: uri, RedirectTo: browser.Origin(a.Request.RedirectURI)}
	if d.RedirectTo == "" {
		d.RedirectTo = a.Request.RedirectURI
	}
	d.Scopes = scopeLines(a.Scopes)
	allowRedirectTo(w, a.Request.RedirectURI)
	h.render(w, r, http.StatusOK, "consent", &page{Title: "Allow " + a.Client.Name + "?", User: b.User, CSRF: h.csrfToken(b.Session.ID), Data: d})
}

// handleConsent is POST /oauth/consent: the user's answer on the consent
// page. It must come from the pages' origin with the session's CSRF token
// (a site that could post it would grant itself access).
func (h *Handler) handleConsent(w http.ResponseWriter, r *http.Request) {
	b, err := h.ssoSession(r)
	if err != nil {
		h.serviceError(w, r, err, nil)
		return
	}
	if b == nil || h.checkSessionForm(w, r, b.Session.ID) != nil {
		h.message(w, r, http.StatusForbidden, "Request refused", "This form could not be accepted. Go back to the application and sign in again.", nil)
		return
	}
	a, err := h.svc.Authorize(r.Context(), url.Values{"client_id": {formValue(r, "client_id")}, "request_uri": {formValue(r, "request_uri")}})
	if err != nil {
		h.authorizeError(w, r, a, err)
		return
	}
	if formValue(r, "decision") != "allow" {
		h.authorizeError(w, r, a, &auth.AuthorizeError{Code: "access_denied", Description: "The user did not allow the application.", Redirect: true})
		return
	}
	if err := h.svc.Consent(r.Context(), b, a, browser.AgentOf(r)); err != nil {
		h.authorizeError(w, r, a, err)
		return
	}
	h.issueCode(w, r, a, b)
}

// logoutData is the sign-out confirmation page's data.
type logoutData struct {
	Client  string
	Request auth.EndSessionRequest
}

// handleLogout is GET and POST /oauth/logout, the end-session endpoint
// (OpenID Connect RP-Initiated Logout 1.0). The browser's session ends —
// and with it every application's grant under it — at once when the
// id_token_hint names this browser's session; otherwise after the user
// confirms, so that another site cannot sign users out. Then the browser
// goes to the registered post_logout_redirect_uri with state, or to the
// sign-in page. A request that does not check out is shown here, never
// redirected.
func (h *Handler) handleLogout(w http.ResponseWriter, r *http.Request) {
	params, err := authorizeParams(w, r)
	if err != nil {
		h.message(w, r, http.StatusBadRequest, "Sign-out request refused", "The request body must be a form.", nil)
		return
	}
	for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"} {
		if len(params[k]) > 1 {
			h.message(w, r, http.StatusBadRequest, "Sign-out request refused", "The parameter "+k+" is repeated.", nil)
			return
		}
	}
	req := auth.EndSessionRequest{IDTokenHint: params.Get("id_token_hint"), ClientID: params.Get("client_id"),
		PostLogoutRedirectURI: params.Get("post_logout_redirect_uri"), State: params.Get("state")}
	es, err := h.svc.CheckEndSession(r.Context(), req)
	if keycard.ErrorCode(err) == keycard.EINVALID {
		h.message(w, r, http.StatusBadRequest, "Sign-out request refused", keycard.ErrorMessage(err), nil)
		return
	} else if err != nil {
		h.serviceError(w, r, err, nil)
		return
	}
	b, err := h.ssoSession(r)
	if err != nil {
		h.serviceError(w, r, err, nil)
		return
	}
	confirmed := false
	if r.Method == http.MethodPost && params.Get("confirm") != "" && b != nil {
		confirmed = h.checkOrigin(r) == nil &&
			subtle.ConstantTimeCompare([]byte(params.Get(csrfField)), []byte(h.csrfToken(b.Session.ID))) == 1
		if !confirmed {
			h.message(w, r, http.StatusForbidden, "Request refused", "This form could not be accepted. Reload the page and try again.", b.User)
			return
		}
	}
	if b != nil && !confirmed && (es.SessionID == "" || es.SessionID != b.Session.ID) {
		d := logoutData{Request: req}
		if es.Client != nil {
			d.Client = es.Client.Name
		}
		h.render(w, r, http.StatusOK, "logout", &page{Title: "Sign out?", User: b.User, CSRF: h.csrfToken(b.Session.ID), Data: d})
		return
	}
	if b != nil {
		if err := h.svc.EndBrowserSession(r.Context(), b, browser.AgentOf(r)); err != nil {
			h.serviceError(w, r, err, b.User)
			return
		}
	}
	h.clearSessionCookies(w)
	if es.RedirectURI == "" {
		http.Redirect(w, r, "/signin?signedout=1", http.StatusSeeOther)
		return
	}
	target, sep := es.RedirectURI, "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	if es.State != "" {
		target += sep + url.Values{"state": {es.State}}.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}
