package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// TestSessionPolicies runs a server over TLS with a session cap, per-role
// lifetimes and step-up, and a gateway following it over HTTPS in front of
// an upstream: the login past the cap ends the least recently used
// session and the gateway refuses its token within 1 s; an admin's token
// lives 5 minutes; a fresh login may change the password.
func TestSessionPolicies(t *testing.T) {
	fx := newTLSFixture(t)
	s := startServer(t, "--tls-cert", fx.certFile, "--tls-key", fx.keyFile,
		"--max-sessions-per-user", "2", "--role-policies", "admin:access_ttl=5m,admin:session_lifetime=8h", "--reauth-within", "3s")
	s.base = "https://" + strings.TrimPrefix(s.base, "http://")
	login := func(user, pass string) tokenResponse {
		t.Helper()
		var tr tokenResponse
		if code, _ := callWith(t, fx.client, "POST", s.base+"/v1/login", "", "application/json", `{"username":"`+user+`","password":"`+pass+`"}`, &tr); code != 200 || tr.AccessToken == "" {
			t.Fatalf("login %s over HTTPS: %d %+v", user, code, tr)
		}
		return tr
	}
	const pass = "correct horse battery staple"
	for _, u := range []struct{ name, role string }{{"root", "admin"}, {"ann", "user"}} {
		if code, _, errOut := run(t, pass+"\n", "users", "add", "--data", s.data, "--username", u.name, "--role", u.role,
			"--password-stdin", "--argon2-memory", "64", "--argon2-iterations", "1"); code != 0 {
			t.Fatalf("users add %s: %d %s", u.name, code, errOut)
		}
	}
	feed := addClient(t, s.data, "--name", "gateway")
	up := newRecordingUpstream(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feed.secret"), []byte(feed.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(configPath, []byte(fmt.Sprintf("listen: 127.0.0.1:0\nissuer: %s\nissuer_ca: %s\naudience: api\nclient: {id: %s, secret_file: feed.secret}\nroutes:\n  - path: /api/\n    upstream: %s\n", s.base, fx.caFile, feed.ClientID, up.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, configPath)
	eventually(t, "gateway ready", func() bool {
		code, _ := call(t, "GET", g.base+"/readyz", "", "", "", nil)
		return code == http.StatusOK
	})

	// Per-role lifetimes, visible in the tokens.
	lifetime := func(tok string) time.Duration {
		m, err := jose.UnsafeParse(tok)
		if err != nil {
			t.Fatal(err)
		}
		var c jwt.AccessClaims
		if err := json.Unmarshal(m.Payload, &c); err != nil {
			t.Fatal(err)
		}
		return c.ExpiresAt.Sub(c.IssuedAt.Time)
	}
	root := login("root", pass)
	if d := lifetime(root.AccessToken); d != 5*time.Minute || root.ExpiresIn != 300 {
		t.Errorf("admin token lifetime %v (expires_in %d), want 5m", d, root.ExpiresIn)
	}

	// The session cap: the third login ends the first session, and the
	// gateway refuses its token within a second.
	first := login("ann", pass)
	if d := lifetime(first.AccessToken); d != 15*time.Minute {
		t.Errorf("user token lifetime %v, want the default 15m", d)
	}
	if code, _ := gwGet(t, g, "/api/x", first.AccessToken); code != 200 {
		t.Fatalf("first session at the gateway: %d", code)
	}
	time.Sleep(1100 * time.Millisecond) // distinct last-used times, at the store's resolution
	second := login("ann", pass)
	secondAt := time.Now()
	time.Sleep(1100 * time.Millisecond)
	login("ann", pass)
	start := time.Now()
	within(t, "session cap reaches the gateway", start, propagationBound, func() bool {
		code, _ := gwGet(t, g, "/api/x", first.AccessToken)
		return code == http.StatusUnauthorized
	})
	if code, _ := gwGet(t, g, "/api/x", second.AccessToken); code != 200 {
		t.Errorf("the second session was ended too: %d", code)
	}
	var sessions struct {
		Sessions []map[string]any `json:"sessions"`
	}
	if code, _ := callWith(t, fx.client, "GET", s.base+"/v1/sessions", second.AccessToken, "", "", &sessions); code != 200 || len(sessions.Sessions) != 2 {
		t.Errorf("sessions after three logins with a cap of 2: %d, %d sessions", code, len(sessions.Sessions))
	}

	// Step-up (--reauth-within 3s): a login older than that is asked to
	// sign in again (401 insufficient_user_authentication, max_age), and a
	// fresh login satisfies it.
	body := `{"current_password":"` + pass + `","new_password":"another long passphrase"}`
	time.Sleep(time.Until(secondAt.Add(3100 * time.Millisecond)))
	var errBody map[string]string
	code, h := callWith(t, fx.client, "POST", s.base+"/v1/password", second.AccessToken, "application/json", body, &errBody)
	if code != 401 || errBody["error"] != "insufficient_user_authentication" || !strings.Contains(h.Get("WWW-Authenticate"), `max_age="3`) {
		t.Errorf("password change with a login over 3 s old: %d %v %q, want 401 insufficient_user_authentication", code, errBody, h.Get("WWW-Authenticate"))
	}
	fresh := login("ann", pass)
	if code, h := callWith(t, fx.client, "POST", s.base+"/v1/password", fresh.AccessToken, "application/json", body, &errBody); code != 204 {
		t.Errorf("password change with a fresh login: %d %v %q", code, errBody, h.Get("WWW-Authenticate"))
	}
	if code, _, errOut := run(t, "", "serve", "--dev", "--data", t.TempDir(), "--role-policies", "admin:ttl=5m"); code == 0 || !strings.Contains(errOut, "access_ttl") {
		t.Errorf("a bad --role-policies: exit %d %q", code, errOut)
	}
}
