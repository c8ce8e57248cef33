// Package httpapi is the auth server's HTTP surface: the routes of
// DESIGN.md's HTTP contract over an auth.Service, in plain net/http.
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
	"sync"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
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
	// Now is the clock for request durations; nil means time.Now.
	Now func() time.Time
	// Metrics, when not nil, observes every request and is served at
	// GET /metrics.
	Metrics RequestMetrics
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
	svc     *auth.Service
	log     *slog.Logger
	ready   func(ctx context.Context) error
	now     func() time.Time
	metrics RequestMetrics
	handler http.Handler

	// feedStop is closed by StopFeeds to end long-polls and streams.
	feedStop     chan struct{}
	feedStopOnce sync.Once
}

var _ http.Handler = (*Server)(nil)

// New returns a Server serving svc's operations.
func New(svc *auth.Service, opt Options) *Server {
	s := &Server{svc: svc, log: slog.New(slog.DiscardHandler), ready: opt.Ready, now: opt.Now, metrics: opt.Metrics,
		feedStop: make(chan struct{})}
	if opt.Logger != nil {
		s.log = slog.New(WithRequestID(opt.Logger.Handler()))
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.handler = s.logRequests(s.recoverPanics(jsonErrorsFromMux(s.routes())))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// routes returns the route table: DESIGN.md's HTTP contract as far as it
// is built. docs/http-api.md documents each route.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()

	mux.HandleFunc("POST /v1/users", s.handleRegister)
	mux.HandleFunc("POST /v1/login", s.handleLogin)
	mux.HandleFunc("POST /oauth/token", s.handleToken)
	mux.HandleFunc("POST /oauth/introspect", s.handleIntrospect)
	mux.HandleFunc("POST /oauth/revoke", s.handleRevoke)

	mux.Handle("POST /v1/logout", s.bearer(s.handleLogout))
	mux.Handle("POST /v1/logout/all", s.bearer(s.handleLogoutAll))
	mux.Handle("GET /v1/sessions", s.bearer(s.handleSessions))
	mux.Handle("DELETE /v1/sessions/{id}", s.bearer(s.handleRevokeSession))
	mux.Handle("GET /v1/me", s.bearer(s.handleMe))
	mux.Handle("POST /v1/password", s.bearer(s.handleChangePassword))

	// The revocation feed and the admin revocations (revocations.go),
	// behind the admin API's role check (admin.go).
	mux.HandleFunc("GET /v1/revocations", s.handleRevocations)
	mux.HandleFunc("GET /v1/revocations/stream", s.handleRevocationStream)
	mux.Handle("POST /admin/v1/revoke-all", s.admin(s.handleRevokeAll))
	mux.Handle("POST /admin/v1/keys/{kid}/revoke", s.admin(s.handleRevokeKey))

	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.handleDiscovery)

	s.adminRoutes(mux) // admin.go

	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /readyz", s.handleReady)
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics)
	}
	return mux
}
