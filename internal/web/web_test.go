package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/throttle"
	"github.com/keycard-auth/keycard/internal/web"
)

// wantSecurityHeaders fails unless a page carries the headers every page
// must: a CSP without inline script, no framing, no referrer, no caching.
func wantSecurityHeaders(t *testing.T, what string, p *page) {
	t.Helper()
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: Content-Security-Policy %q lacks %q", what, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("%s: Content-Security-Policy %q allows inline or eval'd script", what, csp)
	}
	for name, want := range map[string]string{
		"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
	} {
		if got := p.header.Get(name); got != want {
			t.Errorf("%s: %s %q, want %q", what, name, got, want)
		}
	}
}

var (
	inlineScriptRE  = regexp.MustCompile(`(?i)<script(\s[^>]*)?>`)
	inlineHandlerRE = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	inputRE         = regexp.MustCompile(`<input [^>]*>|<select [^>]*>`)
	idRE            = regexp.MustCompile(`id="([^"]+)"`)
)

// wantAccessibleHTML fails when a page has inline script, an inline event
// handler, or a visible input without a label.
func wantAccessibleHTML(t *testing.T, what string, body string) {
	t.Helper()
	for _, tag := range inlineScriptRE.FindAllString(body, -1) {
		if !strings.Contains(tag, `src="/assets/`) {
			t.Errorf("%s: inline script %s", what, tag)
		}
	}
	if m := inlineHandlerRE.FindString(body); m != "" {
		t.Errorf("%s: inline event handler %q", what, m)
	}
	for _, in := range inputRE.FindAllString(body, -1) {
		if strings.Contains(in, `type="hidden"`) || strings.Contains(in, " hidden") {
			continue
		}
		id := idRE.FindStringSubmatch(in)
		if id == nil || !strings.Contains(body, `<label for="`+id[1]+`"`) {
			t.Errorf("%s: input without a label: %s", what, in)
		}
	}
}

func TestPagesSecurityHeadersAndMarkup(t *testing.T) {
	f := newFixture(t, fixtureOptions{registration: true})
	f.addUser(t, "root", "admin")
	b := f.browser(t)
	for _, path := range []string{"/signin", "/register"} {
		p := b.get(path)
		if p.status != http.StatusOK {
			t.Fatalf("GET %s: status %d", path, p.status)
		}
		wantSecurityHeaders(t, path, p)
		wantAccessibleHTML(t, path, p.body)
	}
	b.mustSignIn("root")
	for _, path := range []string{"/account", "/admin/users", "/admin/keys", "/admin/clients", "/admin/clients/new", "/admin/audit", "/admin/signout-all"} {
		p := b.get(path)
		if p.status != http.StatusOK {
			t.Fatalf("GET %s: status %d\n%s", path, p.status, p.body)
		}
		wantSecurityHeaders(t, path, p)
		wantAccessibleHTML(t, path, p.body)
		if strings.Count(p.body, `name="csrf_token"`) != strings.Count(p.body, `method="post"`) {
			t.Errorf("%s: %d POST forms but %d CSRF fields", path, strings.Count(p.body, `method="post"`), strings.Count(p.body, `name="csrf_token"`))
		}
	}
	// A page that only redirects carries the headers too.
	wantSecurityHeaders(t, "/", b.get("/"))
}

func TestAssets(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	css := b.get("/assets/style.css")
	if css.status != http.StatusOK || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("style.css: status %d, Content-Type %q", css.status, css.header.Get("Content-Type"))
	}
	if strings.Contains(css.body, "@import") || strings.Contains(css.body, "url(") {
		t.Error("style.css loads something from elsewhere")
	}
	js := b.get("/assets/app.js")
	if js.status != http.StatusOK || !strings.HasPrefix(js.header.Get("Content-Type"), "text/javascript") {
		t.Errorf("app.js: status %d, Content-Type %q", js.status, js.header.Get("Content-Type"))
	}
	for _, path := range []string{"/assets/nope.css", "/assets/..%2fweb.go", "/assets/layout.html", "/assets/%2e%2e"} {
		if p := b.get(path); p.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, p.status)
		}
	}
}

// sessionCookies checks the cookies a sign-in set and returns them by name.
func TestSignInCookies(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	b := f.browser(t)
	res := b.signIn("alice", testPassword, "")
	if res.status != http.StatusSeeOther || res.location() != "/account" {
		t.Fatalf("sign in: status %d, Location %q", res.status, res.location())
	}
	want := map[string]struct {
		path     string
		httpOnly bool
	}{
		"__Host-keycard_access":         {"/", true},
		"__Secure-keycard_page_refresh": {"/session/refresh", true},
		"__Host-keycard_csrf":           {"/", false},
		"__Host-keycard_form":           {"/", true},
		"__Host-keycard_sso":            {"/", true},
	}
	seen := map[string]bool{}
	for _, c := range b.setCookies {
		w, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected cookie %s", c.Name)
			continue
		}
		seen[c.Name] = true
		// The single sign-on cookie is Lax: an application on another
		// site sends the browser to /oauth/authorize with a link.
		sameSite := http.SameSiteStrictMode
		if c.Name == "__Host-keycard_sso" {
			sameSite = http.SameSiteLaxMode
		}
		if !c.Secure || c.SameSite != sameSite || c.Domain != "" || c.Path != w.path || c.HttpOnly != w.httpOnly {
			t.Errorf("cookie %s: Secure %v SameSite %v Domain %q Path %q HttpOnly %v; want Secure, Strict, host-only, Path %s, HttpOnly %v",
				c.Name, c.Secure, c.SameSite, c.Domain, c.Path, c.HttpOnly, w.path, w.httpOnly)
		}
		if strings.HasPrefix(c.Name, "__Host-") && c.Path != "/" {
			t.Errorf("cookie %s: a __Host- cookie needs Path=/", c.Name)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("cookie %s was not set", name)
		}
	}
	access, refresh := b.cookies["__Host-keycard_access"].Value, b.cookies["__Secure-keycard_page_refresh"].Value
	account := b.get("/account")
	if account.status != http.StatusOK || !strings.Contains(account.body, "alice") {
		t.Fatalf("GET /account: status %d", account.status)
	}
	for _, loc := range b.locations {
		if strings.Contains(loc, access) || strings.Contains(loc, refresh) {
			t.Errorf("a token is in a URL: %s", loc)
		}
	}
	if strings.Contains(account.body, access) || strings.Contains(account.body, refresh) {
		t.Error("a token is in the page")
	}
	// The access cookie also works with the JSON API in cookie mode: the
	// pages and the API share the session.
	me := b.send(http.MethodGet, "/v1/me", nil, http.Header{})
	if me.status != http.StatusOK || !strings.Contains(me.body, `"alice"`) {
		t.Errorf("GET /v1/me with the pages' cookie: status %d %s", me.status, me.body)
	}
}

func TestSignInErrors(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	b := f.browser(t)
	for _, tc := range []struct {
		name, user, pass string
		status           int
		field, message   string
	}{
		{"wrong password", "alice", "wrong password!", http.StatusUnauthorized, "password-error", "Wrong username or password."},
		{"unknown user", "nobody", testPassword, http.StatusUnauthorized, "password-error", "Wrong username or password."},
		{"no username", "", testPassword, http.StatusBadRequest, "username-error", "Enter your username."},
		{"no password", "alice", "", http.StatusBadRequest, "password-error", "Enter your password."},
		{"not UTF-8", "al\xffice", testPassword, http.StatusForbidden, "", "could not be accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := b.signIn(tc.user, tc.pass, "")
			if p.status != tc.status {
				t.Fatalf("status %d, want %d", p.status, tc.status)
			}
			if !strings.Contains(p.body, tc.message) {
				t.Errorf("the page does not say %q", tc.message)
			}
			if tc.field != "" {
				if !strings.Contains(p.body, `aria-describedby="`+tc.field+`"`) || !strings.Contains(p.body, `id="`+tc.field+`" role="alert"`) {
					t.Errorf("the error is not announced next to its field (%s)", tc.field)
				}
			}
			if _, ok := b.cookies["__Host-keycard_access"]; ok {
				t.Error("an access cookie was set")
			}
		})
	}
}

func TestSignInThrottled(t *testing.T) {
	f := newFixture(t, fixtureOptions{throttle: &throttle.Policy{Burst: 2, BaseDelay: time.Minute}})
	f.addUser(t, "alice")
	b := f.browser(t)
	for range 2 {
		b.signIn("alice", "wrong password!", "")
	}
	p := b.signIn("alice", testPassword, "")
	if p.status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", p.status)
	}
	if p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many sign-in attempts. Wait") {
		t.Errorf("Retry-After %q; the page does not say how long to wait", p.header.Get("Retry-After"))
	}
	if !strings.Contains(p.body, `role="alert"`) {
		t.Error("the message is not announced")
	}
}

// TestSignInCSRF sends the sign-in form as another site would.
func TestSignInCSRF(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	for _, tc := range []struct {
		name   string
		header http.Header
		token  func(real string) string
	}{
		{"no token", nil, func(string) string { return "" }},
		{"wrong token", nil, func(string) string { return strings.Repeat("A", 43) }},
		{"other origin", http.Header{"Origin": {"https://evil.example"}}, func(s string) string { return s }},
		{"cross-site fetch", http.Header{"Sec-Fetch-Site": {"cross-site"}}, func(s string) string { return s }},
		{"same-site fetch", http.Header{"Sec-Fetch-Site": {"same-site"}}, func(s string) string { return s }},
		{"null origin", http.Header{"Origin": {"null"}}, func(s string) string { return s }},
		{"null origin, cross-site", http.Header{"Origin": {"null"}, "Sec-Fetch-Site": {"cross-site"}}, func(s string) string { return s }},
		{"two origins", http.Header{"Origin": {"http://x", "http://y"}, "Sec-Fetch-Site": {"same-origin"}}, func(s string) string { return s }},
		{"neither header", http.Header{}, func(s string) string { return s }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := f.browser(t)
			form := b.get("/signin")
			values := url.Values{"csrf_token": {tc.token(b.csrf(form))}, "username": {"alice"}, "password": {testPassword}}
			p := b.send(http.MethodPost, "/signin", values, tc.header)
			if p.status != http.StatusForbidden {
				t.Errorf("status %d, want 403", p.status)
			}
			if _, ok := b.cookies["__Host-keycard_access"]; ok {
				t.Error("signed in")
			}
		})
	}
}

// TestSessionFormCSRF sends a signed-in user's forms without the right
// token or from another origin: each is refused and changes nothing.
func TestSessionFormCSRF(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	victim, other := f.browser(t), f.browser(t)
	victim.mustSignIn("alice")
	other.mustSignIn("alice")
	otherToken := other.csrf(other.get("/account"))
	realToken := victim.csrf(victim.get("/account"))
	for _, tc := range []struct {
		name   string
		token  string
		header http.Header
	}{
		{"no token", "", nil},
		{"another session's token", otherToken, nil},
		{"garbage", "x", nil},
		{"right token, other origin", realToken, http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}},
		{"right token, no origin headers", realToken, http.Header{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := victim.send(http.MethodPost, "/account/signout-everywhere", url.Values{"csrf_token": {tc.token}}, tc.header)
			if p.status != http.StatusForbidden {
				t.Errorf("status %d, want 403", p.status)
			}
			if got := victim.get("/account"); got.status != http.StatusOK {
				t.Fatalf("the victim was signed out: status %d", got.status)
			}
		})
	}
	// The JSON content type is not a form.
	p := victim.send(http.MethodPost, "/account/signout-everywhere", nil, http.Header{"Origin": {f.url}, "Content-Type": {"application/json"}})
	if p.status != http.StatusForbidden {
		t.Errorf("JSON body: status %d, want 403", p.status)
	}
}

// TestOpenRedirect signs in with "next" values that would leave the site:
// every one lands on /account; allowed paths are kept.
func TestOpenRedirect(t *testing.T) {
	f := newFixture(t, fixtureOptions{redirects: []string{"/weather/"}})
	f.addUser(t, "alice")
	refused := []string{
		"//evil.example", "//evil.example/account", "/\\evil.example", "\\\\evil.example", "/\\/evil.example",
		"https://evil.example", "http://evil.example/account", "HTTPS://evil.example", "https:evil.example",
		"javascript:alert(1)", "data:text/html,hi", " /account", "/\t/evil.example", "/%09/evil.example",
		"%2F%2Fevil.example", "/%2F/evil.example", "/%2f%2fevil.example", "/%5Cevil.example", "/%5cevil.example",
		"/account/../..//evil.example", "/./account", "/account/..", "/admin//users", "/admin/users/x/../../..//evil",
		"//", "///evil.example", "/account#//evil.example", "/account@evil.example/x", "/unknown", "/weather",
		"/v1/me", "/session/refresh?next=//evil.example", "/%0d%0aSet-Cookie:x=y", "/account\r\nLocation: //evil",
		"", "account", "evil.example",
	}
	allowed := []string{"/account", "/admin/users?q=al", "/admin/users/abc", "/weather/", "/weather/today?city=Oslo", "/"}
	for _, next := range refused {
		b := f.browser(t)
		p := b.signIn("alice", testPassword, next)
		if p.status != http.StatusSeeOther || p.location() != "/account" {
			t.Errorf("next %q: status %d, Location %q, want /account", next, p.status, p.location())
		}
		// The sign-in page itself never carries it into its form, and the
		// refresh page does not follow it either.
		form := b.get("/signin?next=" + url.QueryEscape(next))
		if form.status != http.StatusSeeOther || form.location() != "/account" {
			t.Errorf("GET /signin?next=%q when signed in: Location %q", next, form.location())
		}
		anon := f.browser(t)
		if page := anon.get("/signin?next=" + url.QueryEscape(next)); !strings.Contains(page.body, `name="next" value="/account"`) {
			t.Errorf("GET /signin?next=%q: the form does not fall back to /account", next)
		}
		if r := anon.get("/session/refresh?next=" + url.QueryEscape(next)); r.location() != "/signin?next=%2Faccount" {
			t.Errorf("GET /session/refresh?next=%q: Location %q", next, r.location())
		}
	}
	for _, next := range allowed {
		b := f.browser(t)
		if p := b.signIn("alice", testPassword, next); p.location() != next {
			t.Errorf("next %q: Location %q, want it kept", next, p.location())
		}
	}
}

// TestRevokedSessionSignsOut revokes one browser's session from another:
// the first is sent to sign in on its next page, and its refresh fails.
func TestRevokedSessionSignsOut(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	first, second := f.browser(t), f.browser(t)
	first.mustSignIn("alice")
	second.mustSignIn("alice")
	account := second.get("/account")
	if n := strings.Count(account.body, `<li class="session`); n != 2 {
		t.Fatalf("the account page lists %d sessions, want 2", n)
	}
	if strings.Count(account.body, "This browser") != 1 {
		t.Error("the current session is not marked once")
	}
	// The session not marked current is the first browser's.
	m := regexp.MustCompile(`<li class="session" data-session="([^"]+)"`).FindStringSubmatch(account.body)
	if m == nil {
		t.Fatal("no other session listed")
	}
	p := second.post("/account/sessions/"+m[1]+"/revoke", url.Values{"csrf_token": {second.csrf(account)}})
	if p.status != http.StatusSeeOther || p.location() != "/account?done=session" {
		t.Fatalf("revoke: status %d, Location %q", p.status, p.location())
	}
	last, visited := first.follow("/account")
	if !strings.HasPrefix(visited[len(visited)-1], "/signin?ended=1") || last.status != http.StatusOK {
		t.Errorf("the first browser went %v, want to end at /signin?ended=1", visited)
	}
	if _, ok := first.cookies["__Host-keycard_access"]; ok {
		t.Error("the first browser's cookies were not cleared")
	}
	// Its next form post goes to sign in too, and does nothing.
	if _, visited := second.follow("/account"); visited[len(visited)-1] != "/account" {
		t.Errorf("the second browser was signed out: %v", visited)
	}
}

// TestAccessRenewedFromRefreshCookie lets the access token expire: the
// next page renews it from the refresh cookie and comes back.
func TestAccessRenewedFromRefreshCookie(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	b := f.browser(t)
	b.mustSignIn("alice")
	before := b.cookies["__Host-keycard_access"].Value
	f.clock.Advance(20 * time.Minute)
	last, visited := b.follow("/admin/users?q=x")
	want := []string{"/admin/users?q=x", "/session/refresh?next=%2Fadmin%2Fusers%3Fq%3Dx", "/admin/users?q=x"}
	if fmt.Sprint(visited) != fmt.Sprint(want) {
		t.Errorf("visited %v, want %v", visited, want)
	}
	if last.status != http.StatusForbidden { // alice is not an admin
		t.Errorf("status %d, want 403", last.status)
	}
	if b.cookies["__Host-keycard_access"].Value == before {
		t.Error("the access cookie was not renewed")
	}
	// A form posted with an expired token is not replayed: it goes back
	// to its page through the refresh.
	f.clock.Advance(20 * time.Minute)
	p := b.post("/account/signout-everywhere", url.Values{"csrf_token": {"stale"}, "back": {"//evil.example"}})
	if p.status != http.StatusSeeOther || p.location() != "/session/refresh?next=%2Faccount" {
		t.Errorf("expired POST: status %d, Location %q", p.status, p.location())
	}
}

func TestChangePassword(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	b, other := f.browser(t), f.browser(t)
	b.mustSignIn("alice")
	other.mustSignIn("alice")
	for _, tc := range []struct {
		name             string
		cur, next, again string
		status           int
		field            string
	}{
		{"wrong current", "nope nope nope", "a new password", "a new password", http.StatusForbidden, "current-error"},
		{"too short", testPassword, "short", "short", http.StatusBadRequest, "new-error"},
		{"differ", testPassword, "a new password", "another one!", http.StatusBadRequest, "confirm-error"},
	} {
		p := b.postFrom("/account", "/account/password", url.Values{"current_password": {tc.cur}, "new_password": {tc.next}, "confirm_password": {tc.again}})
		if p.status != tc.status || !strings.Contains(p.body, `id="`+tc.field+`" role="alert"`) {
			t.Errorf("%s: status %d (want %d), error %s shown: %v", tc.name, p.status, tc.status, tc.field, strings.Contains(p.body, tc.field))
		}
	}
	p := b.postFrom("/account", "/account/password", url.Values{"current_password": {testPassword}, "new_password": {"a new password"}, "confirm_password": {"a new password"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("change: status %d", p.status)
	}
	last, _ := b.follow(p.location())
	if last.status != http.StatusOK || !strings.Contains(last.body, "Your password is changed") {
		t.Errorf("after the change: status %d", last.status)
	}
	if _, visited := other.follow("/account"); !strings.HasPrefix(visited[len(visited)-1], "/signin") {
		t.Errorf("the other session survived the password change: %v", visited)
	}
	if p := f.browser(t).signIn("alice", "a new password", ""); p.status != http.StatusSeeOther {
		t.Errorf("sign in with the new password: status %d", p.status)
	}
}

func TestSignOutAndEverywhere(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	a, b, c := f.browser(t), f.browser(t), f.browser(t)
	a.mustSignIn("alice")
	b.mustSignIn("alice")
	c.mustSignIn("alice")
	if p := a.postFrom("/account", "/signout", nil); p.location() != "/signin?signedout=1" {
		t.Errorf("sign out: Location %q", p.location())
	}
	if _, visited := a.follow("/account"); !strings.HasPrefix(visited[len(visited)-1], "/signin") {
		t.Errorf("signed out browser: %v", visited)
	}
	if _, visited := b.follow("/account"); visited[len(visited)-1] != "/account" {
		t.Errorf("sign out signed out another browser: %v", visited)
	}
	if p := b.postFrom("/account", "/account/signout-everywhere", nil); p.location() != "/signin?signedout=1" {
		t.Errorf("sign out everywhere: Location %q", p.location())
	}
	for _, x := range []*browser{b, c} {
		if _, visited := x.follow("/account"); !strings.HasPrefix(visited[len(visited)-1], "/signin") {
			t.Errorf("after sign out everywhere: %v", visited)
		}
	}
}

func TestRegistration(t *testing.T) {
	closed := newFixture(t)
	if p := closed.browser(t).get("/register"); p.status != http.StatusNotFound {
		t.Errorf("registration off: GET /register status %d, want 404", p.status)
	}
	if p := closed.browser(t).get("/signin"); strings.Contains(p.body, `href="/register"`) {
		t.Error("registration off: the sign-in page links to it")
	}
	f := newFixture(t, fixtureOptions{registration: true})
	b := f.browser(t)
	register := func(user, pass, again string) *page {
		form := b.get("/register")
		return b.post("/register", url.Values{"csrf_token": {b.csrf(form)}, "username": {user}, "password": {pass}, "confirm": {again}})
	}
	for _, tc := range []struct {
		name, user, pass, again string
		status                  int
		field                   string
	}{
		{"no username", "", testPassword, testPassword, http.StatusBadRequest, "username-error"},
		{"bad username", "a b", testPassword, testPassword, http.StatusBadRequest, "username-error"},
		{"short password", "bob", "short", "short", http.StatusBadRequest, "password-error"},
		{"passwords differ", "bob", testPassword, "other password", http.StatusBadRequest, "password-error"},
	} {
		p := register(tc.user, tc.pass, tc.again)
		if p.status != tc.status || !strings.Contains(p.body, `id="`+tc.field+`" role="alert"`) {
			t.Errorf("%s: status %d, want %d with %s", tc.name, p.status, tc.status, tc.field)
		}
	}
	if p := register("Bob", testPassword, testPassword); p.status != http.StatusSeeOther || p.location() != "/signin?registered=1" {
		t.Fatalf("register: status %d, Location %q", p.status, p.location())
	}
	if p := register("BOB", testPassword, testPassword); p.status != http.StatusConflict || !strings.Contains(p.body, "taken") {
		t.Errorf("taken: status %d", p.status)
	}
	b.mustSignIn("bob")
}

// TestPagesBesideAPI checks that mounting the pages changes nothing of
// the JSON API: its 404 and 405 answers stay JSON.
func TestPagesBesideAPI(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodPut, "/admin/v1/keys", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/nothing", http.StatusNotFound},
		{http.MethodGet, "/admin/v1/nothing", http.StatusNotFound},
		{http.MethodDelete, "/v1/me", http.StatusMethodNotAllowed},
	} {
		p := b.send(tc.method, tc.path, nil, http.Header{})
		if p.status != tc.status || p.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: status %d %q, want %d JSON", tc.method, tc.path, p.status, p.header.Get("Content-Type"), tc.status)
		}
	}
	if p := b.get("/healthz"); p.status != http.StatusOK {
		t.Errorf("/healthz: %d", p.status)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	f := newFixture(t)
	for _, opt := range []web.Options{
		{RedirectPrefixes: []string{"weather/"}},
		{RedirectPrefixes: []string{"//evil/"}},
		{RedirectPrefixes: []string{`/a\b`}},
		{Origins: []string{"https://app.example/"}},
		{Origins: []string{"app.example"}},
		{Origins: []string{"https://app.example:443"}},
		{Origins: []string{"ftp://app.example"}},
	} {
		if _, err := web.New(f.svc, opt); err == nil {
			t.Errorf("web.New accepted %+v", opt)
		}
	}
}

// TestSignInAgainEndsOldSession signs in twice from one browser (a form
// left open in another tab): the first session is ended, not orphaned.
func TestSignInAgainEndsOldSession(t *testing.T) {
	f := newFixture(t)
	aliceID := f.addUser(t, "alice")
	f.addUser(t, "bob")
	b := f.browser(t)
	form := b.get("/signin")
	b.mustSignIn("alice")
	p := b.post("/signin", url.Values{"csrf_token": {b.csrf(form)}, "username": {"bob"}, "password": {testPassword}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("second sign-in: %d", p.status)
	}
	sessions, err := f.svc.UserSessions(context.Background(), aliceID, "", 10)
	if err != nil || len(sessions) != 0 {
		t.Errorf("alice keeps %d sessions (%v), want 0", len(sessions), err)
	}
	if me := b.get("/account"); !strings.Contains(me.body, `id="me-username">bob<`) {
		t.Error("the browser is not signed in as bob")
	}
}
