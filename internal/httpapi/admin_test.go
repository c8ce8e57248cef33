package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// adminFixture is a fixture with an admin "root" logged in.
type adminFixture struct {
	*fixture
	adminID string
	token   string // the admin's access token
}

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	f := newFixture(t)
	u, err := f.svc.Register(context.Background(), "root", testPassword, []string{auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	return &adminFixture{fixture: f, adminID: u.ID, token: f.login(t, "root", testPassword).AccessToken}
}

// call sends an admin request with a JSON body (none when body is "").
func (f *adminFixture) call(t *testing.T, method, path, body string) *response {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + f.token}}
	if body != "" {
		h.Set("Content-Type", "application/json")
	}
	return f.do(t, request{method: method, path: path, header: h, body: body})
}

// ok fails the test unless res has the status, and decodes its body into v
// (when not nil).
func ok(t *testing.T, res *response, status int, v any) {
	t.Helper()
	if res.status != status {
		t.Fatalf("got status %d, want %d (body %s)", res.status, status, res.body)
	}
	if cc := res.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if v != nil {
		res.decode(t, v)
	}
}

// tokenClaims returns the claims of a JWS without verifying it.
func tokenClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWS", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAdminNeedsAdminRole(t *testing.T) {
	f := newAdminFixture(t)
	uid := f.register(t, "alice", testPassword)
	userToken := f.login(t, "alice", testPassword).AccessToken
	routes := []struct{ method, path, body string }{
		{"GET", "/admin/v1/users", ""},
		{"GET", "/admin/v1/users/" + uid, ""},
		{"DELETE", "/admin/v1/users/" + uid, ""},
		{"POST", "/admin/v1/users/" + uid + "/disable", ""},
		{"POST", "/admin/v1/users/" + uid + "/enable", ""},
		{"PUT", "/admin/v1/users/" + uid + "/roles", `{"roles":["admin"]}`},
		{"GET", "/admin/v1/users/" + uid + "/sessions", ""},
		{"DELETE", "/admin/v1/users/" + uid + "/sessions", ""},
		{"DELETE", "/admin/v1/users/" + uid + "/sessions/x", ""},
		{"GET", "/admin/v1/users/" + uid + "/consents", ""},
		{"GET", "/admin/v1/users/" + uid + "/passkeys", ""},
		{"DELETE", "/admin/v1/users/" + uid + "/passkeys/x", ""},
		{"DELETE", "/admin/v1/users/" + uid + "/consents/x", ""},
		{"GET", "/admin/v1/keys", ""},
		{"POST", "/admin/v1/keys/rotate", ""},
		{"GET", "/admin/v1/clients", ""},
		{"POST", "/admin/v1/clients", `{"name":"x"}`},
		{"DELETE", "/admin/v1/clients/x", ""},
		{"POST", "/admin/v1/clients/x/rotate-secret", ""},
		{"GET", "/admin/v1/audit", ""},
		{"GET", "/admin/v1/backchannel-logouts", ""},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			h := http.Header{"Content-Type": {"application/json"}}
			res := f.do(t, request{method: rt.method, path: rt.path, header: h, body: rt.body})
			res.wantError(t, http.StatusUnauthorized, codeUnauthorized)
			if res.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			h.Set("Authorization", "Bearer "+userToken)
			res = f.do(t, request{method: rt.method, path: rt.path, header: h, body: rt.body})
			res.wantError(t, http.StatusForbidden, codeInsufficientRole)
			h.Set("Authorization", "Bearer not.a.token")
			res = f.do(t, request{method: rt.method, path: rt.path, header: h, body: rt.body})
			res.wantError(t, http.StatusUnauthorized, codeInvalidToken)
		})
	}
	// Nothing was changed by the refused requests.
	u, err := f.svc.User(context.Background(), uid)
	if err != nil || u.Disabled || slices.Contains(u.Roles, auth.RoleAdmin) {
		t.Errorf("user after refused admin requests = %+v, %v; want unchanged", u, err)
	}
	// Taking the role away takes effect on the admin's current token.
	if _, err := f.svc.Register(context.Background(), "root2", testPassword, []string{auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	root2 := f.login(t, "root2", testPassword).AccessToken
	var root2User adminUsersResponse
	ok(t, f.call(t, "GET", "/admin/v1/users?q=root2", ""), http.StatusOK, &root2User)
	ok(t, f.call(t, "PUT", "/admin/v1/users/"+root2User.Users[0].ID+"/roles", `{"roles":[]}`), http.StatusOK, nil)
	f.send(t, "GET", "/admin/v1/users", root2).wantError(t, http.StatusForbidden, codeInsufficientRole)
}

func TestAdminUsersListAndSearch(t *testing.T) {
	f := newAdminFixture(t)
	for _, name := range []string{"Alice", "alfred", "bob", "carol", "Albert"} {
		f.register(t, name, testPassword)
	}
	// Paging through everything, two at a time.
	var names []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		var got adminUsersResponse
		ok(t, f.call(t, "GET", "/admin/v1/users?limit=2&cursor="+url.QueryEscape(cursor), ""), http.StatusOK, &got)
		if len(got.Users) > 2 {
			t.Fatalf("page of %d users, want at most 2", len(got.Users))
		}
		for _, u := range got.Users {
			names = append(names, u.Username)
		}
		if got.Next == "" {
			break
		}
		cursor = got.Next
	}
	if want := []string{"Albert", "alfred", "Alice", "bob", "carol", "root"}; !slices.Equal(names, want) {
		t.Errorf("paged users: got %v, want %v", names, want)
	}

	// Search is by username prefix, ignoring case.
	var got adminUsersResponse
	ok(t, f.call(t, "GET", "/admin/v1/users?q=AL", ""), http.StatusOK, &got)
	names = nil
	for _, u := range got.Users {
		names = append(names, u.Username)
	}
	if want := []string{"Albert", "alfred", "Alice"}; !slices.Equal(names, want) || got.Next != "" {
		t.Errorf("search AL: got %v next %q, want %v and no next", names, got.Next, want)
	}
	ok(t, f.call(t, "GET", "/admin/v1/users?q=lic", ""), http.StatusOK, &got)
	if len(got.Users) != 0 {
		t.Errorf("search lic (not a prefix): got %d users, want none", len(got.Users))
	}

	// One user, in full, without the password hash.
	res := f.call(t, "GET", "/admin/v1/users/"+f.adminID, "")
	var u map[string]any
	ok(t, res, http.StatusOK, &u)
	if u["id"] != f.adminID || u["username"] != "root" || u["disabled"] != false || u["created_at"] == nil {
		t.Errorf("GET user: got %s", res.body)
	}
	if strings.Contains(string(res.body), "argon2") || strings.Contains(string(res.body), "password_hash") {
		t.Errorf("GET user shows the password hash: %s", res.body)
	}
	f.call(t, "GET", "/admin/v1/users/nobody", "").wantError(t, http.StatusNotFound, codeNotFound)
}

func TestAdminBadInput(t *testing.T) {
	f := newAdminFixture(t)
	uid := f.register(t, "alice", testPassword)
	usersCursor := encodeCursor("users", "alice")
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"limit zero", "GET", "/admin/v1/users?limit=0", "", 400},
		{"limit not a number", "GET", "/admin/v1/users?limit=ten", "", 400},
		{"limit too large", "GET", "/admin/v1/users?limit=501", "", 400},
		{"limit negative", "GET", "/admin/v1/audit?limit=-1", "", 400},
		{"limit twice", "GET", "/admin/v1/users?limit=1&limit=2", "", 400},
		{"cursor not base64", "GET", "/admin/v1/users?cursor=%25%25", "", 400},
		{"cursor garbage", "GET", "/admin/v1/users?cursor=bm9wZQ", "", 400},
		{"cursor of another list", "GET", "/admin/v1/clients?cursor=" + usersCursor, "", 400},
		{"audit cursor not a number", "GET", "/admin/v1/audit?cursor=" + encodeCursor("audit", "x"), "", 400},
		{"audit cursor negative", "GET", "/admin/v1/audit?cursor=" + encodeCursor("audit", "-5"), "", 400},
		{"sessions bad cursor", "GET", "/admin/v1/users/" + uid + "/sessions?cursor=!", "", 400},
		{"unknown query parameter", "GET", "/admin/v1/users?search=a", "", 400},
		{"malformed query", "GET", "/admin/v1/users?q=%zz", "", 400},
		{"search not a username prefix", "GET", "/admin/v1/users?q=a%20b", "", 400},
		{"bad since", "GET", "/admin/v1/audit?since=yesterday", "", 400},
		{"bad until", "GET", "/admin/v1/audit?until=2026-13-01T00:00:00Z", "", 400},
		{"time without zone", "GET", "/admin/v1/audit?since=2026-11-01T00:00:00", "", 400},
		{"until before since", "GET", "/admin/v1/audit?since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z", "", 400},
		{"long type", "GET", "/admin/v1/audit?type=" + strings.Repeat("x", 300), "", 400},
		{"roles unknown field", "PUT", "/admin/v1/users/" + uid + "/roles", `{"roles":[],"admin":true}`, 400},
		{"roles missing", "PUT", "/admin/v1/users/" + uid + "/roles", `{}`, 400},
		{"roles not an array", "PUT", "/admin/v1/users/" + uid + "/roles", `{"roles":"admin"}`, 400},
		{"role with a space", "PUT", "/admin/v1/users/" + uid + "/roles", `{"roles":["a b"]}`, 400},
		{"too many roles", "PUT", "/admin/v1/users/" + uid + "/roles", `{"roles":[` + manyRoles(auth.MaxUserRoles+1) + `]}`, 400},
		{"roles not JSON", "PUT", "/admin/v1/users/" + uid + "/roles", `{"roles":[`, 400},
		{"rotate unknown field", "POST", "/admin/v1/keys/rotate", `{"now":true}`, 400},
		{"rotate wrong type", "POST", "/admin/v1/keys/rotate", `{"immediate":"yes"}`, 400},
		{"client without name", "POST", "/admin/v1/clients", `{"scopes":["a"]}`, 400},
		{"client bad scope", "POST", "/admin/v1/clients", `{"name":"x","scopes":["a b"]}`, 400},
		{"client unknown field", "POST", "/admin/v1/clients", `{"name":"x","secret":"s"}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.call(t, tt.method, tt.path, tt.body)
			res.wantError(t, tt.status, codeInvalidRequest)
		})
	}
	// A body that is not JSON is 415.
	h := http.Header{"Authorization": {"Bearer " + f.token}, "Content-Type": {"text/plain"}}
	f.do(t, request{method: "PUT", path: "/admin/v1/users/" + uid + "/roles", header: h, body: `{"roles":[]}`}).
		wantError(t, http.StatusUnsupportedMediaType, codeInvalidRequest)
}

func manyRoles(n int) string {
	var rs []string
	for i := range n {
		rs = append(rs, jsonString("r"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+string(rune('a'+i/26))))
	}
	return strings.Join(rs, ",")
}

func TestAdminDisableEnable(t *testing.T) {
	f := newAdminFixture(t)
	uid := f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword)

	var u adminUserJSON
	ok(t, f.call(t, "POST", "/admin/v1/users/"+uid+"/disable", ""), http.StatusOK, &u)
	if !u.Disabled || u.ID != uid {
		t.Errorf("disable: got %+v, want alice disabled", u)
	}
	// Her refresh token and access token are dead, and she cannot log in.
	f.refresh(t, tok.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	f.send(t, "GET", "/v1/me", tok.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	f.postJSON(t, "/v1/login", "", credentialsJSON("alice", testPassword)).wantError(t, http.StatusUnauthorized, codeInvalidGrant)

	ok(t, f.call(t, "POST", "/admin/v1/users/"+uid+"/enable", ""), http.StatusOK, &u)
	if u.Disabled {
		t.Errorf("enable: got %+v, want alice enabled", u)
	}
	f.login(t, "alice", testPassword)

	// An admin cannot disable or delete themselves, or drop their own role.
	e := f.call(t, "POST", "/admin/v1/users/"+f.adminID+"/disable", "").wantError(t, http.StatusConflict, codeConflict)
	if !strings.Contains(e.Description, "own account") {
		t.Errorf("self-disable message %q, want it to say why", e.Description)
	}
	f.call(t, "DELETE", "/admin/v1/users/"+f.adminID, "").wantError(t, http.StatusConflict, codeConflict)
	f.call(t, "PUT", "/admin/v1/users/"+f.adminID+"/roles", `{"roles":["user"]}`).wantError(t, http.StatusConflict, codeConflict)
	ok(t, f.call(t, "POST", "/admin/v1/users/"+f.adminID+"/enable", ""), http.StatusOK, nil) // harmless
	ok(t, f.call(t, "GET", "/v1/me", ""), http.StatusOK, nil)                                // the admin still works

	f.call(t, "POST", "/admin/v1/users/nobody/disable", "").wantError(t, http.StatusNotFound, codeNotFound)
	f.call(t, "POST", "/admin/v1/users/nobody/enable", "").wantError(t, http.StatusNotFound, codeNotFound)
}

func TestAdminRolesAndDelete(t *testing.T) {
	f := newAdminFixture(t)
	uid := f.register(t, "alice", testPassword)
	if roles := tokenClaims(t, f.login(t, "alice", testPassword).AccessToken)["roles"]; roles != nil {
		t.Fatalf("roles before: got %v, want none", roles)
	}
	var u adminUserJSON
	ok(t, f.call(t, "PUT", "/admin/v1/users/"+uid+"/roles", `{"roles":["editor","viewer","editor"]}`), http.StatusOK, &u)
	if want := []string{"editor", "viewer"}; !slices.Equal(u.Roles, want) {
		t.Errorf("roles: got %v, want %v", u.Roles, want)
	}
	tok := f.login(t, "alice", testPassword)
	if got := tokenClaims(t, tok.AccessToken)["roles"]; !slices.Equal(toStrings(got), []string{"editor", "viewer"}) {
		t.Errorf("roles in the next login's token: got %v, want [editor viewer]", got)
	}
	f.call(t, "PUT", "/admin/v1/users/nobody/roles", `{"roles":[]}`).wantError(t, http.StatusNotFound, codeNotFound)

	ok(t, f.call(t, "DELETE", "/admin/v1/users/"+uid, ""), http.StatusNoContent, nil)
	f.call(t, "GET", "/admin/v1/users/"+uid, "").wantError(t, http.StatusNotFound, codeNotFound)
	f.call(t, "DELETE", "/admin/v1/users/"+uid, "").wantError(t, http.StatusNotFound, codeNotFound)
	f.refresh(t, tok.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	f.send(t, "GET", "/v1/me", tok.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	// The revoked session reached the revocation feed.
	revs, err := f.stores.Revocations.Revocations(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(revs, func(r *keycard.Revocation) bool {
		return r.Kind == keycard.RevokeSession && r.Value == tok.SessionID
	}) {
		t.Errorf("revocation feed %v has no entry for the deleted user's session %s", revs, tok.SessionID)
	}
	// The name can be registered again, as a new user.
	if id := f.register(t, "alice", testPassword); id == uid {
		t.Error("re-registered alice got the deleted user's id")
	}
}

func toStrings(v any) []string {
	a, _ := v.([]any)
	var out []string
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestAdminUserSessions(t *testing.T) {
	f := newAdminFixture(t)
	uid := f.register(t, "alice", testPassword)
	bid := f.register(t, "bob", testPassword)
	var toks []tokenResponse
	for range 3 {
		toks = append(toks, f.login(t, "alice", testPassword))
		f.clock.Advance(time.Second)
	}
	bob := f.login(t, "bob", testPassword)

	var ids []string
	cursor := ""
	for range 10 {
		var got adminSessionsResponse
		ok(t, f.call(t, "GET", "/admin/v1/users/"+uid+"/sessions?limit=2&cursor="+cursor, ""), http.StatusOK, &got)
		for _, s := range got.Sessions {
			ids = append(ids, s.ID)
		}
		if got.Next == "" {
			break
		}
		cursor = got.Next
	}
	if want := []string{toks[2].SessionID, toks[1].SessionID, toks[0].SessionID}; !slices.Equal(ids, want) {
		t.Errorf("sessions, newest first: got %v, want %v", ids, want)
	}
	f.call(t, "GET", "/admin/v1/users/nobody/sessions", "").wantError(t, http.StatusNotFound, codeNotFound)

	// Bob's session is not Alice's; unknown sessions are 404 too.
	f.call(t, "DELETE", "/admin/v1/users/"+uid+"/sessions/"+bob.SessionID, "").wantError(t, http.StatusNotFound, codeNotFound)
	f.call(t, "DELETE", "/admin/v1/users/"+uid+"/sessions/nope", "").wantError(t, http.StatusNotFound, codeNotFound)

	ok(t, f.call(t, "DELETE", "/admin/v1/users/"+uid+"/sessions/"+toks[0].SessionID, ""), http.StatusNoContent, nil)
	f.refresh(t, toks[0].RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	if res := f.refresh(t, toks[1].RefreshToken); res.status != http.StatusOK {
		t.Fatalf("refresh of another session: got %d, want 200", res.status)
	}

	var revoked revokedResponse
	ok(t, f.call(t, "DELETE", "/admin/v1/users/"+uid+"/sessions", ""), http.StatusOK, &revoked)
	if revoked.Revoked != 2 {
		t.Errorf("revoke all: got %d revoked, want 2", revoked.Revoked)
	}
	var left adminSessionsResponse
	ok(t, f.call(t, "GET", "/admin/v1/users/"+uid+"/sessions", ""), http.StatusOK, &left)
	if len(left.Sessions) != 0 {
		t.Errorf("sessions after revoke all: got %d, want 0", len(left.Sessions))
	}
	ok(t, f.call(t, "GET", "/admin/v1/users/"+bid+"/sessions", ""), http.StatusOK, &left)
	if len(left.Sessions) != 1 {
		t.Errorf("bob's sessions: got %d, want 1", len(left.Sessions))
	}
	f.call(t, "DELETE", "/admin/v1/users/nobody/sessions", "").wantError(t, http.StatusNotFound, codeNotFound)
}

func TestAdminKeys(t *testing.T) {
	f := newAdminFixture(t)
	var keys adminKeysResponse
	res := f.call(t, "GET", "/admin/v1/keys", "")
	ok(t, res, http.StatusOK, &keys)
	if len(keys.Keys) != 1 || keys.Keys[0].State != "active" || keys.Keys[0].Alg != "ES256" || keys.Keys[0].KID == "" {
		t.Fatalf("keys: got %s, want one active ES256 key", res.body)
	}
	for _, secret := range []string{`"d"`, "private", "sealed"} {
		if strings.Contains(string(res.body), secret) {
			t.Errorf("key list shows %s: %s", secret, res.body)
		}
	}
	first := keys.Keys[0].KID

	// Without a body: a next key, signing later.
	var k adminKeyJSON
	ok(t, f.call(t, "POST", "/admin/v1/keys/rotate", ""), http.StatusCreated, &k)
	if k.State != "next" || k.ActivatesAt == nil || !k.ActivatesAt.After(f.clock.Now()) {
		t.Errorf("rotate: got %+v, want a next key activating later", k)
	}
	// Immediate: active at once, the old one retired.
	ok(t, f.call(t, "POST", "/admin/v1/keys/rotate", `{"immediate":true}`), http.StatusCreated, &k)
	if k.State != "active" {
		t.Errorf("immediate rotate: got %+v, want active", k)
	}
	ok(t, f.call(t, "GET", "/admin/v1/keys", ""), http.StatusOK, &keys)
	states := map[string]string{}
	for _, key := range keys.Keys {
		states[key.KID] = key.State
		if key.State == "retired" && (key.RetiredAt == nil || key.RemoveAfter == nil) {
			t.Errorf("retired key %+v without retired_at and remove_after", key)
		}
	}
	if states[first] != "retired" || states[k.KID] != "active" || len(keys.Keys) != 3 {
		t.Errorf("key states after rotations: %v", states)
	}
	// New tokens are signed by the new key.
	tok := f.login(t, "root", testPassword)
	hdr, _, _ := strings.Cut(tok.AccessToken, ".")
	b, _ := base64.RawURLEncoding.DecodeString(hdr)
	if !strings.Contains(string(b), k.KID) {
		t.Errorf("token header %s, want kid %s", b, k.KID)
	}
	events, err := f.svc.AuditEvents(context.Background(), keycard.AuditFilter{Type: keycard.AuditKeyRotated})
	if err != nil || len(events) != 2 || events[0].Actor != f.adminID {
		t.Errorf("key.rotated events = %v, %v; want 2 by the admin", events, err)
	}
}

func TestAdminClients(t *testing.T) {
	f := newAdminFixture(t)
	var c adminClientJSON
	res := f.call(t, "POST", "/admin/v1/clients", `{"name":"billing","scopes":["orders:read"],"audiences":["orders"]}`)
	ok(t, res, http.StatusCreated, &c)
	if c.ID == "" || c.Secret == "" || c.Name != "billing" || !slices.Equal(c.Scopes, []string{"orders:read"}) || !slices.Equal(c.Audiences, []string{"orders"}) {
		t.Fatalf("create client: got %s", res.body)
	}
	// The secret works for client_credentials.
	grant := func(secret string) *response {
		return f.postForm(t, "/oauth/token", "grant_type=client_credentials&client_id="+c.ID+"&client_secret="+secret)
	}
	if res := grant(c.Secret); res.status != http.StatusOK {
		t.Fatalf("client_credentials with the new secret: %d %s", res.status, res.body)
	}

	var list adminClientsResponse
	res = f.call(t, "GET", "/admin/v1/clients", "")
	ok(t, res, http.StatusOK, &list)
	if len(list.Clients) != 1 || list.Clients[0].ID != c.ID || strings.Contains(string(res.body), c.Secret) || strings.Contains(string(res.body), `"client_secret"`) {
		t.Errorf("list clients: got %s, want the client without its secret", res.body)
	}
	// Paging.
	for i := range 3 {
		ok(t, f.call(t, "POST", "/admin/v1/clients", `{"name":"c`+string(rune('0'+i))+`"}`), http.StatusCreated, nil)
	}
	seen := 0
	cursor := ""
	for range 10 {
		var p adminClientsResponse // fresh: an absent "next" must not keep the last one
		ok(t, f.call(t, "GET", "/admin/v1/clients?limit=3&cursor="+cursor, ""), http.StatusOK, &p)
		seen += len(p.Clients)
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	if seen != 4 {
		t.Errorf("paged clients: got %d, want 4", seen)
	}

	var rotated clientSecretResponse
	ok(t, f.call(t, "POST", "/admin/v1/clients/"+c.ID+"/rotate-secret", ""), http.StatusOK, &rotated)
	if rotated.ClientID != c.ID || rotated.ClientSecret == "" || rotated.ClientSecret == c.Secret {
		t.Errorf("rotate secret: got %+v", rotated)
	}
	grant(c.Secret).wantError(t, http.StatusUnauthorized, codeInvalidClient)
	if res := grant(rotated.ClientSecret); res.status != http.StatusOK {
		t.Errorf("client_credentials with the rotated secret: %d %s", res.status, res.body)
	}
	f.call(t, "POST", "/admin/v1/clients/nobody/rotate-secret", "").wantError(t, http.StatusNotFound, codeNotFound)

	ok(t, f.call(t, "DELETE", "/admin/v1/clients/"+c.ID, ""), http.StatusNoContent, nil)
	f.call(t, "DELETE", "/admin/v1/clients/"+c.ID, "").wantError(t, http.StatusNotFound, codeNotFound)
	grant(rotated.ClientSecret).wantError(t, http.StatusUnauthorized, codeInvalidClient)
}

func TestAdminAudit(t *testing.T) {
	f := newAdminFixture(t)
	uid := f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword)
	f.clock.Advance(time.Hour)
	mid := f.clock.Now()
	f.token = f.login(t, "root", testPassword).AccessToken // the first one expired
	ok(t, f.call(t, "PUT", "/admin/v1/users/"+uid+"/roles", `{"roles":["editor"]}`), http.StatusOK, nil)
	ok(t, f.call(t, "POST", "/admin/v1/users/"+uid+"/disable", ""), http.StatusOK, nil)
	var c adminClientJSON
	ok(t, f.call(t, "POST", "/admin/v1/clients", `{"name":"billing"}`), http.StatusCreated, &c)
	var rotated clientSecretResponse
	ok(t, f.call(t, "POST", "/admin/v1/clients/"+c.ID+"/rotate-secret", ""), http.StatusOK, &rotated)

	get := func(query string) auditResponse {
		t.Helper()
		res := f.call(t, "GET", "/admin/v1/audit"+query, "")
		var out auditResponse
		ok(t, res, http.StatusOK, &out)
		for _, secret := range []string{tok.AccessToken, tok.RefreshToken, f.token, c.Secret, rotated.ClientSecret, testPassword} {
			if strings.Contains(string(res.body), secret) {
				t.Errorf("audit log shows a secret: %s", res.body)
			}
		}
		return out
	}
	types := func(r auditResponse) []string {
		var out []string
		for _, e := range r.Events {
			out = append(out, e.Type)
		}
		return out
	}

	all := get("")
	if len(all.Events) < 8 {
		t.Fatalf("audit log: got %v", types(all))
	}
	// By type, with the admin as actor and the request's address.
	byType := get("?type=" + auth.AuditUserDisabled)
	if len(byType.Events) != 1 {
		t.Fatalf("type filter: got %v", types(byType))
	}
	if e := byType.Events[0]; e.Actor != f.adminID || e.Subject != uid || e.ClientAddr != "127.0.0.1" || string(e.Detail) != `{"was_disabled":false}` {
		t.Errorf("user.disabled event: got %+v", e)
	}
	// By user: what alice did (log in) and what was done to her.
	if got, want := types(get("?user="+uid)), []string{auth.AuditUserDisabled, auth.AuditUserRolesChanged, keycard.AuditLoginSucceeded, keycard.AuditUserCreated}; !slices.Equal(got, want) {
		t.Errorf("user filter: got %v, want %v", got, want)
	}
	// By time: since is inclusive, until exclusive.
	since := get("?user=" + uid + "&since=" + url.QueryEscape(mid.Format(time.RFC3339Nano)))
	if got, want := types(since), []string{auth.AuditUserDisabled, auth.AuditUserRolesChanged}; !slices.Equal(got, want) {
		t.Errorf("since filter: got %v, want %v", got, want)
	}
	until := get("?user=" + uid + "&until=" + url.QueryEscape(mid.Format(time.RFC3339)))
	if got, want := types(until), []string{keycard.AuditLoginSucceeded, keycard.AuditUserCreated}; !slices.Equal(got, want) {
		t.Errorf("until filter: got %v, want %v", got, want)
	}
	// An offset time means the same instant.
	offset := get("?user=" + uid + "&since=" + url.QueryEscape(mid.In(time.FixedZone("", 2*3600)).Format(time.RFC3339)))
	if len(offset.Events) != 2 {
		t.Errorf("since with an offset: got %v", types(offset))
	}
	// Paging the whole log one at a time gives it all, in order.
	var paged []int64
	cursor := ""
	for range 100 {
		p := get("?limit=1&cursor=" + cursor)
		for _, e := range p.Events {
			paged = append(paged, e.ID)
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	var ids []int64
	for _, e := range all.Events {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(paged, ids) {
		t.Errorf("paged audit ids %v, want %v", paged, ids)
	}
	if none := get("?type=no.such.type"); len(none.Events) != 0 || none.Next != "" {
		t.Errorf("unknown type: got %v", types(none))
	}
	// The admin's client events name the admin.
	created := get("?type=" + auth.AuditClientCreated)
	if len(created.Events) != 1 || created.Events[0].Actor != f.adminID || created.Events[0].Subject != c.ID {
		t.Errorf("client.created: got %+v", created.Events)
	}
}

// TestStepUp: with ReauthWithin, the admin API and password changes need
// a recent login: an older one gets 401 insufficient_user_authentication
// with max_age (RFC 9470), and signing in again satisfies it.
func TestStepUp(t *testing.T) {
	f := newFixture(t, fixtureOptions{reauthWithin: 5 * time.Minute})
	if _, err := f.svc.Register(context.Background(), "root", testPassword, []string{auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	tok := f.login(t, "root", testPassword)
	if res := f.send(t, http.MethodGet, "/admin/v1/users", tok.AccessToken); res.status != http.StatusOK {
		t.Fatalf("fresh login: %d %s", res.status, res.body)
	}
	f.clock.Advance(6 * time.Minute)
	var tr tokenResponse
	res := f.refresh(t, tok.RefreshToken) // a new access token, the same old login
	if res.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", res.status, res.body)
	}
	res.decode(t, &tr)
	check := func(res *response) {
		t.Helper()
		res.wantError(t, http.StatusUnauthorized, codeInsufficientUserAuthentication)
		ch := res.header.Get("WWW-Authenticate")
		if !strings.Contains(ch, `error="insufficient_user_authentication"`) || !strings.Contains(ch, `max_age="300"`) {
			t.Errorf("challenge %q", ch)
		}
	}
	check(f.send(t, http.MethodGet, "/admin/v1/users", tr.AccessToken))
	check(f.postJSON(t, "/v1/password", tr.AccessToken, `{"current_password":"`+testPassword+`","new_password":"another long passphrase"}`))
	// Reading one's own data needs no step-up.
	if res := f.send(t, http.MethodGet, "/v1/me", tr.AccessToken); res.status != http.StatusOK {
		t.Errorf("/v1/me with an old login: %d", res.status)
	}
	again := f.login(t, "root", testPassword)
	if res := f.send(t, http.MethodGet, "/admin/v1/users", again.AccessToken); res.status != http.StatusOK {
		t.Errorf("after signing in again: %d %s", res.status, res.body)
	}
}

// TestAdminDeleteUserStepUp: deleting a user needs a sign-in within the
// step-up window (5 minutes) even without --reauth-within: an older one
// gets 401 insufficient_user_authentication with max_age and deletes
// nothing; after signing in again the user is deleted, their session ends
// through the revocation feed, and the deletion is audited.
func TestAdminDeleteUserStepUp(t *testing.T) {
	f := newAdminFixture(t)
	uid := f.register(t, "alice", testPassword)
	alice := f.login(t, "alice", testPassword)
	root := f.login(t, "root", testPassword)
	f.clock.Advance(auth.DefaultStepUpWithin + time.Minute)
	var tr tokenResponse
	res := f.refresh(t, root.RefreshToken) // a new access token, the same old sign-in
	if res.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", res.status, res.body)
	}
	res.decode(t, &tr)
	res = f.send(t, http.MethodDelete, "/admin/v1/users/"+uid, tr.AccessToken)
	res.wantError(t, http.StatusUnauthorized, codeInsufficientUserAuthentication)
	if ch := res.header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_user_authentication"`) || !strings.Contains(ch, `max_age="300"`) {
		t.Errorf("challenge %q", ch)
	}
	// Nothing was deleted, and other admin calls need no step-up.
	ok(t, f.send(t, http.MethodGet, "/admin/v1/users/"+uid, tr.AccessToken), http.StatusOK, nil)

	again := f.login(t, "root", testPassword)
	ok(t, f.send(t, http.MethodDelete, "/admin/v1/users/"+uid, again.AccessToken), http.StatusNoContent, nil)
	f.refresh(t, alice.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	revs, err := f.stores.Revocations.Revocations(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(revs, func(r *keycard.Revocation) bool { return r.Kind == keycard.RevokeSession && r.Value == alice.SessionID }) ||
		!slices.ContainsFunc(revs, func(r *keycard.Revocation) bool { return r.Kind == keycard.RevokeUser && r.Value == uid }) {
		t.Errorf("revocation feed %v lacks the deleted user's session %s or cut-off", revs, alice.SessionID)
	}
	events, err := f.svc.AuditEvents(context.Background(), keycard.AuditFilter{Type: auth.AuditUserDeleted})
	if err != nil || len(events) != 1 || events[0].Actor != f.adminID || events[0].Subject != uid {
		t.Errorf("user.deleted events %+v, %v; want one by the admin about alice", events, err)
	}
}

// TestAdminCreateUser: an admin creates users (with roles) even with
// registration off; bad input is 400, a taken name 409, a non-admin 403.
func TestAdminCreateUser(t *testing.T) {
	f := newFixture(t, fixtureOptions{noRegistration: true})
	if _, err := f.svc.Register(context.Background(), "root", testPassword, []string{auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	admin := f.login(t, "root", testPassword).AccessToken
	post := func(token, body string) *response {
		return f.do(t, request{method: http.MethodPost, path: "/admin/v1/users", body: body,
			header: http.Header{"Authorization": {"Bearer " + token}, "Content-Type": {"application/json"}}})
	}
	res := post(admin, `{"username":"Bench-1","password":"`+testPassword+`","roles":["customer"]}`)
	var u struct {
		ID       string   `json:"id"`
		Username string   `json:"username"`
		Roles    []string `json:"roles"`
	}
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	res.decode(t, &u)
	if u.Username != "Bench-1" || len(u.Roles) != 1 || u.Roles[0] != "customer" || u.ID == "" {
		t.Errorf("created %+v", u)
	}
	f.login(t, "bench-1", testPassword) // the new user can sign in
	post(admin, `{"username":"bench-1","password":"`+testPassword+`"}`).wantError(t, http.StatusConflict, codeConflict)
	post(admin, `{"username":"x","password":"short"}`).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	post(admin, `{"password":"`+testPassword+`"}`).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	post(admin, `{"username":"y","password":"`+testPassword+`","roles":["bad role"]}`).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	post(admin, `{"username":"y","password":"`+testPassword+`","roles":"admin"}`).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	user := f.login(t, "bench-1", testPassword).AccessToken
	post(user, `{"username":"z","password":"`+testPassword+`"}`).wantError(t, http.StatusForbidden, codeInsufficientRole)
}

// TestAdminBackchannelLogouts: the admin view of back-channel logouts
// lists what is owed, filtered by state and client, and refuses a bad
// filter.
func TestAdminBackchannelLogouts(t *testing.T) {
	ctx := context.Background()
	f := newAdminFixture(t)
	var c adminClientJSON
	ok(t, f.call(t, "POST", "/admin/v1/clients", `{"name":"orders","grant_types":["authorization_code"],
		"redirect_uris":["https://orders.example/cb"],"backchannel_logout_uri":"https://orders.example/bc"}`), http.StatusCreated, &c)
	uid := f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword)
	now := f.clock.Now()
	grant := &keycard.Session{ID: "grant-session-1", UserID: uid, ParentID: tok.SessionID, ClientID: c.ID, Scope: "openid",
		CreatedAt: now, LastUsedAt: now, IdleTimeout: time.Hour, ExpiresAt: now.Add(time.Hour)}
	if err := f.stores.Sessions.CreateSession(ctx, grant, nil, nil); err != nil {
		t.Fatal(err)
	}
	ok(t, f.call(t, "POST", "/v1/logout", ""), http.StatusNoContent, nil) // the admin's own: owes nothing
	if _, err := f.stores.Sessions.RevokeSession(ctx, tok.SessionID, now, keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	f.token = f.login(t, "root", testPassword).AccessToken
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"", 1},
		{"?state=pending", 1},
		{"?state=failed", 0},
		{"?client_id=" + c.ID, 1},
		{"?client_id=other", 0},
	} {
		var out logoutsResponse
		ok(t, f.call(t, "GET", "/admin/v1/backchannel-logouts"+tc.query, ""), http.StatusOK, &out)
		if len(out.Deliveries) != tc.want {
			t.Errorf("GET %s: got %d deliveries, want %d", tc.query, len(out.Deliveries), tc.want)
			continue
		}
		if tc.want == 1 {
			d := out.Deliveries[0]
			if d.SessionID != grant.ID || d.SID != tok.SessionID || d.UserID != uid || d.State != "pending" ||
				d.Reason != keycard.RevokeParentEnded || d.URI != "https://orders.example/bc" {
				t.Errorf("GET %s: got %+v", tc.query, d)
			}
		}
	}
	for _, query := range []string{"?state=lost", "?limit=0", "?client_id=" + strings.Repeat("x", 300), "?cursor=x"} {
		res := f.call(t, "GET", "/admin/v1/backchannel-logouts"+query, "")
		res.wantError(t, http.StatusBadRequest, codeInvalidRequest)
	}
}

// grantTo signs user in, lets the third-party client c in (consent) and
// redeems a code for it as the client, over HTTP: it returns the grant's
// refresh token.
func (f *adminFixture) grantTo(t *testing.T, user string, c *keycard.Client, secret string) string {
	t.Helper()
	ctx := context.Background()
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" // RFC 7636 appendix B
	login := f.login(t, user, testPassword)
	b, err := f.svc.BrowserSession(ctx, login.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.svc.Authorize(ctx, url.Values{"client_id": {c.ID}, "response_type": {"code"}, "redirect_uri": {"https://app.example/cb"},
		"scope": {"openid offline_access orders:read"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Consent(ctx, b, a, auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	code, err := f.svc.IssueCode(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	res := f.do(t, request{method: "POST", path: "/oauth/token", header: formHeader(basic(c.ID, secret)),
		body: url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example/cb"}, "code_verifier": {verifier}}.Encode()})
	var tok tokenResponse
	ok(t, res, http.StatusOK, &tok)
	if tok.RefreshToken == "" {
		t.Fatalf("no refresh token: %s", res.body)
	}
	return tok.RefreshToken
}

// TestAdminConsents: an admin lists a user's consents and takes one back,
// which ends the client's refresh tokens for that user; another user's
// consent, an unknown user or client, and a second revocation are 404.
func TestAdminConsents(t *testing.T) {
	f := newAdminFixture(t)
	ctx := context.Background()
	alice := f.register(t, "alice", testPassword)
	bob := f.register(t, "bob", testPassword)
	app, secret, err := f.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "Orders", Scopes: []string{"orders:read"}, OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken}, RedirectURIs: []string{"https://app.example/cb"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	refresh := f.grantTo(t, "alice", app, secret)
	bobRefresh := f.grantTo(t, "bob", app, secret)

	var list struct {
		Consents []map[string]any `json:"consents"`
	}
	ok(t, f.call(t, "GET", "/admin/v1/users/"+alice+"/consents", ""), http.StatusOK, &list)
	if len(list.Consents) != 1 {
		t.Fatalf("consents: %+v, want one", list.Consents)
	}
	got := list.Consents[0]
	if got["client_id"] != app.ID || got["client_name"] != "Orders" || strings.Join(toStrings(got["scopes"]), " ") != "openid offline_access orders:read" ||
		got["created_at"] == nil || got["updated_at"] == nil {
		t.Errorf("consent: %v", got)
	}
	f.call(t, "GET", "/admin/v1/users/nope/consents", "").wantError(t, http.StatusNotFound, codeNotFound)

	f.call(t, "DELETE", "/admin/v1/users/"+alice+"/consents/nope", "").wantError(t, http.StatusNotFound, codeNotFound)
	f.call(t, "DELETE", "/admin/v1/users/"+f.adminID+"/consents/"+app.ID, "").wantError(t, http.StatusNotFound, codeNotFound)
	ok(t, f.call(t, "DELETE", "/admin/v1/users/"+alice+"/consents/"+app.ID, ""), http.StatusNoContent, nil)
	f.call(t, "DELETE", "/admin/v1/users/"+alice+"/consents/"+app.ID, "").wantError(t, http.StatusNotFound, codeNotFound)
	ok(t, f.call(t, "GET", "/admin/v1/users/"+alice+"/consents", ""), http.StatusOK, &list)
	if len(list.Consents) != 0 {
		t.Errorf("consents after the revocation: %+v", list.Consents)
	}
	// Alice's grant has ended; Bob's has not.
	refreshForm := func(token string) string {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}.Encode()
	}
	f.do(t, request{method: "POST", path: "/oauth/token", header: formHeader(basic(app.ID, secret)), body: refreshForm(refresh)}).
		wantError(t, http.StatusBadRequest, codeInvalidGrant)
	if res := f.do(t, request{method: "POST", path: "/oauth/token", header: formHeader(basic(app.ID, secret)), body: refreshForm(bobRefresh)}); res.status != http.StatusOK {
		t.Errorf("bob's refresh after alice's revocation: %d %s", res.status, res.body)
	}
	ok(t, f.call(t, "GET", "/admin/v1/users/"+bob+"/consents", ""), http.StatusOK, &list)
	if len(list.Consents) != 1 {
		t.Errorf("bob's consents: %+v, want his one", list.Consents)
	}
	events, err := f.svc.AuditEvents(ctx, keycard.AuditFilter{Type: auth.AuditConsentRevoked, Limit: 10})
	if err != nil || len(events) != 1 || events[0].Actor != f.adminID || events[0].Subject != alice {
		t.Errorf("audit: %+v, %v; want one event of the admin taking back alice's consent", events, err)
	}
}
