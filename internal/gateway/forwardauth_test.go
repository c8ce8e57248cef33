package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const forwardAuthConfig = `
issuer: https://issuer.test
audience: api
client: {id: g, secret_file: s}
forward_auth: {}
routes:
  - path: /
    methods: [GET, HEAD]
    auth: none
  - path: /orders/
    scopes: [orders:write]
  - path: /admin/
    methods: [GET]
    roles: [admin]
  - path: /maybe/
    auth: optional
`

// forwardAuthGateway is a gateway in forward-auth-only mode.
func forwardAuthGateway(t *testing.T, a *testAuth, yaml string) *Gateway {
	t.Helper()
	parse := ParseOptions{ForwardAuthOnly: true}
	cfg, err := ParseWith([]byte(yaml), parse)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{Auth: a, Parse: parse})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// subrequest is a proxy's auth subrequest about method and uri.
func subrequest(from, method, uri, token string, extra ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/auth", nil)
	r.RemoteAddr = from
	if method != "" {
		r.Header.Set("X-Forwarded-Method", method)
	}
	if uri != "" {
		r.Header.Set("X-Forwarded-Uri", uri)
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		r.Header.Add(extra[i], extra[i+1])
	}
	return r
}

// prefixed is Envoy ext_authz's subrequest: the original method, and the
// original path after the subrequest path.
func prefixed(from, method, target, token string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = from
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// TestForwardAuth decides subrequests by the routes, in both header
// conventions, refuses what an attacker would try, and answers only the
// statuses a proxy understands (200, 401, 403; 400 for a malformed
// subrequest).
func TestForwardAuth(t *testing.T) {
	a := newTestAuth(t)
	g := forwardAuthGateway(t, a, forwardAuthConfig)
	orders := a.token(t, "alice", "api", "orders:write")
	plain := a.token(t, "bob", "api", "")
	admin := a.token(t, "carol", "api", "", "admin")
	local := "127.0.0.1:5555"
	for _, tc := range []struct {
		name    string
		req     *http.Request
		status  int
		subject string
	}{
		{"allowed by scope", subrequest(local, "POST", "/orders/1", orders), 200, "alice"},
		{"nginx convention", subrequest(local, "", "", orders, "X-Original-Method", "POST", "X-Original-URI", "/orders/1?x=1"), 200, "alice"},
		{"no token", subrequest(local, "POST", "/orders/1", ""), 401, ""},
		{"missing scope", subrequest(local, "POST", "/orders/1", plain), 403, ""},
		{"role", subrequest(local, "GET", "/admin/x", admin), 200, "carol"},
		{"missing role", subrequest(local, "GET", "/admin/x", plain), 403, ""},
		{"method no route allows", subrequest(local, "DELETE", "/admin/x", admin), 403, ""},
		{"open route", subrequest(local, "GET", "/public", ""), 200, ""},
		{"optional, anonymous", subrequest(local, "GET", "/maybe/x", ""), 200, ""},
		{"optional, with a token", subrequest(local, "GET", "/maybe/x", plain), 200, "bob"},
		{"bad token", subrequest(local, "GET", "/maybe/x", plain+"x"), 401, ""},
		{"untrusted peer", subrequest("192.0.2.7:4444", "POST", "/orders/1", orders), 403, ""},
		{"token in the query", subrequest(local, "GET", "/public?access_token="+plain, ""), 400, ""},
		{"token in the query, PHP spelling", subrequest(local, "GET", "/public?access.token=x", ""), 400, ""},
		{"another spelling of a protected path", subrequest(local, "POST", "/ORDERS/1", ""), 400, ""},
		{"dot segment", subrequest(local, "POST", "/x/../orders/1", ""), 400, ""},
		{"no URI", subrequest(local, "POST", "", orders), 400, ""},
		{"absolute URI", subrequest(local, "POST", "http://evil.example/orders/1", orders), 400, ""},
		{"scheme-relative URI", subrequest(local, "POST", "//evil.example/orders/1", orders), 400, ""},
		{"bad method", subrequest(local, "GE T", "/public", ""), 400, ""},
		{"two URIs", subrequest(local, "GET", "/public", "", "X-Forwarded-Uri", "/orders/1"), 400, ""},
		{"Envoy convention", prefixed(local, "POST", "/auth/orders/1?x=1", orders), 200, "alice"},
		{"Envoy convention, no scope", prefixed(local, "POST", "/auth/orders/1", plain), 403, ""},
		{"Envoy convention, dot segment", prefixed(local, "POST", "/auth/x/%2e%2e/orders/1", ""), 400, ""},
		{"Envoy convention, other spelling", prefixed(local, "POST", "/auth/Orders/1", ""), 400, ""},
		{"Envoy convention, query token", prefixed(local, "GET", "/auth/public?access_token=x", ""), 400, ""},
		{"Envoy convention, untrusted", prefixed("192.0.2.7:4444", "POST", "/auth/orders/1", orders), 403, ""},
		{"escaped subrequest path", prefixed(local, "POST", "/%61uth/orders/1", orders), 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A client's forged identity headers arrive with the
			// subrequest; the answer's are the gateway's own.
			tc.req.Header.Set("X-Keycard-Subject", "mallory")
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, tc.req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get(HeaderSubject); got != tc.subject {
				t.Errorf("X-Keycard-Subject %q, want %q", got, tc.subject)
			}
			if tc.status == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %v", rec.Header())
			}
			if tc.status == 200 && tc.subject == "alice" && rec.Header().Get(HeaderScopes) != "orders:write" {
				t.Errorf("scopes header %q", rec.Header().Get(HeaderScopes))
			}
			// A 200 names every identity header, empty when unknown,
			// so that a proxy copying them overwrites a forgery.
			for _, h := range []string{HeaderSubject, HeaderSession, HeaderScopes, HeaderRoles} {
				if _, ok := rec.Header()[h]; ok != (tc.status == 200) {
					t.Errorf("%s present: %v, status %d", h, ok, tc.status)
				}
			}
		})
	}
	// Only the subrequest path is served in this mode.
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orders/1", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("a proxied path in forward-auth-only mode: %d, want 404", rec.Code)
	}
}

func TestForwardAuthConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		only       bool
		ok         bool
	}{
		{"only mode needs no upstream", forwardAuthConfig, true, true},
		{"beside proxying, routes need upstreams", forwardAuthConfig, false, false},
		{"route under the subrequest path", strings.Replace(forwardAuthConfig, "/maybe/", "/auth/x/", 1), true, false},
		{"bad trusted proxy", strings.Replace(forwardAuthConfig, "forward_auth: {}", "forward_auth: {trusted_proxies: [proxy.example]}", 1), true, false},
		{"empty trusted proxies", strings.Replace(forwardAuthConfig, "forward_auth: {}", "forward_auth: {trusted_proxies: []}", 1), true, false},
		{"unknown key", strings.Replace(forwardAuthConfig, "forward_auth: {}", "forward_auth: {pth: /x}", 1), true, false},
		{"other path", strings.Replace(forwardAuthConfig, "forward_auth: {}", "forward_auth: {path: /_check}", 1), true, true},
		{"path with a slash at the end", strings.Replace(forwardAuthConfig, "forward_auth: {}", "forward_auth: {path: /check/}", 1), true, false},
		{"reserved path", strings.Replace(forwardAuthConfig, "forward_auth: {}", "forward_auth: {path: /healthz}", 1), true, false},
	} {
		_, err := ParseWith([]byte(tc.yaml), ParseOptions{ForwardAuthOnly: tc.only})
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// TestForwardAuthReload: a reload reads forward_auth anew, still in
// forward-auth-only mode (routes without upstream stay valid).
func TestForwardAuthReload(t *testing.T) {
	a := newTestAuth(t)
	g := forwardAuthGateway(t, a, forwardAuthConfig)
	tok := a.token(t, "alice", "api", "orders:write")
	ask := func() int {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, subrequest("192.0.2.7:4444", "POST", "/orders/1", tok))
		return rec.Code
	}
	if code := ask(); code != http.StatusForbidden {
		t.Fatalf("before the reload, an untrusted proxy: %d", code)
	}
	reloaded := strings.Replace(forwardAuthConfig, "forward_auth: {}", "forward_auth: {trusted_proxies: [192.0.2.0/24]}", 1)
	if err := g.reloadData("gateway.yaml", []byte(reloaded)); err != nil {
		t.Fatal(err)
	}
	if code := ask(); code != http.StatusOK {
		t.Fatalf("after the reload, a trusted proxy: %d", code)
	}
}
