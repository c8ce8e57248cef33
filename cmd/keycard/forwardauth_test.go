package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The forward-auth tests run the real proxies (nginx from Debian, Caddy
// from the module proxy) in front of a recording upstream, with
// "keycard gateway --forward-auth" answering their subrequests. Without
// the binaries they skip, unless KEYCARD_TEST_PROXIES is set (CI sets it,
// after installing them): then they fail.

// proxyBinary returns the path of a proxy's binary, or skips the test.
func proxyBinary(t *testing.T, name string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("KEYCARD_TEST_PROXIES") != "" {
		t.Fatalf("%s is not installed, and KEYCARD_TEST_PROXIES is set (.ci/run installs it)", name)
	}
	t.Skipf("skipping: %s is not installed (set KEYCARD_TEST_PROXIES=1 to fail instead)", name)
	return ""
}

// freePort returns a loopback address that was free a moment ago; the
// proxies cannot listen on port 0 and tell.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProxy runs a proxy until the test ends and waits for it to answer
// at addr. args make its command line from the config it is given.
func startProxy(t *testing.T, name, bin string, args []string, addr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer at %s: %s", name, addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nginxConfig is nginx in front of upstream, asking the gateway at auth
// with auth_request, copying the identity with auth_request_set and
// proxy_set_header (which also drops a client's own copies), and handing
// the gateway's WWW-Authenticate to the client on 401. It is the config
// of docs/forward-auth.md.
const nginxConfig = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s;
    location / {
      auth_request /_keycard;
      auth_request_set $keycard_subject $upstream_http_x_keycard_subject;
      auth_request_set $keycard_session $upstream_http_x_keycard_session;
      auth_request_set $keycard_scopes  $upstream_http_x_keycard_scopes;
      auth_request_set $keycard_roles   $upstream_http_x_keycard_roles;
      auth_request_set $keycard_actor   $upstream_http_x_keycard_actor;
      auth_request_set $keycard_jkt     $upstream_http_x_keycard_key_thumbprint;
      auth_request_set $keycard_www     $upstream_http_www_authenticate;
      proxy_set_header X-Keycard-Subject $keycard_subject;
      proxy_set_header X-Keycard-Session $keycard_session;
      proxy_set_header X-Keycard-Scopes  $keycard_scopes;
      proxy_set_header X-Keycard-Roles   $keycard_roles;
      proxy_set_header X-Keycard-Actor   $keycard_actor;
      proxy_set_header X-Keycard-Key-Thumbprint $keycard_jkt;
      error_page 401 = @keycard_401;
      proxy_pass %[3]s;
    }
    location = /_keycard {
      internal;
      proxy_pass %[4]s/auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-Host $http_host;
    }
    location @keycard_401 {
      add_header WWW-Authenticate $keycard_www always;
      return 401;
    }
  }
}
`

// caddyConfig is Caddy in front of upstream with forward_auth, the
// config of docs/forward-auth.md.
const caddyConfig = `{
	admin off
	auto_https off
	persist_config off
}
http://%[1]s {
	forward_auth %[3]s {
		uri /auth
		copy_headers X-Keycard-Subject X-Keycard-Session X-Keycard-Scopes X-Keycard-Roles X-Keycard-Actor X-Keycard-Key-Thumbprint
	}
	reverse_proxy %[2]s
}
`

func TestForwardAuthProxies(t *testing.T) {
	s := startServer(t)
	const pass = "correct horse battery staple"
	for _, u := range []struct{ name, role string }{{"alice", "user"}, {"root", "admin"}} {
		if code, _, errOut := run(t, pass+"\n", "users", "add", "--data", s.data, "--username", u.name, "--role", u.role,
			"--password-stdin", "--argon2-memory", "64", "--argon2-iterations", "1"); code != 0 {
			t.Fatalf("users add %s: %d %s", u.name, code, errOut)
		}
	}
	feed := addClient(t, s.data, "--name", "gateway")
	app := addClient(t, s.data, "--name", "weather app", "--scope", "weather:read", "--scope", "orders:write")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feed.secret"), []byte(feed.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "gateway.yaml")
	config := fmt.Sprintf(`
listen: 127.0.0.1:0
issuer: %s
audience: api
client: {id: %s, secret_file: feed.secret}
routes:
  - {path: /weather/, scopes: [weather:read]}
  - {path: /me/}
  - {path: /admin/, roles: [admin]}
  - {path: /public/, auth: none}
`, s.base, feed.ClientID)
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, configPath, "--forward-auth")
	eventually(t, "gateway ready", func() bool {
		code, _ := call(t, "GET", g.base+"/readyz", "", "", "", nil)
		return code == http.StatusOK
	})

	proxies := []struct {
		name  string
		start func(t *testing.T, upstream string) string // returns the proxy's base URL
	}{
		{"nginx", func(t *testing.T, upstream string) string {
			bin := proxyBinary(t, "nginx", "nginx", "/usr/sbin/nginx")
			pdir := t.TempDir()
			addr := freePort(t)
			conf := filepath.Join(pdir, "nginx.conf")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConfig, pdir, addr, upstream, g.base)), 0o600); err != nil {
				t.Fatal(err)
			}
			startProxy(t, "nginx", bin, []string{"-p", pdir, "-c", conf, "-e", filepath.Join(pdir, "error.log")}, addr)
			return "http://" + addr
		}},
		{"caddy", func(t *testing.T, upstream string) string {
			bin := proxyBinary(t, "caddy", "caddy", filepath.Join(goBinDir(), "caddy"))
			pdir := t.TempDir()
			addr := freePort(t)
			conf := filepath.Join(pdir, "Caddyfile")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf(caddyConfig, addr, upstream, g.base)), 0o600); err != nil {
				t.Fatal(err)
			}
			startProxy(t, "caddy", bin, []string{"run", "--config", conf, "--adapter", "caddyfile"}, addr)
			return "http://" + addr
		}},
	}
	for _, px := range proxies {
		t.Run(px.name, func(t *testing.T) {
			up := newRecordingUpstream(t)
			base := px.start(t, up.URL)
			get := func(path, bearer string) (int, http.Header) {
				t.Helper()
				req, _ := http.NewRequest(http.MethodGet, base+path, nil)
				if bearer != "" {
					req.Header.Set("Authorization", "Bearer "+bearer)
				}
				// A client's forged identity, which must never reach the
				// upstream, also spelled with underscores (which CGI,
				// WSGI and Rack upstreams read as the same header).
				req.Header.Set("X-Keycard-Subject", "mallory")
				req.Header.Set("X-Keycard-Roles", "admin")
				req.Header.Set("X-Keycard-Scopes", "weather:read")
				req.Header.Set("X-Keycard-Actor", "mallory")
				req.Header.Set("X-Keycard-Key-Thumbprint", "mallory")
				req.Header["X_Keycard_Subject"] = []string{"mallory"}
				req.Header["x_keycard_roles"] = []string{"admin"}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode, resp.Header
			}
			// No token: 401, nothing upstream.
			if code, h := get("/weather/today", ""); code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("no token: %d, WWW-Authenticate %q", code, h.Get("WWW-Authenticate"))
			}
			if up.last() != nil {
				t.Fatal("a refused request reached the upstream")
			}
			// A valid token: the upstream sees the identity, not the forgery.
			weather := clientToken(t, s, app, "weather:read")
			if code, _ := get("/weather/today", weather); code != http.StatusOK {
				t.Fatalf("valid token: %d", code)
			}
			if h := up.last(); h.Get("X-Keycard-Subject") != app.ClientID || h.Get("X-Keycard-Scopes") != "weather:read" || h.Get("X-Keycard-Roles") != "" {
				t.Errorf("upstream identity: subject %q scopes %q roles %q", h.Get("X-Keycard-Subject"), h.Get("X-Keycard-Scopes"), h.Get("X-Keycard-Roles"))
			}
			noForgery(t, up.last())
			// A DPoP-bound token with a proof for the URL the client used
			// at the proxy: the upstream learns the key's thumbprint; the
			// same token as a bearer token is refused.
			key := dpopProver(t)
			proof, err := key.Proof("POST", s.base+"/oauth/token", "", "")
			if err != nil {
				t.Fatal(err)
			}
			_, _, body := dpopDo(t, "POST", s.base+"/oauth/token", "", proof,
				url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "scope": {"weather:read"}}.Encode())
			var bound tokenResponse
			if err := json.Unmarshal(body, &bound); err != nil || bound.TokenType != "DPoP" {
				t.Fatalf("DPoP token: %s", body)
			}
			if code, _, body := dpopDo(t, "GET", base+"/weather/today", "DPoP "+bound.AccessToken, mustProofFor(t, key, "GET", base+"/weather/today", bound.AccessToken), ""); code != http.StatusOK {
				t.Errorf("DPoP through the proxy: %d %s", code, body)
			} else if got := up.last().Get("X-Keycard-Key-Thumbprint"); got != key.Thumbprint() {
				t.Errorf("upstream X-Keycard-Key-Thumbprint %q, want %q", got, key.Thumbprint())
			}
			if code, _ := get("/weather/today", bound.AccessToken); code != http.StatusUnauthorized {
				t.Errorf("a DPoP-bound token as Bearer through the proxy: %d, want 401", code)
			}
			// Missing scope: 403.
			orders := clientToken(t, s, app, "orders:write")
			if code, _ := get("/weather/today", orders); code != http.StatusForbidden {
				t.Errorf("missing scope: %d, want 403", code)
			}
			// An open route: no identity, and still not the forgery.
			n := len(up.headers)
			if code, _ := get("/public/x", ""); code != http.StatusOK {
				t.Errorf("open route: %d", code)
			}
			if len(up.headers) == n {
				t.Fatal("the open route's request did not reach the upstream")
			}
			if h := up.last(); h.Get("X-Keycard-Subject") != "" || h.Get("X-Keycard-Roles") != "" || h.Get("X-Keycard-Scopes") != "" {
				t.Errorf("open route: the upstream got a forged identity: %v", h)
			}
			noForgery(t, up.last())
			// Logout: refused within the bound.
			alice := s.login(t, "alice", pass)
			if code, _ := get("/me/x", alice.AccessToken); code != http.StatusOK {
				t.Fatalf("alice: %d", code)
			}
			if code, _ := call(t, "POST", s.base+"/v1/logout", alice.AccessToken, "", "", nil); code != http.StatusNoContent {
				t.Fatalf("logout: %d", code)
			}
			within(t, px.name+": logged-out token refused", time.Now(), propagationBound, func() bool {
				code, _ := get("/me/x", alice.AccessToken)
				return code == http.StatusUnauthorized
			})
		})
	}
}

// noForgery fails if an upstream request has a forged identity header in
// any spelling.
func noForgery(t *testing.T, h http.Header) {
	t.Helper()
	for k, vs := range h {
		if !strings.HasPrefix(strings.ReplaceAll(strings.ToLower(k), "_", "-"), "x-keycard-") {
			continue
		}
		for _, v := range vs {
			if v == "mallory" || v == "admin" || strings.Contains(k, "_") {
				t.Errorf("the upstream got the client's %s: %q", k, v)
			}
		}
	}
}

// goBinDir returns where go install puts programs.
func goBinDir() string {
	if d := os.Getenv("GOBIN"); d != "" {
		return d
	}
	if d := os.Getenv("GOPATH"); d != "" {
		return filepath.Join(filepath.SplitList(d)[0], "bin")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "go", "bin")
}
