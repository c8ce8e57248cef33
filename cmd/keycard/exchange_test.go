package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/verifier"
)

// exchangeResult is a token exchange response (RFC 8693 §2.2.1) or error.
type exchangeResult struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope"`
	RefreshToken    string `json:"refresh_token"`
	Error           string `json:"error"`
}

// TestTokenExchangeEndToEnd is issue 16's token exchange evidence, with
// the real server, the real gateway and a service using the verifier
// middleware: service A, a client registered by the CLI with
// --exchange-audience orders-api, exchanges a user's token for one to
// service B with one scope; B, behind the gateway and with the
// middleware, sees the user as subject and A as actor; the user's logout
// makes B's token refused at the gateway and at B within the propagation
// bound (a second, logged; see propagationBound).
func TestTokenExchangeEndToEnd(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "keycard.yaml")
	if err := os.WriteFile(cfg, []byte("role_scopes: [\"customer=orders:read\", \"customer=orders:write\", \"customer=weather:read\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--config", cfg)
	const pass = "correct horse battery staple"
	if code, _, errOut := run(t, pass+"\n", "users", "add", "--data", s.data, "--username", "alice", "--role", "customer",
		"--password-stdin", "--argon2-memory", "64", "--argon2-iterations", "1"); code != 0 {
		t.Fatalf("users add: %d %s", code, errOut)
	}
	serviceA := addClient(t, s.data, "--name", "service A", "--exchange-audience", "orders-api")
	code, out, errOut := run(t, "", "clients", "show", "--data", s.data, "--id", serviceA.ClientID)
	if code != exitOK || !strings.Contains(out, `"token_exchange_audiences":["orders-api"]`) ||
		!strings.Contains(out, `"grant_types":["client_credentials","urn:ietf:params:oauth:grant-type:token-exchange"]`) {
		t.Fatalf("clients show: exit %d, %s %s", code, out, errOut)
	}
	feed := addClient(t, s.data, "--name", "gateway")

	// Service B, with the verifier middleware: it records who called.
	v, err := verifier.New(context.Background(), verifier.Config{Issuer: s.base, Audience: "orders-api", ClientID: feed.ClientID, ClientSecret: feed.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	var (
		mu   sync.Mutex
		seen *verifier.Claims
	)
	b := httptest.NewServer(v.Middleware()(verifier.RequireScope("orders:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.FromContext(r.Context())
		mu.Lock()
		seen = c
		mu.Unlock()
		fmt.Fprint(w, "orders")
	}))))
	t.Cleanup(b.Close)

	// The gateway in front of B: the route takes orders-api tokens.
	up := newRecordingUpstream(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feed.secret"), []byte(feed.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(configPath, []byte(fmt.Sprintf(`
listen: 127.0.0.1:0
issuer: %s
audience: api
client:
  id: %s
  secret_file: feed.secret
routes:
  - path: /orders/
    upstream: %s
    audience: orders-api
    scopes: [orders:read]
`, s.base, feed.ClientID, up.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, configPath)
	eventually(t, "gateway ready", func() bool {
		code, _ := call(t, "GET", g.base+"/readyz", "", "", "", nil)
		return code == http.StatusOK
	})

	alice := s.login(t, "alice", pass)
	// The user's own token is for the server's audience: not B's.
	if code, _ := gwGet(t, g, "/orders/1", alice.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("the user's token at B's route: %d, want 401", code)
	}

	// A exchanges it for one to B with one scope.
	exchange := func(subject, scope string) (int, exchangeResult) {
		var res exchangeResult
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {"orders-api"}, "scope": {scope}}
		status, _ := callBasic(t, s.base+"/oauth/token", serviceA.ClientID, serviceA.ClientSecret, form.Encode(), &res)
		return status, res
	}
	if status, res := exchange(alice.AccessToken, "orders:admin"); status != http.StatusBadRequest || res.Error != "invalid_scope" {
		t.Errorf("a wider scope: %d %+v, want 400 invalid_scope", status, res)
	}
	status, ex := exchange(alice.AccessToken, "orders:read")
	if status != http.StatusOK || ex.AccessToken == "" || ex.TokenType != "Bearer" || ex.Scope != "orders:read" || ex.RefreshToken != "" ||
		ex.IssuedTokenType != "urn:ietf:params:oauth:token-type:access_token" || ex.ExpiresIn <= 0 || ex.ExpiresIn > 900 {
		t.Fatalf("exchange: %d %+v", status, ex)
	}

	// B behind the gateway: the user is the subject, A the actor.
	if code, _ := gwGet(t, g, "/orders/1", ex.AccessToken); code != http.StatusOK {
		t.Fatalf("exchanged token at the gateway: %d", code)
	}
	h := up.last()
	if h.Get("X-Keycard-Subject") == "" || h.Get("X-Keycard-Subject") == serviceA.ClientID || h.Get("X-Keycard-Session") != alice.SessionID ||
		h.Get("X-Keycard-Actor") != serviceA.ClientID || h.Get("X-Keycard-Scopes") != "orders:read" {
		t.Errorf("upstream identity: subject %q session %q actor %q scopes %q", h.Get("X-Keycard-Subject"), h.Get("X-Keycard-Session"),
			h.Get("X-Keycard-Actor"), h.Get("X-Keycard-Scopes"))
	}
	userID := h.Get("X-Keycard-Subject")
	// A client's forged actor never passes.
	req, _ := http.NewRequest("GET", g.base+"/orders/1", nil)
	req.Header.Set("Authorization", "Bearer "+ex.AccessToken)
	req.Header["X-Keycard-Actor"] = []string{"trusted-admin-service"}
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("forged actor: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if got := up.last().Values("X-Keycard-Actor"); !slices.Equal(got, []string{serviceA.ClientID}) {
		t.Errorf("forged X-Keycard-Actor: upstream got %q", got)
	}

	// B with the verifier middleware: the same.
	eventually(t, "B's verifier ready", func() bool { return v.Ready() == nil })
	callB := func() int {
		code, _ := call(t, "GET", b.URL+"/orders/1", ex.AccessToken, "", "", nil)
		return code
	}
	if code := callB(); code != http.StatusOK {
		t.Fatalf("exchanged token at B's middleware: %d", code)
	}
	mu.Lock()
	c := seen
	mu.Unlock()
	if c == nil || c.Subject != userID || !slices.Equal(c.Actors(), []string{serviceA.ClientID}) || c.ClientID != serviceA.ClientID {
		t.Errorf("B's claims: %+v", c)
	}

	// The user logs out: B's token is refused within the bound, at the
	// gateway and at B, and A can no longer exchange.
	if code, _ := call(t, "POST", s.base+"/v1/logout", alice.AccessToken, "", "", nil); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	loggedOut := time.Now()
	within(t, "exchanged token refused at the gateway after logout", loggedOut, propagationBound, func() bool {
		code, _ := gwGet(t, g, "/orders/1", ex.AccessToken)
		return code == http.StatusUnauthorized
	})
	within(t, "exchanged token refused at B after logout", loggedOut, propagationBound, func() bool {
		return callB() == http.StatusUnauthorized
	})
	if status, res := exchange(alice.AccessToken, "orders:read"); status != http.StatusBadRequest || res.Error != "invalid_request" {
		t.Errorf("exchange after logout: %d %+v, want 400 invalid_request", status, res)
	}
	// The server never logged a token.
	for _, tok := range []string{alice.AccessToken, ex.AccessToken, serviceA.ClientSecret} {
		if strings.Contains(s.log.String(), tok) || strings.Contains(g.log.String(), tok) {
			t.Error("a token or secret reached the logs")
		}
	}
}
