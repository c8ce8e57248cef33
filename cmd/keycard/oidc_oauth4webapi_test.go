package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/keycard-auth/keycard/internal/chrometest"
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
	cmd := exec.CommandContext(ctx, node, "o4w.mjs", s.base, clientID, base+"/callback", resource)
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
	if done.RefreshOtherKey != "invalid_grant" {
		t.Errorf("the refresh token with another key's proof: %q, want invalid_grant", done.RefreshOtherKey)
	}
}
