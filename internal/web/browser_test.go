package web_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/chrometest"
)

// The browser tests drive headless Chromium (Debian's chromium package)
// with chromedp against the real server with its pages. Without Chromium
// they skip, unless KEYCARD_TEST_BROWSER=1 (CI), which makes them fail.
// Screenshots go to KEYCARD_TEST_ARTIFACTS (or a temporary directory);
// with KEYCARD_UPDATE_SCREENSHOTS=1, those listed in docScreenshots are
// also written to docs/screenshots.

// docScreenshots are the screenshots kept in docs/screenshots.
var docScreenshots = map[string]bool{
	"signin.png": true, "account.png": true, "account-390px.png": true,
	"admin-users.png": true, "admin-keys.png": true, "admin-audit.png": true, "weather.png": true,
	"account-apps.png": true, "admin-client.png": true,
}

// chrome is one headless Chromium for a test; tabs opens isolated
// browser contexts (separate cookie jars) in it.
type chrome struct {
	t         *testing.T
	browser   context.Context
	artifacts string
}

func newChrome(t *testing.T) *chrome {
	browser := chrometest.Start(t)
	dir := os.Getenv("KEYCARD_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &chrome{t: t, browser: browser, artifacts: dir}
}

// tab is a tab in its own browser context: its cookies are its own.
type tab struct {
	c   *chrome
	ctx context.Context
	url string // the server's base URL
}

func (c *chrome) tab(base string) *tab {
	ctx, cancel := chromedp.NewContext(c.browser, chromedp.WithNewBrowserContext())
	c.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		c.t.Fatalf("opening a tab: %v", err)
	}
	return &tab{c: c, ctx: ctx, url: base}
}

// stepTimeout bounds one step of a browser test.
const stepTimeout = 20 * time.Second

// do runs actions, failing the test on an error with where the tab is and
// what it shows.
func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.c.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	// Input goes to the tab in front, as a person's would.
	front := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cdppage.BringToFront, cdp.Empty{})
		return err
	})
	if err := chromedp.Do(ctx, append([]chromedp.Action[chromedp.Void]{front}, steps...)...); err != nil {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 500) : ""`))
		b.c.t.Fatalf("%s: %v\n  at %s showing:\n%s", what, err, loc, text)
	}
}

func (b *tab) location() string {
	b.c.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.c.t.Fatal(err)
	}
	return loc
}

// path returns the path and query of the tab's location, failing unless
// it is on the server.
func (b *tab) path() string {
	b.c.t.Helper()
	loc := b.location()
	if !strings.HasPrefix(loc, b.url+"/") {
		b.c.t.Fatalf("the tab left the site: %s", loc)
	}
	return strings.TrimPrefix(loc, b.url)
}

func (b *tab) eval(expr string) any {
	b.c.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		b.c.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits, up to 30 seconds, until the JavaScript condition holds
// on the tab's page (through navigations: a failed evaluation, while a
// page loads, counts as not yet), then returns the value of expr.
func (b *tab) waitFor(condition, expr string) any {
	b.c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](condition))
		if err == nil && ok {
			return b.eval(expr)
		}
		if time.Now().After(deadline) {
			b.c.t.Fatalf("waiting for %s: not within 30 seconds (last error %v)", condition, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *tab) text(sel string) string {
	b.c.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.c.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// screenshot saves the viewport as name in the artifacts directory.
func (b *tab) screenshot(name string) {
	b.c.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.c.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.c.artifacts, name), png, 0o644); err != nil {
		b.c.t.Fatal(err)
	}
	if os.Getenv("KEYCARD_UPDATE_SCREENSHOTS") == "1" && docScreenshots[name] {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", name), png, 0o644); err != nil {
			b.c.t.Fatal(err)
		}
	}
}

// signIn signs in from the sign-in page with the keyboard only: the
// username field has the focus, Tab moves to the password, Enter submits.
func (b *tab) signIn(user string) {
	b.c.t.Helper()
	b.do("sign in as "+user,
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.KeyEvent(user+kb.Tab+testPassword+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("sessions")),
	)
}

// TestBrowserSessions: sign in and see my sessions; sign in again from a
// second browser; revoke the first from the second, and the first is sent
// to sign in on its next action.
func TestBrowserSessions(t *testing.T) {
	f := newFixture(t, fixtureOptions{registration: true})
	f.addUser(t, "alice")
	c := newChrome(t)

	first := c.tab(f.url)
	first.do("open the account page", chromedp.Navigate(f.url+"/account"), chromedp.WaitVisible(chromedp.ID("username")))
	if p := first.path(); p != "/signin?next=%2Faccount" {
		t.Errorf("signed out, /account went to %s, want /signin?next=%%2Faccount", p)
	}
	first.screenshot("signin.png")

	// A wrong password: the error is announced next to the field, and the
	// focus is put back on it.
	first.do("wrong password",
		chromedp.KeyEvent("alice"+kb.Tab+"not the password"+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("password-error")),
	)
	if got := first.eval(`document.activeElement.id + " " + document.activeElement.getAttribute("aria-describedby")`); got != "password password-error" {
		t.Errorf("after a wrong password the focus is on %v, want the password field described by its error", got)
	}
	first.screenshot("signin-error.png")

	first.do("username", chromedp.Clear(chromedp.ID("username")), chromedp.Focus(chromedp.ID("username")))
	first.signIn("alice")
	if p := first.path(); p != "/account" {
		t.Errorf("after sign-in: %s, want /account", p)
	}
	if n := first.eval(`document.querySelectorAll("li.session").length`); n != 1.0 {
		t.Errorf("%v sessions listed, want 1", n)
	}
	first.screenshot("account.png")

	// Keyboard focus is visible.
	first.do("tab to a control", chromedp.KeyEvent(kb.Tab))
	if style := first.eval(`getComputedStyle(document.activeElement).outlineStyle`); style == "none" {
		t.Errorf("the focused element (%v) has no visible outline", first.eval(`document.activeElement.outerHTML.slice(0, 80)`))
	}

	second := c.tab(f.url)
	second.do("open sign-in", chromedp.Navigate(f.url+"/signin"))
	second.signIn("alice")
	if n := second.eval(`document.querySelectorAll("li.session").length`); n != 2.0 {
		t.Fatalf("the second browser lists %v sessions, want 2", n)
	}
	if cur := second.text("li.session.current .badge"); cur != "This browser" {
		t.Errorf("current session badge %q", cur)
	}
	second.do("revoke the first browser's session",
		chromedp.Click(chromedp.CSS("li.session:not(.current) button")),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if n := second.eval(`document.querySelectorAll("li.session").length`); n != 1.0 {
		t.Errorf("after revoking, %v sessions listed, want 1", n)
	}

	// The first browser's next action sends it to sign in.
	first.do("next action", chromedp.Click(chromedp.CSS(`nav a[href="/account"]`)), chromedp.WaitVisible(chromedp.ID("username")))
	if p := first.path(); !strings.HasPrefix(p, "/signin?ended=1") {
		t.Errorf("after its session was revoked the first browser is at %s, want /signin?ended=1…", p)
	}
	if msg := first.text(".notice"); !strings.Contains(msg, "session has ended") {
		t.Errorf("notice %q", msg)
	}
	if cookies := first.eval(`document.cookie`); strings.Contains(fmt.Sprint(cookies), "keycard_csrf") {
		t.Errorf("the session's CSRF cookie survived: %v", cookies)
	}

	// Phone-sized: readable at 390 px, nothing wider than the screen.
	phone := c.tab(f.url)
	phone.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(f.url+"/signin"))
	phone.signIn("alice")
	if w := phone.eval(`document.documentElement.scrollWidth`); w.(float64) > 390 {
		t.Errorf("at 390 px the account page is %v px wide", w)
	}
	phone.screenshot("account-390px.png")
	phone.do("register page", chromedp.Navigate(f.url+"/register"))
	phone.screenshot("register.png")
}

// TestBrowserAdminRevokeAll: the admin console's pages, then "sign out
// everyone" behind its typed confirmation signs out both browsers.
func TestBrowserAdminRevokeAll(t *testing.T) {
	f := newFixture(t)
	aliceID := f.addUser(t, "alice")
	f.addUser(t, "root", "admin")
	for i := range 30 {
		f.addUser(t, fmt.Sprintf("user%02d", i))
	}
	c := newChrome(t)
	alice := c.tab(f.url)
	alice.do("alice signs in", chromedp.Navigate(f.url+"/signin"))
	alice.signIn("alice")

	admin := c.tab(f.url)
	admin.do("admin signs in", chromedp.Navigate(f.url+"/signin?next="+url.QueryEscape("/admin/users")),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.KeyEvent("root"+kb.Tab+testPassword+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("q")),
	)
	if p := admin.path(); p != "/admin/users" {
		t.Errorf("after sign-in with next=/admin/users: %s", p)
	}
	if n := admin.eval(`document.querySelectorAll("tbody tr").length`); n != 25.0 {
		t.Errorf("first page of users: %v rows, want 25", n)
	}
	admin.screenshot("admin-users.png")
	// alice's row is on the first page too: wait for the search's page
	// itself (its query in the URL, loaded) before counting its rows.
	admin.do("search", chromedp.SendKeys(chromedp.ID("q"), "AL"+kb.Enter))
	rows := admin.waitFor(`new URLSearchParams(location.search).get("q") === "AL" && document.readyState === "complete"`,
		`document.querySelectorAll("tbody tr").length`)
	if rows != 1.0 {
		t.Errorf("search AL: %v rows, want 1", rows)
	}
	admin.do("alice in the results", chromedp.WaitVisible(chromedp.CSS(`a[href="/admin/users/`+aliceID+`"]`)))
	admin.do("open alice", chromedp.Click(chromedp.CSS(`a[href="/admin/users/`+aliceID+`"]`)), chromedp.WaitVisible(chromedp.ID("roles")))
	admin.screenshot("admin-user.png")
	admin.do("keys", chromedp.Navigate(f.url+"/admin/keys"), chromedp.WaitVisible(chromedp.ID("immediate")))
	admin.screenshot("admin-keys.png")
	admin.do("clients", chromedp.Navigate(f.url+"/admin/clients"), chromedp.WaitVisible(chromedp.ID("new-client")),
		chromedp.Click(chromedp.ID("new-client")), chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "billing"), chromedp.SendKeys(chromedp.ID("scopes"), "orders:read"),
		chromedp.Click(chromedp.ID("save-client")), chromedp.WaitVisible(chromedp.ID("secret")))
	if p := admin.path(); p != "/admin/clients" {
		t.Errorf("after creating a client: %s (the secret must not be in a URL)", p)
	}
	admin.screenshot("admin-clients.png")
	admin.do("audit", chromedp.Navigate(f.url+"/admin/audit"), chromedp.WaitVisible(chromedp.ID("type")))
	admin.screenshot("admin-audit.png")

	admin.do("revoke-all page", chromedp.Navigate(f.url+"/admin/signout-all"), chromedp.WaitVisible(chromedp.ID("confirm")))
	if disabled := admin.eval(`document.getElementById("revoke-all").disabled`); disabled != true {
		t.Error("the button is enabled before the confirmation is typed (is app.js blocked?)")
	}
	admin.do("type the confirmation", chromedp.SendKeys(chromedp.ID("confirm"), "Sign out everyone"))
	if disabled := admin.eval(`document.getElementById("revoke-all").disabled`); disabled != false {
		t.Error("the button stays disabled after the confirmation is typed")
	}
	admin.screenshot("admin-signout-all.png")
	admin.do("sign out everyone", chromedp.Click(chromedp.ID("revoke-all")), chromedp.WaitVisible(chromedp.ID("username")))
	if p := admin.path(); !strings.HasPrefix(p, "/signin") {
		t.Errorf("the admin is at %s after signing out everyone", p)
	}
	alice.do("alice's next action", chromedp.Click(chromedp.CSS(`nav a[href="/account"]`)), chromedp.WaitVisible(chromedp.ID("username")))
	if p := alice.path(); !strings.HasPrefix(p, "/signin?ended=1") {
		t.Errorf("alice is at %s after everyone was signed out", p)
	}
	admin.do("admin's next page", chromedp.Navigate(f.url+"/admin/users"), chromedp.WaitVisible(chromedp.ID("username")))
	if p := admin.path(); !strings.HasPrefix(p, "/signin") {
		t.Errorf("the admin reached %s after signing out everyone", p)
	}
}

// TestBrowserOpenRedirect signs in with "next" values that point off the
// site: the browser always stays on it.
func TestBrowserOpenRedirect(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c := newChrome(t)
	// The HTTP tests try many more; these are the classic three.
	for _, next := range []string{"//evil.example/", `/\evil.example/`, "https://evil.example/"} {
		b := c.tab(f.url)
		b.do("open sign-in", chromedp.Navigate(f.url+"/signin?next="+url.QueryEscape(next)))
		b.signIn("alice")
		if p := b.path(); p != "/account" {
			t.Errorf("next %q: landed on %s, want /account", next, p)
		}
	}
}

// TestBrowserWeather: through the gateway, the demo weather page sends a
// signed-out browser to sign in and back, shows the user and the weather,
// and after signing out from it the page is gone.
func TestBrowserWeather(t *testing.T) {
	f := newFixture(t, fixtureOptions{weather: true})
	f.addUser(t, "alice")
	c := newChrome(t)
	b := c.tab(f.gateway)
	b.do("open the weather page", chromedp.Navigate(f.gateway+weatherPath), chromedp.WaitVisible(chromedp.ID("username")))
	if p := b.path(); p != "/signin?next=%2Fweather-app%2F" {
		t.Errorf("signed out, the weather page went to %s", p)
	}
	b.do("sign in", chromedp.KeyEvent("alice"+kb.Tab+testPassword+kb.Enter), chromedp.WaitVisible(chromedp.ID("forecast")))
	if p := b.path(); p != weatherPath {
		t.Errorf("after sign-in: %s, want %s", p, weatherPath)
	}
	if user := b.text("#weather-user"); user != "alice" {
		t.Errorf("the page shows user %q", user)
	}
	b.screenshot("weather.png")
	b.do("sign out", chromedp.Click(chromedp.CSS(`form[action="/signout"] button`)), chromedp.WaitVisible(chromedp.ID("username")))
	if p := b.path(); p != "/signin?signedout=1" {
		t.Errorf("after signing out: %s", p)
	}
	b.do("the weather again", chromedp.Navigate(f.gateway+weatherPath), chromedp.WaitVisible(chromedp.ID("username")))
	if p := b.path(); !strings.HasPrefix(p, "/signin") {
		t.Errorf("after signing out the weather page went to %s, want sign-in", p)
	}
}

// TestBrowserClientsAndApps: an admin registers a web app in the console
// and edits it; a user signs in to it through the consent page, finds it
// under "Apps with access" on the account page and removes its access.
func TestBrowserClientsAndApps(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	f.addUser(t, "root", "admin")
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>App</title><p id="code">%s</p>`, html.EscapeString(r.FormValue("code")))
	}))
	defer app.Close()
	callback := app.URL + "/cb"
	c := newChrome(t)

	admin := c.tab(f.url)
	admin.do("admin signs in", chromedp.Navigate(f.url+"/signin?next="+url.QueryEscape("/admin/clients/new")),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.KeyEvent("root"+kb.Tab+testPassword+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("redirect_uris")),
	)
	admin.do("fill in the registration",
		chromedp.SendKeys(chromedp.ID("name"), "Acme Orders"),
		chromedp.Click(chromedp.ID("grant_authorization_code")),
		chromedp.Click(chromedp.ID("grant_refresh_token")),
		chromedp.SendKeys(chromedp.ID("redirect_uris"), callback+kb.Enter+"https://acme.example/cb"),
		chromedp.SendKeys(chromedp.ID("scopes"), "orders:read"),
	)
	admin.screenshot("admin-client-new.png")
	admin.do("register", chromedp.Click(chromedp.ID("save-client")), chromedp.WaitVisible(chromedp.ID("secret")))
	id := admin.text("#client-id")
	secret := admin.eval(`document.getElementById("secret").value`).(string)
	stored, err := f.svc.AuthenticateClient(context.Background(), id, secret)
	if err != nil {
		t.Fatalf("the client registered in the browser: %v", err)
	}
	if got := strings.Join(stored.OAuth.RedirectURIs, " "); got != callback+" https://acme.example/cb" || stored.OAuth.FirstParty ||
		strings.Join(stored.OAuth.GrantTypes, " ") != "authorization_code refresh_token" {
		t.Errorf("stored: redirect URIs %q, grants %v, first party %v", got, stored.OAuth.GrantTypes, stored.OAuth.FirstParty)
	}
	if kind := admin.text("#client-kind"); kind != "web app" {
		t.Errorf("kind %q, want web app", kind)
	}
	admin.screenshot("admin-client.png")
	admin.do("edit the name", chromedp.Clear(chromedp.ID("name")), chromedp.SendKeys(chromedp.ID("name"), "Acme"),
		chromedp.Click(chromedp.ID("save-client")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if p := admin.path(); p != "/admin/clients/"+id+"?done=saved" {
		t.Errorf("after saving: %s", p)
	}
	if c, _ := f.svc.Client(context.Background(), id); c == nil || c.Name != "Acme" || len(c.OAuth.RedirectURIs) != 2 {
		t.Errorf("after the edit: %+v", c)
	}

	// Alice signs in to the app, and lets it in. The response comes as a
	// form post: Chromium applies the consent page's form-action 'self'
	// to the redirect its form leads to, and would stop a redirect to the
	// app's origin.
	alice := c.tab(f.url)
	q := url.Values{"client_id": {id}, "response_type": {"code"}, "redirect_uri": {callback}, "scope": {"openid offline_access orders:read"},
		"state": {"s1"}, "code_challenge": {appChallenge}, "code_challenge_method": {"S256"}, "response_mode": {"form_post"}}
	alice.do("the app sends alice to sign in", chromedp.Navigate(f.url+"/oauth/authorize?"+q.Encode()),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.KeyEvent("alice"+kb.Tab+testPassword+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("consent-allow")),
	)
	alice.screenshot("consent.png")
	alice.do("allow", chromedp.Click(chromedp.ID("consent-allow")), chromedp.WaitVisible(chromedp.ID("code")))
	if code := alice.text("#code"); code == "" {
		t.Fatal("the app got no code")
	}
	alice.do("the account page", chromedp.Navigate(f.url+"/account"), chromedp.WaitVisible(chromedp.ID("apps")))
	if n := alice.eval(`document.querySelectorAll("#apps li.app").length`); n != 1.0 {
		t.Fatalf("%v apps listed, want 1", n)
	}
	if name := alice.text("#apps li.app strong"); name != "Acme" {
		t.Errorf("app %q, want Acme", name)
	}
	alice.do("scroll to the apps", chromedp.ScrollIntoView(chromedp.ID("apps-h")))
	alice.screenshot("account-apps.png")
	alice.do("remove its access", chromedp.Click(chromedp.CSS(`#apps li.app button`)), chromedp.WaitVisible(chromedp.CSS(".notice")))
	if n := alice.eval(`document.querySelectorAll("#apps li.app").length`); n != 0.0 {
		t.Errorf("after removing access, %v apps listed", n)
	}
	// Next time, the app must ask again.
	alice.do("the app again", chromedp.Navigate(f.url+"/oauth/authorize?"+q.Encode()), chromedp.WaitVisible(chromedp.ID("consent-allow")))
}

// TestBrowserAdminCreateAndDeleteUser: an admin creates a user from the
// users page, then deletes them from their page: the button stays
// disabled until the username is typed, an old sign-in is asked for the
// password again first (step-up), and the deleted user's own browser is
// sent to sign in on its next page.
func TestBrowserAdminCreateAndDeleteUser(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "root", "admin")
	c := newChrome(t)
	admin := c.tab(f.url)
	admin.do("admin signs in", chromedp.Navigate(f.url+"/signin?next="+url.QueryEscape("/admin/users")),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.KeyEvent("root"+kb.Tab+testPassword+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("new-username")),
	)
	admin.do("create a user",
		chromedp.SendKeys(chromedp.ID("new-username"), "Nadia"),
		chromedp.SendKeys(chromedp.ID("new-password"), testPassword),
		chromedp.SendKeys(chromedp.ID("new-roles"), "editor"),
		chromedp.Click(chromedp.ID("create-user")),
		chromedp.WaitVisible(chromedp.ID("confirm-delete")),
	)
	if p := admin.path(); !strings.HasPrefix(p, "/admin/users/") || !strings.HasSuffix(p, "?done=usercreated") {
		t.Fatalf("after creating a user: %s", p)
	}
	if n := admin.text(".notice"); !strings.Contains(n, "The user is created.") {
		t.Errorf("notice %q", n)
	}
	userPage := strings.TrimSuffix(admin.path(), "?done=usercreated")
	u, err := f.svc.UserByName(context.Background(), "nadia")
	if err != nil || userPage != "/admin/users/"+u.ID || len(u.Roles) != 1 || u.Roles[0] != "editor" {
		t.Fatalf("created user %+v, %v at %s", u, err, userPage)
	}

	nadia := c.tab(f.url)
	nadia.do("nadia signs in", chromedp.Navigate(f.url+"/signin"))
	nadia.signIn("Nadia")

	if disabled := admin.eval(`document.getElementById("delete-user").disabled`); disabled != true {
		t.Error("the delete button is enabled before the username is typed (is app.js blocked?)")
	}
	admin.do("type the username", chromedp.SendKeys(chromedp.ID("confirm-delete"), "nadia"))
	if disabled := admin.eval(`document.getElementById("delete-user").disabled`); disabled != false {
		t.Error("the delete button stays disabled after the username is typed")
	}
	admin.screenshot("admin-delete-user.png")

	// The admin's sign-in grows older than the step-up window.
	f.clock.Advance(auth.DefaultStepUpWithin + time.Minute)
	admin.do("delete, asked to step up", chromedp.Click(chromedp.ID("delete-user")), chromedp.WaitVisible(chromedp.ID("password")))
	if p := admin.path(); !strings.HasPrefix(p, "/signin?reauth=1") {
		t.Fatalf("delete with an old sign-in went to %s, want the step-up sign-in", p)
	}
	if _, err := f.svc.User(context.Background(), u.ID); err != nil {
		t.Fatalf("the user was deleted before the step-up: %v", err)
	}
	admin.do("step up", chromedp.SendKeys(chromedp.ID("password"), testPassword+kb.Enter), chromedp.WaitVisible(chromedp.ID("confirm-delete")))
	if p := admin.path(); p != userPage+"?done=stepup" {
		t.Errorf("after the step-up: %s", p)
	}
	admin.do("delete", chromedp.SendKeys(chromedp.ID("confirm-delete"), "Nadia"), chromedp.Click(chromedp.ID("delete-user")),
		chromedp.WaitVisible(chromedp.ID("new-username")))
	if p := admin.path(); p != "/admin/users?done=userdeleted" {
		t.Errorf("after deleting: %s", p)
	}
	if n := admin.text(".notice"); !strings.Contains(n, "deleted") {
		t.Errorf("notice %q", n)
	}
	if _, err := f.svc.User(context.Background(), u.ID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("the user after deletion: %v", err)
	}
	nadia.do("nadia's next page", chromedp.Click(chromedp.CSS(`nav a[href="/account"]`)), chromedp.WaitVisible(chromedp.ID("username")))
	if p := nadia.path(); !strings.HasPrefix(p, "/signin") {
		t.Errorf("the deleted user is at %s", p)
	}
}
