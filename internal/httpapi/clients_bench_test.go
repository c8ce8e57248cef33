package httpapi_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// BenchmarkIntrospect measures POST /oauth/introspect of a user's access
// token by a service client (HTTP Basic): the client's secret check, the
// token's ES256 signature and claims, and its session and user, from the
// SQLite store. Every request introspects the same token, as a resource
// server asking about its caller's token would.
//
//	go test -run '^$' -bench 'Introspect|ClientCredentials' -cpuprofile cpu.out ./internal/httpapi/
func BenchmarkIntrospect(b *testing.B) {
	s := newBenchServer(b)
	if err := s.register("introspected"); err != nil {
		b.Fatal(err)
	}
	tok, err := s.login("introspected")
	if err != nil {
		b.Fatal(err)
	}
	c, secret, err := s.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "bench", Scopes: []string{"bench:read"}, Audiences: nil})
	if err != nil {
		b.Fatal(err)
	}
	body := url.Values{"token": {tok.AccessToken}}.Encode()
	benchClientPost(b, s, "/oauth/introspect", c.ID, secret, body, `"active":true`)
}

// BenchmarkClientCredentials measures POST /oauth/token with
// grant_type=client_credentials: the client's secret check and a new
// ES256-signed access token.
func BenchmarkClientCredentials(b *testing.B) {
	s := newBenchServer(b)
	c, secret, err := s.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "bench", Scopes: []string{"bench:read"}, Audiences: nil})
	if err != nil {
		b.Fatal(err)
	}
	benchClientPost(b, s, "/oauth/token", c.ID, secret, "grant_type=client_credentials", `"access_token"`)
}

// benchClientPost posts body with the client's Basic credentials from
// parallel workers and checks each answer is 200 and contains want.
func benchClientPost(b *testing.B, s *benchServer, path, id, secret, body, want string) {
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	cpu := startCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
			resp, err := s.client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(data), want) {
				b.Errorf("POST %s: %d %s", path, resp.StatusCode, data)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	cpu.report(b)
}

// BenchmarkClientCredentialsAssertion is BenchmarkClientCredentials with
// private_key_jwt: each request carries a new ES256 client assertion
// (signed in the loop, by the benchmark's own workers, so its cost is
// counted too), which the server verifies with the client's inline key,
// and whose jti it records once in the SQLite store.
//
//	go test -run '^$' -bench 'ClientCredentials' ./internal/httpapi/
func BenchmarkClientCredentialsAssertion(b *testing.B) {
	s := newBenchServer(b)
	key, err := jose.GenerateKey(jose.ES256, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	set, _ := jose.NewKeySet(key.Public())
	jwks, _ := json.Marshal(set)
	c, _, err := s.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "bench", Scopes: []string{"bench:read"},
		OAuth: keycard.OAuthSettings{TokenAuthMethod: keycard.AuthPrivateKeyJWT, JWKS: jwks}})
	if err != nil {
		b.Fatal(err)
	}
	signer, err := jwt.NewSigner(key)
	if err != nil {
		b.Fatal(err)
	}
	var jti atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	cpu := startCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			now := time.Now()
			assertion, err := signer.Sign(jwt.MapClaims{"iss": c.ID, "sub": c.ID, "aud": benchIssuer + "/oauth/token",
				"jti": strconv.FormatInt(jti.Add(1), 10), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
			if err != nil {
				b.Error(err)
				return
			}
			body := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {auth.ClientAssertionType}, "client_assertion": {assertion}}.Encode()
			req, _ := http.NewRequest(http.MethodPost, s.url+"/oauth/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := s.client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(data), `"access_token"`) {
				b.Errorf("POST /oauth/token: %d %s", resp.StatusCode, data)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	cpu.report(b)
}
