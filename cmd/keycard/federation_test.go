package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestFederationConfig reads the federation section of keycard serve's
// configuration file: secrets inline, from a file or from the
// environment, checks, unknown keys refused; and serve starts with it.
func TestFederationConfig(t *testing.T) {
	secretFile := writeFile(t, "corp.secret", "from-file\n")
	good := `federation:
  - name: corp
    display_name: Example Corp
    issuer: https://login.example.com
    client_id: keycard
    client_secret_file: ` + secretFile + `
    claims: {groups: roles}
    roles: {eng: [developer]}
    domains: ["@Example.com"]
    create_users: true
  - name: github
    kind: oauth2
    authorization_endpoint: https://github.com/login/oauth/authorize
    token_endpoint: https://github.com/login/oauth/access_token
    userinfo_endpoint: https://api.github.com/user
    client_id: gh
    client_secret: inline
    claims: {subject: id, username: login}
`
	path := writeFile(t, "keycard.yaml", good)
	env := map[string]string{"KEYCARD_FEDERATION_GITHUB_CLIENT_SECRET": "from-env"}
	list, err := readFederation(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("got %d providers, want 2", len(list))
	}
	corp, gh := list[0], list[1]
	if corp.ClientSecret != "from-file" || corp.DisplayName != "Example Corp" || corp.Claims.Groups != "roles" ||
		corp.Roles["eng"][0] != "developer" || corp.Domains[0] != "example.com" || !corp.CreateUsers || strings.Join(corp.Scopes, " ") != "openid email profile" {
		t.Errorf("corp: %+v", corp)
	}
	if gh.ClientSecret != "from-env" || gh.Kind != "oauth2" || gh.Claims.Subject != "id" {
		t.Errorf("github: %+v", gh)
	}
	if list, err := readFederation("", nil); err != nil || list != nil {
		t.Errorf("no file: %v, %v", list, err)
	}

	for name, body := range map[string]string{
		"unknown key":  "federation:\n  - name: x\n    issuer: https://a.example\n    client_id: c\n    colour: blue\n",
		"bad issuer":   "federation:\n  - name: x\n    issuer: http://a.example\n    client_id: c\n",
		"two secrets":  "federation:\n  - name: x\n    issuer: https://a.example\n    client_id: c\n    client_secret: s\n    client_secret_file: " + secretFile + "\n",
		"not a list":   "federation: corp\n",
		"missing file": "federation:\n  - name: x\n    issuer: https://a.example\n    client_id: c\n    client_secret_file: /nonexistent\n",
		"no client id": "federation:\n  - name: x\n    issuer: https://a.example\n",
		"bad name":     "federation:\n  - name: Corp!\n    issuer: https://a.example\n    client_id: c\n",
	} {
		p := writeFile(t, "bad.yaml", body)
		if _, err := readFederation(p, func(string) string { return "" }); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}

	// keycard serve takes the section beside its flags and starts.
	s := startServer(t, "--config", path)
	res, err := http.Get(s.base + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	page, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), "Sign in with Example Corp") || !strings.Contains(string(page), "Sign in with github") {
		t.Errorf("sign-in page: %d\n%s", res.StatusCode, page)
	}
}
