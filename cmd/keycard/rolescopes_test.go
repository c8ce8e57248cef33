package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// TestServeRoleScopes: role_scopes (the YAML list form of --role-scopes)
// grants scopes to users' tokens by role.
func TestServeRoleScopes(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "keycard.yaml")
	if err := os.WriteFile(cfg, []byte("role_scopes: [\"*=weather:read\", \"customer=orders:write\", \"customer=orders:read\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--config", cfg)
	const pass = "correct horse battery staple"
	for _, u := range [][]string{{"ann", "--role", "customer"}, {"bob"}} {
		if code, _, errOut := run(t, pass+"\n", append([]string{"users", "add", "--data", s.data, "--password-stdin", "--username", u[0]}, u[1:]...)...); code != 0 {
			t.Fatalf("users add %s: %d %s", u[0], code, errOut)
		}
	}
	for user, want := range map[string]string{"ann": "weather:read orders:write orders:read", "bob": "weather:read"} {
		tr := s.login(t, user, pass)
		m, err := jose.UnsafeParse(tr.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		var c jwt.AccessClaims
		if err := json.Unmarshal(m.Payload, &c); err != nil {
			t.Fatal(err)
		}
		if c.Scope != want {
			t.Errorf("%s: token scope %q, want %q", user, c.Scope, want)
		}
	}
	if code, _, errOut := run(t, "", "serve", "--dev", "--data", t.TempDir(), "--role-scopes", "customer"); code != exitUsage && code != exitFailure || !strings.Contains(errOut, "ROLE=SCOPE") {
		t.Errorf("a malformed --role-scopes: exit %d, %q", code, errOut)
	}
}
