package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
	"github.com/keycard-auth/keycard/verifier"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkGatewayVsReverseProxy measures the gateway's throughput against
// a bare httputil.ReverseProxy to the same upstream, side by side in one
// run, with a load generator on loopback: 32 concurrent clients (keep-
// alive) sending GET requests with an ES256 access token. Everything
// shares the machine's cores, so the gateway's extra work per request
// shows up as a lower request rate. Compare ns/op (the inverse of the
// rate) of the sub-benchmarks; BENCHMARKS.md reports bare ÷ gateway.
//
//   - bare: httputil.ReverseProxy with Rewrite, no verification.
//   - gateway/cached: the gateway, the token verified once and then found
//     in the verification cache (every request checks expiry and the
//     revocation set).
//   - gateway/cold: the gateway with the cache off, so every request
//     verifies the ES256 signature.
//   - gateway/cached/traced: gateway/cached with tracing on, every
//     request sampled, its spans batched to an exporter that drops them.
//
// The verifier follows a (fake, empty) revocation feed, as in production.
//
//	go test -run '^$' -bench GatewayVsReverseProxy -count 6 ./internal/gateway/ | benchstat -
func BenchmarkGatewayVsReverseProxy(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"city":"Lisbon","forecast":"sunny","high_c":24}`)
	}))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)

	key, err := jose.GenerateKey(jose.ES256, nil)
	if err != nil {
		b.Fatal(err)
	}
	key, _ = key.WithKeyID("bench")
	issuer := fakeIssuer(b, key)
	now := time.Now()
	token, err := jwt.Sign(key, &jwt.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer.URL, Subject: "user-1", Audience: jwt.Audience{"api"},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now), ID: "jti-1"},
		SessionID: "sess-1", Scope: "weather:read", Roles: []string{"user"},
	}, jwt.WithHeaderType("at+jwt"))
	if err != nil {
		b.Fatal(err)
	}

	// A DPoP client (RFC 9449): its key, and its access token bound to it.
	dpopKey, err := jose.GenerateKey(jose.ES256, nil)
	if err != nil {
		b.Fatal(err)
	}
	prover, err := dpop.NewProver(dpopKey)
	if err != nil {
		b.Fatal(err)
	}
	bound, err := jwt.Sign(key, &jwt.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer.URL, Subject: "user-1", Audience: jwt.Audience{"api"},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now), ID: "jti-2"},
		SessionID: "sess-1", Scope: "weather:read", Roles: []string{"user"}, Confirmation: jwt.Confirmation{JKT: prover.Thumbprint()},
	}, jwt.WithHeaderType("at+jwt"))
	if err != nil {
		b.Fatal(err)
	}
	bearer := func(req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
	// The client signs a fresh proof for each request: its cost is in
	// the figure, as it is in a real client's.
	withProof := func(req *http.Request) error {
		proof, err := prover.Proof(req.Method, req.URL.String(), bound, "")
		req.Header.Set("Authorization", "DPoP "+bound)
		req.Header.Set("DPoP", proof)
		return err
	}

	// The bare proxy gets the gateway's transport settings (64 idle
	// connections per upstream; the default of 2 would make it dial
	// anew for most requests and measure the kernel instead).
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	bare := &httputil.ReverseProxy{Transport: transport, Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() }}
	run := func(b *testing.B, h http.Handler, authorize func(*http.Request) error) {
		front := httptest.NewServer(h)
		defer front.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
		defer client.CloseIdleConnections()
		u := front.URL + "/weather/today"
		b.SetParallelism(16) // 16 × GOMAXPROCS clients
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("GET", u, nil)
				if err := authorize(req); err != nil {
					b.Error(err)
					return
				}
				res, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Errorf("status %d", res.StatusCode)
					return
				}
			}
		})
	}
	gw := func(b *testing.B, cacheSize int, tp trace.TracerProvider, dpopRule string) http.Handler {
		v, err := verifier.New(context.Background(), verifier.Config{
			Issuer: issuer.URL, ClientID: "gateway", ClientSecret: "secret", CacheSize: cacheSize,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(v.Close)
		cfg, err := Parse([]byte(fmt.Sprintf("listen: 127.0.0.1:0\nissuer: %s\naudience: api\naccess_log: false\nclient: {id: gateway, secret_file: /dev/null}\nroutes:\n  - path: /weather/\n    upstream: %s\n    scopes: [weather:read]\n%s", issuer.URL, upstream.URL, dpopRule)))
		if err != nil {
			b.Fatal(err)
		}
		g, err := New(cfg, Options{Auth: v, Tracer: tp})
		if err != nil {
			b.Fatal(err)
		}
		return g
	}
	b.Run("bare", func(b *testing.B) { run(b, bare, bearer) })
	b.Run("gateway/cached", func(b *testing.B) { run(b, gw(b, 0, nil, ""), bearer) })
	b.Run("gateway/cold", func(b *testing.B) { run(b, gw(b, -1, nil, ""), bearer) })
	// A route that requires DPoP: the token's check is cached, the proof
	// is verified (ES256) and its id spent on every request.
	b.Run("gateway/cached/dpop", func(b *testing.B) { run(b, gw(b, 0, nil, "    dpop: required\n"), withProof) })
	b.Run("gateway/cached/traced", func(b *testing.B) {
		// Every request sampled: a server and a client span, batched to
		// an exporter that drops them.
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
		defer tp.Shutdown(context.Background())
		run(b, gw(b, 0, tp, ""), bearer)
	})
}

// discardExporter drops every span.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// fakeIssuer serves discovery, the JWKS of key and an empty revocation
// feed (long-polls wait, as the real one does).
func fakeIssuer(b *testing.B, key *jose.Key) *httptest.Server {
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"issuer": srv.URL, "jwks_uri": srv.URL + "/.well-known/jwks.json",
			"keycard_revocation_feed_endpoint": srv.URL + "/v1/revocations",
		})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		pub, _ := json.Marshal(key.Public())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		fmt.Fprintf(w, `{"keys":[%s]}`, pub)
	})
	mux.HandleFunc("GET /v1/revocations", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") != "" {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Second):
			}
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"entries":[],"next":0,"snapshot":false}`)
	})
	srv = httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv
}
