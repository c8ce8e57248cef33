package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
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
		strings.Contains(out, c.ClientSecret) || strings.Contains(out, "secret") {
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
