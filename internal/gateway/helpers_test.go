package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
	"github.com/keycard-auth/keycard/verifier"
)

const testIssuer = "https://issuer.test"

// testAuth is an Authenticator backed by a real verifier.Verifier over a
// fixed key (no revocation feed), whose readiness the test controls.
type testAuth struct {
	v        *verifier.Verifier
	key      *jose.Key
	notReady atomic.Pointer[error]
}

func newTestAuth(t *testing.T) *testAuth {
	t.Helper()
	key, err := jose.GenerateKey(jose.ES256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if key, err = key.WithKeyID(key.Thumbprint()); err != nil { // Keycard's kids are thumbprints; verifiers require one
		t.Fatal(err)
	}
	v, err := verifier.New(context.Background(), verifier.Config{Issuer: testIssuer, Keys: key.Public(), NoRevocationFeed: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return &testAuth{v: v, key: key}
}

func (a *testAuth) Authenticate(r *http.Request) (*verifier.Claims, error) {
	return a.v.AuthenticateFrom(r, verifier.Sources{WebSocket: true})
}

func (a *testAuth) Ready() error {
	if e := a.notReady.Load(); e != nil {
		return *e
	}
	return a.v.Ready()
}

func (a *testAuth) setReady(err error) {
	if err == nil {
		a.notReady.Store(nil)
		return
	}
	a.notReady.Store(&err)
}

// token signs an access token for sub with the given audience, scope
// (space-separated) and roles.
func (a *testAuth) token(t *testing.T, sub, aud, scope string, roles ...string) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.Sign(a.key, &jwt.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testIssuer, Subject: sub, Audience: jwt.Audience{aud},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: "jti-" + sub,
		},
		SessionID: "sid-" + sub, Scope: scope, Roles: roles,
	}, jwt.WithHeaderType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// upstream is an httptest server that records the requests it gets.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, r)
		u.mu.Unlock()
		w.Header().Set("X-Upstream", "yes")
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	t.Cleanup(u.Close)
	return u
}

// last returns the last request the upstream got, or nil.
func (u *upstream) last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		return nil
	}
	return u.reqs[len(u.reqs)-1]
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// mustParse parses a configuration or fails the test.
func mustParse(t *testing.T, yml string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(yml))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, yml)
	}
	return cfg
}

// header is the part of every test configuration before its routes.
const header = `
issuer: https://issuer.test
audience: api
client: {id: gw, secret_file: gw.secret}
`

// testGateway is a Gateway over a testAuth with a captured log.
type testGateway struct {
	*Gateway
	auth *testAuth
	log  *syncBuffer
}

func newTestGateway(t *testing.T, yml string) *testGateway {
	t.Helper()
	auth := newTestAuth(t)
	logBuf := &syncBuffer{}
	g, err := New(mustParse(t, yml), Options{Auth: auth, Logger: slog.New(slog.NewJSONHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return &testGateway{Gateway: g, auth: auth, log: logBuf}
}

// do serves one request to the gateway and returns the recorded answer.
func (g *testGateway) do(t *testing.T, method, target, bearer string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, vs := range hdr {
		r.Header[k] = vs
	}
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}

// syncBuffer is a goroutine-safe log sink.
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

// eventually retries cond every 10 ms for up to 30 s: a generous
// deadline, which catches a hang and not a slow machine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var errNotReady = errors.New("verifier: revocation feed not loaded yet")

// contains reports whether s holds every one of subs.
func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// testutilCount scrapes m and returns the sum of the samples of the named
// metric whose label set contains filter ("" for all).
func testutilCount(t *testing.T, m *Metrics, name, filter string) float64 {
	t.Helper()
	w := httptest.NewRecorder()
	m.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	sum := 0.0
	for _, line := range strings.Split(w.Body.String(), "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		metric, labels, _ := strings.Cut(series, "{")
		if metric != name || !strings.Contains(labels, filter) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}
