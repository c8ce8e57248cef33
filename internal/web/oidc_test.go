package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

const (
	rpRedirect = "https://rp.example/cb"
	rpVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

// rpClient registers an application client of the fixture.
func (f *fixture) rpClient(t *testing.T, firstParty bool) (*keycard.Client, string) {
	t.Helper()
	c, secret, err := f.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "Orders app", Scopes: []string{"orders:read"},
		OAuth: keycard.OAuthSettings{
			GrantTypes: []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken}, FirstParty: firstParty,
			RedirectURIs: []string{rpRedirect}, PostLogoutRedirectURIs: []string{"https://rp.example/bye"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	return c, secret
}

func authorizeURL(c *keycard.Client, extra ...string) string {
	sum := sha256.Sum256([]byte(rpVerifier))
	v := url.Values{"client_id": {c.ID}, "redirect_uri": {rpRedirect}, "response_type": {"code"}, "scope": {"openid profile"},
		"state": {"xyz"}, "nonce": {"n1"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return "/oauth/authorize?" + v.Encode()
}

// crossSite is what a browser sends on a top-level navigation from
// another site (an application's link or redirect).
var crossSite = http.Header{"Sec-Fetch-Site": {"cross-site"}}

// callback parses a redirect to the application's redirect URI.
func callback(t *testing.T, p *page) url.Values {
	t.Helper()
	loc := p.location()
	if p.status != http.StatusSeeOther || !strings.HasPrefix(loc, rpRedirect+"?") {
		t.Fatalf("want a 303 to the redirect URI, got %d %q\n%s", p.status, loc, p.body)
	}
	u, _ := url.Parse(loc)
	return u.Query()
}

// TestAuthorizeSignInAndSSO: a signed-out browser is sent to sign in and
// back with the request kept server-side; it comes back to the
// application with a code, the state and the issuer; a second request
// gets a code without a sign-in (single sign-on).
func TestAuthorizeSignInAndSSO(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, secret := f.rpClient(t, true)
	b := f.browser(t)
	p := b.send(http.MethodGet, authorizeURL(c), nil, crossSite)
	loc := p.location()
	if p.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/signin?") {
		t.Fatalf("signed out: %d %q, want the sign-in page", p.status, loc)
	}
	next := mustQuery(t, loc).Get("next")
	if !strings.HasPrefix(next, "/oauth/authorize?") || !strings.Contains(next, "request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3A") {
		t.Fatalf("sign-in next %q: want the authorization endpoint with a request_uri", next)
	}
	if r := b.signIn("alice", testPassword, next); r.location() != next {
		t.Fatalf("sign in: %d %q, want back to %q", r.status, r.location(), next)
	}
	q := callback(t, b.get(next))
	if q.Get("code") == "" || q.Get("state") != "xyz" || q.Get("iss") != f.url {
		t.Fatalf("callback %v: want code, state xyz, iss %s", q, f.url)
	}
	client, err := f.svc.AuthenticateClient(context.Background(), c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.svc.ExchangeCode(context.Background(), client, q.Get("code"), rpRedirect, rpVerifier, auth.Agent{})
	if err != nil || tok.IDToken == "" {
		t.Fatalf("exchange: %+v, %v", tok, err)
	}
	// The request_uri of the detour was used up.
	if p := b.get(next); p.status != http.StatusBadRequest {
		t.Errorf("the detour's request_uri again: %d, want 400", p.status)
	}
	// Single sign-on: straight back with a code.
	q = callback(t, b.send(http.MethodGet, authorizeURL(c, "state", "second"), nil, crossSite))
	if q.Get("code") == "" || q.Get("state") != "second" {
		t.Errorf("SSO: %v", q)
	}
	// prompt=login asks again; max_age=0 too.
	f.clock.Advance(time.Second)
	for _, extra := range [][]string{{"prompt", "login"}, {"max_age", "0"}} {
		p := b.send(http.MethodGet, authorizeURL(c, extra...), nil, crossSite)
		if !strings.HasPrefix(p.location(), "/signin?") || !strings.Contains(p.location(), "reauth=1") {
			t.Errorf("%v: %d %q, want a sign-in again", extra, p.status, p.location())
		}
	}
	// Signing in again renews this browser's session: the application
	// signed in through it stays signed in, and the new code is of the
	// same session with a new auth_time.
	p = b.send(http.MethodGet, authorizeURL(c, "prompt", "login", "state", "again"), nil, crossSite)
	next = mustQuery(t, p.location()).Get("next")
	form := b.get(p.location()) // the sign-in page, asking again
	if form.status != http.StatusOK || !strings.Contains(form.body, `value="alice"`) {
		t.Fatalf("sign-in page asking again: %d\n%s", form.status, form.body)
	}
	if r := b.post("/signin", url.Values{"csrf_token": {b.csrf(form)}, "username": {"alice"}, "password": {testPassword}, "next": {next}}); r.location() != next {
		t.Fatalf("sign in again: %d %q", r.status, r.location())
	}
	q = callback(t, b.get(next))
	again, err := f.svc.ExchangeCode(context.Background(), client, q.Get("code"), rpRedirect, rpVerifier, auth.Agent{})
	if err != nil || q.Get("state") != "again" {
		t.Fatalf("after signing in again: %v, %v", q, err)
	}
	if _, err := f.svc.UserInfo(context.Background(), tok.AccessToken); err != nil {
		t.Errorf("signing in again signed the first grant out: %v", err)
	}
	first, second := idClaims(t, tok.IDToken), idClaims(t, again.IDToken)
	if first["sid"] != second["sid"] || first["auth_time"] == second["auth_time"] {
		t.Errorf("ID tokens before and after: sid %v → %v, auth_time %v → %v; want the same sid, a new auth_time", first["sid"], second["sid"], first["auth_time"], second["auth_time"])
	}
}

// idClaims returns the claims of a JWT, unverified (the service made it).
func idClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
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

// TestAuthorizeErrors sends the requests that must never be redirected
// and those that must be, with state and iss.
func TestAuthorizeErrors(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, _ := f.rpClient(t, true)
	b := f.browser(t)
	for _, tc := range []struct{ name, path string }{
		{"unknown client", authorizeURL(c, "client_id", "nobody")},
		{"unregistered redirect", authorizeURL(c, "redirect_uri", "https://evil.example/cb")},
		{"redirect with a path suffix", authorizeURL(c, "redirect_uri", rpRedirect+"/../../evil")},
		{"redirect with user info", authorizeURL(c, "redirect_uri", "https://rp.example@evil.example/cb")},
		{"redirect of another case", authorizeURL(c, "redirect_uri", "https://RP.example/cb")},
		{"no client", "/oauth/authorize?response_type=code"},
	} {
		p := b.send(http.MethodGet, tc.path, nil, crossSite)
		if p.status != http.StatusBadRequest || p.location() != "" || !strings.Contains(p.body, "Sign-in request refused") {
			t.Errorf("%s: %d %q, want a 400 page and no redirect", tc.name, p.status, p.location())
		}
		wantSecurityHeaders(t, tc.name, p)
	}
	for _, tc := range []struct{ name, path, code string }{
		{"prompt=none signed out", authorizeURL(c, "prompt", "none"), "login_required"},
		{"implicit", authorizeURL(c, "response_type", "token"), "unsupported_response_type"},
		{"plain PKCE", authorizeURL(c, "code_challenge_method", "plain"), "invalid_request"},
		{"scope not allowed", authorizeURL(c, "scope", "openid admin"), "invalid_scope"},
	} {
		q := callback(t, b.send(http.MethodGet, tc.path, nil, crossSite))
		if q.Get("error") != tc.code || q.Get("state") != "xyz" || q.Get("iss") != f.url || q.Get("code") != "" {
			t.Errorf("%s: %v, want error %s with state and iss", tc.name, q, tc.code)
		}
	}
}

// TestConsentAndFormPost: a third-party client shows the consent page,
// whose form refuses a post without the session's CSRF token or from
// another origin; allow answers with a code (here by form_post, whose
// page may post only to the application's origin), deny with
// access_denied.
func TestConsentAndFormPost(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, _ := f.rpClient(t, false)
	b := f.browser(t)
	b.mustSignIn("alice")
	p := b.send(http.MethodGet, authorizeURL(c, "response_mode", "form_post", "scope", "openid profile orders:read"), nil, crossSite)
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="consent-allow"`) || !strings.Contains(p.body, "Orders app") {
		t.Fatalf("consent page: %d\n%s", p.status, p.body)
	}
	wantSecurityHeaders(t, "consent", p)
	csrf := b.csrf(p)
	fields := url.Values{"client_id": {c.ID}, "request_uri": {hiddenValue(t, p.body, "request_uri")}, "decision": {"allow"}}
	// Without the token, with another's, from another site: refused.
	if r := b.post("/oauth/consent", fields); r.status != http.StatusForbidden {
		t.Errorf("consent without CSRF token: %d", r.status)
	}
	withCSRF := url.Values{"csrf_token": {csrf}}
	for k, v := range fields {
		withCSRF[k] = v
	}
	if r := b.send(http.MethodPost, "/oauth/consent", withCSRF, http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}); r.status != http.StatusForbidden {
		t.Errorf("consent from another site: %d", r.status)
	}
	r := b.post("/oauth/consent", withCSRF)
	if r.status != http.StatusOK || !strings.Contains(r.body, `action="`+rpRedirect+`"`) || !strings.Contains(r.body, `name="code"`) ||
		!strings.Contains(r.body, `name="iss" value="`+f.url+`"`) || !strings.Contains(r.body, `name="state" value="xyz"`) {
		t.Fatalf("form_post answer: %d\n%s", r.status, r.body)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action https://rp.example") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("form_post CSP %q: want form-action of the application's origin, no framing", csp)
	}
	// Consent remembered: no page the second time.
	q := callback(t, b.send(http.MethodGet, authorizeURL(c, "scope", "openid profile orders:read"), nil, crossSite))
	if q.Get("code") == "" {
		t.Errorf("after consent: %v", q)
	}
	// A wider request asks again; deny answers access_denied.
	p = b.send(http.MethodGet, authorizeURL(c, "scope", "openid profile orders:read offline_access"), nil, crossSite)
	deny := url.Values{"csrf_token": {b.csrf(p)}, "client_id": {c.ID}, "request_uri": {hiddenValue(t, p.body, "request_uri")}, "decision": {"deny"}}
	if q := callback(t, b.post("/oauth/consent", deny)); q.Get("error") != "access_denied" || q.Get("state") != "xyz" {
		t.Errorf("deny: %v", q)
	}
}

// TestEndSession: RP-initiated logout with a hint of this browser's
// session ends it at once and returns to the registered URI with the
// state; an unregistered URI is never redirected to; a hint of another
// session asks first, with a CSRF-checked form.
func TestEndSession(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, secret := f.rpClient(t, true)
	client, _ := f.svc.AuthenticateClient(context.Background(), c.ID, secret)
	b := f.browser(t)
	b.mustSignIn("alice")
	q := callback(t, b.send(http.MethodGet, authorizeURL(c), nil, crossSite))
	tok, err := f.svc.ExchangeCode(context.Background(), client, q.Get("code"), rpRedirect, rpVerifier, auth.Agent{})
	if err != nil {
		t.Fatal(err)
	}
	logout := func(extra ...string) string {
		v := url.Values{"id_token_hint": {tok.IDToken}, "post_logout_redirect_uri": {"https://rp.example/bye"}, "state": {"s1"}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return "/oauth/logout?" + v.Encode()
	}
	for _, tc := range []struct{ name, path string }{
		{"unregistered post-logout URI", logout("post_logout_redirect_uri", "https://evil.example/")},
		{"post-logout URI prefix", logout("post_logout_redirect_uri", "https://rp.example/bye/x")},
		{"forged hint", logout("id_token_hint", tok.IDToken+"x")},
	} {
		p := b.send(http.MethodGet, tc.path, nil, crossSite)
		if p.status != http.StatusBadRequest || p.location() != "" {
			t.Errorf("%s: %d %q, want a 400 page and no redirect", tc.name, p.status, p.location())
		}
	}
	// Another browser signed in as alice: the hint is not its session's,
	// so it is asked first, and the form wants its CSRF token.
	other := f.browser(t)
	other.mustSignIn("alice")
	p := other.send(http.MethodGet, logout(), nil, crossSite)
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="logout-confirm"`) {
		t.Fatalf("logout of another session: %d %q, want the confirmation page", p.status, p.location())
	}
	wantSecurityHeaders(t, "logout confirmation", p)
	confirm := url.Values{"confirm": {"1"}, "post_logout_redirect_uri": {"https://rp.example/bye"}, "state": {"s1"}, "id_token_hint": {tok.IDToken}}
	if r := other.post("/oauth/logout", confirm); r.status != http.StatusForbidden {
		t.Errorf("confirmation without CSRF token: %d", r.status)
	}
	// This browser's own hint: out at once, back to the application.
	r := b.send(http.MethodGet, logout(), nil, crossSite)
	if r.status != http.StatusSeeOther || r.location() != "https://rp.example/bye?state=s1" {
		t.Fatalf("logout: %d %q", r.status, r.location())
	}
	if _, ok := b.cookies["__Host-keycard_sso"]; ok {
		t.Error("the single sign-on cookie survived the logout")
	}
	if _, err := f.svc.UserInfo(context.Background(), tok.AccessToken); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("the application's token after logout: %v", err)
	}
	// The other browser's session lives on.
	if p := other.get("/account"); p.status != http.StatusOK {
		t.Errorf("the other browser was signed out too: %d", p.status)
	}
}

func mustQuery(t *testing.T, loc string) url.Values {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// hiddenValue returns the value of a hidden input of a page, unescaped as
// a browser would.
func hiddenValue(t *testing.T, body, name string) string {
	t.Helper()
	marker := `name="` + name + `" value="`
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no hidden %s on the page:\n%s", name, body)
	}
	v := body[i+len(marker):]
	return html.UnescapeString(v[:strings.Index(v, `"`)])
}

// TestAuthorizeACRValues: an application asking for acr_values=mfa of a
// browser signed in with a password alone is treated as for an expired
// max_age: sent to sign in again (the detour keeps the request), or
// login_required with prompt=none. The sign-in made for it is answered,
// and its ID token says acr pwd: the application decides (acr_values are
// voluntary). Asking for pwd is met at once.
func TestAuthorizeACRValues(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, secret := f.rpClient(t, true)
	b := f.browser(t)
	b.mustSignIn("alice")
	f.clock.Advance(time.Second)

	q := callback(t, b.send(http.MethodGet, authorizeURL(c, "acr_values", "mfa", "prompt", "none"), nil, crossSite))
	if q.Get("error") != "login_required" || q.Get("code") != "" || q.Get("state") != "xyz" {
		t.Errorf("prompt=none, acr_values=mfa, a password session: %v, want login_required", q)
	}
	if q := callback(t, b.send(http.MethodGet, authorizeURL(c, "acr_values", "pwd", "prompt", "none"), nil, crossSite)); q.Get("code") == "" {
		t.Errorf("acr_values=pwd, a password session: %v, want a code", q)
	}
	p := b.send(http.MethodGet, authorizeURL(c, "acr_values", "mfa", "state", "stepup"), nil, crossSite)
	if !strings.HasPrefix(p.location(), "/signin?") || !strings.Contains(p.location(), "reauth=1") {
		t.Fatalf("acr_values=mfa, a password session: %d %q, want a sign-in again", p.status, p.location())
	}
	next := mustQuery(t, p.location()).Get("next")
	form := b.get(p.location())
	if r := b.post("/signin", url.Values{"csrf_token": {b.csrf(form)}, "username": {"alice"}, "password": {testPassword}, "next": {next}}); r.location() != next {
		t.Fatalf("sign in again: %d %q", r.status, r.location())
	}
	q = callback(t, b.get(next))
	if q.Get("state") != "stepup" || q.Get("code") == "" {
		t.Fatalf("after signing in again: %v, want a code", q)
	}
	client, err := f.svc.AuthenticateClient(context.Background(), c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.svc.ExchangeCode(context.Background(), client, q.Get("code"), rpRedirect, rpVerifier, auth.Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if id := idClaims(t, tok.IDToken); id["acr"] != "pwd" {
		t.Errorf("ID token acr %v, want pwd (what the sign-in was)", id["acr"])
	}
}
