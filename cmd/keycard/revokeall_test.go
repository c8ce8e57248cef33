package main

import (
	"fmt"
	"net/http"
	"testing"
)

// TestRevokeAllEndToEnd forces every user to sign in again on the real
// server: every refresh token dies, the server refuses every access token,
// and the feed carries a global cut-off for the verifiers.
func TestRevokeAllEndToEnd(t *testing.T) {
	s := startServer(t)
	const pass = "correct horse battery staple"
	for _, u := range []struct{ name, role string }{{"root", "admin"}, {"alice", "user"}, {"bob", "user"}} {
		if code, _, errOut := run(t, pass+"\n", "users", "add", "--data", s.data, "--username", u.name, "--role", u.role,
			"--password-stdin", "--argon2-memory", "64", "--argon2-iterations", "1"); code != 0 {
			t.Fatalf("users add %s: %d %s", u.name, code, errOut)
		}
	}
	reader := addClient(t, s.data, "--name", "gateway")
	_, start := readFeed(t, s, reader, "after=0")

	admin := s.login(t, "root", pass)
	alice := s.login(t, "alice", pass)
	bob := s.login(t, "bob", pass)

	if code, _ := call(t, "POST", s.base+"/admin/v1/revoke-all", alice.AccessToken, "", "", nil); code != http.StatusForbidden {
		t.Errorf("revoke-all by a non-admin: %d, want 403", code)
	}
	if code, _ := call(t, "POST", s.base+"/admin/v1/revoke-all", admin.AccessToken, "", "", nil); code != http.StatusOK {
		t.Fatalf("revoke-all: %d", code)
	}
	for name, tr := range map[string]tokenResponse{"root": admin, "alice": alice, "bob": bob} {
		if code, _ := s.refresh(t, tr.RefreshToken); code != http.StatusBadRequest {
			t.Errorf("%s's refresh token after revoke-all: %d, want 400", name, code)
		}
		if code, _ := call(t, "GET", s.base+"/v1/me", tr.AccessToken, "", "", nil); code != http.StatusUnauthorized {
			t.Errorf("%s's access token after revoke-all: %d, want 401", name, code)
		}
	}
	_, page := readFeed(t, s, reader, fmt.Sprintf("after=%d", start.Next))
	found := false
	for _, e := range page.Entries {
		found = found || e.Kind == "all"
	}
	if !found {
		t.Errorf("feed after revoke-all: %+v, want a global cut-off", page)
	}
	// Signing in again works.
	s.login(t, "alice", pass)
}
