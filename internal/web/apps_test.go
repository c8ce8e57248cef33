package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

const (
	appRedirect  = "https://app.example/cb"
	appVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" // RFC 7636 appendix B
	appChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

// testApp is a registered application client and its secret.
type testApp struct {
	*keycard.Client
	secret string
}

// addApp registers a confidential application of the code grant.
func (f *fixture) addApp(t testing.TB, name string, firstParty bool) testApp {
	t.Helper()
	c, secret, err := f.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: name, Scopes: []string{"orders:read"}, OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken}, RedirectURIs: []string{appRedirect}, FirstParty: firstParty,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return testApp{c, secret}
}

var hiddenFieldRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// signInTo signs the browser (signed in already) in to app through the
// authorization endpoint, consenting when asked, and redeems the code as
// the app would: it returns the app's refresh token.
func (b *browser) signInTo(app testApp) string {
	b.t.Helper()
	q := url.Values{"client_id": {app.ID}, "response_type": {"code"}, "redirect_uri": {appRedirect}, "scope": {"openid offline_access orders:read"},
		"state": {"s1"}, "code_challenge": {appChallenge}, "code_challenge_method": {"S256"}}
	p := b.get("/oauth/authorize?" + q.Encode())
	if p.status == http.StatusOK { // the consent page
		form := url.Values{"decision": {"allow"}}
		for _, m := range hiddenFieldRE.FindAllStringSubmatch(p.body, -1) {
			form.Set(m[1], strings.ReplaceAll(m[2], "&#43;", "+"))
		}
		p = b.post("/oauth/consent", form)
	}
	loc, err := url.Parse(p.location())
	if p.status != http.StatusSeeOther || err != nil || !strings.HasPrefix(p.location(), appRedirect+"?") || loc.Query().Get("code") == "" {
		b.t.Fatalf("authorize %s: %d, Location %q\n%s", app.Name, p.status, p.location(), p.body)
	}
	res := b.f.tokenRequest(b.t, app, url.Values{"grant_type": {"authorization_code"},
		"code": {loc.Query().Get("code")}, "redirect_uri": {appRedirect}, "code_verifier": {appVerifier}})
	defer res.Body.Close()
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != http.StatusOK || tok.RefreshToken == "" {
		b.t.Fatalf("code exchange for %s: %d %v", app.Name, res.StatusCode, err)
	}
	return tok.RefreshToken
}

// tokenRequest posts form to the token endpoint as app, authenticated.
func (f *fixture) tokenRequest(t testing.TB, app testApp, form url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(app.ID, app.secret) // ids and secrets are base64url: nothing to form-encode
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// refreshes reports whether app can still use its refresh token.
func (f *fixture) refreshes(t *testing.T, app testApp, token string) bool {
	t.Helper()
	res := f.tokenRequest(t, app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}})
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// appItem returns the account page's list item of an app, "" when absent.
func appItem(body, clientID string) string {
	i := strings.Index(body, `<li class="app" data-client="`+clientID+`">`)
	if i < 0 {
		return ""
	}
	end := strings.Index(body[i:], "</li>\n")
	return body[i : i+end]
}

// TestAccountApps: the account page lists the apps a user let in (with
// what they may do) and the first-party apps they are signed in to, apart
// from the browser sessions; "Remove access" ends a third-party app's
// grant and consent, "Sign out" a first-party app's grant; each form needs
// the session's CSRF token and the site's origin.
func TestAccountApps(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	f.addUser(t, "bob")
	third := f.addApp(t, "Orders by Acme", false)
	first := f.addApp(t, "Our dashboard", true)
	b := f.browser(t)
	b.mustSignIn("alice")
	thirdToken := b.signInTo(third)
	firstToken := b.signInTo(first)
	bob := f.browser(t)
	bob.mustSignIn("bob")
	bobToken := bob.signInTo(third)

	acct := b.get("/account")
	wantAccessibleHTML(t, "/account with apps", acct.body)
	item := appItem(acct.body, third.ID)
	if item == "" || !strings.Contains(item, "Orders by Acme") || !strings.Contains(item, "Stay signed in while you are away") ||
		!strings.Contains(item, "<code>orders:read</code>") || !strings.Contains(item, "1 session,") || !strings.Contains(item, "Remove access") {
		t.Errorf("the third-party app:\n%s", item)
	}
	item = appItem(acct.body, first.ID)
	if item == "" || !strings.Contains(item, "Part of this site") || strings.Contains(item, "Remove access") || !strings.Contains(item, "Sign out of Our dashboard") {
		t.Errorf("the first-party app:\n%s", item)
	}
	// The apps' grant sessions are not listed as devices.
	if n := strings.Count(acct.body, `<li class="session`); n != 1 {
		t.Errorf("%d sessions listed, want 1 (this browser)", n)
	}

	// Forms without the CSRF token, or from another origin, are refused
	// and change nothing.
	if r := b.post("/account/apps/"+third.ID+"/revoke", url.Values{}); r.status != http.StatusForbidden {
		t.Errorf("remove access without the CSRF token: %d", r.status)
	}
	csrf := b.csrf(acct)
	if r := b.send(http.MethodPost, "/account/apps/"+third.ID+"/revoke", url.Values{"csrf_token": {csrf}},
		http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}); r.status != http.StatusForbidden {
		t.Errorf("remove access from another origin: %d", r.status)
	}
	if r := b.send(http.MethodPost, "/account/apps/"+first.ID+"/signout", url.Values{"csrf_token": {csrf}},
		http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}); r.status != http.StatusForbidden {
		t.Errorf("sign out of an app from another origin: %d", r.status)
	}
	if !f.refreshes(t, third, thirdToken) || !f.refreshes(t, first, firstToken) {
		t.Fatal("a refused form ended an app's grant")
	}
	// The refreshes rotated the tokens: sign in again for fresh ones.
	thirdToken, firstToken = b.signInTo(third), b.signInTo(first)

	r := b.postFrom("/account", "/account/apps/"+third.ID+"/revoke", nil)
	if r.status != http.StatusSeeOther || r.location() != "/account?done=appremoved" {
		t.Fatalf("remove access: %d %q", r.status, r.location())
	}
	if f.refreshes(t, third, thirdToken) {
		t.Error("the app whose access was removed still refreshes")
	}
	if !f.refreshes(t, third, bobToken) {
		t.Error("removing alice's access ended bob's")
	}
	acct = b.get("/account?done=appremoved")
	if appItem(acct.body, third.ID) != "" || !strings.Contains(acct.body, "access is removed") {
		t.Errorf("after removing access the app is still listed:\n%s", acct.body)
	}
	if r := b.postFrom("/account", "/account/apps/"+third.ID+"/revoke", nil); r.status != http.StatusNotFound {
		t.Errorf("remove access again: %d", r.status)
	}
	// The path names the client alone: the user is the signed-in one.
	if r := b.postFrom("/account", "/account/apps/nope/revoke", nil); r.status != http.StatusNotFound {
		t.Errorf("remove access of an unknown app: %d", r.status)
	}

	r = b.postFrom("/account", "/account/apps/"+first.ID+"/signout", nil)
	if r.status != http.StatusSeeOther || r.location() != "/account?done=appsignedout" {
		t.Fatalf("sign out of the app: %d %q", r.status, r.location())
	}
	if f.refreshes(t, first, firstToken) {
		t.Error("the app signed out of still refreshes")
	}
	if acct = b.get("/account"); appItem(acct.body, first.ID) != "" || !strings.Contains(acct.body, "No apps.") {
		t.Errorf("after signing out of the app it is still listed:\n%s", acct.body)
	}
	// This browser stays signed in.
	if p := b.get("/account"); p.status != http.StatusOK {
		t.Errorf("the account page after removing the apps: %d", p.status)
	}
}

// TestAdminUserApps: the console's user page lists the user's apps; an
// admin revokes a consent (the app's grant ends) and signs the user out of
// a first-party app.
func TestAdminUserApps(t *testing.T) {
	f := newFixture(t)
	aliceID := f.addUser(t, "alice")
	f.addUser(t, "root", "admin")
	third := f.addApp(t, "Orders by Acme", false)
	first := f.addApp(t, "Our dashboard", true)
	alice := f.browser(t)
	alice.mustSignIn("alice")
	thirdToken := alice.signInTo(third)
	firstToken := alice.signInTo(first)

	admin := f.browser(t)
	admin.mustSignIn("root")
	page := admin.get("/admin/users/" + aliceID)
	wantAccessibleHTML(t, "the user page", page.body)
	if !strings.Contains(page.body, `<tr data-client="`+third.ID+`">`) || !strings.Contains(page.body, "openid offline_access orders:read") ||
		!strings.Contains(page.body, "/admin/users/"+aliceID+"/consents/"+third.ID+"/revoke") ||
		!strings.Contains(page.body, "/admin/users/"+aliceID+"/apps/"+first.ID+"/signout") {
		t.Errorf("the user page's apps:\n%s", page.body)
	}
	if r := admin.post("/admin/users/"+aliceID+"/consents/"+third.ID+"/revoke", url.Values{}); r.status != http.StatusForbidden {
		t.Errorf("revoke a consent without the CSRF token: %d", r.status)
	}
	// A user without the admin role cannot.
	if r := alice.postFrom("/account", "/admin/users/"+aliceID+"/consents/"+third.ID+"/revoke", nil); r.status != http.StatusForbidden {
		t.Errorf("a user revoking through the console: %d", r.status)
	}
	r := admin.postFrom("/admin/users/"+aliceID, "/admin/users/"+aliceID+"/consents/"+third.ID+"/revoke", nil)
	if r.status != http.StatusSeeOther || r.location() != "/admin/users/"+aliceID+"?done=appremoved" {
		t.Fatalf("revoke the consent: %d %q", r.status, r.location())
	}
	if f.refreshes(t, third, thirdToken) {
		t.Error("the app still refreshes after its consent was revoked")
	}
	r = admin.postFrom("/admin/users/"+aliceID, "/admin/users/"+aliceID+"/apps/"+first.ID+"/signout", nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign out of the app: %d", r.status)
	}
	if f.refreshes(t, first, firstToken) {
		t.Error("the app still refreshes after the admin signed the user out of it")
	}
	if p := admin.get("/admin/users/" + aliceID); !strings.Contains(p.body, "No apps.") {
		t.Errorf("the user page after both:\n%s", p.body)
	}
	if r := admin.postFrom("/admin/users/"+aliceID, "/admin/users/"+aliceID+"/consents/"+third.ID+"/revoke", nil); r.status != http.StatusNotFound {
		t.Errorf("revoke again: %d", r.status)
	}
	events, err := f.svc.AuditEvents(context.Background(), keycard.AuditFilter{Type: auth.AuditConsentRevoked, Limit: 10})
	if err != nil || len(events) != 1 || events[0].Subject != aliceID || events[0].Actor == aliceID {
		t.Errorf("audit: %+v %v; want the admin's revocation of alice's consent", events, err)
	}
}
