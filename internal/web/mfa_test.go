package web_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/authtest"
)

var (
	totpSecretRE = regexp.MustCompile(`id="totp-secret" class="secret">([A-Z2-7]+)<`)
	codeRE       = regexp.MustCompile(`<li><code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code></li>`)
)

// enrolPage reads the secret of an enrolment page, checking its QR code.
func enrolPage(t testing.TB, p *page) string {
	t.Helper()
	m := totpSecretRE.FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil {
		t.Fatalf("enrolment page: %d\n%s", p.status, p.body)
	}
	if !strings.Contains(p.body, `<svg xmlns="http://www.w3.org/2000/svg" class="qr"`) || !strings.Contains(p.body, `<path fill="#000" d="M`) {
		t.Errorf("no inline QR code on the enrolment page")
	}
	return m[1]
}

func recoveryCodes(t testing.TB, p *page) []string {
	t.Helper()
	var out []string
	for _, m := range codeRE.FindAllStringSubmatch(p.body, -1) {
		out = append(out, m[1])
	}
	if len(out) != 10 {
		t.Fatalf("%d recovery codes on the page (status %d):\n%s", len(out), p.status, p.body)
	}
	return out
}

// enrolOnAccountPage sets up an authenticator app from the account page
// of a signed-in browser.
func enrolOnAccountPage(t testing.TB, f *fixture, b *browser) (string, []string) {
	t.Helper()
	if acc := b.get("/account"); !strings.Contains(acc.body, `id="setup-totp"`) {
		t.Fatalf("account page offers no set-up:\n%s", acc.body)
	}
	pg := b.get("/account/totp")
	secret := enrolPage(t, pg)
	if again := enrolPage(t, b.get("/account/totp")); again != secret {
		t.Errorf("the pending secret changed between two views")
	}
	if p := b.post("/account/totp", url.Values{"csrf_token": {b.csrf(pg)}, "code": {"12345x"}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="code-error"`) {
		t.Errorf("a wrong code: %d", p.status)
	}
	p := b.post("/account/totp", url.Values{"csrf_token": {b.csrf(pg)}, "code": {authtest.TOTPCode(t, secret, f.clock.Now())}})
	codes := recoveryCodes(t, p)
	if acc := b.get("/account"); !strings.Contains(acc.body, "10 unused recovery codes") {
		t.Errorf("account page after enrolment:\n%s", acc.body)
	}
	return secret, codes
}

func TestMFAPagesSignIn(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	b := f.browser(t)
	b.mustSignIn("alice")
	secret, codes := enrolOnAccountPage(t, f, b)

	// A new browser: the password leads to the code's page.
	b = f.browser(t)
	r := b.signIn("alice", testPassword, "/account")
	if r.status != http.StatusSeeOther || r.location() != "/signin/mfa?next=%2Faccount" {
		t.Fatalf("sign in: %d %q, want /signin/mfa", r.status, r.location())
	}
	if b.cookies["__Host-keycard_access"] != nil {
		t.Fatal("an access cookie before the second factor")
	}
	mc := b.cookies["__Host-keycard_mfa"]
	if mc == nil || !mc.HttpOnly || !mc.Secure || mc.SameSite != http.SameSiteStrictMode || mc.Path != "/" {
		t.Fatalf("MFA cookie %+v", mc)
	}
	form := b.get("/signin/mfa?next=%2Faccount")
	if form.status != http.StatusOK || !strings.Contains(form.body, `autocomplete="one-time-code"`) {
		t.Fatalf("code page: %d", form.status)
	}
	// CSRF: another site's post is refused.
	if p := b.send(http.MethodPost, "/signin/mfa", url.Values{"csrf_token": {b.csrf(form)}, "code": {"123456"}}, http.Header{"Origin": {"https://evil.example"}}); p.status != http.StatusForbidden {
		t.Errorf("cross-site post: %d", p.status)
	}
	first := mc.Value
	p := b.post("/signin/mfa", url.Values{"csrf_token": {b.csrf(form)}, "code": {"000000"}, "next": {"/account"}})
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, `id="code-error"`) || b.cookies["__Host-keycard_mfa"].Value == first {
		t.Fatalf("wrong code: %d, a new token %v", p.status, b.cookies["__Host-keycard_mfa"].Value != first)
	}
	f.clock.Advance(30 * time.Second)
	p = b.post("/signin/mfa", url.Values{"csrf_token": {b.csrf(form)}, "code": {authtest.TOTPCode(t, secret, f.clock.Now())}, "next": {"/account"}})
	if p.status != http.StatusSeeOther || p.location() != "/account" || b.cookies["__Host-keycard_access"] == nil || b.cookies["__Host-keycard_mfa"] != nil {
		t.Fatalf("right code: %d %q", p.status, p.location())
	}
	// A recovery code, from a third browser; then it is used up.
	b = f.browser(t)
	b.signIn("alice", testPassword, "/account")
	p = b.postFrom("/signin/mfa", "/signin/mfa", url.Values{"code": {codes[3]}, "next": {"/account"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("recovery code: %d\n%s", p.status, p.body)
	}
	b = f.browser(t)
	b.signIn("alice", testPassword, "/account")
	if p := b.postFrom("/signin/mfa", "/signin/mfa", url.Values{"code": {codes[3]}}); p.status != http.StatusUnauthorized {
		t.Errorf("a used recovery code: %d", p.status)
	}
	// An expired MFA token goes back to the password.
	f.clock.Advance(auth.MFATokenLifetime)
	p = b.postFrom("/signin/mfa", "/signin/mfa", url.Values{"code": {authtest.TOTPCode(t, secret, f.clock.Now())}, "next": {"/account"}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/signin?mfaexpired=1") {
		t.Errorf("expired: %d %q", p.status, p.location())
	}
	// Without the cookie, the code's page sends the browser to sign in.
	if p := f.browser(t).get("/signin/mfa"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/signin?") {
		t.Errorf("no MFA cookie: %d %q", p.status, p.location())
	}
}

// TestMFAAuthorize: an application's sign-in (the authorization
// endpoint) goes through the second factor, and its ID token says so.
func TestMFAAuthorize(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	b := f.browser(t)
	b.mustSignIn("alice")
	secret, _ := enrolOnAccountPage(t, f, b)
	c, clientSecret := f.rpClient(t, true)
	b = f.browser(t)
	p := b.send(http.MethodGet, authorizeURL(c), nil, crossSite)
	next := mustQuery(t, p.location()).Get("next")
	r := b.signIn("alice", testPassword, next)
	if !strings.HasPrefix(r.location(), "/signin/mfa?") {
		t.Fatalf("sign in: %d %q, want the MFA step", r.status, r.location())
	}
	// Without the second factor, the authorization endpoint still asks
	// to sign in.
	if p := b.get(next); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/signin?") {
		t.Fatalf("authorize before the second factor: %d %q", p.status, p.location())
	}
	f.clock.Advance(30 * time.Second)
	p = b.postFrom(r.location(), "/signin/mfa", url.Values{"code": {authtest.TOTPCode(t, secret, f.clock.Now())}, "next": {next}})
	if p.location() != next {
		t.Fatalf("code: %d %q, want back to %q", p.status, p.location(), next)
	}
	q := callback(t, b.get(next))
	client, err := f.svc.AuthenticateClient(context.Background(), c.ID, clientSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.svc.ExchangeCode(context.Background(), client, q.Get("code"), rpRedirect, rpVerifier, auth.Agent{})
	if err != nil {
		t.Fatal(err)
	}
	var amr []string
	for _, v := range idClaims(t, tok.IDToken)["amr"].([]any) {
		amr = append(amr, v.(string))
	}
	if !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("ID token amr %v, want [pwd otp mfa]", amr)
	}
}

// TestMFAPolicyPages: an admin the policy requires a second factor of is
// sent to set one up at sign-in; an admin removes another's factors.
func TestMFAPolicyPages(t *testing.T) {
	f := newFixture(t, fixtureOptions{requireMFA: []string{auth.RoleAdmin}})
	f.addUser(t, "root", auth.RoleAdmin)
	bob := f.addUser(t, "bob")
	bb := f.browser(t)
	bb.mustSignIn("bob") // outside the policy: the password is enough
	enrolOnAccountPage(t, f, bb)

	b := f.browser(t)
	r := b.signIn("root", testPassword, "/admin/users")
	if r.status != http.StatusSeeOther || r.location() != "/signin/enroll?next=%2Fadmin%2Fusers" {
		t.Fatalf("sign in: %d %q, want /signin/enroll", r.status, r.location())
	}
	pg := b.get(r.location())
	secret := enrolPage(t, pg)
	if !strings.Contains(pg.body, "must use two-step sign-in") {
		t.Errorf("enrolment page does not say why")
	}
	p := b.post("/signin/enroll", url.Values{"csrf_token": {b.csrf(pg)}, "code": {"000000"}, "next": {"/admin/users"}})
	if p.status != http.StatusUnauthorized || enrolPage(t, &page{status: 200, body: p.body}) != secret {
		t.Fatalf("wrong code: %d", p.status)
	}
	p = b.post("/signin/enroll", url.Values{"csrf_token": {b.csrf(pg)}, "code": {authtest.TOTPCode(t, secret, f.clock.Now())}, "next": {"/admin/users"}})
	recoveryCodes(t, p)
	if !strings.Contains(p.body, `href="/admin/users" id="codes-continue"`) || b.cookies["__Host-keycard_access"] == nil {
		t.Fatalf("after enrolment: %d\n%s", p.status, p.body)
	}
	// The admin removes bob's factors from the console.
	user := b.get("/admin/users/" + bob)
	if !strings.Contains(user.body, `id="remove-mfa"`) {
		t.Fatalf("user page: %d\n%s", user.status, user.body)
	}
	p = b.postFrom("/admin/users/"+bob, "/admin/users/"+bob+"/mfa/remove", nil)
	if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "done=mfaremoved") {
		t.Fatalf("remove: %d %q", p.status, p.location())
	}
	if after := b.get(p.location()); !strings.Contains(html.UnescapeString(after.body), "second factors are removed") {
		t.Errorf("no notice after removal")
	}
	f.browser(t).mustSignIn("bob") // the password alone again
	// The admin's own factor cannot be turned off from the account page.
	if acc := b.get("/account"); strings.Contains(acc.body, `id="remove-totp"`) {
		t.Error("the account page offers to turn off a required factor")
	}
}

// TestMFAAdminRemoveStepUp: removing a user's second factors from the
// console needs a recent sign-in (--reauth-within): an older one is sent
// to sign in again and nothing is removed.
func TestMFAAdminRemoveStepUp(t *testing.T) {
	f := newFixture(t, fixtureOptions{reauthWithin: time.Minute})
	f.addUser(t, "root", auth.RoleAdmin)
	bob := f.addUser(t, "bob")
	bb := f.browser(t)
	bb.mustSignIn("bob")
	enrolOnAccountPage(t, f, bb)
	b := f.browser(t)
	b.mustSignIn("root")
	form := b.get("/admin/users/" + bob)
	f.clock.Advance(2 * time.Minute)
	p := b.post("/admin/users/"+bob+"/mfa/remove", url.Values{"csrf_token": {b.csrf(form)}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/signin?reauth=1") {
		t.Fatalf("remove with an old sign-in: %d %q, want a sign-in again", p.status, p.location())
	}
	st, err := f.svc.MFAStatus(context.Background(), mustUser(t, f, bob))
	if err != nil || !st.TOTP {
		t.Errorf("after the refused removal: %v, %v; want the app still set up", st, err)
	}
}

func mustUser(t *testing.T, f *fixture, id string) *keycard.User {
	t.Helper()
	u, err := f.svc.User(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
