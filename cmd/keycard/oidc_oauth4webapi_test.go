package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/keycard-auth/keycard/internal/chrometest"
	"github.com/keycard-auth/keycard/verifier"
)

// TestOAuth4WebAPIDPoP runs a public client written with oauth4webapi v3
// (interop/openid-client/o4w.mjs) that holds a DPoP key: the code flow
// in Chromium with the code bound to the key (dpop_jkt), the code grant
// and a refresh with proofs, and a call through keycard gateway to a
// route that requires DPoP. Then each misuse of its access token is
// refused: its proof replayed, a proof for another URL or another
// method, a proof of another key, the token as a bearer token; and its
// refresh token with another key's proof.
func TestOAuth4WebAPIDPoP(t *testing.T) {
	node := nodeRP(t)
	browser := chrometest.Start(t)
	s, admin := interopServer(t)
	resource, up := dpopResource(t, s)
	// A service that verifies tokens itself with the verifier middleware.
	feed := addClient(t, s.data, "--name", "orders service")
	v, err := verifier.New(context.Background(), verifier.Config{Issuer: s.base, Audience: "api", ClientID: feed.ClientID, ClientSecret: feed.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	var serviceSaw atomic.Value // the key thumbprint of the last token let through
	service := httptest.NewServer(v.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.FromContext(r.Context())
		serviceSaw.Store(c.Confirmation.JKT)
		fmt.Fprint(w, "orders")
	})))
	t.Cleanup(service.Close)

	ln, base := loopbackListener(t)
	callbacks := make(chan string, 1)
	srv := &http.Server{ReadHeaderTimeout: 30 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		callbacks <- base + r.URL.RequestURI()
		fmt.Fprint(w, "<!doctype html><title>app</title><h1>Callback</h1>")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	clientID, _ := registerClient(t, s, admin, fmt.Sprintf(`{"name":"oauth4webapi app","public":true,"first_party":true,
		"grant_types":["authorization_code","refresh_token"],"redirect_uris":[%q]}`, base+"/callback"))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "o4w.mjs", s.base, clientID, base+"/callback", resource, service.URL+"/orders/7")
	cmd.Dir = openidClientDir
	cmd.Env = os.Environ()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 1<<20)
	next := func(step string, v any) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("o4w.mjs: no step %q; stderr:\n%s", step, stderr.String())
		}
		var m struct {
			Step string `json:"step"`
		}
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil || m.Step != step {
			t.Fatalf("o4w.mjs: got %s, want step %q; stderr:\n%s", lines.Bytes(), step, stderr.String())
		}
		if err := json.Unmarshal(lines.Bytes(), v); err != nil {
			t.Fatal(err)
		}
	}

	var auth struct{ URL string }
	next("authorize", &auth)
	if !strings.Contains(auth.URL, "dpop_jkt=") {
		t.Errorf("authorization URL %s has no dpop_jkt", auth.URL)
	}
	b := newTab(t, browser)
	b.do("the authorization URL to the sign-in page", chromedp.Navigate(auth.URL), chromedp.WaitVisible(chromedp.ID("username")))
	b.do("signing in", signIn(), h1Is("Callback"))
	select {
	case cb := <-callbacks:
		if _, err := fmt.Fprintln(stdin, cb); err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the browser did not come back to the app")
	}

	var done struct {
		TokenType, RefreshedTokenType, ResourceBody, RefreshOtherKey      string
		ResourceStatus, Replayed, Bearer, OtherKey, OtherURL, OtherMethod int
		ServiceStatus, ServiceBearer                                      int
	}
	next("done", &done)
	if !strings.EqualFold(done.TokenType, "DPoP") || !strings.EqualFold(done.RefreshedTokenType, "DPoP") {
		t.Errorf("token types %q and %q, want DPoP", done.TokenType, done.RefreshedTokenType)
	}
	if done.ResourceStatus != http.StatusOK {
		t.Errorf("the key holder through the gateway: %d %s", done.ResourceStatus, done.ResourceBody)
	} else if h := up.last(); h == nil || h.Get("X-Keycard-Key-Thumbprint") == "" || h.Get("X-Keycard-Subject") == "" {
		t.Errorf("the upstream got %v, want the user and the key's thumbprint", h)
	}
	for name, got := range map[string]int{"its proof replayed": done.Replayed, "as a bearer token": done.Bearer,
		"a proof of another key": done.OtherKey, "a proof for another URL": done.OtherURL, "a proof for another method": done.OtherMethod} {
		if got != http.StatusUnauthorized {
			t.Errorf("the token with %s: %d, want 401", name, got)
		}
	}
	if jkt, _ := serviceSaw.Load().(string); done.ServiceStatus != http.StatusOK || jkt == "" || done.ServiceBearer != http.StatusUnauthorized {
		t.Errorf("the service with the verifier middleware: %d with a proof (key %q), %d as a bearer token; want 200 with the key, and 401",
			done.ServiceStatus, jkt, done.ServiceBearer)
	}
	if done.RefreshOtherKey != "invalid_grant" {
		t.Errorf("the refresh token with another key's proof: %q, want invalid_grant", done.RefreshOtherKey)
	}
}
