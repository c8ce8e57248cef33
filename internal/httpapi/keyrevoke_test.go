package httpapi

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/keycard-auth/keycard/jose"
)

// After POST /admin/v1/keys/{kid}/revoke, the very next token of each
// kind — a login's, a refresh's, a service client's — is signed by the
// new active key, and verifies under the JWKS served right then.
func TestRevokeKeyNextTokens(t *testing.T) {
	f := newFixture(t)
	admin := f.newAdmin(t)
	f.register(t, "alice", testPassword)
	c := f.newClient(t, []string{"feed:read"}, nil)
	refresh := f.login(t, "alice", testPassword).RefreshToken

	mints := []struct {
		name string
		mint func(t *testing.T) string
	}{
		{"login", func(t *testing.T) string { return f.login(t, "alice", testPassword).AccessToken }},
		{"refresh", func(t *testing.T) string {
			res := f.refresh(t, url.QueryEscape(refresh))
			if res.status != http.StatusOK {
				t.Fatalf("refresh: status %d, body %s", res.status, res.body)
			}
			var tok tokenResponse
			res.decode(t, &tok)
			refresh = tok.RefreshToken
			return tok.AccessToken
		}},
		{"client_credentials", func(t *testing.T) string { return f.clientToken(t, c, "").AccessToken }},
	}
	for _, m := range mints {
		t.Run(m.name, func(t *testing.T) {
			revoked := kidOf(t, m.mint(t))
			// The admin's token may be of the key revoked last time.
			admin = f.login(t, "root", testPassword)
			res := f.send(t, http.MethodPost, "/admin/v1/keys/"+revoked+"/revoke", admin.AccessToken)
			if res.status != http.StatusOK {
				t.Fatalf("key revoke: status %d, body %s", res.status, res.body)
			}
			var out struct {
				ActiveKID string `json:"active_kid"`
			}
			res.decode(t, &out)

			tok := m.mint(t)
			if kid := kidOf(t, tok); kid != out.ActiveKID || kid == revoked {
				t.Errorf("the next %s token is signed by %s, want %s (revoked: %s)", m.name, kid, out.ActiveKID, revoked)
			}
			set, err := jose.ParseKeySet(f.send(t, http.MethodGet, "/.well-known/jwks.json", "").body)
			if err != nil {
				t.Fatal(err)
			}
			if set.Lookup(revoked) != nil || set.Lookup(kidOf(t, tok)) == nil {
				t.Errorf("JWKS right after the revocation: has the revoked key %v, has the new token's key %v; want false, true",
					set.Lookup(revoked) != nil, set.Lookup(kidOf(t, tok)) != nil)
			}
		})
	}
}
