package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/authtest"
	"github.com/keycard-auth/keycard/internal/passkey"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/metrics"
	"github.com/keycard-auth/keycard/internal/password"
)

const (
	testIssuer   = "https://auth.test"
	testPassword = "correct horse battery"
)

// clock is a settable test clock.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.t.Add(int64(d)) }

// fastHasher keeps tests quick; the parameters are still argon2id.
var fastHasher = &password.Hasher{Params: password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type fixtureOptions struct {
	noRegistration bool
	ready          func(context.Context) error
	degraded       func() []string
	reauthWithin   time.Duration                               // auth.Config.ReauthWithin
	limits         func(now func() time.Time) auth.LoginLimits // on the fixture's clock
	metrics        *metrics.Metrics
	cookies        bool        // Options.Cookies
	mailer         auth.Mailer // auth.Deps.Mailer; the fixture runs the mail worker
	requireMFA     []string    // auth.Config.RequireMFAForRoles
	// introspectionCache is auth.Config.IntrospectionCache.
	introspectionCache int
	// passkeys turns passkeys on: a relying party for testIssuer's host
	// and origin.
	passkeys bool
}

// fixture is a Server over a real auth.Service on SQLite in a temporary
// directory, served by httptest over loopback.
type fixture struct {
	svc    *auth.Service
	stores keycard.Stores // what svc is built on, for checks the API does not show
	server *Server
	clock  *clock
	logs   *syncBuffer
	url    string
	client *http.Client
}

func newFixture(t testing.TB, opts ...fixtureOptions) *fixture {
	t.Helper()
	var opt fixtureOptions
	if len(opts) > 0 {
		opt = opts[0]
	}
	clk := newClock()
	env := authtest.New(t, clk.Now)
	stores, sealer, km := env.Stores, env.Sealer, env.Keys
	logs := &syncBuffer{}
	logger := slog.New(WithRequestID(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	deps := auth.Deps{Stores: stores, Keys: km, Sealer: sealer, Hasher: fastHasher, Now: clk.Now, Logger: logger}
	serverOpt := Options{Logger: logger, Ready: opt.ready, Degraded: opt.degraded, Now: clk.Now, Cookies: opt.cookies}
	if opt.limits != nil {
		deps.LoginLimits = opt.limits(clk.Now)
	}
	if opt.metrics != nil {
		deps.Metrics, serverOpt.Metrics = opt.metrics, opt.metrics
	}
	deps.Mailer = opt.mailer
	if opt.passkeys {
		rpID, origin, err := passkey.Defaults(testIssuer)
		if err != nil {
			t.Fatal(err)
		}
		if deps.WebAuthn, err = passkey.New(passkey.Config{RPID: rpID, Origins: []string{origin}}); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := auth.NewService(deps, auth.Config{Issuer: testIssuer, Registration: !opt.noRegistration, ReauthWithin: opt.reauthWithin, RequireMFAForRoles: opt.requireMFA, IntrospectionCache: opt.introspectionCache})
	if err != nil {
		t.Fatal(err)
	}
	if opt.mailer != nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			svc.RunMail(ctx)
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	s := New(svc, serverOpt)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &fixture{svc: svc, stores: stores, server: s, clock: clk, logs: logs, url: ts.URL, client: ts.Client()}
}

// response is a response read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// decode unmarshals the body into v, failing the test if it is not JSON.
func (r *response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response body %q is not JSON: %v", r.body, err)
	}
}

// errorBody returns the body as an error body, failing the test unless
// it has the {"error","error_description"} shape with a JSON content type.
func (r *response) errorBody(t testing.TB) errorBody {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error response Content-Type %q, want application/json", ct)
	}
	var m map[string]any
	r.decode(t, &m)
	code, ok1 := m["error"].(string)
	desc, ok2 := m["error_description"].(string)
	if !ok1 || code == "" || !ok2 || desc == "" || len(m) != 2 {
		t.Errorf("error body %s, want exactly {\"error\":…, \"error_description\":…}", r.body)
	}
	return errorBody{Error: code, Description: desc}
}

// wantError fails the test unless the response is status with code.
func (r *response) wantError(t testing.TB, status int, code string) errorBody {
	t.Helper()
	if r.status != status {
		t.Errorf("got status %d, want %d (body %s)", r.status, status, r.body)
	}
	e := r.errorBody(t)
	if e.Error != code {
		t.Errorf("got error %q, want %q (body %s)", e.Error, code, r.body)
	}
	return e
}

// request describes a request for fixture.do.
type request struct {
	method string
	path   string
	header http.Header
	body   string
}

func (f *fixture) do(t testing.TB, req request) *response {
	t.Helper()
	r, err := http.NewRequest(req.method, f.url+req.path, strings.NewReader(req.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range req.header {
		r.Header[k] = vs
	}
	res, err := f.client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: body}
}

// postJSON posts a JSON body, with the access token when it is not empty.
func (f *fixture) postJSON(t testing.TB, path, token, body string) *response {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return f.do(t, request{method: http.MethodPost, path: path, header: h, body: body})
}

// postForm posts a form-encoded body.
func (f *fixture) postForm(t testing.TB, path, body string) *response {
	t.Helper()
	return f.do(t, request{method: http.MethodPost, path: path, header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, body: body})
}

// get sends a GET (or another body-less method) with the access token.
func (f *fixture) send(t testing.TB, method, path, token string) *response {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return f.do(t, request{method: method, path: path, header: h})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func credentialsJSON(user, pass string) string {
	return `{"username":` + jsonString(user) + `,"password":` + jsonString(pass) + `}`
}

// register creates a user over HTTP and returns its id.
func (f *fixture) register(t testing.TB, user, pass string) string {
	t.Helper()
	res := f.postJSON(t, "/v1/users", "", credentialsJSON(user, pass))
	if res.status != http.StatusCreated {
		t.Fatalf("register %s: status %d, body %s", user, res.status, res.body)
	}
	var u userResponse
	res.decode(t, &u)
	return u.ID
}

// login logs in over HTTP.
func (f *fixture) login(t testing.TB, user, pass string) tokenResponse {
	t.Helper()
	res := f.postJSON(t, "/v1/login", "", credentialsJSON(user, pass))
	if res.status != http.StatusOK {
		t.Fatalf("login %s: status %d, body %s", user, res.status, res.body)
	}
	var tok tokenResponse
	res.decode(t, &tok)
	return tok
}

// refresh uses a refresh token at the token endpoint.
func (f *fixture) refresh(t testing.TB, refreshToken string) *response {
	t.Helper()
	return f.postForm(t, "/oauth/token", "grant_type=refresh_token&refresh_token="+refreshToken)
}
