package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// manyNames returns n field names, comma-separated.
func manyNames(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("x-%d", i)
	}
	return strings.Join(names, ",")
}

// publicPaths are the documents any origin may read.
var publicPaths = []string{"/.well-known/jwks.json", "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"}

// Scripts on another origin can read the JWKS and the discovery
// documents (CORS with "*", no credentials), and their preflights are
// answered.
func TestPublicDocumentsCORS(t *testing.T) {
	f := newFixture(t)
	const origin = "https://app.example"
	for _, path := range publicPaths {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			res := f.do(t, request{method: method, path: path, header: http.Header{"Origin": {origin}}})
			if res.status != http.StatusOK {
				t.Errorf("%s %s: got status %d, want 200", method, path, res.status)
			}
			if got := res.header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("%s %s: got Access-Control-Allow-Origin %q, want *", method, path, got)
			}
			if got := res.header.Values("Access-Control-Allow-Credentials"); len(got) != 0 {
				t.Errorf("%s %s: got Access-Control-Allow-Credentials %q, want none", method, path, got)
			}
		}

		preflights := []struct {
			name        string
			header      http.Header
			wantHeaders string // Access-Control-Allow-Headers
			preflight   bool   // a CORS preflight, not a plain OPTIONS
		}{
			{"simple GET", http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"GET"}}, "", true},
			{"custom headers", http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"GET"},
				"Access-Control-Request-Headers": {"x-requested-with,If-None-Match"}}, "x-requested-with, if-none-match", true},
			{"spaces and repeats", http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"GET"},
				"Access-Control-Request-Headers": {" x-a , x-a,,x-b "}}, "x-a, x-b", true},
			{"not a field name", http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"GET"},
				"Access-Control-Request-Headers": {"x-a, bad name"}}, "", true},
			{"separators", http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"GET"},
				"Access-Control-Request-Headers": {`"x-a";x-b`}}, "", true},
			{"too many", http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"GET"},
				"Access-Control-Request-Headers": {manyNames(maxPreflightHeaders + 1)}}, "", true},
			{"as many as allowed", http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"GET"},
				"Access-Control-Request-Headers": {manyNames(maxPreflightHeaders)}}, strings.ReplaceAll(manyNames(maxPreflightHeaders), ",", ", "), true},
			{"too long", http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"GET"},
				"Access-Control-Request-Headers": {strings.Repeat("x", maxPreflightHeaderLen+1)}}, "", true},
			{"asks for POST: GET alone is granted", http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"POST"}}, "", true},
			{"plain OPTIONS", http.Header{}, "", false},
		}
		for _, tt := range preflights {
			t.Run(path+" "+tt.name, func(t *testing.T) {
				res := f.do(t, request{method: http.MethodOptions, path: path, header: tt.header})
				if res.status != http.StatusNoContent || len(res.body) != 0 {
					t.Fatalf("got status %d with %d bytes, want 204 and no body", res.status, len(res.body))
				}
				want := map[string]string{
					"Allow":                            "GET, HEAD, OPTIONS",
					"Access-Control-Allow-Origin":      "*",
					"Access-Control-Allow-Methods":     "",
					"Access-Control-Allow-Headers":     tt.wantHeaders,
					"Access-Control-Max-Age":           "",
					"Access-Control-Allow-Credentials": "",
				}
				if tt.preflight {
					want["Access-Control-Allow-Methods"] = "GET"
					want["Access-Control-Max-Age"] = "86400"
				}
				for name, v := range want {
					if got := res.header.Get(name); got != v {
						t.Errorf("got %s %q, want %q", name, got, v)
					}
				}
			})
		}
	}

	// Nothing else answers CORS: not the API, not the endpoints of
	// confidential clients or of the pages, not a wrong method on a
	// public document.
	f.register(t, "alice", testPassword)
	others := []struct {
		method, path, contentType, body string
		status                          int
	}{
		{http.MethodPost, "/v1/login", "application/json", credentialsJSON("alice", testPassword), http.StatusOK},
		{http.MethodPost, "/oauth/introspect", "application/x-www-form-urlencoded", "token=x", http.StatusUnauthorized},
		{http.MethodPost, "/oauth/par", "application/x-www-form-urlencoded", "client_id=x", http.StatusUnauthorized},
		{http.MethodOptions, "/oauth/introspect", "", "", http.StatusMethodNotAllowed},
		{http.MethodGet, "/healthz", "", "", http.StatusOK},
		{http.MethodGet, "/v1/me", "", "", http.StatusUnauthorized},
		{http.MethodOptions, "/v1/login", "", "", http.StatusMethodNotAllowed},
		{http.MethodPost, "/.well-known/jwks.json", "", "", http.StatusMethodNotAllowed},
	}
	for _, tt := range others {
		h := http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"POST"}}
		if tt.contentType != "" {
			h.Set("Content-Type", tt.contentType)
		}
		res := f.do(t, request{method: tt.method, path: tt.path, header: h, body: tt.body})
		if res.status != tt.status {
			t.Errorf("%s %s: got status %d, want %d (body %s)", tt.method, tt.path, res.status, tt.status, res.body)
		}
		for _, name := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Credentials"} {
			if got := res.header.Get(name); got != "" {
				t.Errorf("%s %s: got %s %q, want none", tt.method, tt.path, name, got)
			}
		}
	}
}

// A single-page app on another origin can call the token, revocation and
// userinfo endpoints from the browser: their answers, errors included,
// carry Access-Control-Allow-Origin "*" and never credentials, and their
// preflights grant their methods and the Authorization and Content-Type
// headers.
func TestOAuthEndpointsCORS(t *testing.T) {
	f := newFixture(t)
	const origin = "https://spa.example"
	for _, tt := range []struct {
		method, path, body string
		status             int
	}{
		{http.MethodPost, "/oauth/token", "grant_type=authorization_code&code=x&client_id=y", http.StatusUnauthorized},
		{http.MethodPost, "/oauth/token", "grant_type=nope", http.StatusBadRequest},
		{http.MethodPost, "/oauth/revoke", "token=x&client_id=y", http.StatusUnauthorized},
		{http.MethodGet, "/oauth/userinfo", "", http.StatusUnauthorized},
		{http.MethodPost, "/oauth/userinfo", "", http.StatusUnauthorized},
	} {
		h := http.Header{"Origin": {origin}}
		if tt.body != "" {
			h.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res := f.do(t, request{method: tt.method, path: tt.path, header: h, body: tt.body})
		if res.status != tt.status || res.header.Get("Access-Control-Allow-Origin") != "*" || res.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s %s: %d, Allow-Origin %q, Allow-Credentials %q; want %d, *, none (body %s)", tt.method, tt.path, res.status,
				res.header.Get("Access-Control-Allow-Origin"), res.header.Get("Access-Control-Allow-Credentials"), tt.status, res.body)
		}
	}
	for path, methods := range map[string]string{"/oauth/token": "POST", "/oauth/revoke": "POST", "/oauth/userinfo": "GET, POST"} {
		res := f.do(t, request{method: http.MethodOptions, path: path, header: http.Header{"Origin": {origin},
			"Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"authorization, content-type"}}})
		want := map[string]string{
			"Access-Control-Allow-Origin":      "*",
			"Access-Control-Allow-Methods":     methods,
			"Access-Control-Allow-Headers":     "authorization, content-type",
			"Access-Control-Allow-Credentials": "",
		}
		if res.status != http.StatusNoContent {
			t.Errorf("OPTIONS %s: %d, want 204", path, res.status)
		}
		for name, v := range want {
			if got := res.header.Get(name); got != v {
				t.Errorf("OPTIONS %s: %s %q, want %q", path, name, got, v)
			}
		}
	}
}
