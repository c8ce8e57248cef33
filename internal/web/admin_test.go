package web_test

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

func TestAdminNeedsRole(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	b := f.browser(t)
	b.mustSignIn("alice")
	if p := b.get("/account"); strings.Contains(p.body, `href="/admin/users"`) {
		t.Error("the console is linked for a user without the admin role")
	}
	for _, path := range []string{"/admin/", "/admin/users", "/admin/keys", "/admin/clients", "/admin/audit", "/admin/webhooks", "/admin/signout-all"} {
		if p := b.get(path); p.status != http.StatusForbidden {
			t.Errorf("GET %s without the admin role: status %d, want 403", path, p.status)
		}
	}
	token := b.csrf(b.get("/account"))
	if p := b.post("/admin/signout-all", url.Values{"csrf_token": {token}, "confirm": {"sign out everyone"}}); p.status != http.StatusForbidden {
		t.Errorf("POST /admin/signout-all without the admin role: status %d", p.status)
	}
	if p := b.get("/account"); p.status != http.StatusOK {
		t.Errorf("alice was signed out: %d", p.status)
	}
	// Signed out, the console sends the browser to sign in and back.
	anon := f.browser(t)
	if _, visited := anon.follow("/admin/keys"); visited[len(visited)-1] != "/signin?next=%2Fadmin%2Fkeys" {
		t.Errorf("signed out: %v", visited)
	}
}

func TestAdminUsers(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "root", "admin")
	for i := range 30 {
		f.addUser(t, fmt.Sprintf("user%02d", i))
	}
	f.addUser(t, "Alice")
	b := f.browser(t)
	b.mustSignIn("root")
	rows := regexp.MustCompile(`<a href="/admin/users/[^"]+">([^<]+)</a>`)
	first := b.get("/admin/users")
	names := rows.FindAllStringSubmatch(first.body, -1)
	if len(names) != 25 || names[0][1] != "Alice" {
		t.Fatalf("first page: %d users, first %v", len(names), names[:1])
	}
	next := regexp.MustCompile(`href="(/admin/users\?after=[^"]+)" rel="next"`).FindStringSubmatch(first.body)
	if next == nil {
		t.Fatal("no link to the next page")
	}
	second := b.get(strings.ReplaceAll(next[1], "&amp;", "&"))
	if n := len(rows.FindAllString(second.body, -1)); n != 7 {
		t.Errorf("second page: %d users, want 7", n)
	}
	if strings.Contains(second.body, `rel="next"`) {
		t.Error("the last page links to a next one")
	}
	search := b.get("/admin/users?q=AL")
	if got := rows.FindAllStringSubmatch(search.body, -1); len(got) != 1 || got[0][1] != "Alice" {
		t.Errorf("search AL: %v", got)
	}
	for _, q := range []string{"a b", "\x01", strings.Repeat("a", 300)} {
		p := b.get("/admin/users?q=" + url.QueryEscape(q))
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="q-error" role="alert"`) {
			t.Errorf("q=%q: status %d, want 400 with the error next to the field", q, p.status)
		}
	}
	if p := b.get("/admin/users/nope"); p.status != http.StatusNotFound {
		t.Errorf("unknown user: status %d", p.status)
	}
}

func TestAdminUserActions(t *testing.T) {
	f := newFixture(t)
	rootID := f.addUser(t, "root", "admin")
	aliceID := f.addUser(t, "alice")
	admin, alice := f.browser(t), f.browser(t)
	admin.mustSignIn("root")
	alice.mustSignIn("alice")
	alice2 := f.browser(t)
	alice2.mustSignIn("alice")
	userPage := "/admin/users/" + aliceID

	// Sessions: two, revoke one.
	p := admin.get(userPage)
	sids := regexp.MustCompile(`<tr data-session="([^"]+)"`).FindAllStringSubmatch(p.body, -1)
	if len(sids) != 2 {
		t.Fatalf("alice's page lists %d sessions, want 2", len(sids))
	}
	r := admin.post(userPage+"/sessions/"+sids[0][1]+"/revoke", url.Values{"csrf_token": {admin.csrf(p)}})
	if r.status != http.StatusSeeOther || r.location() != userPage+"?done=revoked" {
		t.Fatalf("revoke: %d %q", r.status, r.location())
	}
	p = admin.get(r.location())
	if n := len(regexp.MustCompile(`<tr data-session=`).FindAllString(p.body, -1)); n != 1 {
		t.Errorf("after revoking one: %d sessions", n)
	}
	if !strings.Contains(p.body, "The session is revoked.") {
		t.Error("no notice")
	}
	if r := admin.postFrom(userPage, userPage+"/sessions/nope/revoke", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown session: status %d", r.status)
	}

	// Roles: bad ones are shown next to the field, good ones saved.
	r = admin.postFrom(userPage, userPage+"/roles", url.Values{"roles": {`bad"role`}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, `id="roles-error" role="alert"`) || !strings.Contains(r.body, `value="bad&#34;role"`) {
		t.Errorf("bad role: status %d, error next to the field: %v", r.status, strings.Contains(r.body, "roles-error"))
	}
	r = admin.postFrom(userPage, userPage+"/roles", url.Values{"roles": {"editor, viewer"}})
	if r.location() != userPage+"?done=roles" {
		t.Fatalf("roles: %d %q", r.status, r.location())
	}
	if u, _ := f.svc.User(context.Background(), aliceID); fmt.Sprint(u.Roles) != "[editor viewer]" {
		t.Errorf("roles %v", u.Roles)
	}
	// An admin cannot take the role from themselves.
	r = admin.postFrom("/admin/users/"+rootID, "/admin/users/"+rootID+"/roles", url.Values{"roles": {"viewer"}})
	if r.status != http.StatusConflict || !strings.Contains(r.body, `id="roles-error"`) {
		t.Errorf("removing own admin role: status %d", r.status)
	}
	// Nor disable themselves; the page offers no button for it.
	if p := admin.get("/admin/users/" + rootID); strings.Contains(p.body, "/disable") {
		t.Error("the admin's own page offers to disable them")
	}
	if r := admin.postFrom("/admin/users/"+rootID, "/admin/users/"+rootID+"/disable", nil); r.status != http.StatusConflict {
		t.Errorf("disabling oneself: status %d", r.status)
	}

	// Disable signs alice out everywhere; enable lets her sign in again.
	r = admin.postFrom(userPage, userPage+"/disable", nil)
	if r.location() != userPage+"?done=disabled" {
		t.Fatalf("disable: %d %q", r.status, r.location())
	}
	if _, visited := alice.follow("/account"); !strings.HasPrefix(visited[len(visited)-1], "/signin") {
		t.Errorf("disabled alice still reaches %v", visited)
	}
	if p := f.browser(t).signIn("alice", testPassword, ""); p.status != http.StatusUnauthorized {
		t.Errorf("disabled alice signs in: %d", p.status)
	}
	if r := admin.postFrom(userPage, userPage+"/enable", nil); r.location() != userPage+"?done=enabled" {
		t.Errorf("enable: %q", r.location())
	}
	alice.mustSignIn("alice")
	alice2.mustSignIn("alice")
	r = admin.postFrom(userPage, userPage+"/sessions/revoke", nil)
	if r.location() != userPage+"?done=revokeall" {
		t.Errorf("revoke every session: %q", r.location())
	}
	for _, x := range []*browser{alice, alice2} {
		if _, visited := x.follow("/account"); !strings.HasPrefix(visited[len(visited)-1], "/signin") {
			t.Errorf("after revoking every session alice reaches %v", visited)
		}
	}
}

// TestAdminCreateAndDeleteUser: the console creates users (a refused
// form shows why, keeps its values but the password) and deletes them
// behind the typed username and a step-up: an admin whose sign-in is
// older than the step-up window signs in again and confirms once more.
// The deleted user is signed out everywhere; each action is audited.
func TestAdminCreateAndDeleteUser(t *testing.T) {
	f := newFixture(t)
	rootID := f.addUser(t, "root", auth.RoleAdmin)
	f.addUser(t, "taken")
	admin := f.browser(t)
	admin.mustSignIn("root")

	p := admin.get("/admin/users")
	if !strings.Contains(p.body, `action="/admin/users"`) || !strings.Contains(p.body, `id="create-user"`) {
		t.Fatal("the users page has no creation form")
	}
	for _, c := range []struct {
		name   string
		form   url.Values
		status int
	}{
		{"short password", url.Values{"username": {"newbie"}, "password": {"short"}, "roles": {"editor"}}, http.StatusBadRequest},
		{"bad username", url.Values{"username": {"a b"}, "password": {testPassword}}, http.StatusBadRequest},
		{"bad role", url.Values{"username": {"newbie"}, "password": {testPassword}, "roles": {`x"y`}}, http.StatusBadRequest},
		{"bad address", url.Values{"username": {"newbie"}, "password": {testPassword}, "email": {"not an address"}}, http.StatusBadRequest},
		{"taken", url.Values{"username": {"Taken"}, "password": {testPassword}}, http.StatusConflict},
	} {
		r := admin.postFrom("/admin/users", "/admin/users", c.form)
		if r.status != c.status || !strings.Contains(r.body, `id="new-user-error" role="alert"`) {
			t.Errorf("%s: status %d, want %d with the error on the form", c.name, r.status, c.status)
		}
		if !strings.Contains(r.body, `value="`+template.HTMLEscapeString(c.form.Get("username"))+`"`) {
			t.Errorf("%s: the username is not kept", c.name)
		}
		if strings.Contains(r.body, testPassword) || strings.Contains(r.body, `value="short"`) {
			t.Errorf("%s: the password is sent back", c.name)
		}
	}
	r := admin.postFrom("/admin/users", "/admin/users", url.Values{"username": {"Newbie"}, "password": {testPassword}, "roles": {"editor, viewer"}})
	m := regexp.MustCompile(`^/admin/users/([^?]+)\?done=usercreated$`).FindStringSubmatch(r.location())
	if r.status != http.StatusSeeOther || m == nil {
		t.Fatalf("create: %d to %q", r.status, r.location())
	}
	newID := m[1]
	if p := admin.get(r.location()); !strings.Contains(p.body, "The user is created.") || !strings.Contains(p.body, `value="editor viewer"`) {
		t.Error("the new user's page has no notice, or not their roles")
	}
	if e, err := f.svc.AuditEvents(context.Background(), keycard.AuditFilter{Type: auth.AuditUserCreatedByAdmin}); err != nil || len(e) != 1 || e[0].Actor != rootID || e[0].Subject != newID {
		t.Errorf("user.created_by_admin: %+v, %v", e, err)
	}
	newbie := f.browser(t)
	newbie.mustSignIn("newbie")

	// Deleting: the typed username must match.
	userPage := "/admin/users/" + newID
	if p := admin.get(userPage); !strings.Contains(p.body, `id="delete-user"`) || !strings.Contains(p.body, `data-confirm="Newbie"`) {
		t.Error("the user's page offers no deletion behind the username")
	}
	r = admin.postFrom(userPage, userPage+"/delete", url.Values{"confirm": {"someone else"}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, `id="confirm-delete-error" role="alert"`) {
		t.Errorf("wrong confirmation: status %d", r.status)
	}
	if _, err := f.svc.User(context.Background(), newID); err != nil {
		t.Fatalf("the user is gone after a wrong confirmation: %v", err)
	}

	// An old sign-in: step up first, and nothing is deleted until then.
	f.clock.Advance(auth.DefaultStepUpWithin + time.Minute)
	r = admin.postFrom(userPage, userPage+"/delete", url.Values{"confirm": {"newbie"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/signin?reauth=1&next=") {
		t.Fatalf("delete with an old sign-in: %d to %q, want the step-up sign-in", r.status, r.location())
	}
	if _, err := f.svc.User(context.Background(), newID); err != nil {
		t.Fatalf("the user was deleted without a step-up: %v", err)
	}
	next, _ := url.Parse(r.location())
	back := next.Query().Get("next")
	signin := admin.get(r.location())
	r = admin.post("/signin", url.Values{"csrf_token": {admin.csrf(signin)}, "username": {"root"}, "password": {testPassword}, "next": {back}})
	if r.status != http.StatusSeeOther || r.location() != userPage+"?done=stepup" {
		t.Fatalf("step-up sign-in: %d to %q", r.status, r.location())
	}
	if p := admin.get(r.location()); !strings.Contains(p.body, "You signed in again") {
		t.Error("no notice after the step-up")
	}
	r = admin.postFrom(userPage, userPage+"/delete", url.Values{"confirm": {" NEWBIE "}})
	if r.status != http.StatusSeeOther || r.location() != "/admin/users?done=userdeleted" {
		t.Fatalf("delete after the step-up: %d to %q", r.status, r.location())
	}
	if _, err := f.svc.User(context.Background(), newID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("the user after deletion: %v, want ENOTFOUND", err)
	}
	if _, visited := newbie.follow("/account"); !strings.HasPrefix(visited[len(visited)-1], "/signin") {
		t.Errorf("the deleted user still reaches %v", visited)
	}
	if e, err := f.svc.AuditEvents(context.Background(), keycard.AuditFilter{Type: auth.AuditUserDeleted}); err != nil || len(e) != 1 || e[0].Actor != rootID || e[0].Subject != newID {
		t.Errorf("user.deleted: %+v, %v", e, err)
	}

	// Not oneself: no form, and a forged post is refused.
	if p := admin.get("/admin/users/" + rootID); strings.Contains(p.body, `id="delete-user"`) {
		t.Error("the admin's own page offers to delete them")
	}
	if r := admin.postFrom("/admin/users/"+rootID, "/admin/users/"+rootID+"/delete", url.Values{"confirm": {"root"}}); r.status != http.StatusConflict {
		t.Errorf("deleting oneself: status %d, want 409", r.status)
	}
	// A post without the session's CSRF token is refused.
	if r := admin.post(userPage+"/delete", url.Values{"confirm": {"taken"}}); r.status != http.StatusForbidden {
		t.Errorf("delete without a CSRF token: status %d, want 403", r.status)
	}
}

func TestAdminKeys(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "root", "admin")
	b := f.browser(t)
	b.mustSignIn("root")
	ctx := context.Background()
	keys, _ := f.svc.Keys().Keys(ctx)
	if len(keys) != 1 {
		t.Fatalf("%d keys", len(keys))
	}
	active := keys[0].KID
	if r := b.postFrom("/admin/keys", "/admin/keys/rotate", nil); r.location() != "/admin/keys?done=rotated" {
		t.Fatalf("rotate: %d %q", r.status, r.location())
	}
	keys, _ = f.svc.Keys().Keys(ctx)
	var states []keycard.KeyState
	for _, k := range keys {
		states = append(states, k.State)
	}
	if len(keys) != 2 || !slices.Contains(states, keycard.KeyNext) || !slices.Contains(states, keycard.KeyActive) {
		t.Fatalf("after rotation: keys in states %v, want active and next", states)
	}
	p := b.get("/admin/keys")
	for _, k := range keys {
		if !strings.Contains(p.body, `data-kid="`+k.KID+`"`) || !strings.Contains(p.body, "state-"+string(k.State)) {
			t.Errorf("key %s (%s) not shown with its state", k.KID, k.State)
		}
	}
	// Emergency revocation needs the typed confirmation.
	for _, typed := range []string{"", "revok", "yes"} {
		r := b.postFrom("/admin/keys", "/admin/keys/"+active+"/revoke", url.Values{"confirm": {typed}})
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, `id="confirm-`+active+`-error" role="alert"`) {
			t.Errorf("confirmation %q: status %d", typed, r.status)
		}
	}
	if k, _ := f.svc.Keys().Keys(ctx); len(k) != 2 {
		t.Fatal("a key was revoked without confirmation")
	}
	r := b.postFrom("/admin/keys", "/admin/keys/"+active+"/revoke", url.Values{"confirm": {"  REVOKE "}})
	if r.location() != "/session/refresh?next=%2Fadmin%2Fkeys%3Fdone%3Dkeyrevoked" {
		t.Fatalf("revoke: %d %q", r.status, r.location())
	}
	// The admin's token was of the revoked key: the refresh gets one of
	// the new key, and the page says it is done.
	if p, visited := b.follow(r.location()); p.status != http.StatusOK || !strings.Contains(p.body, "The key is revoked.") {
		t.Errorf("after revoking: %v, status %d", visited, p.status)
	}
	keys, _ = f.svc.Keys().Keys(ctx)
	for _, k := range keys {
		if k.KID == active {
			t.Error("the revoked key is still stored")
		}
	}
	if r := b.postFrom("/admin/keys", "/admin/keys/nope/revoke", url.Values{"confirm": {"revoke"}}); r.status != http.StatusNotFound {
		t.Errorf("unknown kid: %d", r.status)
	}
}

var (
	secretRE   = regexp.MustCompile(`id="secret" type="text" readonly value="([^"]+)"`)
	clientIDRE = regexp.MustCompile(`<code id="client-id">([^<]+)</code>`)
)

// registerClient posts the registration form and returns the page and the
// new client's id ("" when refused).
func registerClient(t *testing.T, b *browser, form url.Values) (*page, string) {
	t.Helper()
	p := b.postFrom("/admin/clients/new", "/admin/clients", form)
	if m := clientIDRE.FindStringSubmatch(p.body); m != nil {
		return p, m[1]
	}
	return p, ""
}

// TestAdminClients registers a client of each kind in the console, lists,
// edits, gives a new secret and deletes them; refused forms come back with
// their values and the reason.
func TestAdminClients(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "root", "admin")
	b := f.browser(t)
	b.mustSignIn("root")
	ctx := context.Background()

	// A service client: no grant checked. Its secret is shown once, not
	// in a URL, on a page not cached.
	r, id := registerClient(t, b, url.Values{"name": {"billing"}, "scopes": {"orders:read orders:write"}, "audiences": {"orders"}})
	secret := secretRE.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || id == "" || secret == nil {
		t.Fatalf("register a service: %d, id %q, secret shown %v", r.status, id, secret != nil)
	}
	if _, err := f.svc.AuthenticateClient(ctx, id, secret[1]); err != nil {
		t.Errorf("the secret shown does not authenticate: %v", err)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Error("the page with the secret may be cached")
	}
	list := b.get("/admin/clients")
	if strings.Contains(list.body, secret[1]) || !strings.Contains(list.body, `<a href="/admin/clients/`+id+`">billing</a>`) ||
		!strings.Contains(list.body, "<td>service</td>") {
		t.Errorf("the list: the client and its kind, never the secret:\n%s", list.body)
	}
	if p := b.get("/admin/clients/" + id); p.status != http.StatusOK || strings.Contains(p.body, secret[1]) || !strings.Contains(p.body, `value="orders:read orders:write"`) {
		t.Errorf("the client's page: %d", p.status)
	} else {
		wantSecurityHeaders(t, "the client's page", p)
		wantAccessibleHTML(t, "the client's page", p.body)
	}
	r = b.postFrom("/admin/clients/"+id, "/admin/clients/"+id+"/rotate-secret", nil)
	fresh := secretRE.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || fresh == nil || fresh[1] == secret[1] {
		t.Fatalf("rotate: %d", r.status)
	}
	if _, err := f.svc.AuthenticateClient(ctx, id, secret[1]); err == nil {
		t.Error("the old secret still works")
	}

	// A web app, first party, every setting; redirect URIs one a line.
	r, web := registerClient(t, b, url.Values{"name": {"Orders web"}, "first_party": {"on"},
		"grant_authorization_code": {"on"}, "grant_refresh_token": {"on"},
		"redirect_uris": {"https://orders.example/cb\r\n  https://orders.example/cb2?a=1,2 \r\n\r\n"}, "post_logout_redirect_uris": {"https://orders.example/"},
		"scopes": {"orders:read"}, "backchannel_logout_uri": {"https://orders.example/bc"}, "auth_method": {"client_secret_post"},
		"access_token_lifetime": {"5m"}, "refresh_token_lifetime": {"720h"}, "refresh_token_idle": {"24h"}, "dpop": {"required"}})
	if r.status != http.StatusOK || web == "" || secretRE.FindStringSubmatch(r.body) == nil || !strings.Contains(r.body, `id="client-kind">web app`) {
		t.Fatalf("register a web app: %d\n%s", r.status, r.body)
	}
	c, err := f.svc.Client(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	o := c.OAuth
	if !o.FirstParty || o.Public || strings.Join(o.GrantTypes, " ") != "authorization_code refresh_token" ||
		strings.Join(o.RedirectURIs, " ") != "https://orders.example/cb https://orders.example/cb2?a=1,2" ||
		strings.Join(o.PostLogoutRedirectURIs, " ") != "https://orders.example/" || o.BackchannelLogoutURI != "https://orders.example/bc" ||
		o.TokenAuthMethod != "client_secret_post" || o.AccessTTL != 5*time.Minute || o.RefreshLifetime != 720*time.Hour || o.RefreshIdle != 24*time.Hour ||
		o.DPoP != keycard.DPoPRequired || !strings.Contains(r.body, `id="client-dpop">required`) {
		t.Errorf("the web app as stored: %+v", o)
	}

	// A service of token exchange, and the form shows its settings back.
	r, exchanger := registerClient(t, b, url.Values{"name": {"Orders front"}, "grant_client_credentials": {"on"}, "grant_token_exchange": {"on"},
		"exchange_audiences": {"orders-api  https://orders.example/"}})
	if r.status != http.StatusOK || exchanger == "" || secretRE.FindStringSubmatch(r.body) == nil {
		t.Fatalf("register a client of token exchange: %d\n%s", r.status, r.body)
	}
	if c, err := f.svc.Client(ctx, exchanger); err != nil || !c.MayExchangeFor("orders-api") || !c.MayExchangeFor("https://orders.example/") || !c.AllowsGrant(keycard.GrantClientCredentials) {
		t.Errorf("the client of token exchange as stored: %+v, %v", c, err)
	}
	if page := b.get("/admin/clients/" + exchanger); !strings.Contains(page.body, `name="grant_token_exchange" type="checkbox" checked`) ||
		!strings.Contains(page.body, `value="orders-api https://orders.example/"`) {
		t.Errorf("the client's page does not show its token exchange settings")
	}

	// A public app: no secret.
	r, spa := registerClient(t, b, url.Values{"name": {"Orders SPA"}, "public": {"on"}, "grant_authorization_code": {"on"},
		"redirect_uris": {"https://spa.example/cb"}})
	if r.status != http.StatusOK || spa == "" || secretRE.FindStringSubmatch(r.body) != nil || !strings.Contains(r.body, `id="client-kind">public app`) {
		t.Fatalf("register a public app: %d", r.status)
	}
	// private_key_jwt: no secret, and no "New secret" button.
	jwks := `{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`
	r, keyed := registerClient(t, b, url.Values{"name": {"Reports"}, "auth_method": {"private_key_jwt"}, "jwks": {jwks}})
	if r.status != http.StatusOK || keyed == "" || secretRE.FindStringSubmatch(r.body) != nil || strings.Contains(r.body, "rotate-secret") {
		t.Fatalf("register a private_key_jwt client: %d\n%s", r.status, r.body)
	}
	if list := b.get("/admin/clients"); strings.Contains(list.body, "/admin/clients/"+keyed+"/rotate-secret") || strings.Contains(list.body, "/admin/clients/"+spa+"/rotate-secret") {
		t.Error("the list offers a new secret to a client without one")
	}

	// Refused forms: 400 (409 for a change of type), the reason, and the
	// values typed kept.
	for _, tt := range []struct {
		name   string
		action string
		form   url.Values
		status int
		msg    string
	}{
		{"no name", "/admin/clients", url.Values{"name": {" "}, "scopes": {"a"}}, http.StatusBadRequest, "Name the client"},
		{"a bad scope", "/admin/clients", url.Values{"name": {"kept name"}, "scopes": {`a"b`}}, http.StatusBadRequest, "Invalid scope"},
		{"a redirect URI with a fragment", "/admin/clients", url.Values{"name": {"kept name"}, "grant_authorization_code": {"on"}, "redirect_uris": {"https://a.example/cb#x"}}, http.StatusBadRequest, "fragment"},
		{"the code grant without redirect URI", "/admin/clients", url.Values{"name": {"kept name"}, "grant_authorization_code": {"on"}}, http.StatusBadRequest, "redirect URI"},
		{"a lifetime that is no duration", "/admin/clients", url.Values{"name": {"kept name"}, "access_token_lifetime": {"soon"}}, http.StatusBadRequest, "duration"},
		{"a negative lifetime", "/admin/clients", url.Values{"name": {"kept name"}, "refresh_token_idle": {"-1h"}}, http.StatusBadRequest, "negative"},
		{"a JWK Set that is not JSON", "/admin/clients", url.Values{"name": {"kept name"}, "auth_method": {"private_key_jwt"}, "jwks": {"{keys"}}, http.StatusBadRequest, "not JSON"},
		{"private_key_jwt without keys", "/admin/clients", url.Values{"name": {"kept name"}, "auth_method": {"private_key_jwt"}}, http.StatusBadRequest, "private_key_jwt needs"},
		{"an http JWKS URI", "/admin/clients", url.Values{"name": {"kept name"}, "auth_method": {"private_key_jwt"}, "jwks_uri": {"http://keys.example/"}}, http.StatusBadRequest, "https"},
		{"token exchange without exchange audiences", "/admin/clients", url.Values{"name": {"kept name"}, "grant_token_exchange": {"on"}}, http.StatusBadRequest, "exchange audience"},
		{"a public client of client_credentials", "/admin/clients", url.Values{"name": {"kept name"}, "public": {"on"}, "grant_client_credentials": {"on"}}, http.StatusBadRequest, "public client"},
		{"edit: public to confidential", "/admin/clients/" + spa, url.Values{"name": {"kept name"}, "grant_authorization_code": {"on"}, "redirect_uris": {"https://spa.example/cb"}}, http.StatusConflict, "public and confidential"},
		{"edit: private_key_jwt to a secret", "/admin/clients/" + keyed, url.Values{"name": {"kept name"}}, http.StatusConflict, "no secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := b.postFrom("/admin/clients/new", tt.action, tt.form)
			if r.status != tt.status || !strings.Contains(r.body, `id="form-error"`) || !strings.Contains(r.body, tt.msg) {
				t.Errorf("got %d, want %d with %q:\n%s", r.status, tt.status, tt.msg, r.body)
			}
			if !strings.Contains(r.body, `value="kept name"`) && tt.form.Get("name") == "kept name" {
				t.Error("the name typed is lost")
			}
		})
	}
	if got, _ := f.svc.ListClients(ctx, "", 100); len(got) != 5 {
		t.Errorf("%d clients after the refused forms, want 5", len(got))
	}

	// Editing replaces the settings and keeps the secret.
	r = b.postFrom("/admin/clients/"+web, "/admin/clients/"+web, url.Values{"name": {"Orders"}, "grant_authorization_code": {"on"},
		"redirect_uris": {"https://orders.example/new"}, "scopes": {"orders:read orders:write"}})
	if r.status != http.StatusSeeOther || r.location() != "/admin/clients/"+web+"?done=saved" {
		t.Fatalf("save: %d %q\n%s", r.status, r.location(), r.body)
	}
	c, _ = f.svc.Client(ctx, web)
	if c.Name != "Orders" || c.OAuth.FirstParty || strings.Join(c.OAuth.RedirectURIs, " ") != "https://orders.example/new" || c.OAuth.AccessTTL != 0 ||
		strings.Join(c.Scopes, " ") != "orders:read orders:write" {
		t.Errorf("after the edit: %+v", c)
	}
	if p := b.get("/admin/clients/" + web + "?done=saved"); !strings.Contains(p.body, "settings are saved") || !strings.Contains(p.body, ">https://orders.example/new</textarea>") {
		t.Errorf("the page after saving:\n%s", p.body)
	}
	// The public app keeps its type through an edit of its own page.
	if r := b.postFrom("/admin/clients/"+spa, "/admin/clients/"+spa, url.Values{"name": {"SPA"}, "public": {"on"}, "grant_authorization_code": {"on"},
		"redirect_uris": {"https://spa.example/cb"}}); r.status != http.StatusSeeOther {
		t.Errorf("edit the public app: %d\n%s", r.status, r.body)
	}
	if p := b.get("/admin/clients/nope"); p.status != http.StatusNotFound {
		t.Errorf("an unknown client's page: %d", p.status)
	}
	if r := b.postFrom("/admin/clients/new", "/admin/clients/nope", url.Values{"name": {"x"}}); r.status != http.StatusNotFound {
		t.Errorf("save an unknown client: %d", r.status)
	}

	if r := b.postFrom("/admin/clients", "/admin/clients/"+id+"/delete", nil); r.location() != "/admin/clients?done=deleted" {
		t.Errorf("delete: %d %q", r.status, r.location())
	}
	if r := b.postFrom("/admin/clients", "/admin/clients/"+id+"/delete", nil); r.status != http.StatusNotFound {
		t.Errorf("delete again: %d", r.status)
	}
}

func TestAdminAudit(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "root", "admin")
	aliceID := f.addUser(t, "alice")
	b := f.browser(t)
	b.mustSignIn("root")
	f.browser(t).signIn("alice", "wrong password!", "")
	p := b.get("/admin/audit?type=login.failed")
	if p.status != http.StatusOK || strings.Count(p.body, "<td>login.failed</td>") != 1 || strings.Contains(p.body, "<td>login.succeeded</td>") {
		t.Errorf("type filter: status %d", p.status)
	}
	if !strings.Contains(p.body, `<option value="login.failed" selected>`) {
		t.Error("the filter does not keep its value")
	}
	p = b.get("/admin/audit?user=" + aliceID)
	if !strings.Contains(p.body, "<td>user.created</td>") || strings.Contains(p.body, "<td>login.succeeded</td>") {
		t.Error("user filter: wrong events")
	}
	for _, tc := range []struct{ query, field string }{
		{"since=yesterday", "since-error"},
		{"until=2026-13-01T00:00", "until-error"},
		{"since=2026-11-02T00:00&until=2026-11-01T00:00", "until-error"},
		{"before=-1", ""},
		{"before=x", ""},
		{"user=" + strings.Repeat("u", 300), ""},
	} {
		p := b.get("/admin/audit?" + tc.query)
		if p.status != http.StatusBadRequest || tc.field != "" && !strings.Contains(p.body, `id="`+tc.field+`" role="alert"`) {
			t.Errorf("%s: status %d, want 400 (error at %q)", tc.query, p.status, tc.field)
		}
	}
	if p := b.get("/admin/audit?since=2000-01-01T00:00&until=2100-01-01T00:00:00Z"); p.status != http.StatusOK || !strings.Contains(p.body, "login.failed") {
		t.Errorf("time range: %d", p.status)
	}
	// Paging: more events than a page.
	for range 60 {
		f.browser(t).signIn("alice", "wrong password!", "")
	}
	p = b.get("/admin/audit?type=login.failed")
	next := regexp.MustCompile(`href="(/admin/audit\?[^"]+)" rel="next"`).FindStringSubmatch(p.body)
	if next == nil {
		t.Fatal("no link to older events")
	}
	older := b.get(strings.ReplaceAll(next[1], "&amp;", "&"))
	if n := strings.Count(older.body, "<td>login.failed</td>"); n != 11 {
		t.Errorf("second page: %d events, want 11", n)
	}
}

func TestAdminRevokeAll(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "root", "admin")
	f.addUser(t, "alice")
	admin, alice := f.browser(t), f.browser(t)
	admin.mustSignIn("root")
	alice.mustSignIn("alice")
	for _, typed := range []string{"", "yes", "sign out"} {
		r := admin.postFrom("/admin/signout-all", "/admin/signout-all", url.Values{"confirm": {typed}})
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, `id="confirm-error" role="alert"`) {
			t.Errorf("confirmation %q: status %d", typed, r.status)
		}
	}
	if _, visited := alice.follow("/account"); visited[len(visited)-1] != "/account" {
		t.Fatalf("alice signed out without the confirmation: %v", visited)
	}
	r := admin.postFrom("/admin/signout-all", "/admin/signout-all", url.Values{"confirm": {"Sign out  everyone"}})
	if r.status != http.StatusSeeOther || r.location() != "/signin?ended=1" {
		t.Fatalf("revoke-all: %d %q", r.status, r.location())
	}
	for name, x := range map[string]*browser{"admin": admin, "alice": alice} {
		if _, visited := x.follow("/account"); !strings.HasPrefix(visited[len(visited)-1], "/signin") {
			t.Errorf("%s still reaches %v", name, visited)
		}
	}
}

// TestStepUpPages: with ReauthWithin, the admin console and a password
// change ask for the password again once the sign-in is older; signing in
// again (which replaces the session) lets the admin through.
func TestStepUpPages(t *testing.T) {
	f := newFixture(t, fixtureOptions{reauthWithin: 10 * time.Minute})
	f.addUser(t, "root", auth.RoleAdmin)
	b := f.browser(t)
	b.mustSignIn("root")
	if p := b.get("/admin/users"); p.status != http.StatusOK {
		t.Fatalf("admin console after a fresh sign-in: %d", p.status)
	}
	f.clock.Advance(11 * time.Minute)
	p, visited := b.follow("/admin/users")
	if p.status != http.StatusOK || !strings.Contains(p.body, "enter your password again") || !strings.Contains(strings.Join(visited, " "), "reauth=1") {
		t.Fatalf("admin console with an old sign-in: %d after %v, want the sign-in page asking again", p.status, visited)
	}
	if !strings.Contains(p.body, `value="root"`) {
		t.Error("the username is not filled in on the step-up sign-in")
	}
	// A password change is asked for the same.
	res := b.postFrom("/account", "/account/password", url.Values{"current_password": {testPassword}, "new_password": {"another long passphrase"}, "confirm_password": {"another long passphrase"}})
	if res.status != http.StatusSeeOther || !strings.Contains(res.location(), "reauth=1") {
		t.Errorf("password change with an old sign-in: %d to %q, want the step-up sign-in", res.status, res.location())
	}
	// Signing in again satisfies it, and goes back to the console.
	res = b.post("/signin", url.Values{"csrf_token": {b.csrf(p)}, "username": {"root"}, "password": {testPassword}, "next": {"/admin/users"}})
	if res.status != http.StatusSeeOther || res.location() != "/admin/users" {
		t.Fatalf("step-up sign-in: %d to %q", res.status, res.location())
	}
	if p := b.get("/admin/users"); p.status != http.StatusOK {
		t.Errorf("admin console after signing in again: %d", p.status)
	}
}
