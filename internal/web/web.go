// Package web is the auth server's pages: sign-in and registration, the
// account page (identity, password, sessions) and the admin console
// (users, keys, service clients, audit log, revoke-all), rendered on the
// server with html/template. Templates, the style sheet and the little
// JavaScript the pages use are embedded; nothing is fetched from another
// origin.
//
// The pages call auth.Service directly and keep the browser's session in
// cookies (session.go): the access token in the same HttpOnly
// __Host-keycard_access cookie as the JSON API's cookie mode, so that a
// gateway in front of other applications on the same host accepts it,
// and the refresh token in an HttpOnly cookie sent only to the page that
// refreshes. Every form carries a CSRF token bound to the session, every
// POST must come from the issuer's origin, and every page is served with
// a Content-Security-Policy that allows no inline script, no framing and
// no referrer (see SecurityHeaders).
//
// A Handler serves only the routes listed by Patterns; the auth server
// (internal/httpapi, Options.Pages) mounts them beside its API.
package web

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
	"github.com/keycard-auth/keycard/internal/federation"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Options configure a Handler.
type Options struct {
	// CSRFKey binds the forms' CSRF tokens to sessions: 32 random bytes
	// or more, the same on every instance and across restarts. Give it
	// the value of httpapi.Options.CSRFKey: the tokens are then the same
	// as cookie mode's, so scripts of the pages may call the JSON API
	// with them. nil gives the Handler a random key of its own.
	CSRFKey []byte
	// RedirectPrefixes are paths, besides the pages' own, to which the
	// sign-in page may send the browser back (its "next" parameter): an
	// application behind a gateway on this host, such as "/weather/". A
	// prefix that ends in "/" allows the paths under it; one that does
	// not allows that path alone. Each must start with "/".
	RedirectPrefixes []string
	// Origins are other origins the pages are served under, such as that
	// of a gateway in front of them ("https://app.example"); forms posted
	// from them are accepted like those of the issuer's origin.
	Origins []string
	// Federation holds the upstream identity providers users may sign in
	// with (docs/federation.md); nil or empty shows no buttons.
	Federation *federation.Set
	// Logger receives internal errors; nil discards. Passwords, tokens and
	// form values never reach it.
	Logger *slog.Logger
}

// Handler serves the pages. It is safe for concurrent use.
type Handler struct {
	svc       *auth.Service
	fed       *federation.Set
	log       *slog.Logger
	csrfKey   []byte
	origins   browser.Origins // the issuer's origin and Options.Origins: those allowed to post
	redirects []string
	pages     map[string]*template.Template
	mux       *http.ServeMux
	patterns  []string
}

// New returns a Handler for svc. It fails if a template does not parse or
// a redirect prefix is not a path.
func New(svc *auth.Service, opt Options) (*Handler, error) {
	h := &Handler{svc: svc, fed: opt.Federation, log: opt.Logger, csrfKey: opt.CSRFKey, mux: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if len(h.csrfKey) == 0 {
		h.csrfKey = randomBytes(32)
	}
	origins, err := browser.NewOrigins(svc.Config().Issuer, opt.Origins...)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	h.origins = origins
	for _, p := range opt.RedirectPrefixes {
		if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\?#") {
			return nil, fmt.Errorf("web: redirect prefix %q is not an absolute path", p)
		}
		h.redirects = append(h.redirects, p)
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	h.pages = pages
	h.routes()
	return h, nil
}

// Patterns returns the net/http.ServeMux patterns the Handler serves, for
// mounting it in another mux. None overlaps the JSON API's routes.
func (h *Handler) Patterns() []string { return append([]string(nil), h.patterns...) }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	SecurityHeaders(w.Header())
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) handle(pattern string, f http.HandlerFunc) {
	if h.fed.Dynamic() && usesProviders(pattern) {
		f = h.refreshProviders(f)
	}
	h.mux.HandleFunc(pattern, f)
	h.patterns = append(h.patterns, pattern)
}

// routes registers every page. docs/web.md lists them.
func (h *Handler) routes() {
	h.handle("GET /{$}", h.handleRoot)
	h.handle("GET /assets/{file}", h.handleAsset)

	h.handle("GET /signin", h.handleSignInPage)
	h.handle("POST /signin", h.handleSignIn)
	h.handle("GET /signin/mfa", h.handleMFAPage)
	h.handle("POST /signin/mfa", h.handleMFA)
	h.handle("GET /signin/enroll", h.handleEnrollPage)
	h.handle("POST /signin/enroll", h.handleMFA)
	if h.svc.Config().Registration {
		h.handle("GET /register", h.handleRegisterPage)
		h.handle("POST /register", h.handleRegister)
	}
	h.handle("POST /signout", h.user(h.handleSignOut))
	h.handle("GET "+auth.VerifyEmailPath, h.handleVerifyEmail)
	if h.svc.MailEnabled() {
		h.handle("GET /forgot-password", h.handleForgotPage)
		h.handle("POST /forgot-password", h.handleForgot)
	}
	h.handle("GET "+auth.ResetPasswordPath, h.handleResetPage)
	h.handle("POST "+auth.ResetPasswordPath, h.handleReset)
	h.handle("GET "+browser.PageRefreshPath, h.handleRefresh)

	h.handle("GET /oauth/authorize", h.handleAuthorize)
	h.handle("POST /oauth/authorize", h.handleAuthorize)
	h.handle("POST /oauth/consent", h.handleConsent)
	h.handle("GET /oauth/logout", h.handleLogout)
	h.handle("POST /oauth/logout", h.handleLogout)
	h.handle("GET /device", h.handleDevicePage)
	h.handle("POST /device", h.handleDeviceCode)
	h.handle("POST /device/decide", h.handleDeviceDecide)

	if len(h.fed.Providers()) > 0 || h.fed.Dynamic() {
		h.handle("GET /signin/{provider}", h.handleFederatedStart)
		h.handle("GET /federation/{provider}/callback", h.handleFederatedCallback)
		h.handle("POST /federation/{provider}/backchannel-logout", h.handleUpstreamLogout)
		h.handle("POST /account/identities/link", h.user(h.handleLinkStart))
		h.handle("POST /account/identities/unlink", h.user(h.handleUnlink))
	}

	h.handle("GET /account", h.user(h.handleAccount))
	h.handle("POST /account/password", h.user(h.handleChangePassword))
	h.handle("POST /account/email", h.user(h.handleChangeEmail))
	h.handle("GET /account/totp", h.user(h.handleTOTPPage))
	h.handle("POST /account/totp", h.user(h.handleConfirmTOTP))
	h.handle("POST /account/totp/remove", h.user(h.handleRemoveTOTP))
	h.handle("POST /account/recovery-codes", h.user(h.handleRecoveryCodes))
	h.handle("POST /account/sessions/{id}/revoke", h.user(h.handleRevokeSession))
	h.handle("POST /account/signout-everywhere", h.user(h.handleSignOutEverywhere))
	h.handle("POST /account/apps/{client}/revoke", h.user(h.handleRemoveApp))
	h.handle("POST /account/apps/{client}/signout", h.user(h.handleSignOutOfApp))
	h.passkeyRoutes()

	h.handle("GET /admin/{$}", h.admin(h.handleAdminRoot))
	h.handle("GET /admin/users", h.admin(h.handleUsers))
	h.handle("POST /admin/users", h.admin(h.handleCreateUser))
	h.handle("GET /admin/users/{id}", h.admin(h.handleUser))
	h.handle("POST /admin/users/{id}/delete", h.admin(h.handleDeleteUser))
	h.handle("POST /admin/users/{id}/disable", h.admin(h.handleSetDisabled(true)))
	h.handle("POST /admin/users/{id}/enable", h.admin(h.handleSetDisabled(false)))
	h.handle("POST /admin/users/{id}/roles", h.admin(h.handleSetRoles))
	h.handle("POST /admin/users/{id}/email", h.admin(h.handleAdminSetEmail))
	h.handle("POST /admin/users/{id}/password-reset", h.admin(h.handleAdminSendReset))
	h.handle("POST /admin/users/{id}/mfa/remove", h.admin(h.handleAdminRemoveMFA))
	h.handle("POST /admin/users/{id}/sessions/{sid}/revoke", h.admin(h.handleAdminRevokeSession))
	h.handle("POST /admin/users/{id}/sessions/revoke", h.admin(h.handleAdminRevokeSessions))
	h.handle("POST /admin/users/{id}/consents/{client}/revoke", h.admin(h.handleAdminRevokeConsent))
	h.handle("POST /admin/users/{id}/apps/{client}/signout", h.admin(h.handleAdminSignOutOfApp))
	h.handle("GET /admin/keys", h.admin(h.handleKeys))
	h.handle("POST /admin/keys/rotate", h.admin(h.handleRotateKey))
	h.handle("POST /admin/keys/{kid}/revoke", h.admin(h.handleRevokeKey))
	h.handle("GET /admin/clients", h.admin(h.handleClients))
	h.handle("GET /admin/clients/new", h.admin(h.handleNewClient))
	h.handle("POST /admin/clients", h.admin(h.handleCreateClient))
	h.handle("GET /admin/clients/{id}", h.admin(h.handleClient))
	h.handle("POST /admin/clients/{id}", h.admin(h.handleUpdateClient))
	h.handle("POST /admin/clients/{id}/rotate-secret", h.admin(h.handleRotateClientSecret))
	h.handle("POST /admin/clients/{id}/delete", h.admin(h.handleDeleteClient))
	h.handle("GET /admin/providers", h.admin(h.handleProviders))
	h.handle("POST /admin/providers", h.admin(h.handleAddProvider))
	h.handle("POST /admin/providers/{name}/delete", h.admin(h.handleRemoveProvider))
	h.handle("GET /admin/audit", h.admin(h.handleAudit))
	h.handle("GET /admin/webhooks", h.admin(h.handleWebhooks))
	h.handle("POST /admin/webhooks/deliveries/{id}/replay", h.admin(h.handleReplayWebhook))
	h.handle("GET /admin/signout-all", h.admin(h.handleRevokeAllPage))
	h.handle("POST /admin/signout-all", h.admin(h.handleRevokeAll))
}

// contentSecurityPolicy allows scripts, styles and images from this origin
// only, no inline script or style, no plugins, forms posting to this origin
// only, and no framing by anyone.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// SecurityHeaders sets the headers every page and asset carries: no
// framing, no inline script, no referrer, nothing cached (pages hold
// personal data; handleAsset allows caching of the assets).
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

func (h *Handler) handleRoot(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// handleAsset serves the embedded style sheet and script. They hold
// nothing personal and may be cached for an hour.
func (h *Handler) handleAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	var ctype string
	switch path.Ext(name) {
	case ".css":
		ctype = "text/css; charset=utf-8"
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	default:
		h.notFound(w, r)
		return
	}
	b, err := fs.ReadFile(assetFS, "assets/"+name)
	if err != nil || strings.Contains(name, "/") {
		h.notFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Del("Pragma")
	w.Write(b)
}

// parseLayout parses the layout, with the functions every page may use.
func parseLayout() (*template.Template, error) {
	funcs := template.FuncMap{
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"isotime": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"device":  deviceName,
		"join":    strings.Join,
		"short": func(s string) string {
			if len(s) > 12 {
				return s[:12] + "…"
			}
			return s
		},
	}
	t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return t, nil
}

// parseTemplates parses each page together with the layout.
func parseTemplates() (map[string]*template.Template, error) {
	layout, err := parseLayout()
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	pages := make(map[string]*template.Template)
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		pages[strings.TrimSuffix(base, ".html")] = t
	}
	return pages, nil
}

// page is what every template receives.
type page struct {
	Title string
	// User is the signed-in user, nil on the sign-in pages.
	User *keycard.User
	// CSRF is the CSRF token of the session, or the pre-session token on
	// the sign-in and registration forms.
	CSRF string
	// Admin reports whether the user has the admin role (the console's
	// link is shown).
	Admin bool
	// Registration reports whether registration is open.
	Registration bool
	// Mail reports whether the server sends mail (the "Forgot your
	// password?" link is shown).
	Mail bool
	// Notice is a message about the last action, announced politely.
	Notice string
	// Error is a message about the whole form, announced at once.
	Error string
	// Section names the active navigation entry.
	Section string
	// Data is the page's own.
	Data any
}

// render writes a page with status.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	t, ok := h.pages[name]
	if !ok {
		panic("web: no template " + name) // a programming error
	}
	p.Registration = h.svc.Config().Registration
	p.Mail = h.svc.MailEnabled()
	if p.User != nil {
		p.Admin = p.User.HasRole(auth.RoleAdmin)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		h.log.ErrorContext(r.Context(), "web: template failed", "page", name, "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(b.String()))
	}
}

// message shows a page with one message, such as a 404.
func (h *Handler) message(w http.ResponseWriter, r *http.Request, status int, title, text string, user *keycard.User) {
	h.render(w, r, status, "message", &page{Title: title, User: user, Error: text})
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.message(w, r, http.StatusNotFound, "Not found", "There is no such page.", nil)
}

// serviceError shows a page for an error of auth.Service: its message and
// the status of its code. Internal errors are logged and shown as
// "Internal error."; other messages are written for users.
func (h *Handler) serviceError(w http.ResponseWriter, r *http.Request, err error, user *keycard.User) {
	status := browser.StatusOf(err)
	if status >= 500 {
		h.log.ErrorContext(r.Context(), "web: request failed", "path", r.URL.Path, "err", err)
	}
	h.message(w, r, status, http.StatusText(status), keycard.ErrorMessage(err), user)
}
