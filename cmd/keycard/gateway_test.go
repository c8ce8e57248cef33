package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatewayProc is a keycard gateway started through Main.
type gatewayProc struct {
	base string
	log  *syncBuffer
	stop func() int
}

// startGateway runs "keycard gateway --config configPath" (with extra
// arguments) until the test ends.
func startGateway(t *testing.T, configPath string, extra ...string) *gatewayProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logBuf := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"gateway", "--config", configPath}, extra...), strings.NewReader(""), io.Discard, logBuf)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := listenRE.FindStringSubmatch(logBuf.String()); m != nil {
			g := &gatewayProc{base: "http://" + m[1], log: logBuf}
			var once sync.Once
			code := 0
			g.stop = func() int {
				once.Do(func() { cancel(); code = <-done })
				return code
			}
			t.Cleanup(func() { g.stop() })
			return g
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("gateway exited with %d: %s", code, logBuf.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("gateway did not start: %s", logBuf.String())
		}
	}
}

// recordingUpstream answers 200 and keeps the headers of every request.
type recordingUpstream struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	u := &recordingUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		u.mu.Unlock()
		fmt.Fprintf(w, "upstream saw %s", r.URL.Path)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *recordingUpstream) last() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.headers) == 0 {
		return nil
	}
	return u.headers[len(u.headers)-1]
}

// newEchoUpstream answers WebSocket upgrades with 101 and then echoes
// bytes, by hand: the standard library has no WebSocket server.
func newEchoUpstream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// dialUpgrade opens a WebSocket upgrade through base to path and checks
// that bytes are echoed back.
func dialUpgrade(t *testing.T, base, path string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", path)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(conn, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	conn.SetDeadline(time.Time{})
	return conn
}

// clientToken gets a client_credentials access token with the given
// scope ("" for all the client's).
func clientToken(t *testing.T, s *runningServer, c clientSecret, scope string) string {
	t.Helper()
	var tr tokenResponse
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}
	if scope != "" {
		form.Set("scope", scope)
	}
	if code, _ := call(t, "POST", s.base+"/oauth/token", "", "application/x-www-form-urlencoded", form.Encode(), &tr); code != 200 || tr.AccessToken == "" {
		t.Fatalf("client_credentials: %d %+v", code, tr)
	}
	return tr.AccessToken
}

// gwGet sends GET path to the gateway with a bearer token and forged
// identity headers.
func gwGet(t *testing.T, g *gatewayProc, path, bearer string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", g.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header["x-keycard-subject"] = []string{"forged-root"}
	req.Header["X-KEYCARD-ROLES"] = []string{"admin"}
	req.Header["X_Keycard_Scopes"] = []string{"everything"}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// within polls cond every 20 ms and fails the test unless it holds
// within d of start. It is the gateway's revocation requirement (a
// logout, a revoke-all or a key revocation reaches it within a second),
// checked as stated.
func within(t *testing.T, what string, start time.Time, d time.Duration, cond func() bool) {
	t.Helper()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
}

// TestGatewayEndToEnd runs a real auth server, a real gateway in front of
// a recording upstream, and walks tokens through it: refusals, identity
// headers, scopes and roles, logout, revoke-all, key rotation, emergency
// key revocation, a config reload, and the auth server going away.
func TestGatewayEndToEnd(t *testing.T) {
	s := startServer(t)
	const pass = "correct horse battery staple"
	for _, u := range []struct{ name, role string }{{"root", "admin"}, {"alice", "user"}} {
		if code, _, errOut := run(t, pass+"\n", "users", "add", "--data", s.data, "--username", u.name, "--role", u.role,
			"--password-stdin", "--argon2-memory", "64", "--argon2-iterations", "1"); code != 0 {
			t.Fatalf("users add %s: %d %s", u.name, code, errOut)
		}
	}
	feed := addClient(t, s.data, "--name", "gateway")
	app := addClient(t, s.data, "--name", "weather app", "--scope", "weather:read", "--scope", "orders:write")
	up := newRecordingUpstream(t)
	ws := newEchoUpstream(t)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feed.secret"), []byte(feed.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "gateway.yaml")
	config := fmt.Sprintf(`
listen: 127.0.0.1:0
issuer: %s
audience: api
client:
  id: %s
  secret_file: feed.secret      # relative to this file
routes:
  - path: /weather/
    upstream: %s
    scopes: [weather:read]
  - path: /me/
    upstream: %s
  - path: /admin/
    upstream: %s
    roles: [admin]
  - path: /public/
    upstream: %s
    auth: none
  - path: /ws/
    upstream: %s
    auth: none
`, s.base, feed.ClientID, up.URL, up.URL, up.URL, up.URL, ws.URL)
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, configPath)
	eventually(t, "gateway ready", func() bool {
		code, _ := call(t, "GET", g.base+"/readyz", "", "", "", nil)
		return code == http.StatusOK
	})
	if code, _ := call(t, "GET", g.base+"/healthz", "", "", "", nil); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}

	// No token: 401 with a Bearer challenge; nothing reaches the upstream.
	if code, h := gwGet(t, g, "/weather/today", ""); code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d %q", code, h.Get("WWW-Authenticate"))
	}
	if up.last() != nil {
		t.Error("a refused request reached the upstream")
	}

	// A service client's token with the scope: 200, identity headers set,
	// the forged ones gone.
	weather := clientToken(t, s, app, "weather:read")
	if code, _ := gwGet(t, g, "/weather/today", weather); code != http.StatusOK {
		t.Fatalf("valid token: %d", code)
	}
	h := up.last()
	if h.Get("X-Keycard-Subject") != app.ClientID || h.Get("X-Keycard-Scopes") != "weather:read" || h.Get("X-Keycard-Roles") != "" {
		t.Errorf("upstream identity: subject %q scopes %q roles %q", h.Get("X-Keycard-Subject"), h.Get("X-Keycard-Scopes"), h.Get("X-Keycard-Roles"))
	}
	for k := range h {
		if strings.Contains(strings.ToLower(k), "keycard_") {
			t.Errorf("upstream got forged header %s", k)
		}
	}
	// Missing scope: 403 insufficient_scope naming it.
	orders := clientToken(t, s, app, "orders:write")
	if code, h := gwGet(t, g, "/weather/today", orders); code != http.StatusForbidden ||
		!strings.Contains(h.Get("WWW-Authenticate"), `error="insufficient_scope"`) || !strings.Contains(h.Get("WWW-Authenticate"), `scope="weather:read"`) {
		t.Errorf("missing scope: %d %q", code, h.Get("WWW-Authenticate"))
	}

	// Users: roles travel, the session id too; a missing role is 403.
	alice := s.login(t, "alice", pass)
	if code, _ := gwGet(t, g, "/me/x", alice.AccessToken); code != http.StatusOK {
		t.Fatalf("alice /me/: %d", code)
	}
	if h := up.last(); h.Get("X-Keycard-Session") != alice.SessionID || h.Get("X-Keycard-Roles") != "user" || h.Get("X-Keycard-Subject") == "" {
		t.Errorf("alice's identity: %v", h)
	}
	if code, _ := gwGet(t, g, "/admin/x", alice.AccessToken); code != http.StatusForbidden {
		t.Errorf("alice /admin/: %d, want 403", code)
	}
	root := s.login(t, "root", pass)
	if code, _ := gwGet(t, g, "/admin/x", root.AccessToken); code != http.StatusOK {
		t.Errorf("root /admin/: %d", code)
	}

	// Logout: the gateway refuses the old access token within a second.
	if code, _ := call(t, "POST", s.base+"/v1/logout", alice.AccessToken, "", "", nil); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	loggedOut := time.Now()
	within(t, "logged-out token refused", loggedOut, propagationBound, func() bool {
		code, _ := gwGet(t, g, "/me/x", alice.AccessToken)
		return code == http.StatusUnauthorized
	})
	if code, _ := gwGet(t, g, "/admin/x", root.AccessToken); code != http.StatusOK {
		t.Errorf("another session after alice's logout: %d", code)
	}

	// Revoke-all: every token, users' and clients', within a second.
	if code, _ := call(t, "POST", s.base+"/admin/v1/revoke-all", root.AccessToken, "", "", nil); code != http.StatusOK {
		t.Fatalf("revoke-all: %d", code)
	}
	revoked := time.Now()
	for name, tok := range map[string]string{"root": root.AccessToken, "client weather": weather, "client orders": orders} {
		within(t, "revoke-all: "+name+"'s token refused", revoked, propagationBound, func() bool {
			code, _ := gwGet(t, g, "/me/x", tok)
			return code == http.StatusUnauthorized
		})
	}
	// Tokens issued after the cut-off pass (the cut-off has microseconds,
	// iat whole seconds: one issued in the same second is refused).
	var fresh tokenResponse
	eventually(t, "a token issued after revoke-all accepted", func() bool {
		fresh = s.login(t, "alice", pass)
		code, _ := gwGet(t, g, "/me/x", fresh.AccessToken)
		return code == http.StatusOK
	})

	// Key rotation with --now, nothing restarted: new tokens verify.
	oldKID := kidOf(t, fresh.AccessToken)
	if code, out, errOut := run(t, "", "keys", "rotate", "--dev", "--data", s.data, "--now"); code != 0 {
		t.Fatalf("keys rotate: %d %s %s", code, out, errOut)
	}
	var rotated tokenResponse
	eventually(t, "the server signs with the new key", func() bool {
		rotated = s.login(t, "alice", pass)
		return kidOf(t, rotated.AccessToken) != oldKID
	})
	eventually(t, "a token of the new key accepted", func() bool {
		code, _ := gwGet(t, g, "/me/x", rotated.AccessToken)
		return code == http.StatusOK
	})
	if code, _ := gwGet(t, g, "/me/x", fresh.AccessToken); code != http.StatusOK {
		t.Errorf("a token of the previous key after rotation: %d", code)
	}

	// Emergency revocation of the signing key through the admin API: its
	// tokens die within a second.
	admin := s.login(t, "root", pass)
	newKID := kidOf(t, rotated.AccessToken)
	if code, _ := call(t, "POST", s.base+"/admin/v1/keys/"+newKID+"/revoke", admin.AccessToken, "", "", nil); code != http.StatusOK {
		t.Fatalf("admin key revocation: %d", code)
	}
	within(t, "token of a key revoked by the admin API refused", time.Now(), propagationBound, func() bool {
		code, _ := gwGet(t, g, "/me/x", rotated.AccessToken)
		return code == http.StatusUnauthorized
	})
	// The same with "keycard keys revoke" on the data directory. That
	// write comes from another process, which the auth server notices by
	// watching the feed's last sequence number (every 200 ms): within a
	// second too.
	if code, _ := gwGet(t, g, "/me/x", fresh.AccessToken); code != http.StatusOK {
		t.Fatalf("a token of the retired key: %d", code)
	}
	if code, _, errOut := run(t, "", "keys", "revoke", "--dev", "--data", s.data, oldKID); code != 0 {
		t.Fatalf("keys revoke: %d %s", code, errOut)
	}
	within(t, "token of a key revoked by the CLI refused", time.Now(), propagationBound, func() bool {
		code, _ := gwGet(t, g, "/me/x", fresh.AccessToken)
		return code == http.StatusUnauthorized
	})

	// A config change is picked up without a restart.
	config = strings.Replace(config, "routes:\n", "routes:\n  - path: /added/\n    upstream: "+up.URL+"\n    auth: none\n", 1)
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "added route served", func() bool {
		code, _ := gwGet(t, g, "/added/x", "")
		return code == http.StatusOK
	})
	// A broken one is refused and the running routes stay.
	if err := os.WriteFile(configPath, []byte(strings.Replace(config, "roles: [admin]", "roels: [admin]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "broken config refused", func() bool { return strings.Contains(g.log.String(), `unknown key \"roels\"`) })

	// A token of the key that signs now (the gateway fetches the key set
	// again for the new kid, at most once per 10 s).
	var last tokenResponse
	eventually(t, "a token of the new active key", func() bool {
		last = s.login(t, "alice", pass)
		code, _ := gwGet(t, g, "/me/x", last.AccessToken)
		return code == http.StatusOK
	})
	if code, _ := gwGet(t, g, "/admin/x", last.AccessToken); code != http.StatusForbidden {
		t.Errorf("after a refused reload, the admin route answers %d to a user, want 403", code)
	}

	// The auth server goes away: the gateway keeps verifying from its
	// cached keys and revocation set.
	if code := s.stop(); code != 0 {
		t.Errorf("serve exit code %d", code)
	}
	for range 3 {
		if code, _ := gwGet(t, g, "/me/x", last.AccessToken); code != http.StatusOK {
			t.Errorf("with the auth server down: %d", code)
		}
		if code, _ := gwGet(t, g, "/me/x", alice.AccessToken); code != http.StatusUnauthorized {
			t.Errorf("a logged-out token with the auth server down: %d", code)
		}
	}

	// Metrics, then a clean stop; no token or secret ever logged.
	var metrics string
	resp, err := http.Get(g.base + "/metrics")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
	}
	if !strings.Contains(metrics, `keycard_gateway_requests_total{code="200",route="/me/"}`) || !strings.Contains(metrics, `keycard_gateway_auth_failures_total{reason="revoked"}`) {
		t.Errorf("metrics: %.2000s", metrics)
	}
	for _, m := range []string{"keycard_gateway_revocation_feed_lag_seconds ", "keycard_gateway_revocation_feed_stale ", "keycard_gateway_revocation_entries ", "keycard_gateway_jwks_keys "} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	// Shutdown also ends upgraded connections, which the server does not
	// track once they are hijacked.
	conn := dialUpgrade(t, g.base, "/ws/chat")
	if code := g.stop(); code != 0 {
		t.Errorf("gateway exit code %d", code)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("an upgraded connection outlived the gateway: read %d bytes, %v", n, err)
	}
	conn.Close()
	logs := g.log.String()
	for _, secret := range []string{feed.ClientSecret, app.ClientSecret, weather, orders, alice.AccessToken, root.AccessToken, admin.AccessToken, rotated.AccessToken, fresh.AccessToken, last.AccessToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("the gateway log holds a secret: %.12s…", secret)
		}
	}
	if strings.Contains(strings.ToLower(logs), "bearer ") {
		t.Error("an Authorization value reached the gateway log")
	}
}

func TestGatewayRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfg, []byte("issuer: http://127.0.0.1:1\naudience: api\nclient: {id: a, secret_file: s}\nroutes:\n  - {path: /x/, upstream: 'http://127.0.0.1:2', scoeps: [a]}\n"), 0o600)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no --config", []string{"gateway"}, exitUsage, "--config is required"},
		{"missing file", []string{"gateway", "--config", filepath.Join(dir, "nope.yaml")}, exitUsage, "nope.yaml"},
		{"typo in a route", []string{"gateway", "--config", cfg}, exitUsage, `did you mean "scopes"`},
		{"a positional argument", []string{"gateway", "--config", cfg, "extra"}, exitUsage, "want 0 argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, "", tt.args...)
			if code != tt.code || out != "" || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
	// A valid file whose secret file is missing.
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nissuer: http://127.0.0.1:1\naudience: api\nclient: {id: a, secret_file: s}\nroutes:\n  - {path: /x/, upstream: 'http://127.0.0.1:2'}\n"), 0o600)
	if code, _, errOut := run(t, "", "gateway", "--config", cfg); code != exitFailure || !strings.Contains(errOut, "client.secret_file") {
		t.Errorf("missing secret file: exit %d, %q", code, errOut)
	}
}
