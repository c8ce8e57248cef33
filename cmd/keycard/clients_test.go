package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// callBasic posts a form with HTTP Basic client credentials and decodes a
// JSON answer into out (when not nil). It returns the status and the raw
// body.
func callBasic(t *testing.T, u, id, secret, body string, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret))))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("POST %s: decoding %q: %v", u, b, err)
		}
	}
	return resp.StatusCode, string(b)
}

type clientSecret struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// addClient runs "keycard clients add" and returns the printed credentials.
func addClient(t *testing.T, data string, args ...string) clientSecret {
	t.Helper()
	code, out, errOut := run(t, "", append([]string{"clients", "add", "--data", data}, args...)...)
	if code != exitOK {
		t.Fatalf("clients add: exit %d, stderr %s", code, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil || len(m) != 2 {
		t.Fatalf("clients add printed %q, want {\"client_id\",\"client_secret\"}", out)
	}
	var cs clientSecret
	json.Unmarshal([]byte(out), &cs)
	if cs.ClientID == "" || len(cs.ClientSecret) != 43 {
		t.Fatalf("clients add printed %q", out)
	}
	return cs
}

// TestClientsEndToEnd walks a service client through the real server:
// registered by the CLI while the server runs, it gets a client_credentials
// token, introspects it, revokes it, and introspection then says inactive.
func TestClientsEndToEnd(t *testing.T) {
	s := startServer(t)
	c := addClient(t, s.data, "--name", "gateway", "--scope", "feed:read", "--scope", "weather:read", "--audience", "feed")

	code, out, _ := run(t, "", "clients", "list", "--data", s.data)
	if code != exitOK || !strings.Contains(out, `"client_id":"`+c.ClientID+`"`) || !strings.Contains(out, `"name":"gateway"`) ||
		strings.Contains(out, c.ClientSecret) || strings.Contains(out, `"client_secret"`) || !strings.Contains(out, `"grant_types":["client_credentials"]`) {
		t.Errorf("clients list: exit %d, %s; want the client without its secret", code, out)
	}

	var tok struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int    `json:"expires_in"`
		Scope        string `json:"scope"`
		RefreshToken string `json:"refresh_token"`
	}
	status, h := call(t, "POST", s.base+"/oauth/token", "", "application/x-www-form-urlencoded",
		"grant_type=client_credentials&scope=feed:read&client_id="+c.ClientID+"&client_secret="+c.ClientSecret, &tok)
	if status != 200 || tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.Scope != "feed:read" || tok.RefreshToken != "" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("client_credentials: %d %+v", status, tok)
	}

	var in map[string]any
	if status, body := callBasic(t, s.base+"/oauth/introspect", c.ClientID, c.ClientSecret, "token="+tok.AccessToken, &in); status != 200 {
		t.Fatalf("introspect: %d %s", status, body)
	}
	if in["active"] != true || in["client_id"] != c.ClientID || in["sub"] != c.ClientID || in["scope"] != "feed:read" ||
		in["aud"] != "feed" || in["token_type"] != "Bearer" || in["iss"] != s.base {
		t.Errorf("introspect: %v", in)
	}

	if status, body := callBasic(t, s.base+"/oauth/revoke", c.ClientID, c.ClientSecret, "token="+tok.AccessToken+"&token_type_hint=access_token", nil); status != 200 || body != "" {
		t.Fatalf("revoke: %d %q", status, body)
	}
	in = nil
	if status, body := callBasic(t, s.base+"/oauth/introspect", c.ClientID, c.ClientSecret, "token="+tok.AccessToken, &in); status != 200 {
		t.Fatalf("introspect after revoke: %d %s", status, body)
	}
	if len(in) != 1 || in["active"] != false {
		t.Errorf("introspect after revoke: %v, want {\"active\":false}", in)
	}

	// A wrong secret is 401 invalid_client with a Basic challenge.
	var e tokenResponse
	req, _ := http.NewRequest("POST", s.base+"/oauth/introspect", strings.NewReader("token=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ClientID, "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 401 || e.Error != "invalid_client" || resp.Header.Get("WWW-Authenticate") != `Basic realm="keycard"` {
		t.Errorf("wrong secret: %d %+v %q", resp.StatusCode, e, resp.Header.Get("WWW-Authenticate"))
	}

	// rotate-secret: the old secret stops working, the new one works.
	code, out, errOut := run(t, "", "clients", "rotate-secret", "--data", s.data, "--id", c.ClientID)
	var next clientSecret
	if code != exitOK || json.Unmarshal([]byte(out), &next) != nil || next.ClientID != c.ClientID || next.ClientSecret == c.ClientSecret {
		t.Fatalf("clients rotate-secret: exit %d, %s %s", code, out, errOut)
	}
	if status, _ := callBasic(t, s.base+"/oauth/token", c.ClientID, c.ClientSecret, "grant_type=client_credentials", nil); status != 401 {
		t.Errorf("old secret after rotation: %d, want 401", status)
	}
	if status, body := callBasic(t, s.base+"/oauth/token", c.ClientID, next.ClientSecret, "grant_type=client_credentials", nil); status != 200 {
		t.Errorf("new secret after rotation: %d %s", status, body)
	}

	// delete: the client can no longer authenticate.
	if code, _, errOut := run(t, "", "clients", "delete", "--data", s.data, "--id", c.ClientID); code != exitOK {
		t.Fatalf("clients delete: exit %d %s", code, errOut)
	}
	if status, _ := callBasic(t, s.base+"/oauth/token", c.ClientID, next.ClientSecret, "grant_type=client_credentials", nil); status != 401 {
		t.Errorf("deleted client: %d, want 401", status)
	}
	// The server never logged a secret or a token.
	logs := s.log.String()
	for _, secret := range []string{c.ClientSecret, next.ClientSecret, tok.AccessToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("the server log holds %q", secret)
		}
	}
}

func TestClientsCommands(t *testing.T) {
	data := newData(t)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no subcommand", []string{"clients"}, exitUsage},
		{"unknown subcommand", []string{"clients", "frob"}, exitUsage},
		{"add without --name", []string{"clients", "add", "--data", data, "--scope", "a"}, exitUsage},
		{"add with a bad scope", []string{"clients", "add", "--data", data, "--name", "x", "--scope", `a"b`}, exitFailure},
		{"rotate-secret without --id", []string{"clients", "rotate-secret", "--data", data}, exitUsage},
		{"rotate-secret of an unknown client", []string{"clients", "rotate-secret", "--data", data, "--id", "nope"}, exitFailure},
		{"delete of an unknown client", []string{"clients", "delete", "--data", data, "--id", "nope"}, exitFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, out, errOut := run(t, "", tt.args...); code != tt.code || out != "" {
				t.Errorf("keycard %s: exit %d, stdout %q, stderr %q; want exit %d and nothing on stdout", strings.Join(tt.args, " "), code, out, errOut, tt.code)
			}
		})
	}
	// Without --audience, with several scopes in one flag. The server's
	// audience from the environment is not the client's.
	t.Setenv("KEYCARD_AUDIENCE", "server-audience")
	c := addClient(t, data, "--name", "feed reader", "--scope", "feed:read,feed:stream")
	code, out, _ := run(t, "", "clients", "list", "--data", data)
	if code != exitOK || !strings.Contains(out, c.ClientID) || !strings.Contains(out, `"scopes":["feed:read","feed:stream"]`) || !strings.Contains(out, `"audiences":[]`) {
		t.Errorf("clients list: exit %d, %s", code, out)
	}
}

// showClient runs "keycard clients show" and returns the client printed.
func showClient(t *testing.T, data, id string) map[string]any {
	t.Helper()
	code, out, errOut := run(t, "", "clients", "show", "--data", data, "--id", id)
	if code != exitOK {
		t.Fatalf("clients show: exit %d, stderr %s", code, errOut)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("clients show printed %q: %v", out, err)
	}
	if _, ok := m["client_secret"]; ok {
		t.Errorf("clients show printed a secret: %s", out)
	}
	return m
}

// addKeyless runs "keycard clients add" for a client without a secret and
// returns its id.
func addKeyless(t *testing.T, data string, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, "", append([]string{"clients", "add", "--data", data}, args...)...)
	var m map[string]string
	if code != exitOK || json.Unmarshal([]byte(out), &m) != nil || len(m) != 1 || m["client_id"] == "" {
		t.Fatalf("clients add %v: exit %d, stdout %q, stderr %q; want {\"client_id\"} alone", args, code, out, errOut)
	}
	return m["client_id"]
}

// jsonOf returns v as compact JSON, for comparisons.
func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestClientsApps registers each kind of application client with the
// command line, shows, lists and updates them; the registration flags are
// never read from the environment, which holds the server's settings.
func TestClientsApps(t *testing.T) {
	data := newData(t)
	for k, v := range map[string]string{"KEYCARD_NAME": "env name", "KEYCARD_GRANT": "client_credentials", "KEYCARD_SCOPE": "env:scope",
		"KEYCARD_REDIRECT_URI": "https://env.example/cb", "KEYCARD_PUBLIC": "true", "KEYCARD_FIRST_PARTY": "true"} {
		t.Setenv(k, v)
	}
	// A web app with a back end: a redirect URI implies the code grant
	// and refresh tokens; a comma in a URI stays in it.
	web := addClient(t, data, "--name", "Orders web", "--redirect-uri", "https://orders.example.com/callback?a=1,2",
		"--redirect-uri", "https://orders.example.com/cb2", "--post-logout-redirect-uri", "https://orders.example.com/bye",
		"--first-party", "--scope", "orders:read", "--backchannel-logout-uri", "https://orders.example.com/logout",
		"--access-token-lifetime", "5m", "--refresh-token-lifetime", "720h", "--refresh-token-idle", "24h")
	got := showClient(t, data, web.ClientID)
	for k, want := range map[string]string{
		"name": `"Orders web"`, "grant_types": `["authorization_code","refresh_token"]`, "public": "false", "first_party": "true",
		"redirect_uris":             `["https://orders.example.com/callback?a=1,2","https://orders.example.com/cb2"]`,
		"post_logout_redirect_uris": `["https://orders.example.com/bye"]`, "scopes": `["orders:read"]`, "audiences": `[]`,
		"backchannel_logout_uri": `"https://orders.example.com/logout"`, "token_endpoint_auth_method": `"client_secret_basic"`,
		"access_token_lifetime": `"5m0s"`, "refresh_token_lifetime": `"720h0m0s"`, "refresh_token_idle": `"24h0m0s"`,
	} {
		if jsonOf(got[k]) != want {
			t.Errorf("web app %s = %s, want %s", k, jsonOf(got[k]), want)
		}
	}

	// A native app: public, no secret, loopback redirect.
	native := addKeyless(t, data, "--name", "CLI", "--public", "--redirect-uri", "http://127.0.0.1/callback")
	got = showClient(t, data, native)
	if jsonOf(got["public"]) != "true" || jsonOf(got["token_endpoint_auth_method"]) != `"none"` || jsonOf(got["grant_types"]) != `["authorization_code","refresh_token"]` {
		t.Errorf("native app: %v", got)
	}

	// private_key_jwt, keys in a file or at a URI: no secret.
	key, err := jose.GenerateKey(jose.ES256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := jose.NewKeySet(key.Public())
	jwks, _ := json.MarshalIndent(set, "", "  ")
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, append(jwks, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	keyed := addKeyless(t, data, "--name", "Billing", "--scope", "billing:write", "--jwks", jwksFile)
	notJSON := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(notJSON, []byte("-----BEGIN PUBLIC KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	privJWK, err := key.MarshalPrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	privateJWKS := filepath.Join(t.TempDir(), "private.json")
	if err := os.WriteFile(privateJWKS, []byte(`{"keys":[`+string(privJWK)+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	got = showClient(t, data, keyed)
	if jsonOf(got["token_endpoint_auth_method"]) != `"private_key_jwt"` || jsonOf(got["grant_types"]) != `["client_credentials"]` || got["jwks"] == nil {
		t.Errorf("private_key_jwt client: %v", got)
	}
	fetched := addKeyless(t, data, "--name", "Reports", "--jwks-uri", "https://reports.example.com/jwks.json")
	if got := showClient(t, data, fetched); jsonOf(got["jwks_uri"]) != `"https://reports.example.com/jwks.json"` || jsonOf(got["token_endpoint_auth_method"]) != `"private_key_jwt"` {
		t.Errorf("jwks_uri client: %v", got)
	}

	// list prints every client with its settings, no secret.
	code, out, _ := run(t, "", "clients", "list", "--data", data)
	if code != exitOK || strings.Count(out, "\n") != 4 || strings.Contains(out, web.ClientSecret) || strings.Contains(out, `"client_secret"`) ||
		!strings.Contains(out, `"redirect_uris":["http://127.0.0.1/callback"]`) || !strings.Contains(out, `"first_party":true`) {
		t.Errorf("clients list: exit %d\n%s", code, out)
	}

	// update replaces the registration: what is not given is gone; the
	// secret stays.
	code, out, errOut := run(t, "", "clients", "update", "--data", data, "--id", web.ClientID, "--name", "Orders",
		"--redirect-uri", "https://orders.example.com/new", "--grant", "authorization_code")
	var upd map[string]any
	if code != exitOK || json.Unmarshal([]byte(out), &upd) != nil {
		t.Fatalf("clients update: exit %d, %s %s", code, out, errOut)
	}
	if jsonOf(upd["redirect_uris"]) != `["https://orders.example.com/new"]` || jsonOf(upd["grant_types"]) != `["authorization_code"]` ||
		upd["first_party"] != false || upd["access_token_lifetime"] != nil || jsonOf(upd["scopes"]) != "[]" {
		t.Errorf("after update: %v", upd)
	}
	if jsonOf(showClient(t, data, web.ClientID)) != jsonOf(upd) {
		t.Error("show differs from what update printed")
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
	}{
		{"add: a redirect URI with a fragment", []string{"clients", "add", "--data", data, "--name", "x", "--redirect-uri", "https://a.example/cb#f"}, exitFailure},
		{"add: an http redirect URI off loopback", []string{"clients", "add", "--data", data, "--name", "x", "--redirect-uri", "http://a.example/cb"}, exitFailure},
		{"add: a wildcard redirect URI", []string{"clients", "add", "--data", data, "--name", "x", "--redirect-uri", "https://*.example/cb"}, exitFailure},
		{"add: the implicit grant", []string{"clients", "add", "--data", data, "--name", "x", "--grant", "implicit"}, exitFailure},
		{"add: code grant without redirect URI", []string{"clients", "add", "--data", data, "--name", "x", "--grant", "authorization_code"}, exitFailure},
		{"add: public with client_credentials", []string{"clients", "add", "--data", data, "--name", "x", "--public", "--grant", "client_credentials"}, exitFailure},
		{"add: public with private_key_jwt", []string{"clients", "add", "--data", data, "--name", "x", "--public", "--redirect-uri", "https://a.example/cb", "--jwks-uri", "https://a.example/k"}, exitFailure},
		{"add: both --jwks and --jwks-uri", []string{"clients", "add", "--data", data, "--name", "x", "--jwks", jwksFile, "--jwks-uri", "https://a.example/k"}, exitFailure},
		{"add: private_key_jwt without keys", []string{"clients", "add", "--data", data, "--name", "x", "--auth-method", "private_key_jwt"}, exitFailure},
		{"add: an http jwks_uri", []string{"clients", "add", "--data", data, "--name", "x", "--jwks-uri", "http://a.example/k"}, exitFailure},
		{"add: an unknown auth method", []string{"clients", "add", "--data", data, "--name", "x", "--auth-method", "magic"}, exitFailure},
		{"add: a missing --jwks file", []string{"clients", "add", "--data", data, "--name", "x", "--jwks", filepath.Join(t.TempDir(), "none.json")}, exitUsage},
		{"add: a --jwks file that is not JSON", []string{"clients", "add", "--data", data, "--name", "x", "--jwks", notJSON}, exitUsage},
		{"add: a --jwks file too large", []string{"clients", "add", "--data", data, "--name", "x", "--jwks", os.Args[0]}, exitUsage},
		{"add: a --jwks file of a private key", []string{"clients", "add", "--data", data, "--name", "x", "--jwks", privateJWKS}, exitFailure},
		{"add: a negative lifetime", []string{"clients", "add", "--data", data, "--name", "x", "--access-token-lifetime", "-1m"}, exitFailure},
		{"add: a lifetime that is no duration", []string{"clients", "add", "--data", data, "--name", "x", "--refresh-token-idle", "a week"}, exitUsage},
		{"update without --id", []string{"clients", "update", "--data", data, "--name", "x"}, exitUsage},
		{"update without --name", []string{"clients", "update", "--data", data, "--id", web.ClientID}, exitUsage},
		{"update of an unknown client", []string{"clients", "update", "--data", data, "--id", "nope", "--name", "x"}, exitFailure},
		{"update: public to confidential", []string{"clients", "update", "--data", data, "--id", native, "--name", "CLI", "--redirect-uri", "http://127.0.0.1/callback"}, exitFailure},
		{"update: private_key_jwt to a secret it has not", []string{"clients", "update", "--data", data, "--id", keyed, "--name", "Billing"}, exitFailure},
		{"show without --id", []string{"clients", "show", "--data", data}, exitUsage},
		{"show of an unknown client", []string{"clients", "show", "--data", data, "--id", "nope"}, exitFailure},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if code, out, errOut := run(t, "", tt.args...); code != tt.code || out != "" || errOut == "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, a message and nothing on stdout", code, out, errOut, tt.code)
			}
		})
	}
	// The refused commands changed nothing.
	code, out, _ = run(t, "", "clients", "list", "--data", data)
	if code != exitOK || strings.Count(out, "\n") != 4 {
		t.Errorf("after the refused commands, %d clients", strings.Count(out, "\n"))
	}
	if got := showClient(t, data, native); got["public"] != true || got["name"] != "CLI" {
		t.Errorf("the native app after a refused update: %v", got)
	}
}

// TestClientsPrivateKeyJWT: a client registered with --jwks by the command
// line, while the server runs, gets a client_credentials token with a
// signed assertion, and the same assertion again is refused.
func TestClientsPrivateKeyJWT(t *testing.T) {
	s := startServer(t)
	key, err := jose.GenerateKey(jose.EdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := jose.NewKeySet(key.Public())
	jwks, _ := json.Marshal(set)
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	id := addKeyless(t, s.data, "--name", "billing", "--scope", "billing:write", "--jwks", jwksFile)
	now := time.Now()
	assertion, err := jwt.Sign(key, jwt.MapClaims{"iss": id, "sub": id, "aud": s.base + "/oauth/token", "jti": "a1",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	body := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion": {assertion}}.Encode()
	var tok tokenResponse
	if status, _ := call(t, "POST", s.base+"/oauth/token", "", "application/x-www-form-urlencoded", body, &tok); status != 200 || tok.AccessToken == "" {
		t.Fatalf("client_credentials with an assertion: %d %+v", status, tok)
	}
	var e tokenResponse
	if status, _ := call(t, "POST", s.base+"/oauth/token", "", "application/x-www-form-urlencoded", body, &e); status != 401 || e.Error != "invalid_client" {
		t.Errorf("the assertion replayed: %d %+v, want 401 invalid_client", status, e)
	}
	if strings.Contains(s.log.String(), assertion) {
		t.Error("the server log holds the assertion")
	}
}
