package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// boundToken signs an access token bound to the DPoP key of p.
func (a *testAuth) boundToken(t *testing.T, sub string, p *dpop.Prover) string {
	t.Helper()
	now := time.Now()
	c := &jwt.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testIssuer, Subject: sub, Audience: jwt.Audience{"api"},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: "jti-bound-" + sub,
		},
		SessionID: "sid-" + sub,
	}
	c.Confirmation.JKT = p.Thumbprint()
	tok, err := jwt.Sign(a.key, c, jwt.WithHeaderType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newGatewayProver(t *testing.T) *dpop.Prover {
	t.Helper()
	p, err := dpop.GenerateProver(jose.ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func proofFor(t *testing.T, p *dpop.Prover, method, url, token string) string {
	t.Helper()
	s, err := p.Proof(method, url, token, "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGatewayDPoP: a DPoP-bound token passes with a proof for the URL
// the client used at the gateway (public_url), and the upstream learns
// the key's thumbprint; the same token as Bearer, a proof for the
// upstream's URL, and a bearer token on a dpop: required route are
// refused with a DPoP challenge.
func TestGatewayDPoP(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+`public_url: https://api.example.com
routes:
  - path: /weather/
    upstream: `+up.URL+`
  - path: /strict/
    upstream: `+up.URL+`
    dpop: required
`)
	key := newGatewayProver(t)
	tok := g.auth.boundToken(t, "alice", key)
	send := func(path, scheme, token, proof string, extra http.Header) *httptest.ResponseRecorder {
		h := http.Header{"Authorization": {scheme + " " + token}}
		if proof != "" {
			h.Set("DPoP", proof)
		}
		for k, v := range extra {
			h[k] = v
		}
		return g.do(t, "GET", path, "", h)
	}
	forged := http.Header{"X-Keycard-Key-Thumbprint": {"forged"}}
	w := send("/weather/today?x=1", "DPoP", tok, proofFor(t, key, "GET", "https://api.example.com/weather/today", tok), forged)
	if w.Code != 200 {
		t.Fatalf("key holder: got %d %s", w.Code, w.Body)
	}
	if got := up.last().Header.Get(HeaderKeyThumbprint); got != key.Thumbprint() {
		t.Errorf("upstream got %s %q, want %q", HeaderKeyThumbprint, got, key.Thumbprint())
	}
	w = send("/strict/x", "DPoP", tok, proofFor(t, key, "GET", "https://api.example.com/strict/x", tok), nil)
	if w.Code != 200 {
		t.Errorf("dpop: required with a proof: got %d %s", w.Code, w.Body)
	}
	bearer := g.auth.token(t, "bob", "api", "")
	for name, w := range map[string]*httptest.ResponseRecorder{
		"bound token as Bearer":        send("/weather/today", "Bearer", tok, "", nil),
		"proof for the upstream's URL": send("/weather/today", "DPoP", tok, proofFor(t, key, "GET", up.URL+"/weather/today", tok), nil),
		"proof for the listener's URL": send("/weather/today", "DPoP", tok, proofFor(t, key, "GET", "http://example.com/weather/today", tok), nil),
		"bearer on dpop: required":     send("/strict/x", "Bearer", bearer, "", nil),
	} {
		t.Run(name, func(t *testing.T) {
			if w.Code != 401 || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "DPoP ") {
				t.Errorf("got %d, WWW-Authenticate %q; want 401 with a DPoP challenge", w.Code, w.Header().Get("WWW-Authenticate"))
			}
		})
	}
	if got := testutilCount(t, g.Metrics(), "keycard_gateway_auth_failures_total", `reason="dpop"`); got != 4 {
		t.Errorf("auth failures for reason dpop: got %v, want 4", got)
	}
	if w := send("/weather/today", "Bearer", bearer, "", forged); w.Code != 200 || up.last().Header.Get(HeaderKeyThumbprint) != "" {
		t.Errorf("a bearer token: got %d, upstream %s %q", w.Code, HeaderKeyThumbprint, up.last().Header.Get(HeaderKeyThumbprint))
	}
}

// TestGatewayDPoPRequestURL: without public_url, the proof names the
// request's own scheme and host.
func TestGatewayDPoPRequestURL(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+`routes:
  - path: /
    upstream: `+up.URL+`
`)
	key := newGatewayProver(t)
	tok := g.auth.boundToken(t, "alice", key)
	h := http.Header{"Authorization": {"DPoP " + tok}, "Dpop": {proofFor(t, key, "GET", "http://gw.example:8080/a", tok)}}
	r := httptest.NewRequest("GET", "http://gw.example:8080/a", nil)
	r.Header = h
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("got %d %s", w.Code, w.Body)
	}
}

// TestForwardAuthDPoP: a subrequest's proof is checked against the
// original request's method and URL (X-Forwarded-Proto, -Host, -Uri).
func TestForwardAuthDPoP(t *testing.T) {
	a := newTestAuth(t)
	g := forwardAuthGateway(t, a, forwardAuthConfig)
	key := newGatewayProver(t)
	tok := a.boundToken(t, "alice", key)
	send := func(proof string) *httptest.ResponseRecorder {
		r := subrequest("127.0.0.1:5000", "GET", "/maybe/x?y=1", "", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "shop.example",
			"Authorization", "DPoP "+tok, "DPoP", proof)
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		return w
	}
	w := send(proofFor(t, key, "GET", "https://shop.example/maybe/x", tok))
	if w.Code != 200 || w.Header().Get(HeaderKeyThumbprint) != key.Thumbprint() {
		t.Fatalf("got %d %s, %s %q", w.Code, w.Body, HeaderKeyThumbprint, w.Header().Get(HeaderKeyThumbprint))
	}
	if w := send(proofFor(t, key, "GET", "http://example.com/auth", tok)); w.Code != 401 {
		t.Errorf("a proof for the subrequest's URL: got %d, want 401", w.Code)
	}
	if w := send(proofFor(t, key, "POST", "https://shop.example/maybe/x", tok)); w.Code != 401 {
		t.Errorf("a proof for another method: got %d, want 401", w.Code)
	}
}

func TestDPoPConfig(t *testing.T) {
	for _, tc := range []struct {
		yml string
		ok  bool
	}{
		{"public_url: https://api.example.com/\nroutes: [{path: /, upstream: http://u, dpop: required}]", true},
		{"routes: [{path: /, upstream: http://u, dpop: allowed}]", true},
		{"routes: [{path: /, upstream: http://u, dpop: sometimes}]", false},
		{"routes: [{path: /, upstream: http://u, dpop: required, auth: none}]", false},
		{"public_url: api.example.com\nroutes: [{path: /, upstream: http://u}]", false},
		{"public_url: https://api.example.com/?x\nroutes: [{path: /, upstream: http://u}]", false},
	} {
		_, err := Parse([]byte(header + tc.yml))
		if (err == nil) != tc.ok {
			t.Errorf("%q: got %v, want ok=%v", tc.yml, err, tc.ok)
		}
	}
}
