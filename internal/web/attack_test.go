package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/web"
)

// The attacks of RFC 9700 (OAuth 2.0 Security Best Current Practice) and
// OpenID Connect Core section 16 that an outsider sends to the OpenID
// Provider's endpoints over HTTP, each against the real pages and API.
// docs/decisions/oidc-security.md lists every attack with its defence and
// its test, here or elsewhere.

// publicRP registers a public, first-party application client (a
// single-page or native app) with the web fixture's redirect URI and a
// loopback one.
func (f *fixture) publicRP(t *testing.T) *keycard.Client {
	t.Helper()
	c, _, err := f.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "SPA",
		OAuth: keycard.OAuthSettings{
			GrantTypes: []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken}, FirstParty: true, Public: true,
			RedirectURIs: []string{rpRedirect, "http://127.0.0.1/native"}, PostLogoutRedirectURIs: []string{"https://rp.example/bye"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rpCode sends a signed-in browser through the authorization endpoint
// and returns the code it came back with.
func rpCode(t *testing.T, b *browser, c *keycard.Client, extra ...string) string {
	t.Helper()
	q := callback(t, b.send(http.MethodGet, authorizeURL(c, extra...), nil, crossSite))
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	return q.Get("code")
}

// tokenCall posts a form to the token endpoint (or another of the API's
// form endpoints) and returns the answer with its headers.
func (f *fixture) tokenCall(t *testing.T, path string, form url.Values) (oauthAnswer, http.Header) {
	t.Helper()
	var a oauthAnswer
	res, err := http.PostForm(f.url+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	a.status = res.StatusCode
	if len(body) > 0 {
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("POST %s: %d %q is not JSON", path, res.StatusCode, body)
		}
	}
	return a, res.Header
}

// userinfo GETs target (the userinfo endpoint) with authorization, when
// not empty, as its Authorization header, and returns the status and
// WWW-Authenticate.
func (f *fixture) userinfo(t *testing.T, target, authorization string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.url+target, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("WWW-Authenticate")
}

// TestAttackStateRoundTrip: state comes back to the client exactly as it
// was sent, whatever its characters, in a query response, a form_post
// response and an error response, and the issuer with it (RFC 9207).
func TestAttackStateRoundTrip(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, _ := f.rpClient(t, true)
	b := f.browser(t)
	b.mustSignIn("alice")
	for _, state := range []string{
		`a b&c=d#e%25f+g/h?i`,
		`"><script>alert(1)</script>`,
		"ünïcødé ✓ 🔑",
		"code=forged&iss=https://evil.example",
		"~!*'();:@$,[]",
	} {
		q := callback(t, b.send(http.MethodGet, authorizeURL(c, "state", state), nil, crossSite))
		if q.Get("state") != state || len(q["state"]) != 1 || len(q["code"]) != 1 || len(q["iss"]) != 1 || q.Get("iss") != f.url {
			t.Errorf("state %q: query response %v", state, q)
		}
		q = callback(t, b.send(http.MethodGet, authorizeURL(c, "state", state, "scope", "openid nope"), nil, crossSite))
		if q.Get("state") != state || q.Get("error") != "invalid_scope" || q.Get("iss") != f.url || len(q["iss"]) != 1 {
			t.Errorf("state %q: error response %v", state, q)
		}
		p := b.send(http.MethodGet, authorizeURL(c, "state", state, "response_mode", "form_post"), nil, crossSite)
		if p.status != http.StatusOK || hiddenValue(t, p.body, "state") != state || hiddenValue(t, p.body, "iss") != f.url {
			t.Errorf("state %q: form_post response %d\n%s", state, p.status, p.body)
		}
	}
}

// TestAttackAuthorizationResponses: every authorization response —
// a code, an error, by redirect or by form_post — carries the issuer
// (mix-up, RFC 9207), may not be cached (a code in a cache), sends no
// Referer (RFC 9700 section 4.2) and may not be framed. prompt=none for
// a user who must consent answers consent_required, redirected. The
// pages of the flow carry the same headers, and a hostile login_hint is
// shown escaped.
func TestAttackAuthorizationResponses(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	first, _ := f.rpClient(t, true)
	third, _ := f.rpClient(t, false)
	b := f.browser(t)
	b.mustSignIn("alice")
	wantHeaders := func(what string, p *page) {
		t.Helper()
		for name, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if got := p.header.Get(name); got != want {
				t.Errorf("%s: %s %q, want %q", what, name, got, want)
			}
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q lets it be framed", what, csp)
		}
	}
	for _, tc := range []struct {
		name, path, code string
	}{
		{"a code", authorizeURL(first), ""},
		{"consent_required", authorizeURL(third, "prompt", "none"), "consent_required"},
		{"unsupported_response_type", authorizeURL(first, "response_type", "id_token"), "unsupported_response_type"},
		{"invalid_request", authorizeURL(first, "code_challenge", ""), "invalid_request"},
	} {
		p := b.send(http.MethodGet, tc.path, nil, crossSite)
		q := callback(t, p)
		if q.Get("error") != tc.code || q.Get("iss") != f.url || q.Get("state") != "xyz" || (tc.code == "") != (q.Get("code") != "") {
			t.Errorf("%s: %v, want error %q with iss and state", tc.name, q, tc.code)
		}
		wantHeaders(tc.name, p)
		p = b.send(http.MethodGet, tc.path+"&response_mode=form_post", nil, crossSite)
		if p.status != http.StatusOK || hiddenValue(t, p.body, "iss") != f.url {
			t.Errorf("%s, form_post: %d\n%s", tc.name, p.status, p.body)
		}
		wantHeaders(tc.name+", form_post", p)
	}
	// The pages of the flow: the sign-in detour, the consent page, the
	// error page.
	signedOut := f.browser(t)
	p := signedOut.send(http.MethodGet, authorizeURL(first), nil, crossSite)
	wantHeaders("the sign-in detour", p)
	wantHeaders("the sign-in page of the detour", signedOut.get(p.location()))
	// login_hint is shown on the sign-in page, escaped.
	p = signedOut.send(http.MethodGet, authorizeURL(first, "login_hint", `"><script>alert(1)</script>`), nil, crossSite)
	if signIn := signedOut.get(p.location()); signIn.status != http.StatusOK || strings.Contains(signIn.body, "<script>alert") {
		t.Errorf("the sign-in page with a hostile login_hint: %d\n%s", signIn.status, signIn.body)
	}
	wantHeaders("the consent page", b.send(http.MethodGet, authorizeURL(third), nil, crossSite))
	wantHeaders("the error page", b.send(http.MethodGet, authorizeURL(first, "redirect_uri", "https://evil.example/cb"), nil, crossSite))
}

// TestAttackResponseTypesAndRepeats: only response_type=code is served —
// no implicit, no hybrid, whatever the order of the words — and a
// client_id, redirect_uri or request_uri sent twice is never redirected.
func TestAttackResponseTypesAndRepeats(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, _ := f.rpClient(t, true)
	b := f.browser(t)
	b.mustSignIn("alice")
	for _, rt := range []string{"token", "id_token", "code id_token", "id_token code", "code token", "code id_token token", "none", "CODE", "code "} {
		q := callback(t, b.send(http.MethodGet, authorizeURL(c, "response_type", rt), nil, crossSite))
		if q.Get("error") != "unsupported_response_type" || q.Get("code") != "" || q.Get("access_token") != "" || q.Get("id_token") != "" {
			t.Errorf("response_type %q: %v, want unsupported_response_type and nothing else", rt, q)
		}
	}
	// A POST request is answered with 303, never 307, which would have
	// the browser post the form on to the application (RFC 9700 section
	// 4.12); a body that is not a form is refused on the page.
	u, _ := url.Parse(authorizeURL(c))
	if p := b.send(http.MethodPost, "/oauth/authorize", u.Query(), nil); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), rpRedirect+"?code=") {
		t.Errorf("POST /oauth/authorize: %d %q, want a 303 with a code", p.status, p.location())
	}
	if p := b.send(http.MethodPost, "/oauth/authorize", nil, http.Header{"Content-Type": {"application/json"}}); p.status != http.StatusBadRequest || p.location() != "" {
		t.Errorf("POST /oauth/authorize with JSON: %d %q, want a 400 page", p.status, p.location())
	}
	for _, param := range []string{"client_id", "redirect_uri", "request_uri"} {
		for _, second := range []string{"same", "other"} {
			path := authorizeURL(c)
			v := map[string]string{"client_id": c.ID, "redirect_uri": rpRedirect, "request_uri": auth.PushedRequestURIPrefix + "x"}[param]
			if second == "other" {
				v = "https://evil.example/cb"
			}
			path += "&" + url.Values{param: {v}}.Encode()
			if param == "request_uri" {
				path += "&" + url.Values{param: {v}}.Encode()
			}
			p := b.send(http.MethodGet, path, nil, crossSite)
			if p.status != http.StatusBadRequest || p.location() != "" {
				t.Errorf("%s twice (%s): %d %q, want a 400 page and no redirect", param, second, p.status, p.location())
			}
		}
	}
}

// TestAttackTokenEndpoint sends a code, over HTTP, everywhere it must
// not work — another client, no or a wrong verifier, another
// redirect_uri — then uses it twice: the second use is refused and
// revokes what the first got (RFC 6749 section 4.1.2, RFC 9700 section
// 4.5). Every answer of the token endpoint is no-store.
func TestAttackTokenEndpoint(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, secret := f.rpClient(t, true)
	spa := f.publicRP(t)
	b := f.browser(t)
	b.mustSignIn("alice")
	code := rpCode(t, b, c)
	good := url.Values{"grant_type": {"authorization_code"}, "client_id": {c.ID}, "client_secret": {secret},
		"code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {rpVerifier}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, vs := range good {
			v[k] = vs
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"another (public) client", with("client_id", spa.ID, "client_secret", ""), 400, "invalid_grant"},
		{"the client_id without its secret", with("client_secret", ""), 401, "invalid_client"},
		{"a wrong secret", with("client_secret", secret+"x"), 401, "invalid_client"},
		{"no verifier", with("code_verifier", ""), 400, "invalid_request"},
		{"a wrong verifier", with("code_verifier", strings.Repeat("A", 43)), 400, "invalid_grant"},
		{"the challenge as verifier (plain)", with("code_verifier", pkceChallenge(rpVerifier)), 400, "invalid_grant"},
		{"a 129-character verifier", with("code_verifier", strings.Repeat("A", 129)), 400, "invalid_grant"},
		{"another redirect_uri", with("redirect_uri", "https://rp.example/cb/"), 400, "invalid_grant"},
		{"no redirect_uri", with("redirect_uri", ""), 400, "invalid_request"},
		{"a forged code", with("code", code+"A"), 400, "invalid_grant"},
	} {
		a, h := f.tokenCall(t, "/oauth/token", tc.form)
		if a.status != tc.status || a.Error != tc.code || a.AccessToken != "" {
			t.Errorf("%s: %d %q, want %d %s", tc.name, a.status, a.Error, tc.status, tc.code)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", tc.name, h.Get("Cache-Control"))
		}
	}
	tok, h := f.tokenCall(t, "/oauth/token", good)
	if tok.status != http.StatusOK || tok.AccessToken == "" || tok.IDToken == "" || tok.RefreshToken == "" {
		t.Fatalf("the refusals above used the code up: %+v", tok)
	}
	if h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" {
		t.Errorf("token response: Cache-Control %q, Pragma %q", h.Get("Cache-Control"), h.Get("Pragma"))
	}
	if claims := idClaims(t, tok.IDToken); claims["nonce"] != "n1" || claims["aud"] != c.ID {
		t.Errorf("ID token: nonce %v, aud %v; want the request's nonce n1 and the client", claims["nonce"], claims["aud"])
	}
	// The code again: refused, and the tokens of its first use die.
	if a, _ := f.tokenCall(t, "/oauth/token", good); a.status != http.StatusBadRequest || a.Error != "invalid_grant" {
		t.Errorf("the code's second use: %d %q, want 400 invalid_grant", a.status, a.Error)
	}
	if status, _ := f.userinfo(t, "/oauth/userinfo", "Bearer "+tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("after the code's second use its access token still works: %d", status)
	}
	if a, _ := f.tokenCall(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ID}, "client_secret": {secret},
		"refresh_token": {tok.RefreshToken}}); a.status != http.StatusBadRequest || a.Error != "invalid_grant" {
		t.Errorf("after the code's second use its refresh token: %d %q, want 400 invalid_grant", a.status, a.Error)
	}
}

// pkceChallenge is the S256 challenge of a verifier (RFC 7636 section
// 4.2).
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestAttackClientBoundTokens: a refresh token of one client is refused
// to another and to a request naming no client; a public client cannot
// use client_credentials; userinfo takes only access tokens — not an ID
// token, a refresh token or a service's token — and only in the
// Authorization header.
func TestAttackClientBoundTokens(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, secret := f.rpClient(t, true)
	spa := f.publicRP(t)
	b := f.browser(t)
	b.mustSignIn("alice")
	tok, _ := f.tokenCall(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {spa.ID},
		"code": {rpCode(t, b, spa)}, "redirect_uri": {rpRedirect}, "code_verifier": {rpVerifier}})
	if tok.status != http.StatusOK || tok.RefreshToken == "" {
		t.Fatalf("public client's code: %+v", tok)
	}
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"by another client", url.Values{"client_id": {c.ID}, "client_secret": {secret}}},
		{"by no client", url.Values{}},
	} {
		tc.form.Set("grant_type", "refresh_token")
		tc.form.Set("refresh_token", tok.RefreshToken)
		if a, _ := f.tokenCall(t, "/oauth/token", tc.form); a.status != http.StatusBadRequest || a.Error != "invalid_grant" {
			t.Errorf("the public client's refresh token %s: %d %q, want 400 invalid_grant", tc.name, a.status, a.Error)
		}
	}
	if a, _ := f.tokenCall(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {spa.ID}}); a.status != http.StatusUnauthorized || a.Error != "invalid_client" {
		t.Errorf("client_credentials by a public client: %d %q, want 401 invalid_client", a.status, a.Error)
	}
	if status, _ := f.userinfo(t, "/oauth/userinfo", "Bearer "+tok.AccessToken); status != http.StatusOK {
		t.Fatalf("userinfo with the access token: %d", status)
	}
	svc, svcSecret, err := f.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	svcTok, _ := f.tokenCall(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {svc.ID}, "client_secret": {svcSecret}})
	// Without openid, the token is no userinfo token.
	narrow, _ := f.tokenCall(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {spa.ID},
		"code": {rpCode(t, b, spa, "scope", "offline_access")}, "redirect_uri": {rpRedirect}, "code_verifier": {rpVerifier}})
	if status, challenge := f.userinfo(t, "/oauth/userinfo", "Bearer "+narrow.AccessToken); status != http.StatusForbidden || !strings.Contains(challenge, "insufficient_scope") {
		t.Errorf("userinfo with a token without openid: %d %q, want 403 insufficient_scope", status, challenge)
	}
	// Introspection is for confidential clients.
	if a, _ := f.tokenCall(t, "/oauth/introspect", url.Values{"client_id": {spa.ID}, "token": {tok.AccessToken}}); a.status != http.StatusUnauthorized || a.Error != "invalid_client" {
		t.Errorf("introspection by a public client: %d %q, want 401 invalid_client", a.status, a.Error)
	}
	for _, tc := range []struct{ name, target, authorization string }{
		{"an ID token", "/oauth/userinfo", "Bearer " + tok.IDToken},
		{"a refresh token", "/oauth/userinfo", "Bearer " + tok.RefreshToken},
		{"a service client's token", "/oauth/userinfo", "Bearer " + svcTok.AccessToken},
		{"the token in the query", "/oauth/userinfo?access_token=" + url.QueryEscape(tok.AccessToken), ""},
		{"a token of another scheme", "/oauth/userinfo", "Basic " + tok.AccessToken},
	} {
		if status, challenge := f.userinfo(t, tc.target, tc.authorization); status != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer") {
			t.Errorf("userinfo with %s: %d %q, want 401 with a Bearer challenge", tc.name, status, challenge)
		}
	}
}

// TestAttackPushedRequests: a request_uri is the pushing client's alone,
// good once and for its lifetime only (RFC 9126 section 7.3); a pushed
// request is checked as the authorization endpoint would check it.
func TestAttackPushedRequests(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, secret := f.rpClient(t, true)
	other, _ := f.rpClient(t, true)
	b := f.browser(t)
	b.mustSignIn("alice")
	push := func(kv ...string) (int, string, string) {
		t.Helper()
		u, _ := url.Parse(authorizeURL(c))
		form := u.Query()
		form.Set("client_secret", secret)
		for i := 0; i+1 < len(kv); i += 2 {
			form.Set(kv[i], kv[i+1])
		}
		res, err := http.PostForm(f.url+"/oauth/par", form)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct{ RequestURI, Error string }
		var raw map[string]any
		json.NewDecoder(res.Body).Decode(&raw)
		out.RequestURI, _ = raw["request_uri"].(string)
		out.Error, _ = raw["error"].(string)
		return res.StatusCode, out.RequestURI, out.Error
	}
	for _, tc := range []struct {
		name string
		kv   []string
		code string
	}{
		{"an unregistered redirect_uri", []string{"redirect_uri", "https://evil.example/cb"}, "invalid_request"},
		{"a redirect_uri with a suffix", []string{"redirect_uri", rpRedirect + "/x"}, "invalid_request"},
		{"plain PKCE", []string{"code_challenge_method", "plain"}, "invalid_request"},
		{"implicit", []string{"response_type", "token"}, "unsupported_response_type"},
		{"a request_uri inside", []string{"request_uri", auth.PushedRequestURIPrefix + "x"}, "invalid_request"},
	} {
		if status, uri, code := push(tc.kv...); status != http.StatusBadRequest || code != tc.code || uri != "" {
			t.Errorf("PAR with %s: %d %q, want 400 %s", tc.name, status, code, tc.code)
		}
	}
	status, uri, _ := push()
	if status != http.StatusCreated || uri == "" {
		t.Fatalf("PAR: %d", status)
	}
	use := func(client *keycard.Client) *page {
		return b.send(http.MethodGet, "/oauth/authorize?"+url.Values{"client_id": {client.ID}, "request_uri": {uri}}.Encode(), nil, crossSite)
	}
	if p := use(other); p.status != http.StatusBadRequest || p.location() != "" {
		t.Errorf("another client's request_uri: %d %q, want a 400 page, no redirect", p.status, p.location())
	}
	if q := callback(t, use(c)); q.Get("code") == "" || q.Get("state") != "xyz" {
		t.Fatalf("the request_uri: %v", q)
	}
	if p := use(c); p.status != http.StatusBadRequest || p.location() != "" {
		t.Errorf("the request_uri again: %d %q, want a 400 page, no redirect", p.status, p.location())
	}
	_, uri, _ = push()
	f.clock.Advance(keycard.PushedRequestLifetime + 1)
	if p := use(c); p.status != http.StatusBadRequest || p.location() != "" {
		t.Errorf("an expired request_uri: %d %q, want a 400 page, no redirect", p.status, p.location())
	}
}

// TestAttackLogoutRedirects: the end-session endpoint redirects only to a
// post_logout_redirect_uri registered, exactly, for the client the hint
// or client_id names; never to anything else, with or without a hint.
func TestAttackLogoutRedirects(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, _ := f.rpClient(t, true)
	b := f.browser(t)
	for _, tc := range []struct{ name, clientID, uri string }{
		{"no client", "", "https://rp.example/bye"},
		{"an unregistered URI", c.ID, "https://evil.example/"},
		{"a suffix", c.ID, "https://rp.example/bye/x"},
		{"a trailing slash", c.ID, "https://rp.example/bye/"},
		{"another case", c.ID, "https://RP.example/bye"},
		{"an extra query", c.ID, "https://rp.example/bye?x=1"},
		{"a fragment", c.ID, "https://rp.example/bye#x"},
		{"user info", c.ID, "https://rp.example@evil.example/bye"},
		{"percent-encoding", c.ID, "https://rp.example/%62ye"},
		{"path traversal", c.ID, "https://rp.example/bye/../../evil"},
		{"an unknown client", "nobody", "https://rp.example/bye"},
		{"a javascript: URI", c.ID, "javascript:alert(1)"},
	} {
		v := url.Values{"post_logout_redirect_uri": {tc.uri}, "state": {"s"}}
		if tc.clientID != "" {
			v.Set("client_id", tc.clientID)
		}
		p := b.send(http.MethodGet, "/oauth/logout?"+v.Encode(), nil, crossSite)
		if p.status != http.StatusBadRequest || p.location() != "" {
			t.Errorf("%s: %d %q, want a 400 page and no redirect", tc.name, p.status, p.location())
		}
	}
	// Registered for the client named, without a hint, signed out: there,
	// with the state unchanged.
	odd := `a b&c=d#e%25f+ü"<>`
	v := url.Values{"client_id": {c.ID}, "post_logout_redirect_uri": {"https://rp.example/bye"}, "state": {odd}}
	p := b.send(http.MethodGet, "/oauth/logout?"+v.Encode(), nil, crossSite)
	if loc := p.location(); p.status != http.StatusSeeOther || !strings.HasPrefix(loc, "https://rp.example/bye?") || mustQuery(t, loc).Get("state") != odd || len(mustQuery(t, loc)) != 1 {
		t.Errorf("a registered URI: %d %q", p.status, loc)
	}
	// Repeated: refused.
	if p := b.send(http.MethodGet, "/oauth/logout?"+v.Encode()+"&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F", nil, crossSite); p.status != http.StatusBadRequest || p.location() != "" {
		t.Errorf("a repeated post_logout_redirect_uri: %d %q", p.status, p.location())
	}
}

// TestAttackOversizedParameters: parameters far beyond what any client
// sends are refused with a 4xx by every endpoint, never a 5xx.
func TestAttackOversizedParameters(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, _ := f.rpClient(t, true)
	b := f.browser(t)
	b.mustSignIn("alice")
	big := strings.Repeat("A", 40<<10)
	for _, tc := range []struct{ name, method, path string }{
		{"client_id", http.MethodGet, authorizeURL(c, "client_id", big)},
		{"redirect_uri", http.MethodGet, authorizeURL(c, "redirect_uri", rpRedirect+"?"+big)},
		{"state", http.MethodGet, authorizeURL(c, "state", big)},
		{"nonce", http.MethodGet, authorizeURL(c, "nonce", big)},
		{"scope", http.MethodGet, authorizeURL(c, "scope", strings.Repeat("openid ", 6000))},
		{"code_challenge", http.MethodGet, authorizeURL(c, "code_challenge", big)},
		{"login_hint", http.MethodGet, authorizeURL(c, "login_hint", big)},
		{"request_uri", http.MethodGet, authorizeURL(c, "request_uri", auth.PushedRequestURIPrefix+big)},
		{"id_token_hint", http.MethodGet, "/oauth/logout?id_token_hint=" + big},
		{"post_logout_redirect_uri", http.MethodGet, "/oauth/logout?client_id=" + c.ID + "&post_logout_redirect_uri=" + big},
		{"user_code", http.MethodGet, "/device?user_code=" + big},
	} {
		p := b.send(tc.method, tc.path, nil, crossSite)
		if p.status >= 500 || p.status == http.StatusOK && tc.name != "user_code" {
			t.Errorf("%s of 40 KiB: %d, want a 4xx (or a redirected error)", tc.name, p.status)
		}
		if tc.name == "user_code" && strings.Contains(p.body, big) {
			t.Errorf("the user code form shows a 40 KiB code back")
		}
	}
	// Bodies beyond the forms' limit.
	huge := url.Values{"client_id": {c.ID}, "state": {strings.Repeat("A", 1<<20)}}
	for _, path := range []string{"/oauth/authorize", "/oauth/logout", "/oauth/consent", "/device", "/signin"} {
		if p := b.send(http.MethodPost, path, huge, nil); p.status < 400 || p.status >= 500 {
			t.Errorf("POST %s of 1 MiB: %d, want a 4xx", path, p.status)
		}
	}
	for _, path := range []string{"/oauth/token", "/oauth/par", "/oauth/device_authorization", "/oauth/introspect", "/oauth/revoke"} {
		if a, _ := f.tokenCall(t, path, huge); a.status < 400 || a.status >= 500 {
			t.Errorf("POST %s of 1 MiB: %d, want a 4xx", path, a.status)
		}
	}
	if status, _ := f.userinfo(t, "/oauth/userinfo", "Bearer "+big); status != http.StatusUnauthorized {
		t.Errorf("userinfo with a 40 KiB token: %d, want 401", status)
	}
}

// TestAttackErrorDescriptionInjection: an error redirected to the client
// holds an error_description of the characters RFC 6749 section 4.1.2.1
// allows alone, and a short one, whatever the attacker put in the
// request that it describes: an application that shows it cannot be
// made to show markup, quotes or another script's text.
func TestAttackErrorDescriptionInjection(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, _ := f.rpClient(t, true)
	b := f.browser(t)
	b.mustSignIn("alice")
	hostile := `"><img src=x onerror=alert(1)>\é` + strings.Repeat("x", 600)
	for _, tc := range []struct{ name, path string }{
		{"a prompt", authorizeURL(c, "prompt", hostile)},
		{"a scope", authorizeURL(c, "scope", "openid "+strings.ReplaceAll(hostile, " ", ""))},
		{"a repeated parameter's name", authorizeURL(c) + "&" + url.QueryEscape(hostile) + "=1&" + url.QueryEscape(hostile) + "=2"},
	} {
		q := callback(t, b.send(http.MethodGet, tc.path, nil, crossSite))
		desc := q.Get("error_description")
		if q.Get("error") == "" || desc == "" {
			t.Errorf("%s: %v, want an error with a description", tc.name, q)
			continue
		}
		for _, r := range desc {
			if r < 0x20 || r == '"' || r == '\\' || r > 0x7e {
				t.Errorf("%s: error_description %q holds %q, outside RFC 6749's set", tc.name, desc, r)
				break
			}
		}
		if len(desc) > 256 {
			t.Errorf("%s: error_description of %d bytes", tc.name, len(desc))
		}
	}
}

// TestAttackLoopbackRedirects: a native app's loopback redirect URI,
// registered without a port, takes any port on the same IP literal (RFC
// 8252 section 7.3) and nothing else — not localhost, not the other IP
// version, not another path; one registered with a port takes that port
// alone. The variants of other redirect URIs are TestMatchRedirectURI's
// (internal/auth) and TestAuthorizeErrors's.
func TestAttackLoopbackRedirects(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, _, err := f.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "native", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantAuthorizationCode}, Public: true, FirstParty: true,
		RedirectURIs: []string{"http://127.0.0.1/native", "http://127.0.0.1:8080/dev"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.mustSignIn("alice")
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"http://127.0.0.1/native", true},
		{"http://127.0.0.1:49152/native", true},
		{"http://127.0.0.1:8080/dev", true},
		{"http://127.0.0.1:9090/dev", false},
		{"http://127.0.0.1/dev", false},
		{"http://localhost:49152/native", false},
		{"http://[::1]:49152/native", false},
		{"http://127.0.0.2:49152/native", false},
		{"http://127.0.0.1:49152/native/../x", false},
		{"http://127.0.0.1:49152/native/", false},
		{"http://127.0.0.1:49152/native?x=1", false},
		{"http://evil@127.0.0.1:49152/native", false},
		{"https://127.0.0.1:49152/native", false},
	} {
		p := b.send(http.MethodGet, authorizeURL(c, "redirect_uri", tc.uri), nil, crossSite)
		switch loc := p.location(); {
		case tc.ok && (p.status != http.StatusSeeOther || !strings.HasPrefix(loc, tc.uri+"?code=")):
			t.Errorf("%s: %d %q, want a code", tc.uri, p.status, loc)
		case !tc.ok && (p.status != http.StatusBadRequest || loc != ""):
			t.Errorf("%s: %d %q, want a 400 page and no redirect", tc.uri, p.status, loc)
		}
	}
	// At the token endpoint the port is the request's, exactly.
	code := mustQuery(t, b.send(http.MethodGet, authorizeURL(c, "redirect_uri", "http://127.0.0.1:49152/native"), nil, crossSite).location()).Get("code")
	redeem := func(uri string) oauthAnswer {
		a, _ := f.tokenCall(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {c.ID},
			"code": {code}, "redirect_uri": {uri}, "code_verifier": {rpVerifier}})
		return a
	}
	for _, uri := range []string{"http://127.0.0.1:49153/native", "http://127.0.0.1/native"} {
		if a := redeem(uri); a.status != http.StatusBadRequest || a.Error != "invalid_grant" {
			t.Errorf("the code of port 49152 redeemed with %s: %d %q, want 400 invalid_grant", uri, a.status, a.Error)
		}
	}
	if a := redeem("http://127.0.0.1:49152/native"); a.status != http.StatusOK {
		t.Errorf("the code with its own redirect URI: %d %q", a.status, a.Error)
	}
}

// TestAttackCodeAfterSignOut: a code is worth nothing once the browser
// session it was issued in has ended: signing out between the redirect
// and the exchange leaves the application nothing to redeem.
func TestAttackCodeAfterSignOut(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	spa := f.publicRP(t)
	b := f.browser(t)
	b.mustSignIn("alice")
	code := rpCode(t, b, spa)
	if r := b.post("/signout", url.Values{"csrf_token": {b.csrf(b.get("/account"))}}); r.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", r.status)
	}
	a, _ := f.tokenCall(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {spa.ID},
		"code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {rpVerifier}})
	if a.status != http.StatusBadRequest || a.Error != "invalid_grant" || a.AccessToken != "" {
		t.Errorf("a code of an ended session: %d %q, want 400 invalid_grant", a.status, a.Error)
	}
}

// TestAttackFramingEveryPage: every route of the pages — GET and POST,
// signed in as an admin and signed out, answered with a page, a redirect
// or a refusal — may not be framed (clickjacking, RFC 9700 section
// 4.16), leaks no Referer and is not cached, and redirects with 303 only.
// Assets alone may be cached.
func TestAttackFramingEveryPage(t *testing.T) {
	f := newFixture(t, fixtureOptions{registration: true})
	f.addUser(t, "root", "admin")
	h, err := web.New(f.svc, web.Options{})
	if err != nil {
		t.Fatal(err)
	}
	admin := f.browser(t)
	admin.mustSignIn("root")
	for _, b := range []*browser{f.browser(t), admin} {
		for _, pattern := range h.Patterns() {
			method, path, _ := strings.Cut(pattern, " ")
			path = strings.NewReplacer("{$}", "", "{id}", "x", "{sid}", "x", "{client}", "x", "{kid}", "x", "{file}", "style.css").Replace(path)
			var form url.Values
			if method == http.MethodPost {
				form = url.Values{"x": {"1"}}
			}
			p := b.send(method, path, form, nil)
			what := pattern + " → " + http.StatusText(p.status)
			if p.status >= 500 {
				t.Errorf("%s: %d", what, p.status)
			}
			if p.status >= 300 && p.status < 400 && p.status != http.StatusSeeOther {
				t.Errorf("%s: a redirect other than 303 (a 307 re-posts the form, RFC 9700 section 4.12)", what)
			}
			if p.header.Get("X-Frame-Options") != "DENY" || !strings.Contains(p.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("%s: X-Frame-Options %q, Content-Security-Policy %q: may be framed", what, p.header.Get("X-Frame-Options"), p.header.Get("Content-Security-Policy"))
			}
			if p.header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("%s: Referrer-Policy %q", what, p.header.Get("Referrer-Policy"))
			}
			if cc := p.header.Get("Cache-Control"); cc != "no-store" && !strings.HasPrefix(path, "/assets/") {
				t.Errorf("%s: Cache-Control %q", what, cc)
			}
		}
	}
}

// TestAttackIDTokenHintOfAnotherUser: an application that asks, with
// prompt=none and an id_token_hint, whether its user is still signed in
// gets login_required when the browser is signed in as someone else, not
// a code for the other user (OpenID Connect Core section 3.1.2.1);
// without prompt=none the user is asked to sign in. A hint that is not
// an ID token of this server for this client is refused.
func TestAttackIDTokenHintOfAnotherUser(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	f.addUser(t, "bob")
	c, secret := f.rpClient(t, true)
	other, otherSecret := f.rpClient(t, true)
	idToken := func(b *browser, client *keycard.Client, secret string) string {
		t.Helper()
		a, _ := f.tokenCall(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {client.ID}, "client_secret": {secret},
			"code": {rpCode(t, b, client)}, "redirect_uri": {rpRedirect}, "code_verifier": {rpVerifier}})
		if a.IDToken == "" {
			t.Fatalf("no ID token: %+v", a)
		}
		return a.IDToken
	}
	alice := f.browser(t)
	alice.mustSignIn("alice")
	hint := idToken(alice, c, secret)
	bob := f.browser(t)
	bob.mustSignIn("bob")
	f.clock.Advance(time.Second) // the requests below begin after the sign-ins

	q := callback(t, bob.send(http.MethodGet, authorizeURL(c, "prompt", "none", "id_token_hint", hint), nil, crossSite))
	if q.Get("error") != "login_required" || q.Get("code") != "" || q.Get("iss") != f.url || q.Get("state") != "xyz" {
		t.Errorf("prompt=none, signed in as bob, hint of alice: %v, want login_required", q)
	}
	p := bob.send(http.MethodGet, authorizeURL(c, "id_token_hint", hint), nil, crossSite)
	if !strings.HasPrefix(p.location(), "/signin?") || !strings.Contains(p.location(), "reauth=1") {
		t.Fatalf("signed in as bob, hint of alice: %d %q, want a sign-in", p.status, p.location())
	}
	// Whoever signs in then is the answer: the user chose.
	next := mustQuery(t, p.location()).Get("next")
	form := bob.get(p.location())
	if r := bob.post("/signin", url.Values{"csrf_token": {bob.csrf(form)}, "username": {"alice"}, "password": {testPassword}, "next": {next}}); r.location() != next {
		t.Fatalf("sign in as alice: %d %q", r.status, r.location())
	}
	q = callback(t, bob.get(next))
	a, _ := f.tokenCall(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {c.ID}, "client_secret": {secret},
		"code": {q.Get("code")}, "redirect_uri": {rpRedirect}, "code_verifier": {rpVerifier}})
	if a.IDToken == "" || idClaims(t, a.IDToken)["sub"] != idClaims(t, hint)["sub"] {
		t.Errorf("after signing in as alice: %v, %+v; want alice's tokens", q, a)
	}
	if q := callback(t, alice.send(http.MethodGet, authorizeURL(c, "prompt", "none", "id_token_hint", hint), nil, crossSite)); q.Get("code") == "" {
		t.Errorf("prompt=none, signed in as alice, hint of alice: %v, want a code", q)
	}
	for _, tc := range []struct{ name, hint string }{
		{"another client's ID token", idToken(alice, other, otherSecret)},
		{"a forged ID token", hint[:len(hint)-4] + "AAAA"},
		{"junk", "not-a-jwt"},
		{"a 9 KiB hint", strings.Repeat("A", 9<<10)},
	} {
		q := callback(t, alice.send(http.MethodGet, authorizeURL(c, "prompt", "none", "id_token_hint", tc.hint), nil, crossSite))
		if q.Get("error") != "invalid_request" || q.Get("code") != "" {
			t.Errorf("%s as id_token_hint: %v, want invalid_request", tc.name, q)
		}
	}
}

// TestAttackHostHeader: a request with another Host, or forwarding
// headers naming another host, changes no URL the server answers with —
// discovery (which caches may keep for minutes), the device's
// verification URI, the issuer of an authorization response: they all
// come from the configured issuer.
func TestAttackHostHeader(t *testing.T) {
	f := newFixture(t)
	c, _ := f.rpClient(t, true)
	tv := f.deviceClient(t, "TV", true)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodGet, "/.well-known/openid-configuration", ""},
		{http.MethodGet, "/.well-known/oauth-authorization-server", ""},
		{http.MethodPost, "/oauth/device_authorization", url.Values{"client_id": {tv.ID}, "scope": {"openid"}}.Encode()},
		{http.MethodGet, authorizeURL(c, "prompt", "none"), ""},
	} {
		req, err := http.NewRequest(tc.method, f.url+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "evil.example"
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("Forwarded", "host=evil.example;proto=https")
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 400 || strings.Contains(string(body), "evil") || strings.Contains(res.Header.Get("Location"), "evil.example") {
			t.Errorf("%s %s with Host evil.example: %d, Location %q\n%s", tc.method, tc.path, res.StatusCode, res.Header.Get("Location"), body)
		}
		if tc.method == http.MethodGet && strings.HasPrefix(tc.path, "/oauth/authorize") && mustQuery(t, res.Header.Get("Location")).Get("iss") != f.url {
			t.Errorf("authorization response with Host evil.example: Location %q, want iss %s", res.Header.Get("Location"), f.url)
		}
	}
}
