// Package httpapi is the auth server's HTTP surface: the routes of
// docs/architecture.md's HTTP contract over an auth.Service, in plain net/http.
//
// Every error is answered with the body {"error":…,"error_description":…}
// (RFC 6749 section 5.2), the code taken from RFC 6749 or RFC 6750 where
// one applies; the mapping from keycard error codes to HTTP statuses is in
// one function, errorResponse. No input is meant to produce a 5xx: a 500
// means a real internal failure, whose details go to the log only.
//
// The log gets one line per request (method, path without the query
// string, status, duration, request id) and the details of internal
// errors. Tokens, passwords and Authorization headers never reach it.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
	"github.com/keycard-auth/keycard/internal/tracing"
	"go.opentelemetry.io/otel/trace"
)

// MaxBodyBytes is the largest request body accepted, 64 KiB. A larger one
// is answered 413.
const MaxBodyBytes = 64 << 10

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives the request log and internal errors; nil discards.
	// The server adds the request id to each record (see WithRequestID).
	Logger *slog.Logger
	// Ready reports whether the server can serve, for GET /readyz; it is
	// called with a deadline of ReadyTimeout. nil means always ready. The
	// text of its error is shown in the 503 response, so it must not hold
	// secrets.
	Ready func(ctx context.Context) error
	// Degraded lists what currently works in a reduced way (such as
	// login throttling on per-instance limits while Redis is
	// unreachable), for the detail of GET /readyz, which stays 200. nil
	// means never. It must be cheap and must not return secrets.
	Degraded func() []string
	// Now is the clock for request durations; nil means time.Now.
	Now func() time.Time
	// Metrics, when not nil, observes every request and is served at
	// GET /metrics.
	Metrics RequestMetrics
	// Cookies turns cookie mode on (cookies.go): a login may ask for its
	// tokens in HttpOnly cookies, the user API accepts the access
	// cookie, the token endpoint the refresh cookie, and every
	// state-changing cookie request must pass the CSRF defence. Only the
	// issuer's origin may make cookie requests.
	Cookies bool
	// CSRFKey binds CSRF tokens to sessions in cookie mode; 32 random
	// bytes or more. It must be the same on every instance and across
	// restarts, or browsers' CSRF tokens stop working; nil gives this
	// Server a random key of its own.
	CSRFKey []byte
	// Origins are the origins whose pages may make cookie requests: the
	// issuer's and any other the pages are served under (a gateway in
	// front). The zero value allows the issuer's origin alone.
	Origins browser.Origins
	// Pages, when not nil, serves the web pages (package web) at the
	// patterns it lists, beside the API. Its patterns must not overlap
	// the API's routes (New panics if they do).
	Pages Pages
	// Tracer, when not nil, makes a server span of every request but
	// those of /healthz, /readyz and /metrics, named by its route
	// (internal/tracing); nil makes none.
	Tracer trace.TracerProvider
	// DPoP checks the DPoP proofs of token requests (RFC 9449); its
	// replay cache is this instance's. nil gives the Server a checker
	// with the defaults of package dpop.
	DPoP *dpop.Checker
	// Providers lists the upstream identity providers users may sign in
	// with, for GET /admin/v1/federation/providers (docs/federation.md);
	// nil lists none. Federation, when set, replaces it.
	Providers func() []Provider
	// Federation lists, adds, changes and removes upstream identity
	// providers for /admin/v1/federation/providers (docs/federation.md);
	// nil leaves the list of Providers only.
	Federation FederationAdmin
}

// Provider describes an upstream identity provider to admins; it holds
// no secret.
type Provider struct {
	Name        string              `json:"name"`
	DisplayName string              `json:"display_name"`
	Kind        string              `json:"kind"`
	Issuer      string              `json:"issuer,omitempty"`
	ClientID    string              `json:"client_id"`
	CallbackURL string              `json:"callback_url"`
	Domains     []string            `json:"domains"`
	Roles       map[string][]string `json:"roles"`
	CreateUsers bool                `json:"create_users"`
	Hidden      bool                `json:"hidden"`
	// Source is "config" for a provider of the configuration file
	// (read-only through the API) and "api" for one added at run time.
	Source                string         `json:"source,omitempty"`
	AuthorizationEndpoint string         `json:"authorization_endpoint,omitempty"`
	TokenEndpoint         string         `json:"token_endpoint,omitempty"`
	UserinfoEndpoint      string         `json:"userinfo_endpoint,omitempty"`
	UseUserinfo           bool           `json:"use_userinfo"`
	AuthMethod            string         `json:"auth_method,omitempty"`
	Scopes                []string       `json:"scopes"`
	Claims                ProviderClaims `json:"claims"`
	// HasClientSecret tells whether the provider has a client secret;
	// the secret itself is never shown.
	HasClientSecret bool `json:"has_client_secret"`
}

// ProviderClaims maps a provider's claims to Keycard's fields.
type ProviderClaims struct {
	Subject       string `json:"subject,omitempty"`
	Email         string `json:"email,omitempty"`
	EmailVerified string `json:"email_verified,omitempty"`
	Username      string `json:"username,omitempty"`
	Groups        string `json:"groups,omitempty"`
}

// ProviderInput is the body of POST /admin/v1/federation/providers and
// PUT /admin/v1/federation/providers/{name}: the fields of a provider in
// the configuration file (docs/federation.md). ClientSecret nil (absent)
// keeps a provider's secret on PUT.
type ProviderInput struct {
	Name                  string              `json:"name"`
	DisplayName           string              `json:"display_name"`
	Kind                  string              `json:"kind"`
	Issuer                string              `json:"issuer"`
	AuthorizationEndpoint string              `json:"authorization_endpoint"`
	TokenEndpoint         string              `json:"token_endpoint"`
	UserinfoEndpoint      string              `json:"userinfo_endpoint"`
	UseUserinfo           bool                `json:"use_userinfo"`
	ClientID              string              `json:"client_id"`
	ClientSecret          *string             `json:"client_secret"`
	AuthMethod            string              `json:"auth_method"`
	Scopes                []string            `json:"scopes"`
	Claims                ProviderClaims      `json:"claims"`
	Roles                 map[string][]string `json:"roles"`
	Domains               []string            `json:"domains"`
	CreateUsers           bool                `json:"create_users"`
	Hidden                bool                `json:"hidden"`
}

// FederationAdmin manages the upstream identity providers for the admin
// API (internal/server implements it over internal/federation and
// auth.Service). Its errors are service errors: EINVALID for a provider
// that fails the configuration file's checks, ECONFLICT for a name taken
// or a provider of the configuration file, ENOTFOUND.
type FederationAdmin interface {
	List(ctx context.Context) ([]Provider, error)
	Create(ctx context.Context, by auth.Actor, in *ProviderInput) (Provider, error)
	Update(ctx context.Context, by auth.Actor, name string, in *ProviderInput) (Provider, error)
	Delete(ctx context.Context, by auth.Actor, name string) error
}

// Pages is a handler of web pages and the net/http.ServeMux patterns it
// serves (web.Handler implements it).
type Pages interface {
	http.Handler
	Patterns() []string
}

// RequestMetrics observes the requests a Server answers and serves the
// metrics (internal/metrics implements it).
type RequestMetrics interface {
	// ObserveRequest is called once per request with the pattern of the
	// route that matched (http.Request.Pattern, "" for none), the status
	// and the time taken.
	ObserveRequest(route string, status int, d time.Duration)
	// ServeHTTP answers GET /metrics.
	http.Handler
}

// ReadyTimeout bounds one call of Options.Ready.
const ReadyTimeout = 5 * time.Second

// Server is the auth server's http.Handler. It is safe for concurrent use.
type Server struct {
	svc        *auth.Service
	log        *slog.Logger
	ready      func(ctx context.Context) error
	degraded   func() []string
	now        func() time.Time
	metrics    RequestMetrics
	handler    http.Handler
	cookies    *cookieMode // nil unless cookie mode is on (cookies.go)
	pages      Pages       // nil without pages
	providers  func() []Provider
	federation FederationAdmin

	// feedStop is closed by StopFeeds to end long-polls and streams.
	feedStop     chan struct{}
	feedStopOnce sync.Once

	// patterns are the route patterns registered, in order (see handle).
	patterns []string

	// tracer makes the requests' spans; nil without tracing.
	tracer *tracing.Server

	// dpop checks the DPoP proofs of token requests (dpop.go).
	dpop *dpop.Checker
}

var _ http.Handler = (*Server)(nil)

// New returns a Server serving svc's operations.
func New(svc *auth.Service, opt Options) *Server {
	s := &Server{svc: svc, log: slog.New(slog.DiscardHandler), ready: opt.Ready, degraded: opt.Degraded, now: opt.Now, metrics: opt.Metrics,
		feedStop: make(chan struct{}), cookies: newCookieMode(svc, opt), pages: opt.Pages,
		tracer: tracing.NewServer(opt.Tracer), dpop: opt.DPoP, providers: opt.Providers, federation: opt.Federation}
	if s.dpop == nil {
		s.dpop = &dpop.Checker{}
	}
	if opt.Logger != nil {
		s.log = slog.New(WithRequestID(opt.Logger.Handler()))
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.handler = s.logRequests(s.recoverPanics(s.canonicalPaths(jsonErrorsFromMux(s.routes()))))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// canonicalPaths refuses (400) a request with a side effect whose path
// ServeMux would clean. ServeMux answers a path with "." or ".."
// segments or "//" with a 307 to the cleaned path, which keeps the
// method: DELETE /admin/v1/users/ID/passkeys/.. would come back as
// DELETE /admin/v1/users/ID, and clients that follow redirects (Go's,
// fetch) send it again with the Authorization header. A path segment
// taken from elsewhere (an upstream subject, a passkey id) must never
// climb to another resource. GET and HEAD keep the redirect.
func (s *Server) canonicalPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodConnect && !cleanRequestPath(r.URL.EscapedPath()) {
			s.writeError(w, r, badRequest("The request path is not in canonical form."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cleanRequestPath reports whether p (escaped) has no empty, "." or ".."
// segment, which ServeMux would redirect away from.
func cleanRequestPath(p string) bool {
	if p == "" || p[0] != '/' {
		return p == "" || p == "*"
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." || (seg == "" && i != len(segs)-1) {
			return false
		}
	}
	return true
}

// routes returns the route table: docs/architecture.md's HTTP contract as far as it
// is built. docs/http-api.md documents each route.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()

	s.handle(mux, "POST /v1/users", http.HandlerFunc(s.handleRegister))
	s.handle(mux, "POST /v1/login", http.HandlerFunc(s.handleLogin))
	s.handle(mux, "POST /oauth/token", publicCORS(s.handleToken))
	s.handle(mux, "POST /oauth/introspect", http.HandlerFunc(s.handleIntrospect))
	s.handle(mux, "POST /oauth/revoke", publicCORS(s.handleRevoke))
	s.handle(mux, "POST /oauth/par", http.HandlerFunc(s.handlePAR))
	s.handle(mux, "POST /oauth/device_authorization", http.HandlerFunc(s.handleDeviceAuthorization))
	s.handle(mux, "GET /oauth/userinfo", publicCORS(s.handleUserInfo))
	s.handle(mux, "POST /oauth/userinfo", publicCORS(s.handleUserInfo))

	s.handle(mux, "POST /v1/logout", s.bearer(s.handleLogout))
	s.handle(mux, "POST /v1/logout/all", s.bearer(s.handleLogoutAll))
	s.handle(mux, "GET /v1/sessions", s.bearer(s.handleSessions))
	s.handle(mux, "DELETE /v1/sessions/{id}", s.bearer(s.handleRevokeSession))
	s.handle(mux, "GET /v1/me", s.bearer(s.handleMe))
	s.handle(mux, "POST /v1/password", s.bearer(s.handleChangePassword))
	s.handle(mux, "PUT /v1/me/email", s.bearer(s.handleChangeEmail))
	s.handle(mux, "POST /v1/email/verify", http.HandlerFunc(s.handleVerifyEmail))
	s.handle(mux, "POST /v1/password/reset-request", http.HandlerFunc(s.handleResetRequest))
	s.handle(mux, "POST /v1/password/reset", http.HandlerFunc(s.handleReset))

	// The revocation feed and the admin revocations (revocations.go),
	// behind the admin API's role check (admin.go).
	s.handle(mux, "GET /v1/revocations", http.HandlerFunc(s.handleRevocations))
	s.handle(mux, "GET /v1/revocations/stream", http.HandlerFunc(s.handleRevocationStream))
	s.handle(mux, "POST /admin/v1/revoke-all", s.admin(s.handleRevokeAll))
	s.handle(mux, "POST /admin/v1/keys/{kid}/revoke", s.admin(s.handleRevokeKey))

	s.wellKnownRoutes(mux) // wellknown.go

	s.adminRoutes(mux)   // admin.go
	s.mfaRoutes(mux)     // mfa.go
	s.passkeyRoutes(mux) // passkeys.go
	s.webhookRoutes(mux) // webhooks.go

	s.handle(mux, "GET /healthz", http.HandlerFunc(s.handleHealth))
	s.handle(mux, "GET /readyz", http.HandlerFunc(s.handleReady))
	if s.metrics != nil {
		s.handle(mux, "GET /metrics", s.metrics)
	}
	// The pages are not API routes: they are left out of s.patterns,
	// which docs/openapi.yaml must match.
	if s.pages != nil {
		for _, p := range s.pages.Patterns() {
			mux.Handle(p, s.pages)
		}
	}
	return mux
}

// handle registers h for pattern on mux and records the pattern, so that
// the route table can be compared with docs/openapi.yaml. Every route is
// registered through it.
func (s *Server) handle(mux *http.ServeMux, pattern string, h http.Handler) {
	mux.Handle(pattern, h)
	s.patterns = append(s.patterns, pattern)
}

// routePatterns returns the patterns of the routes registered, in order.
func (s *Server) routePatterns() []string { return append([]string(nil), s.patterns...) }
