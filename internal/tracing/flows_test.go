package tracing_test

// The span trees and the secrets of real flows: a real auth server
// (server.Open on SQLite, its real handler on a loopback listener) and a
// real gateway in front of a service instrumented with otelhttp, each
// with an in-memory exporter.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/gateway"
	"github.com/keycard-auth/keycard/internal/server"
	"github.com/keycard-auth/keycard/verifier"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const (
	testPassword = "correct horse battery staple 7Q"
	rpRedirect   = "https://rp.example/cb"
)

// recorder is a tracer provider that keeps every span, sampling all.
type recorder struct {
	tp  *sdktrace.TracerProvider
	exp *tracetest.InMemoryExporter
}

func newRecorder(t *testing.T) *recorder {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return &recorder{tp: tp, exp: exp}
}

func (r *recorder) spans() tracetest.SpanStubs { return r.exp.GetSpans() }

// syncBuffer is a bytes.Buffer safe for the server's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// authServer is a running auth server whose spans rec records.
type authServer struct {
	url  string
	svc  *auth.Service
	rec  *recorder
	logs *syncBuffer
}

// newAuthServer starts an auth server as "keycard serve --dev" builds
// one (server.Open, App.Handler), with cheap password hashing, tracing
// into an in-memory exporter and a JSON log into a buffer.
func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	rec := newRecorder(t)
	logs := &syncBuffer{}
	ts := httptest.NewUnstartedServer(nil)
	c := server.Defaults()
	c.Data, c.Dev, c.Registration = t.TempDir(), true, true
	c.Argon2Memory, c.Argon2Iterations = 64, 1
	c.Issuer = "http://" + ts.Listener.Addr().String()
	c.Tracer = rec.tp
	c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	a, err := server.Open(context.Background(), c, server.Options{Keys: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	h, err := a.Handler()
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = h
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(h.StopFeeds)
	return &authServer{url: c.Issuer, svc: a.Service(), rec: rec, logs: logs}
}

// response is an answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d, body %s: %v", r.status, r.body, err)
	}
	return m
}

// do sends a request to base+path; body, when not nil, is sent as a
// form (url.Values) or as JSON.
func do(t *testing.T, method, rawURL string, body any, header http.Header) *response {
	t.Helper()
	var rd io.Reader
	h := http.Header{}
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd = strings.NewReader(b.Encode())
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
		h.Set("Content-Type", "application/json")
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: data}
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// remoteParent is a W3C traceparent of a sampled caller's span.
const (
	remoteTrace       = "4bf92f3577b34da6a3ce929d0e0e4736"
	remoteSpan        = "00f067aa0ba902b7"
	remoteTraceparent = "00-" + remoteTrace + "-" + remoteSpan + "-01"
)

// TestLoginSpanTree: a password login, sent with a caller's traceparent,
// is one server span named by its route that continues the caller's
// trace, with the password verification, the store calls and the
// signing as its children; the request's log line carries its trace id.
func TestLoginSpanTree(t *testing.T) {
	s := newAuthServer(t)
	if r := do(t, http.MethodPost, s.url+"/v1/users", map[string]string{"username": "alice", "password": testPassword}, nil); r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	s.rec.exp.Reset()
	r := do(t, http.MethodPost, s.url+"/v1/login", map[string]string{"username": "alice", "password": testPassword},
		http.Header{"Traceparent": {remoteTraceparent}})
	if r.status != http.StatusOK {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	spans := s.rec.spans()
	var root *tracetest.SpanStub
	for i := range spans {
		if spans[i].SpanKind == trace.SpanKindServer {
			if root != nil {
				t.Fatalf("two server spans: %v", names(spans))
			}
			root = &spans[i]
		}
	}
	if root == nil {
		t.Fatalf("no server span among %v", names(spans))
	}
	if root.Name != "POST /v1/login" {
		t.Errorf("got server span %q, want POST /v1/login", root.Name)
	}
	if got := root.SpanContext.TraceID().String(); got != remoteTrace {
		t.Errorf("got trace id %s, want the caller's %s", got, remoteTrace)
	}
	if got := root.Parent.SpanID().String(); got != remoteSpan || !root.Parent.IsRemote() {
		t.Errorf("got parent %s (remote %v), want the caller's span %s", got, root.Parent.IsRemote(), remoteSpan)
	}
	attrs := attributes(root)
	if attrs["http.route"] != "/v1/login" || attrs["http.request.method"] != "POST" || attrs["http.response.status_code"] != "200" {
		t.Errorf("server span attributes %v: want route /v1/login, method POST, status 200", attrs)
	}
	children := map[string]int{}
	for _, sp := range spans {
		if sp.SpanContext.SpanID() == root.SpanContext.SpanID() {
			continue
		}
		if sp.Parent.SpanID() != root.SpanContext.SpanID() || sp.SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Errorf("span %q: got parent %s in trace %s, want a child of the server span %s", sp.Name,
				sp.Parent.SpanID(), sp.SpanContext.TraceID(), root.SpanContext.SpanID())
		}
		if sp.SpanKind != trace.SpanKindInternal {
			t.Errorf("span %q: got kind %v, want internal", sp.Name, sp.SpanKind)
		}
		children[sp.Name]++
	}
	// One read before the hash and one write after it: the user with
	// their second factors, then the session with its audit event and
	// the key generation.
	want := map[string]int{"store.SignInUser": 1, auth.TracePasswordVerify: 1, "store.CreateSession": 1, auth.TraceSign: 1}
	if !maps.Equal(children, want) {
		t.Errorf("spans under the login's: got %v, want %v", children, want)
	}
	for _, sp := range spans {
		if sp.Name == "store.SignInUser" && attributes(&sp)["db.system.name"] != "sqlite" {
			t.Errorf("store span attributes %v: want db.system.name sqlite", attributes(&sp))
		}
	}

	// The request's log line carries the trace and span ids.
	var line map[string]any
	for l := range strings.Lines(s.logs.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["path"] == "/v1/login" {
			line = m
		}
	}
	if line == nil {
		t.Fatalf("no request log line for /v1/login in\n%s", s.logs)
	}
	if line["trace_id"] != remoteTrace || line["span_id"] != root.SpanContext.SpanID().String() {
		t.Errorf("log line %v: want trace_id %s and span_id %s", line, remoteTrace, root.SpanContext.SpanID())
	}
}

// TestHealthNotTraced: probes and scrapers make no spans.
func TestHealthNotTraced(t *testing.T) {
	s := newAuthServer(t)
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		do(t, http.MethodGet, s.url+p, nil, nil)
	}
	if spans := s.rec.spans(); len(spans) != 0 {
		t.Errorf("got spans %v for health and metrics, want none", names(spans))
	}
	// A route with an id in its path is named by its pattern.
	do(t, http.MethodGet, s.url+"/admin/v1/users/u-12345", nil, nil)
	if spans := s.rec.spans(); len(spans) != 1 || spans[0].Name != "GET /admin/v1/users/{id}" {
		t.Errorf("got spans %v, want one named GET /admin/v1/users/{id}", names(spans))
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attributes(s *tracetest.SpanStub) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// recorded returns every string a span records: its name, status
// description, attribute keys and values, events and links, and those of
// its resource.
func recorded(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name, s.Status.Description)
		for _, kv := range s.Attributes {
			out = append(out, string(kv.Key), kv.Value.String())
		}
		for _, e := range s.Events {
			out = append(out, e.Name)
			for _, kv := range e.Attributes {
				out = append(out, string(kv.Key), kv.Value.String())
			}
		}
		for _, l := range s.Links {
			for _, kv := range l.Attributes {
				out = append(out, string(kv.Key), kv.Value.String())
			}
			out = append(out, l.SpanContext.TraceState().String())
		}
		out = append(out, s.SpanContext.TraceState().String())
		if s.Resource != nil {
			for _, kv := range s.Resource.Attributes() {
				out = append(out, string(kv.Key), kv.Value.String())
			}
		}
	}
	return out
}

// leaks returns the secrets (name → value) that appear in what spans
// record.
func leaks(spans tracetest.SpanStubs, secrets map[string]string) []string {
	var found []string
	texts := recorded(spans)
	for name, secret := range secrets {
		if secret == "" {
			continue
		}
		for _, text := range texts {
			if strings.Contains(text, secret) {
				found = append(found, fmt.Sprintf("%s in %q", name, text))
				break
			}
		}
	}
	return found
}

// TestLeaksFindsSecrets: the check below can fail.
func TestLeaksFindsSecrets(t *testing.T) {
	rec := newRecorder(t)
	_, sp := rec.tp.Tracer("t").Start(context.Background(), "GET /cb")
	sp.SetAttributes(attribute.String("url.full", "https://rp.example/cb?code=abc123&state=s"))
	sp.End()
	if got := leaks(rec.spans(), map[string]string{"code": "abc123"}); len(got) != 1 {
		t.Errorf("got leaks %v, want the code found", got)
	}
}

// TestNoSecretsInSpans runs the flows that carry secrets — registration,
// password login, the refresh grant, the user API, the sign-in page and
// the authorization code flow with PKCE, the code exchange, userinfo,
// introspection, revocation, the client credentials grant and logout —
// and checks that no span's name, attribute, event or status holds any
// of the secrets sent or received: passwords, tokens, the code, its
// verifier, the state and nonce, client secrets, cookies, CSRF tokens,
// Authorization headers.
func TestNoSecretsInSpans(t *testing.T) {
	s := newAuthServer(t)
	ctx := context.Background()
	secrets := map[string]string{"password": testPassword}
	secret := func(name, v string) string {
		t.Helper()
		if v == "" {
			t.Fatalf("no %s", name)
		}
		secrets[name] = v
		return v
	}
	str := func(m map[string]any, k string) string { v, _ := m[k].(string); return v }

	// Registration, login, the user API, refresh.
	if r := do(t, http.MethodPost, s.url+"/v1/users", map[string]string{"username": "alice", "password": testPassword}, nil); r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	login := do(t, http.MethodPost, s.url+"/v1/login", map[string]string{"username": "alice", "password": testPassword}, nil).json(t)
	access := secret("access token", str(login, "access_token"))
	refresh := secret("refresh token", str(login, "refresh_token"))
	_, refreshSecret, _ := strings.Cut(refresh, ".")
	secret("refresh token's secret part", refreshSecret)
	if r := do(t, http.MethodGet, s.url+"/v1/me", nil, bearer(access)); r.status != http.StatusOK {
		t.Fatalf("me: %d %s", r.status, r.body)
	}
	wrong := do(t, http.MethodPost, s.url+"/v1/login", map[string]string{"username": "alice", "password": "wrong password 123"}, nil)
	secrets["wrong password"] = "wrong password 123"
	if wrong.status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", wrong.status)
	}
	rotated := do(t, http.MethodPost, s.url+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, nil).json(t)
	access2 := secret("rotated access token", str(rotated, "access_token"))
	secret("rotated refresh token", str(rotated, "refresh_token"))

	// An application signs alice in with the authorization code flow.
	app, appSecret, err := s.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "Orders app", Scopes: []string{"orders:read"},
		OAuth: keycard.OAuthSettings{GrantTypes: []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken}, FirstParty: true,
			RedirectURIs: []string{rpRedirect}}})
	if err != nil {
		t.Fatal(err)
	}
	secret("client secret", appSecret)
	verifierValue := secret("code verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
	state := secret("state", "st-Zq81xkP0aW")
	nonce := secret("nonce", "nn-Vb72HrTq")
	sum := sha256.Sum256([]byte(verifierValue))
	authorize := "/oauth/authorize?" + url.Values{"client_id": {app.ID}, "redirect_uri": {rpRedirect}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {state}, "nonce": {nonce}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}.Encode()
	b := &browserSession{t: t, base: s.url, cookies: map[string]string{}}
	toSignIn := b.get(authorize, http.Header{"Sec-Fetch-Site": {"cross-site"}})
	loc, _ := url.Parse(toSignIn.header.Get("Location"))
	if toSignIn.status != http.StatusSeeOther || loc == nil || loc.Path != "/signin" {
		t.Fatalf("authorize, signed out: %d %q", toSignIn.status, toSignIn.header.Get("Location"))
	}
	next := loc.Query().Get("next")
	form := b.get("/signin", nil)
	csrf := secret("CSRF token", csrfField.FindStringSubmatch(string(form.body))[1])
	signedIn := b.post("/signin", url.Values{"csrf_token": {csrf}, "username": {"alice"}, "password": {testPassword}, "next": {next}})
	if signedIn.status != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", signedIn.status, signedIn.body)
	}
	back := b.get(next, nil)
	cb, _ := url.Parse(back.header.Get("Location"))
	if back.status != http.StatusSeeOther || cb == nil || !strings.HasPrefix(cb.String(), rpRedirect) || cb.Query().Get("state") != state {
		t.Fatalf("authorize, signed in: %d %q", back.status, back.header.Get("Location"))
	}
	code := secret("authorization code", cb.Query().Get("code"))
	for name, v := range b.cookies {
		secret("cookie "+name, v)
	}
	basic := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(app.ID)+":"+url.QueryEscape(appSecret)))}}
	secret("client Authorization header", basic.Get("Authorization"))
	exchanged := do(t, http.MethodPost, s.url+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {rpRedirect}, "code_verifier": {verifierValue}}, basic)
	if exchanged.status != http.StatusOK {
		t.Fatalf("code exchange: %d %s", exchanged.status, exchanged.body)
	}
	tokens := exchanged.json(t)
	appAccess := secret("application access token", str(tokens, "access_token"))
	secret("ID token", str(tokens, "id_token"))
	secret("application refresh token", str(tokens, "refresh_token"))
	if r := do(t, http.MethodGet, s.url+"/oauth/userinfo", nil, bearer(appAccess)); r.status != http.StatusOK {
		t.Errorf("userinfo: %d %s", r.status, r.body)
	}
	// The code again: refused (and the grant it made revoked), and still
	// not recorded.
	if r := do(t, http.MethodPost, s.url+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {rpRedirect}, "code_verifier": {verifierValue}}, basic); r.status != http.StatusBadRequest {
		t.Errorf("code replay: %d, want 400", r.status)
	}
	if r := do(t, http.MethodPost, s.url+"/oauth/introspect", url.Values{"token": {access2}}, basic); r.status != http.StatusOK {
		t.Errorf("introspect: %d %s", r.status, r.body)
	}
	if r := do(t, http.MethodPost, s.url+"/oauth/revoke", url.Values{"token": {str(tokens, "refresh_token")}}, basic); r.status != http.StatusOK {
		t.Errorf("revoke: %d %s", r.status, r.body)
	}

	// A service client's own token.
	svcClient, svcSecret, err := s.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "Billing", Scopes: []string{"billing"}})
	if err != nil {
		t.Fatal(err)
	}
	secret("service client secret", svcSecret)
	cc := do(t, http.MethodPost, s.url+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {svcClient.ID}, "client_secret": {svcSecret}}, nil)
	if cc.status != http.StatusOK {
		t.Fatalf("client credentials: %d %s", cc.status, cc.body)
	}
	secret("service token", str(cc.json(t), "access_token"))

	if r := do(t, http.MethodPost, s.url+"/v1/logout", nil, bearer(access2)); r.status != http.StatusNoContent {
		t.Errorf("logout: %d %s", r.status, r.body)
	}

	spans := s.rec.spans()
	got := map[string]bool{}
	for _, sp := range spans {
		got[sp.Name] = true
	}
	for _, want := range []string{"POST /v1/login", "POST /oauth/token", "GET /oauth/authorize", "POST /signin", "GET /oauth/userinfo",
		"POST /oauth/introspect", "POST /oauth/revoke", "POST /v1/logout", auth.TracePasswordVerify, auth.TracePasswordHash, auth.TraceSign,
		"store.RotateRefreshToken", "store.Redeem"} {
		if !got[want] {
			t.Errorf("no %q span: the flows were not traced as expected (got %v)", want, names(spans))
		}
	}
	if found := leaks(spans, secrets); len(found) > 0 {
		t.Errorf("secrets recorded in spans:\n%s", strings.Join(found, "\n"))
	}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// browserSession keeps cookies across requests, as a browser does, and
// sends what a same-origin page sends.
type browserSession struct {
	t       *testing.T
	base    string
	cookies map[string]string
}

func (b *browserSession) send(method, path string, form url.Values, header http.Header) *response {
	b.t.Helper()
	h := http.Header{"Sec-Fetch-Site": {"same-origin"}}
	if method == http.MethodPost {
		h.Set("Origin", b.base)
	}
	for k, v := range header {
		h[k] = v
	}
	var cookies []string
	for name, v := range b.cookies {
		cookies = append(cookies, name+"="+v)
	}
	if len(cookies) > 0 {
		h.Set("Cookie", strings.Join(cookies, "; "))
	}
	var body any
	if form != nil {
		body = form
	}
	r := do(b.t, method, b.base+path, body, h)
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return r
}

func (b *browserSession) get(path string, header http.Header) *response {
	return b.send(http.MethodGet, path, nil, header)
}

func (b *browserSession) post(path string, form url.Values) *response {
	return b.send(http.MethodPost, path, form, nil)
}

// TestGatewaySpanTree: a request through the gateway continues the
// caller's trace in a server span named by the route, forwards in a
// client span whose context the upstream receives in traceparent, and a
// service that wraps verifier.Middleware in otelhttp continues that
// trace, verifying the token inside it. Neither the token nor the query
// string's code and state is recorded by anyone.
func TestGatewaySpanTree(t *testing.T) {
	s := newAuthServer(t)
	if r := do(t, http.MethodPost, s.url+"/v1/users", map[string]string{"username": "alice", "password": testPassword}, nil); r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	token, _ := do(t, http.MethodPost, s.url+"/v1/login", map[string]string{"username": "alice", "password": testPassword}, nil).json(t)["access_token"].(string)
	ctx := context.Background()

	// The upstream: a service of its own (its own tracer provider), with
	// otelhttp outside the verifier's middleware.
	upRec := newRecorder(t)
	upVerifier, err := verifier.New(ctx, verifier.Config{Issuer: s.url, Audience: auth.DefaultAudience, NoRevocationFeed: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(upVerifier.Close)
	var mu sync.Mutex
	var seen http.Header
	var handlerSpan trace.SpanContext
	work := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := verifier.FromContext(r.Context())
		if !ok {
			t.Error("the handler ran without verified claims")
		}
		_, sp := upRec.tp.Tracer("upstream").Start(r.Context(), "orders.list")
		sp.End()
		mu.Lock()
		seen, handlerSpan = r.Header.Clone(), sp.SpanContext()
		mu.Unlock()
		fmt.Fprintf(w, `{"subject":%q}`, c.Subject)
	})
	upstream := httptest.NewServer(otelhttp.NewHandler(upVerifier.Middleware()(work), "orders",
		otelhttp.WithTracerProvider(upRec.tp), otelhttp.WithPropagators(propagation.TraceContext{})))
	t.Cleanup(upstream.Close)

	gwRec := newRecorder(t)
	gwVerifier, err := verifier.New(ctx, verifier.Config{Issuer: s.url, NoRevocationFeed: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gwVerifier.Close)
	cfg, err := gateway.Parse(fmt.Appendf(nil, `
issuer: %s
audience: api
client: {id: gateway, secret_file: unused}
routes:
  - path: /orders/
    upstream: %s
`, s.url, upstream.URL))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, gateway.Options{Auth: gateway.VerifierAuth{V: gwVerifier}, Tracer: gwRec.tp})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(g)
	t.Cleanup(gw.Close)

	code, state := "gw-code-5TqZ", "gw-state-Lp0w"
	r := do(t, http.MethodGet, gw.URL+"/orders/list?code="+code+"&state="+state, nil,
		http.Header{"Authorization": {"Bearer " + token}, "Traceparent": {remoteTraceparent}})
	if r.status != http.StatusOK {
		t.Fatalf("through the gateway: %d %s", r.status, r.body)
	}

	var serverSpan, clientSpan *tracetest.SpanStub
	gwSpans := gwRec.spans()
	for i := range gwSpans {
		switch gwSpans[i].SpanKind {
		case trace.SpanKindServer:
			serverSpan = &gwSpans[i]
		case trace.SpanKindClient:
			clientSpan = &gwSpans[i]
		}
	}
	if len(gwSpans) != 2 || serverSpan == nil || clientSpan == nil {
		t.Fatalf("gateway spans %v: want a server span and a client span", names(gwSpans))
	}
	if serverSpan.Name != "GET /orders/" || serverSpan.SpanContext.TraceID().String() != remoteTrace || serverSpan.Parent.SpanID().String() != remoteSpan {
		t.Errorf("gateway server span %q in trace %s under %s: want GET /orders/ continuing %s under %s", serverSpan.Name,
			serverSpan.SpanContext.TraceID(), serverSpan.Parent.SpanID(), remoteTrace, remoteSpan)
	}
	if clientSpan.Parent.SpanID() != serverSpan.SpanContext.SpanID() || clientSpan.SpanContext.TraceID() != serverSpan.SpanContext.TraceID() {
		t.Errorf("gateway client span under %s, want under the server span %s", clientSpan.Parent.SpanID(), serverSpan.SpanContext.SpanID())
	}
	upURL, _ := url.Parse(upstream.URL)
	if a := attributes(clientSpan); a["server.address"] != upURL.Hostname() || a["server.port"] != upURL.Port() || a["http.response.status_code"] != "200" {
		t.Errorf("client span attributes %v: want the upstream's address and port and status 200", a)
	}

	mu.Lock()
	want := "00-" + remoteTrace + "-" + clientSpan.SpanContext.SpanID().String() + "-01"
	if got := seen.Get("Traceparent"); got != want {
		t.Errorf("the upstream got traceparent %q, want %q (the gateway's client span)", got, want)
	}
	if seen.Get("X-Keycard-Subject") == "" {
		t.Error("the upstream got no identity headers")
	}
	hs := handlerSpan
	mu.Unlock()

	upSpans := upRec.spans()
	var upServer *tracetest.SpanStub
	for i := range upSpans {
		if upSpans[i].SpanKind == trace.SpanKindServer {
			upServer = &upSpans[i]
		}
	}
	if upServer == nil {
		t.Fatalf("upstream spans %v: no server span", names(upSpans))
	}
	if upServer.SpanContext.TraceID().String() != remoteTrace || upServer.Parent.SpanID() != clientSpan.SpanContext.SpanID() {
		t.Errorf("upstream server span in trace %s under %s: want the gateway's trace under its client span %s",
			upServer.SpanContext.TraceID(), upServer.Parent.SpanID(), clientSpan.SpanContext.SpanID())
	}
	if hs.TraceID().String() != remoteTrace {
		t.Errorf("the handler behind verifier.Middleware ran in trace %s, want %s", hs.TraceID(), remoteTrace)
	}

	// No token: refused with the reason on the span, and nothing forwarded.
	gwRec.exp.Reset()
	if r := do(t, http.MethodGet, gw.URL+"/orders/list", nil, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", r.status)
	}
	if sp := gwRec.spans(); len(sp) != 1 || attributes(&sp[0])["keycard.auth.failure"] != "no_token" || attributes(&sp[0])["http.response.status_code"] != "401" {
		t.Errorf("refused request's spans %v (%v): want one with keycard.auth.failure no_token and status 401", names(sp), sp)
	}

	all := append(append(gwSpans, upSpans...), gwRec.spans()...)
	if found := leaks(all, map[string]string{"access token": token, "code": code, "state": state}); len(found) > 0 {
		t.Errorf("secrets recorded in spans:\n%s", strings.Join(found, "\n"))
	}
}
