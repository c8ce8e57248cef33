// Package gateway is Keycard's verifying reverse proxy: it matches each
// request to a route of its configuration (longest path prefix wins),
// verifies the request's access token with a verifier.Verifier as the
// route asks, checks the route's audience, scopes and roles, and forwards
// the request to the route's upstream with the caller's identity in
// X-Keycard-* headers, which it always strips from what clients send.
//
// Its configuration (Config) is YAML; routes, the audience, the access log
// and the log level can be reloaded while it runs (Reload, Watch) with an
// atomic swap of the route table. It serves /healthz, /readyz and
// /metrics (Prometheus) itself. docs/gateway.md is the operator's guide.
package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
	"github.com/keycard-auth/keycard/internal/tracing"
	"github.com/keycard-auth/keycard/verifier"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Identity headers set on requests forwarded upstream. Every client-sent
// header whose name starts with X-Keycard- (in any case, and with _ for
// -) is removed first.
const (
	HeaderSubject = "X-Keycard-Subject" // the token's sub
	HeaderSession = "X-Keycard-Session" // its sid; absent for service clients
	HeaderScopes  = "X-Keycard-Scopes"  // its scopes, comma-joined; absent when none
	HeaderRoles   = "X-Keycard-Roles"   // its roles, comma-joined; absent when none
	// HeaderActor is the chain of actors of a token obtained by token
	// exchange (RFC 8693 act claim, verifier.Claims.Actors), comma-joined,
	// most recent first; absent when the subject acts for itself.
	HeaderActor = "X-Keycard-Actor"
	// HeaderKeyThumbprint is the RFC 7638 thumbprint of the DPoP key
	// the token is bound to and the request proved (RFC 9449); absent
	// for a bearer token.
	HeaderKeyThumbprint = "X-Keycard-Key-Thumbprint"
)

// identityPrefix is the lower-case prefix of the headers the gateway owns.
const identityPrefix = "x-keycard-"

// Route names of requests that no configured route served, for metrics
// and the access log.
const (
	routeUnmatched = "unmatched" // 404 or 405
	routeInvalid   = "invalid"   // refused before routing (bad path)
)

// Authenticator verifies the access token a request carries.
// *verifier.Verifier implements it.
type Authenticator interface {
	// Authenticate returns the verified claims of the request's token,
	// or an error that wraps a *verifier.Error (verifier.ErrNoToken when
	// the request has no token).
	Authenticate(r *http.Request) (*verifier.Claims, error)
	// Ready reports whether tokens can be verified now: keys and the
	// revocation snapshot are loaded and the feed is not stale.
	Ready() error
}

// Options are a Gateway's dependencies.
type Options struct {
	// Auth verifies tokens. Required. It should not check audiences
	// itself (verifier.Config.Audience empty): the gateway checks the
	// audience of each route, which a reload may change.
	Auth Authenticator
	// Logger receives the access log and the gateway's own messages; nil
	// discards them. Tokens never reach it.
	Logger *slog.Logger
	// Level, when not nil, is set to the configuration's log_level at
	// start and on every reload.
	Level *slog.LevelVar
	// Transport sends requests upstream; nil means a transport built
	// from the configuration (upstream_timeout, no proxy from the
	// environment).
	Transport http.RoundTripper
	// Now is the clock for durations; nil means time.Now.
	Now func() time.Time
	// Parse are the options every reload reads the configuration with
	// (the command line's --forward-auth).
	Parse ParseOptions
	// Tracer, when not nil, makes a server span of every request but
	// those of /healthz, /readyz and /metrics, and a client span of
	// every forward, whose context goes upstream in traceparent
	// (internal/tracing); the log's records then carry the trace id.
	Tracer trace.TracerProvider
}

// Gateway is the reverse proxy, an http.Handler. It is safe for
// concurrent use; Reload swaps its route table atomically, so a request
// is served wholly by the table it started with.
type Gateway struct {
	auth      Authenticator
	log       *slog.Logger
	level     *slog.LevelVar
	transport http.RoundTripper
	now       func() time.Time
	metrics   *Metrics
	table     atomic.Pointer[table]
	buffers   bufferPool
	reloadMu  sync.Mutex // serializes reloads
	parse     ParseOptions
	tracer    *tracing.Server // nil without tracing
}

// table is one configuration's routes, ready to serve.
type table struct {
	cfg    *Config
	routes []*route // longest path first
	// proxies are the load balancers whose X-Forwarded-Proto is believed
	// (behind_proxy); nil otherwise.
	proxies *tlsconfig.Proxies
}

// route is one configured route.
type route struct {
	name     string // RouteConfig.Name, for logs and metrics
	path     string
	folded   string   // foldPath(path), for confusable
	methods  []string // empty: every method
	auth     string
	scopes   []string
	anyScope []string
	roles    []string
	anyRole  []string
	audience string
	dpop     bool // DPoP-bound tokens only (dpop: required)
	stepUp   verifier.StepUp
	upstream *url.URL
	proxy    *httputil.ReverseProxy
}

// New returns a Gateway serving cfg, which must come from Parse or
// LoadConfig.
func New(cfg *Config, opt Options) (*Gateway, error) {
	if opt.Auth == nil {
		return nil, errors.New("gateway: Options.Auth is required")
	}
	g := &Gateway{auth: opt.Auth, log: opt.Logger, level: opt.Level, transport: opt.Transport, now: opt.Now, parse: opt.Parse}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil // upstreams are reached directly, whatever HTTP_PROXY says
		t.ResponseHeaderTimeout = cfg.UpstreamTimeout
		t.MaxIdleConnsPerHost = 64
		g.transport = t
	}
	g.metrics = newMetrics(g.auth.Ready)
	g.transport = &timedTransport{next: g.transport, metrics: g.metrics, now: g.now}
	if opt.Tracer != nil {
		g.tracer = tracing.NewServer(opt.Tracer)
		g.transport = tracing.Transport(opt.Tracer, g.transport)
		g.log = slog.New(tracing.LogHandler(g.log.Handler()))
	}
	t, err := g.build(cfg)
	if err != nil {
		return nil, err
	}
	g.table.Store(t)
	if g.level != nil {
		g.level.Set(cfg.Level())
	}
	return g, nil
}

// Config returns the configuration in effect.
func (g *Gateway) Config() *Config { return g.table.Load().cfg }

// build makes the route table of cfg.
func (g *Gateway) build(cfg *Config) (*table, error) {
	t := &table{cfg: cfg}
	if cfg.BehindProxy {
		p, err := tlsconfig.ParseProxies(cfg.TrustedProxyList())
		if err != nil { // Parse checked them
			return nil, fmt.Errorf("gateway: trusted_proxies: %w", err)
		}
		t.proxies = p
	}
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		u, err := url.Parse(rc.Upstream)
		if err != nil { // Parse checked it; this is a programming error
			return nil, fmt.Errorf("gateway: %s: upstream: %w", rc.where(), err)
		}
		rt := &route{
			name: rc.Name(), path: rc.Path, folded: foldPath(rc.Path), methods: rc.Methods, auth: rc.Auth,
			scopes: rc.Scopes, anyScope: rc.AnyScopes, roles: rc.Roles, anyRole: rc.AnyRoles,
			audience: rc.Audience, upstream: u, dpop: rc.DPoP == DPoPRequired,
			stepUp: verifier.StepUp{ACR: rc.ACR, MaxAge: rc.MaxAge},
		}
		if rt.audience == "" {
			rt.audience = cfg.Audience
		}
		rt.proxy = g.proxy(rt, rc.StripAuthorization)
		t.routes = append(t.routes, rt)
	}
	slices.SortStableFunc(t.routes, func(a, b *route) int { return len(b.path) - len(a.path) })
	return t, nil
}

// proxy returns the reverse proxy of rt.
func (g *Gateway) proxy(rt *route, stripAuthorization bool) *httputil.ReverseProxy {
	target := rt.upstream
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			stripIdentity(pr.Out.Header)
			// A browser's WebSocket token offer is consumed here: no
			// upstream may select (and echo) it.
			verifier.StripWebSocketToken(pr.Out.Header)
			if stripAuthorization {
				pr.Out.Header.Del("Authorization")
				pr.Out.Header.Del("DPoP")
			}
			if st := stateOf(pr.In.Context()); st != nil && st.claims != nil {
				setIdentity(pr.Out.Header, st.claims)
			}
		},
		Transport:  g.transport,
		BufferPool: &g.buffers,
		ErrorLog:   slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			g.upstreamError(w, r, rt, err)
		},
	}
}

// bufferPool holds the reverse proxies' body copy buffers, so that a
// request does not allocate (and clear) its own 32 KiB.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// stripIdentity removes every header that could pass for one of the
// gateway's: names starting with X-Keycard- in any case, and also with
// underscores for dashes, which some servers (CGI, WSGI, PHP) fold into
// the same variable.
func stripIdentity(h http.Header) {
	for k := range h {
		if len(k) >= len(identityPrefix) && strings.EqualFold(strings.ReplaceAll(k[:len(identityPrefix)], "_", "-"), identityPrefix) {
			delete(h, k)
		}
	}
}

// setIdentity sets the identity headers from verified claims.
func setIdentity(h http.Header, c *verifier.Claims) {
	h.Set(HeaderSubject, c.Subject)
	if c.SessionID != "" {
		h.Set(HeaderSession, c.SessionID)
	}
	if s := c.ScopeList(); len(s) > 0 {
		h.Set(HeaderScopes, strings.Join(s, ","))
	}
	if len(c.Roles) > 0 {
		h.Set(HeaderRoles, strings.Join(c.Roles, ","))
	}
	if a := c.Actors(); len(a) > 0 {
		h.Set(HeaderActor, strings.Join(a, ","))
	}
	if c.Confirmation.JKT != "" {
		// The verifier let a bound token through only with a proof of
		// its key.
		h.Set(HeaderKeyThumbprint, c.Confirmation.JKT)
	}
}

// state travels in a forwarded request's context from ServeHTTP to the
// Rewrite function and the transport.
type state struct {
	route  *route
	claims *verifier.Claims // nil: anonymous
}

type stateKey struct{}

func stateOf(ctx context.Context) *state {
	st, _ := ctx.Value(stateKey{}).(*state)
	return st
}

// ServeHTTP serves the reserved paths and proxies every other request by
// its route.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.serve(w, r, g.table.Load().cfg.MetricsListen == "")
}

// AdminHandler returns the handler of the separate metrics listener
// (metrics_listen): /healthz, /readyz and /metrics, and 404 for the rest.
func (g *Gateway) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := g.now()
		rec := &recorder{ResponseWriter: w}
		name := routeUnmatched
		if g.serveReserved(rec, r, true) {
			name = r.URL.Path
		} else {
			writeJSON(rec, http.StatusNotFound, "not_found", "This listener serves only /healthz, /readyz and /metrics.")
		}
		g.metrics.observe(name, rec.status(), g.now().Sub(start))
	})
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, withMetrics bool) {
	start := g.now()
	t := g.table.Load()
	rec := &recorder{ResponseWriter: w}
	name, subject := routeInvalid, ""
	var span trace.Span
	spanRoute := "" // the route's path, for the span's name
	if g.tracer != nil && !slices.Contains(reservedPaths, r.URL.Path) {
		r, span = g.tracer.Start(r)
	}
	defer func() {
		// Deferred, so that a request the proxy aborts (it panics with
		// http.ErrAbortHandler) is still counted and logged.
		d := g.now().Sub(start)
		g.metrics.observe(name, rec.status(), d)
		if span != nil {
			tracing.End(span, r.Method, spanRoute, rec.status())
		}
		if t.cfg.AccessLogOn() {
			g.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("path", logPath(r.URL.Path)),
				slog.String("route", name), slog.Int("status", rec.status()),
				slog.Float64("duration_ms", float64(d.Microseconds())/1000),
				slog.String("subject", subject), slog.String("remote_addr", remoteIP(r)))
		}
	}()

	if slices.Contains(reservedPaths, r.URL.Path) {
		name = r.URL.Path
		if !g.serveReserved(rec, r, withMetrics) {
			name = routeUnmatched
			writeJSON(rec, http.StatusNotFound, "not_found", "No route serves this path.")
		}
		return
	}
	if fa := t.cfg.ForwardAuth; fa != nil {
		if r.URL.Path == fa.Path || strings.HasPrefix(r.URL.Path, fa.Path+"/") {
			spanRoute = fa.Path
			name, subject = g.serveForwardAuth(rec, r, t) // forwardauth.go
			return
		}
		if fa.Only {
			name = routeUnmatched
			writeJSON(rec, http.StatusNotFound, "not_found", "This gateway answers forward-auth subrequests at "+fa.Path+" only.")
			return
		}
	}
	rt, claims, refusal := g.admit(r, t)
	if rt != nil {
		name, spanRoute = rt.name, rt.path
	} else if refusal.status != http.StatusBadRequest {
		name = routeUnmatched
	}
	if span != nil && refusal.err != nil {
		span.SetAttributes(attrAuthFailure.String(reason(refusal.err)))
	}
	if refusal.status != 0 {
		refusal.write(rec)
		return
	}
	if claims != nil {
		subject = claims.Subject
	}
	rt.proxy.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), stateKey{}, &state{route: rt, claims: claims})))
}

// refusal is admit's answer to a request it does not let through.
type refusal struct {
	status int // 0: let through
	code   string
	desc   string
	allow  string // for 405
	err    error  // the verifier's refusal, answered as verifier.WriteError says
}

func (f refusal) write(w http.ResponseWriter) {
	if f.err != nil {
		verifier.WriteError(w, f.err)
		return
	}
	if f.allow != "" {
		w.Header().Set("Allow", f.allow)
	}
	writeJSON(w, f.status, f.code, f.desc)
}

// admit decides a request by its route: its path must be well formed and
// not another spelling of a more specific route's, a route must serve its
// method and path, it may carry no token in its query, and its token must
// satisfy the route. It returns the route and the verified claims (nil:
// anonymous), or the refusal, with the route when one matched.
func (g *Gateway) admit(r *http.Request, t *table) (*route, *verifier.Claims, refusal) {
	if problem := checkRequestPath(r); problem != "" {
		return nil, nil, refusal{status: http.StatusBadRequest, code: "invalid_request", desc: problem}
	}
	rt, allow := t.match(r.Method, r.URL.Path)
	if t.confusable(r.URL.Path, rt) {
		return nil, nil, refusal{status: http.StatusBadRequest, code: "invalid_request",
			desc: "The path is another spelling of a route's path (letter case, or dots or spaces at the end of a segment); use the route's spelling."}
	}
	if rt == nil {
		if len(allow) > 0 {
			return nil, nil, refusal{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
				desc: "This route does not accept " + r.Method + ".", allow: strings.Join(allow, ", ")}
		}
		return nil, nil, refusal{status: http.StatusNotFound, code: "not_found", desc: "No route serves this path."}
	}
	// A token in the URL is refused on every route, auth: none included:
	// the upstream would be handed it, and logs would keep it.
	if err := verifier.CheckQuery(r); err != nil {
		g.metrics.authFailure(reason(err))
		return rt, nil, refusal{status: verifierStatus(err), err: err}
	}
	if rt.auth == AuthNone {
		return rt, nil, refusal{}
	}
	claims, err := g.authenticate(r, rt, t)
	if err != nil {
		g.metrics.authFailure(reason(err))
		return rt, nil, refusal{status: verifierStatus(err), err: err}
	}
	return rt, claims, refusal{}
}

// verifierStatus returns the status verifier.WriteError answers err with:
// its *verifier.Error's, else 401 invalid_token.
func verifierStatus(err error) int {
	if ve, ok := errors.AsType[*verifier.Error](err); ok {
		return ve.Status
	}
	return http.StatusUnauthorized
}

// authenticate verifies the request's token for rt: nil claims and nil
// error mean an anonymous request on an optional route.
func (g *Gateway) authenticate(r *http.Request, rt *route, t *table) (*verifier.Claims, error) {
	if _, ok := r.Header["Dpop"]; ok {
		// The proof names the URL the client used, which the verifier
		// cannot know behind this gateway.
		r = r.WithContext(verifier.WithPublicURL(r.Context(), t.publicURL(r)))
	}
	c, err := g.auth.Authenticate(r)
	if err != nil {
		if rt.auth == AuthOptional && errors.Is(err, verifier.ErrNoToken) {
			return nil, nil
		}
		return nil, err
	}
	if rt.dpop && c.Confirmation.JKT == "" {
		return nil, &verifier.Error{Status: http.StatusUnauthorized, Code: verifier.CodeInvalidToken,
			Description: "This resource needs a DPoP-bound access token, sent as Authorization: DPoP with a DPoP proof.",
			DPoPAlgs:    dpopAlgs(), Err: verifier.ErrDPoP}
	}
	if !slices.Contains(c.Audience, rt.audience) {
		return nil, &verifier.Error{Status: http.StatusUnauthorized, Code: verifier.CodeInvalidToken,
			Description: "The access token is not meant for this service.", Err: errWrongAudience}
	}
	if missing := missingAll(rt.scopes, c.HasScope); len(missing) > 0 {
		return nil, insufficient(fmt.Sprintf("This resource needs the scope(s) %s.", strings.Join(missing, ", ")), strings.Join(rt.scopes, " "), verifier.ErrInsufficientScope)
	}
	if len(rt.anyScope) > 0 && !slices.ContainsFunc(rt.anyScope, c.HasScope) {
		return nil, insufficient(fmt.Sprintf("This resource needs one of the scopes %s.", strings.Join(rt.anyScope, ", ")), strings.Join(rt.anyScope, " "), verifier.ErrInsufficientScope)
	}
	if missing := missingAll(rt.roles, c.HasRole); len(missing) > 0 {
		return nil, insufficient(fmt.Sprintf("This resource needs the role(s) %s.", strings.Join(missing, ", ")), "", errMissingRole)
	}
	if len(rt.anyRole) > 0 && !slices.ContainsFunc(rt.anyRole, c.HasRole) {
		return nil, insufficient(fmt.Sprintf("This resource needs one of the roles %s.", strings.Join(rt.anyRole, ", ")), "", errMissingRole)
	}
	// Last: a user who signs in again for it should not then meet a
	// refusal that no sign-in could have helped.
	if err := rt.stepUp.Check(c, g.now()); err != nil {
		return nil, err
	}
	return c, nil
}

// dpopAlgs returns the algorithms of the DPoP challenge of a route that
// requires DPoP: those the verifier accepts by default.
func dpopAlgs() string { return strings.Join((&dpop.Checker{}).AlgorithmNames(), " ") }

// originalURLKey is the context key of the original request's URL in a
// forward-auth subrequest (forwardauth.go).
type originalURLKey struct{}

// publicURL returns the URL the client sent r to, without its query:
// public_url and r's path; for a forward-auth subrequest, the original
// request's URL; else r's scheme (https over TLS or from a trusted proxy
// saying so), host and path.
func (t *table) publicURL(r *http.Request) string {
	if t.cfg.PublicURL != "" {
		return t.cfg.PublicURL + r.URL.EscapedPath()
	}
	if u, ok := r.Context().Value(originalURLKey{}).(string); ok {
		return u
	}
	scheme := "http"
	if tlsconfig.IsHTTPS(r, t.proxies) {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

// Causes of the gateway's own refusals, for the log and metrics.
var (
	errWrongAudience = fmt.Errorf("%w: wrong audience for this route", verifier.ErrInvalidToken)
	errMissingRole   = fmt.Errorf("%w: missing role", verifier.ErrInsufficientScope)
)

// insufficient is a 403 insufficient_scope refusal (RFC 6750 section
// 3.1); scope lists the scopes the resource needs, "" for roles.
func insufficient(desc, scope string, cause error) *verifier.Error {
	return &verifier.Error{Status: http.StatusForbidden, Code: verifier.CodeInsufficientScope,
		Description: desc, Scope: scope, Err: cause}
}

// missingAll returns the entries of want for which has is false.
func missingAll(want []string, has func(string) bool) []string {
	var missing []string
	for _, w := range want {
		if !has(w) {
			missing = append(missing, w)
		}
	}
	return missing
}

// match returns the route serving method and path: among the routes whose
// prefix matches path and which accept method, the one with the longest
// path. When routes match the path but none accepts the method, allow
// lists the methods they accept.
func (t *table) match(method, path string) (rt *route, allow []string) {
	for _, r := range t.routes {
		if !r.matchesPath(path) {
			continue
		}
		if len(r.methods) == 0 || slices.Contains(r.methods, method) {
			return r, nil
		}
		for _, m := range r.methods {
			if !slices.Contains(allow, m) {
				allow = append(allow, m)
			}
		}
	}
	return nil, allow
}

// matchesPath reports whether rt's path covers p: a path ending in /
// covers everything under it; any other path covers itself and
// everything under path + "/".
func (rt *route) matchesPath(p string) bool { return pathCovers(rt.path, p) }

// serveReserved answers the gateway's own paths; it reports false for a
// path it does not serve here.
func (g *Gateway) serveReserved(w http.ResponseWriter, r *http.Request, withMetrics bool) bool {
	if r.URL.Path == PathMetrics && !withMetrics {
		return false
	}
	switch r.URL.Path {
	case PathHealth, PathReady, PathMetrics:
	default:
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use GET.")
		return true
	}
	switch r.URL.Path {
	case PathHealth:
		w.Header().Set("Cache-Control", "no-store")
		writeJSONBody(w, http.StatusOK, map[string]string{"status": "ok"})
	case PathReady:
		w.Header().Set("Cache-Control", "no-store")
		if err := g.auth.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, "unavailable", err.Error())
			return true
		}
		writeJSONBody(w, http.StatusOK, map[string]string{"status": "ready"})
	case PathMetrics:
		g.metrics.ServeHTTP(w, r)
	}
	return true
}

// upstreamError answers a failed forward: 504 when the upstream timed
// out, 502 otherwise. The log gets the route, the upstream and the cause,
// without the query string (which the client chose, and might hold a
// token).
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, rt *route, err error) {
	cause := err
	if ue, ok := errors.AsType[*url.Error](err); ok {
		cause = ue.Err // its URL carries the query string
	}
	if r.Context().Err() != nil {
		// The client went away; nobody reads the answer.
		g.log.Debug("client gone before the upstream answered", "route", rt.name, "method", r.Method, "path", logPath(r.URL.Path))
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	g.log.Warn("upstream error", "route", rt.name, "upstream", rt.upstream.Redacted(),
		"method", r.Method, "path", logPath(r.URL.Path), "err", cause.Error())
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		writeJSON(w, http.StatusGatewayTimeout, "gateway_timeout", "The upstream service did not answer in time.")
		return
	}
	writeJSON(w, http.StatusBadGateway, "bad_gateway", "The upstream service is unavailable.")
}

// reason is the auth failure label of err.
func reason(err error) string {
	switch {
	case errors.Is(err, verifier.ErrNoToken):
		return "no_token"
	case errors.Is(err, verifier.ErrMalformedRequest):
		return "malformed_request"
	case errors.Is(err, verifier.ErrRevoked):
		return "revoked"
	case errors.Is(err, errWrongAudience):
		return "wrong_audience"
	case errors.Is(err, errMissingRole):
		return "insufficient_role"
	case errors.Is(err, verifier.ErrInsufficientScope):
		return "insufficient_scope"
	case errors.Is(err, verifier.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, verifier.ErrDPoP):
		return "dpop"
	case errors.Is(err, verifier.ErrInsufficientAuthentication):
		return "insufficient_user_authentication"
	case errors.Is(err, verifier.ErrInvalidToken):
		return "invalid_token"
	}
	return "other"
}

// attrAuthFailure is the span attribute of a refused request's reason
// (one of authReasons).
const attrAuthFailure = attribute.Key("keycard.auth.failure")

// authReasons are the label values of reason, for initialization.
var authReasons = []string{"no_token", "malformed_request", "revoked", "wrong_audience", "insufficient_role",
	"insufficient_scope", "unavailable", "dpop", "insufficient_user_authentication", "invalid_token", "other"}

// logPath returns a path for the log: at most 256 bytes of it.
func logPath(p string) string {
	if len(p) > 256 {
		return p[:256] + "…"
	}
	return p
}

// remoteIP returns the client's address without the port.
func remoteIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// writeJSON writes the error body {"error","error_description"} of
// Keycard's HTTP contract.
func writeJSON(w http.ResponseWriter, status int, code, desc string) {
	writeJSONBody(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// recorder remembers the status of a response. It passes Hijack (for
// protocol upgrades) and, through Unwrap, Flush on to the writer it
// wraps.
type recorder struct {
	http.ResponseWriter
	code     int
	hijacked bool
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && code >= 200 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Hijack takes over the connection: the proxy does so to pass a 101
// Switching Protocols answer and the upgraded stream through.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.hijacked = true
	}
	return c, brw, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// status returns the status code sent: 101 for an upgraded connection,
// 200 when the handler wrote nothing.
func (r *recorder) status() int {
	switch {
	case r.hijacked:
		return http.StatusSwitchingProtocols
	case r.code == 0:
		return http.StatusOK
	}
	return r.code
}
