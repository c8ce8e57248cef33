package main

import (
	"context"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard/internal/server"
)

// TestIntrospectionCacheSetting: --introspection-cache reaches the
// server's configuration from the flag, the environment and the config
// file, defaults to server.DefaultIntrospectionCache, and a negative
// size is refused before the port is opened.
func TestIntrospectionCacheSetting(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{name: "default", want: server.DefaultIntrospectionCache},
		{name: "flag", args: []string{"--introspection-cache", "500"}, want: 500},
		{name: "off", args: []string{"--introspection-cache", "0"}, want: 0},
		{name: "environment", env: map[string]string{"KEYCARD_INTROSPECTION_CACHE": "0"}, want: 0},
		{name: "the flag wins", args: []string{"--introspection-cache", "7"}, env: map[string]string{"KEYCARD_INTROSPECTION_CACHE": "0"}, want: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := &cmdEnv{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &strings.Builder{}, stderr: &strings.Builder{},
				getenv: func(k string) string { return tc.env[k] }}
			var f serverFlags
			fs := env.serverFlagSet("serve", &f, keyFlags, passwordFlags, serveFlags)
			if code, ok := env.parseLayered(fs, append([]string{"--dev"}, tc.args...), 0); !ok {
				t.Fatalf("parse: exit %d: %s", code, env.stderr)
			}
			cfg, err := env.serverConfig(fs, &f, nil)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.IntrospectionCache != tc.want {
				t.Errorf("IntrospectionCache = %d, want %d", cfg.IntrospectionCache, tc.want)
			}
		})
	}
	code, _, errOut := run(t, "", "serve", "--dev", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--introspection-cache", "-1")
	if code == exitOK || !strings.Contains(errOut, "--introspection-cache must not be negative") {
		t.Errorf("serve --introspection-cache -1: exit %d, %q; want the setting refused", code, errOut)
	}
}

// TestIntrospectionWithoutCache: with --introspection-cache 0 the
// server still introspects, and a revoked token is inactive at once.
func TestIntrospectionWithoutCache(t *testing.T) {
	s := startServer(t, "--introspection-cache", "0")
	c := addClient(t, s.data, "--name", "gateway", "--scope", "feed:read", "--audience", "feed")
	var tok tokenResponse
	if status, _ := call(t, "POST", s.base+"/oauth/token", "", "application/x-www-form-urlencoded",
		"grant_type=client_credentials&scope=feed:read&client_id="+c.ClientID+"&client_secret="+c.ClientSecret, &tok); status != 200 || tok.AccessToken == "" {
		t.Fatalf("client_credentials: %d %+v", status, tok)
	}
	for i := range 2 { // the second would be a cache hit if there were a cache
		var in map[string]any
		if status, body := callBasic(t, s.base+"/oauth/introspect", c.ClientID, c.ClientSecret, "token="+tok.AccessToken, &in); status != 200 {
			t.Fatalf("introspect %d: %d %s", i, status, body)
		}
		if in["active"] != true || in["client_id"] != c.ClientID || in["scope"] != "feed:read" {
			t.Errorf("introspect %d: %v, want the active token", i, in)
		}
	}
	if status, body := callBasic(t, s.base+"/oauth/revoke", c.ClientID, c.ClientSecret, "token="+tok.AccessToken+"&token_type_hint=access_token", nil); status != 200 {
		t.Fatalf("revoke: %d %q", status, body)
	}
	var in map[string]any
	if status, body := callBasic(t, s.base+"/oauth/introspect", c.ClientID, c.ClientSecret, "token="+tok.AccessToken, &in); status != 200 {
		t.Fatalf("introspect after revoke: %d %s", status, body)
	}
	if len(in) != 1 || in["active"] != false {
		t.Errorf("introspect after revoke: %v, want {\"active\":false}", in)
	}
}
