package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
	"github.com/keycard-auth/keycard/internal/federation"
)

// Sign-in at upstream identity providers (docs/federation.md): the
// buttons' start, the callback, linking from the account page and the
// providers' back-channel logout.

// flowLifetime bounds a sign-in at a provider: its cookie and its state.
const flowLifetime = 10 * time.Minute

// flowCookiePrefix names a sign-in's cookie; the first 16 characters of
// its state follow, so that sign-ins in two tabs keep their own.
const flowCookiePrefix = "__Host-keycard_fed_"

// maxFlows bounds the sign-ins a browser has under way: starting one more
// drops the others' cookies, so that a page that makes the browser start
// sign-ins over and over cannot fill its cookie jar (and push Keycard's
// session cookies out).
const maxFlows = 4

// flowCookie is what a sign-in's cookie holds, sealed (AES-256-GCM under
// a key derived from the CSRF key): the flow, where to go afterwards, and
// the user who is linking the provider, if any.
type flowCookie struct {
	Flow federation.Flow `json:"f"`
	Next string          `json:"x"`
	Link string          `json:"l,omitempty"`
	Exp  int64           `json:"e"`
}

func (h *Handler) flowAEAD() cipher.AEAD {
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte("keycard federation flow v1"))
	block, _ := aes.NewCipher(m.Sum(nil)) // a 32-byte key never fails
	aead, _ := cipher.NewGCM(block)
	return aead
}

func flowCookieName(state string) string { return flowCookiePrefix + state[:16] }

// sealFlow returns the cookie of a sign-in.
func (h *Handler) sealFlow(fc *flowCookie) (*http.Cookie, error) {
	b, err := json.Marshal(fc)
	if err != nil {
		return nil, err
	}
	aead := h.flowAEAD()
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(b)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	name := flowCookieName(fc.Flow.State)
	c := browser.Cookie(name, "/", base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, b, []byte(name))), flowLifetime, true)
	// The provider sends the browser back with a top-level GET from its
	// own site: a Strict cookie would stay behind.
	c.SameSite = http.SameSiteLaxMode
	return c, nil
}

// openFlow returns the sign-in whose state the callback names, from its
// cookie, or nil if there is none, it is not this server's, or it expired.
func (h *Handler) openFlow(r *http.Request, state string) *flowCookie {
	if len(state) < 16 || len(state) > 128 {
		return nil
	}
	name := flowCookieName(state)
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) > 4096 {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	aead := h.flowAEAD()
	if err != nil || len(raw) < aead.NonceSize() {
		return nil
	}
	b, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(name))
	if err != nil {
		return nil
	}
	fc := new(flowCookie)
	if json.Unmarshal(b, fc) != nil || time.Now().Unix() > fc.Exp {
		return nil
	}
	return fc
}

// callbackURL is Keycard's redirect URI at provider p, which the operator
// registers there.
func (h *Handler) callbackURL(p *federation.Provider) string {
	return CallbackURL(h.svc.Config().Issuer, p.Name())
}

// CallbackURL returns the redirect URI of Keycard at issuer for the
// provider named name: ISSUER/federation/NAME/callback.
func CallbackURL(issuer, name string) string {
	return strings.TrimSuffix(issuer, "/") + "/federation/" + name + "/callback"
}

// startFlow begins a sign-in at p and answers with the redirect to it.
// link is the id of the signed-in user linking p, or "".
func (h *Handler) startFlow(w http.ResponseWriter, r *http.Request, p *federation.Provider, next, loginHint, link string) {
	target, flow, err := p.Start(r.Context(), h.callbackURL(p), loginHint)
	if err != nil {
		h.log.WarnContext(r.Context(), "web: starting a sign-in at a provider", "provider", p.Name(), "err", err)
		h.message(w, r, http.StatusBadGateway, "Provider unavailable", "The sign-in provider could not be reached. Try again later.", nil)
		return
	}
	c, err := h.sealFlow(&flowCookie{Flow: *flow, Next: next, Link: link, Exp: time.Now().Add(flowLifetime).Unix()})
	if err != nil {
		h.serviceError(w, r, err, nil)
		return
	}
	var pending []string
	for _, old := range r.Cookies() {
		if strings.HasPrefix(old.Name, flowCookiePrefix) {
			pending = append(pending, old.Name)
		}
	}
	if len(pending) >= maxFlows {
		for _, name := range pending {
			http.SetCookie(w, browser.Cookie(name, "/", "", -1, true))
		}
	}
	http.SetCookie(w, c)
	// A form posted here (the account page's "Link", the sign-in form
	// routed by domain) may be redirected to the provider.
	allowRedirectTo(w, target)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// handleFederatedStart is GET /signin/{provider}: a sign-in button.
func (h *Handler) handleFederatedStart(w http.ResponseWriter, r *http.Request) {
	p := h.fed.Provider(r.PathValue("provider"))
	if p == nil {
		h.notFound(w, r)
		return
	}
	hint := r.URL.Query().Get("login_hint")
	if len(hint) > 256 {
		hint = ""
	}
	h.startFlow(w, r, p, h.safeNext(r.URL.Query().Get("next")), hint, "")
}

// handleFederatedCallback is GET /federation/{provider}/callback, where
// the provider sends the browser back. Every refusal is a 4xx page (502
// when the provider cannot be reached); the log says why.
func (h *Handler) handleFederatedCallback(w http.ResponseWriter, r *http.Request) {
	p := h.fed.Provider(r.PathValue("provider"))
	if p == nil {
		h.notFound(w, r)
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	fc := h.openFlow(r, state)
	if fc == nil || len(q["state"]) != 1 {
		h.message(w, r, http.StatusBadRequest, "Sign-in not accepted", "This sign-in has expired or was started in another browser. Start again.", nil)
		return
	}
	// The cookie has done its work whatever happens next.
	http.SetCookie(w, browser.Cookie(flowCookieName(state), "/", "", -1, true))
	if fc.Flow.Provider != p.Name() {
		// A response for one provider arriving at another's callback
		// (mix-up: RFC 9700 section 4.4).
		h.log.WarnContext(r.Context(), "web: federated callback at the wrong provider", "provider", p.Name(), "flow", fc.Flow.Provider)
		h.message(w, r, http.StatusBadRequest, "Sign-in not accepted", "This answer is not from the provider the sign-in started at.", nil)
		return
	}
	first, err := h.svc.UseFlowState(r.Context(), state, time.Unix(fc.Exp, 0).Add(time.Minute))
	if err != nil {
		h.serviceError(w, r, err, nil)
		return
	}
	if !first {
		h.log.WarnContext(r.Context(), "web: federated callback replayed", "provider", p.Name())
		h.message(w, r, http.StatusBadRequest, "Sign-in not accepted", "This sign-in answer was already used. Start again.", nil)
		return
	}
	id, err := p.Finish(r.Context(), &fc.Flow, q, h.callbackURL(p))
	if err != nil {
		h.log.WarnContext(r.Context(), "web: federated sign-in refused", "provider", p.Name(), "err", err)
		switch {
		case errors.Is(err, federation.ErrDenied):
			h.message(w, r, http.StatusForbidden, "Sign-in not completed", "The provider did not sign you in.", nil)
		case errors.Is(err, federation.ErrUnavailable):
			h.message(w, r, http.StatusBadGateway, "Provider unavailable", "The sign-in provider could not be reached. Try again later.", nil)
		default:
			h.message(w, r, http.StatusBadRequest, "Sign-in not accepted", "The provider's answer could not be accepted.", nil)
		}
		return
	}
	up := auth.UpstreamIdentity{Provider: id.Provider, Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified,
		Username: id.Username, Roles: id.Roles, SessionID: id.SessionID}
	if fc.Link != "" {
		h.finishLink(w, r, fc, up)
		return
	}
	cfg := p.Config()
	t, _, err := h.svc.FederatedSignIn(r.Context(), up, auth.FederationPolicy{CreateUsers: cfg.CreateUsers, ManagedRoles: cfg.ManagedRoles()}, browser.AgentOf(r))
	if err != nil {
		if _, ok := errors.AsType[*auth.LinkRequiredError](err); ok {
			h.render(w, r, http.StatusForbidden, "linkrequired", &page{Title: "Sign in to link your account", Data: struct{ Provider string }{cfg.DisplayName}})
			return
		}
		if mfa, ok := errors.AsType[*auth.MFARequiredError](err); ok {
			// The user's second factor (or the enrolment the policy
			// requires) comes next, as after a password. A page of this
			// origin goes on, so that the SameSite=Strict MFA cookie is
			// sent (see continueTo).
			setMFACookie(w, mfa.Token, mfa.ExpiresIn)
			step := "/signin/mfa"
			if mfa.Enroll {
				step = "/signin/enroll"
			}
			h.continueTo(w, r, step+"?"+url.Values{"next": {fc.Next}}.Encode(), "Signed in at the provider. Continuing to your second factor…")
			return
		}
		h.serviceError(w, r, err, nil)
		return
	}
	// A session of another user this browser still had is replaced, as
	// at the sign-in form.
	if old, err := h.ssoSession(r); err == nil && old != nil {
		if err := h.svc.EndBrowserSession(r.Context(), old, browser.AgentOf(r)); err != nil {
			h.log.ErrorContext(r.Context(), "web: ending the replaced session", "err", err)
		}
	}
	h.setSessionCookies(w, t)
	h.continueTo(w, r, fc.Next, "Signed in. Continuing…")
}

// finishLink links the identity to the user who started linking it, who
// must still be this browser's signed-in user.
func (h *Handler) finishLink(w http.ResponseWriter, r *http.Request, fc *flowCookie, up auth.UpstreamIdentity) {
	b, err := h.ssoSession(r)
	if err != nil {
		h.serviceError(w, r, err, nil)
		return
	}
	if b == nil || b.User.ID != fc.Link {
		h.message(w, r, http.StatusForbidden, "Not linked", "You are no longer signed in as the account that asked for the link. Sign in and try again.", nil)
		return
	}
	if err := h.svc.LinkIdentity(r.Context(), &auth.Principal{User: b.User}, up, browser.AgentOf(r)); err != nil {
		h.serviceError(w, r, err, b.User)
		return
	}
	h.continueTo(w, r, "/account?done=linked", "Linked. Continuing…")
}

// continueTo answers a callback with a page that goes on to target from
// this origin. A redirect would do it from the provider's navigation,
// which the pages' SameSite=Strict cookies do not follow.
func (h *Handler) continueTo(w http.ResponseWriter, r *http.Request, target, text string) {
	u, err := url.Parse(target)
	if err != nil || u.Host != "" || u.Scheme != "" {
		u = &url.URL{Path: "/account"}
	}
	var fields []formPostField
	for name, vs := range u.Query() {
		for _, v := range vs {
			fields = append(fields, formPostField{Name: name, Value: v})
		}
	}
	h.render(w, r, http.StatusOK, "continue", &page{Title: "Signing you in", Data: struct {
		Action string
		Fields []formPostField
		Text   string
	}{u.Path, fields, text}})
}

// handleLinkStart is POST /account/identities/link: the signed-in user
// signs in at a provider to link it to their account. A linked identity
// is a new way to sign in, so, like registering a passkey, it needs a
// recent sign-in (auth.Config.ReauthWithin): a stolen session cookie
// must not be turned into a lasting sign-in for someone else's
// upstream account.
func (h *Handler) handleLinkStart(w http.ResponseWriter, r *http.Request) {
	pr := current(r)
	if h.svc.CheckRecentAuth(pr) != nil {
		h.askReauth(w, r, "/account")
		return
	}
	p := h.fed.Provider(formValue(r, "provider"))
	if p == nil {
		h.message(w, r, http.StatusBadRequest, "Unknown provider", "There is no such sign-in provider.", pr.User)
		return
	}
	h.startFlow(w, r, p, "/account", "", pr.User.ID)
}

// handleUnlink is POST /account/identities/unlink.
func (h *Handler) handleUnlink(w http.ResponseWriter, r *http.Request) {
	pr := current(r)
	provider, subject := formValue(r, "provider"), formValue(r, "subject")
	if err := h.svc.UnlinkIdentity(r.Context(), auth.UserActor(pr.User.ID, browser.AgentOf(r)), pr.User.ID, provider, subject); err != nil {
		h.serviceError(w, r, err, pr.User)
		return
	}
	http.Redirect(w, r, "/account?done=unlinked", http.StatusSeeOther)
}

// handleUpstreamLogout is POST /federation/{provider}/backchannel-logout,
// the provider's back-channel logout (OpenID Connect Back-Channel Logout
// 1.0 section 2.5): a logout token in the form field logout_token. It
// ends the sessions the token names and answers 200, or 400 with a JSON
// error for a token it refuses.
func (h *Handler) handleUpstreamLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	refuse := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	p := h.fed.Provider(r.PathValue("provider"))
	if p == nil {
		refuse(http.StatusNotFound, "invalid_request", "No such provider.")
		return
	}
	if err := parseForm(w, r); err != nil {
		refuse(http.StatusBadRequest, "invalid_request", "The body must be a form.")
		return
	}
	tok := r.PostForm["logout_token"]
	if len(tok) != 1 || tok[0] == "" {
		refuse(http.StatusBadRequest, "invalid_request", "logout_token is required, once.")
		return
	}
	l, err := p.VerifyLogoutToken(r.Context(), tok[0])
	if err != nil {
		h.log.WarnContext(r.Context(), "web: upstream logout token refused", "provider", p.Name(), "err", err)
		if errors.Is(err, federation.ErrUnavailable) {
			refuse(http.StatusBadGateway, "temporarily_unavailable", "The provider's keys could not be fetched.")
			return
		}
		refuse(http.StatusBadRequest, "invalid_request", "The logout token is not valid.")
		return
	}
	n, err := h.svc.UpstreamLogout(r.Context(), p.Name(), l.Subject, l.SessionID)
	if err != nil {
		if keycard.ErrorCode(err) == keycard.EINVALID {
			refuse(http.StatusBadRequest, "invalid_request", keycard.ErrorMessage(err))
			return
		}
		h.log.ErrorContext(r.Context(), "web: upstream logout", "provider", p.Name(), "err", err)
		refuse(http.StatusInternalServerError, "server_error", "The sessions could not be ended.")
		return
	}
	h.log.InfoContext(r.Context(), "web: upstream logout", "provider", p.Name(), "sessions", n)
	w.WriteHeader(http.StatusOK)
}

// allowProviderRedirects lets the forms of a page (the sign-in form routed
// by domain, the account page's "Link") be redirected to each provider's
// authorization endpoint: a browser checks a redirect after a form post
// against the form-action of the page the form is on.
func (h *Handler) allowProviderRedirects(w http.ResponseWriter) {
	for _, p := range h.fed.Providers() {
		allowRedirectTo(w, p.AuthorizationEndpoint())
	}
}

// providerButton is a sign-in button.
type providerButton struct {
	Name, Label, Href string
}

// signInButtons returns the sign-in page's buttons, each going on to next.
func (h *Handler) signInButtons(next string) []providerButton {
	var out []providerButton
	for _, p := range h.fed.Providers() {
		c := p.Config()
		if c.Hidden {
			continue
		}
		out = append(out, providerButton{Name: c.Name, Label: c.DisplayName, Href: "/signin/" + c.Name + "?" + url.Values{"next": {next}}.Encode()})
	}
	return out
}

// identityRow is a linked identity on the account page.
type identityRow struct {
	Provider, Label, Subject, Email string
	LinkedAt                        time.Time
}

// accountIdentities returns the account page's linked identities and the
// providers that could still be linked.
func (h *Handler) accountIdentities(r *http.Request, u *keycard.User) ([]identityRow, []providerButton, error) {
	if len(h.fed.Providers()) == 0 {
		return nil, nil, nil
	}
	ids, err := h.svc.Identities(r.Context(), u.ID)
	if err != nil {
		return nil, nil, err
	}
	var rows []identityRow
	linked := map[string]bool{}
	for _, id := range ids {
		label := id.Provider
		if p := h.fed.Provider(id.Provider); p != nil {
			label = p.Config().DisplayName
		}
		rows = append(rows, identityRow{Provider: id.Provider, Label: label, Subject: id.Subject, Email: id.Email, LinkedAt: id.CreatedAt})
		linked[id.Provider] = true
	}
	var more []providerButton
	for _, p := range h.fed.Providers() {
		if !linked[p.Name()] {
			more = append(more, providerButton{Name: p.Name(), Label: p.Config().DisplayName})
		}
	}
	return rows, more, nil
}

// usesProviders reports whether the page of pattern consults the
// providers: the sign-in pages, the federation endpoints, the account
// page and the authorization endpoint (its idp parameter).
func usesProviders(pattern string) bool {
	_, path, _ := strings.Cut(pattern, " ")
	for _, prefix := range []string{"/signin", "/federation/", "/account", "/oauth/authorize"} {
		if strings.HasPrefix(path, prefix) {
			return true
		}
	}
	return false
}

// refreshProviders reloads the providers added at run time before f when
// the last reload is older than a second, so that a provider an admin
// added, changed or removed on any instance takes effect here within a
// second (docs/federation.md). A store that cannot be read leaves the
// providers of the last reload.
func (h *Handler) refreshProviders(f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h.fed.RefreshStale(r.Context()); err != nil {
			h.log.WarnContext(r.Context(), "federation: cannot reload the providers; using the last ones", "err", err)
		}
		f(w, r)
	}
}
