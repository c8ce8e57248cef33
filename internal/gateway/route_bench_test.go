package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// stubTransport answers every request at once, in process, so that a
// benchmark measures the gateway and not a network.
type stubTransport struct{}

func (stubTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// benchRoutes is a configuration with n routes besides /api/.
func benchRoutes(n int) string {
	var b strings.Builder
	b.WriteString(header + "access_log: false\nroutes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {path: /svc%d/, upstream: 'http://127.0.0.1:1', scopes: [read]}\n", i)
	}
	b.WriteString("  - {path: /api/, upstream: 'http://127.0.0.1:1', scopes: [read], any_roles: [user, admin]}\n")
	return b.String()
}

// BenchmarkServeHTTP is the gateway's own work for one authenticated
// request, in process: routing, the token found in the verifier's cache,
// audience, scope and role checks, header rewriting and the reverse proxy,
// to an upstream that answers at once (no network).
//
//	go test -run '^$' -bench 'ServeHTTP|Match' ./internal/gateway/
func BenchmarkServeHTTP(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("routes=%d", n+1), func(b *testing.B) {
			t := &testing.T{}
			auth := newTestAuth(t)
			g, err := New(mustParse(t, benchRoutes(n)), Options{Auth: auth, Transport: stubTransport{}, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			tok := auth.token(t, "alice", "api", "read", "user")
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", "/api/items/1", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				r.Header.Set("X-Keycard-Subject", "forged")
				w := httptest.NewRecorder()
				g.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkMatch is the route lookup alone: a linear scan, longest path
// first.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("routes=%d", n+1), func(b *testing.B) {
			t := &testing.T{}
			g, err := New(mustParse(t, benchRoutes(n)), Options{Auth: newTestAuth(t), Transport: stubTransport{}})
			if err != nil {
				b.Fatal(err)
			}
			tab := g.table.Load()
			b.ReportAllocs()
			for b.Loop() {
				if rt, _ := tab.match("GET", "/api/items/1"); rt == nil {
					b.Fatal("no route")
				}
			}
		})
	}
}

// BenchmarkForwardAuth is the gateway's answer to one proxy subrequest,
// in process: the original request read from X-Forwarded-*, routing, the
// token found in the verifier's cache, the checks, and the identity
// headers of a 200. Beside BenchmarkServeHTTP it is the cost of the
// decision without the proxying.
//
//	go test -run '^$' -bench 'ForwardAuth|ServeHTTP' ./internal/gateway/
func BenchmarkForwardAuth(b *testing.B) {
	t := &testing.T{}
	auth := newTestAuth(t)
	cfg, err := ParseWith([]byte(benchRoutes(0)+"forward_auth: {}\n"), ParseOptions{ForwardAuthOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(cfg, Options{Auth: auth, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	tok := auth.token(t, "alice", "api", "read", "user")
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", "/auth", nil)
		r.RemoteAddr = "127.0.0.1:40000"
		r.Header.Set("X-Forwarded-Method", "GET")
		r.Header.Set("X-Forwarded-Uri", "/api/items/1")
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
