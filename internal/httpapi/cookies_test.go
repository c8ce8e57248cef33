package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard/internal/browser"
)

// cookieJar is what a browser holds after a cookie login: its cookies by
// name, and the CSRF token the login answered with.
type cookieJar struct {
	cookies map[string]string
	csrf    string
	session string
}

// sameOrigin are the headers a browser sends with a request from a page
// of the issuer's origin.
func sameOrigin() http.Header {
	return http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {testIssuer}}
}

// setCookies returns the Set-Cookie headers of a response by cookie name.
func setCookies(t *testing.T, res *response) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range res.header.Values("Set-Cookie") {
		name, _, _ := strings.Cut(line, "=")
		if _, dup := out[name]; dup {
			t.Errorf("cookie %s set twice", name)
		}
		out[name] = line
	}
	return out
}

// cookieValue returns the value of a Set-Cookie line.
func cookieValue(line string) string {
	_, rest, _ := strings.Cut(line, "=")
	v, _, _ := strings.Cut(rest, ";")
	return v
}

// cookieLogin logs in asking for cookies, from the issuer's origin.
func (f *fixture) cookieLogin(t *testing.T, user string) (*cookieJar, *response) {
	t.Helper()
	h := sameOrigin()
	h.Set("Content-Type", "application/json")
	res := f.do(t, request{method: http.MethodPost, path: "/v1/login", header: h,
		body: `{"username":` + jsonString(user) + `,"password":` + jsonString(testPassword) + `,"cookies":true}`})
	if res.status != http.StatusOK {
		t.Fatalf("cookie login: status %d, body %s", res.status, res.body)
	}
	var body map[string]any
	res.decode(t, &body)
	b := &cookieJar{cookies: map[string]string{}}
	b.csrf, _ = body["csrf_token"].(string)
	b.session, _ = body["session_id"].(string)
	b.update(t, res)
	return b, res
}

// update applies a response's Set-Cookie headers.
func (b *cookieJar) update(t *testing.T, res *response) {
	t.Helper()
	for name, line := range setCookies(t, res) {
		if strings.Contains(line, "Max-Age=0") {
			delete(b.cookies, name)
		} else {
			b.cookies[name] = cookieValue(line)
		}
	}
}

// cookieHeader returns a Cookie header with the named cookies.
func (b *cookieJar) cookieHeader(names ...string) string {
	var parts []string
	for _, n := range names {
		if v, ok := b.cookies[n]; ok {
			parts = append(parts, n+"="+v)
		}
	}
	return strings.Join(parts, "; ")
}

// userRequest is a request of the user API as the browser sends it: the
// access and CSRF cookies (the refresh cookie's path keeps it away), the
// same-origin headers and the CSRF header.
func (b *cookieJar) userRequest(method, path string) request {
	h := sameOrigin()
	h.Set("Cookie", b.cookieHeader(accessCookie, csrfCookie))
	h.Set(csrfHeader, b.csrf)
	return request{method: method, path: path, header: h}
}

// refreshRequest is a cookie refresh as the browser sends it.
func (b *cookieJar) refreshRequest() request {
	h := sameOrigin()
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("Cookie", b.cookieHeader(accessCookie, refreshCookie, csrfCookie))
	h.Set(csrfHeader, b.csrf)
	return request{method: http.MethodPost, path: "/oauth/token", header: h, body: "grant_type=refresh_token"}
}

func TestCookieLoginSetsCookies(t *testing.T) {
	f := newFixture(t, fixtureOptions{cookies: true})
	f.register(t, "alice", testPassword)
	b, res := f.cookieLogin(t, "alice")

	if got := res.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	cookies := setCookies(t, res)
	if len(cookies) != 3 {
		t.Fatalf("got cookies %v, want the access, refresh and CSRF cookies", cookies)
	}
	for _, tc := range []struct {
		name, attrs string
	}{
		{accessCookie, "; Path=/; Max-Age=900; HttpOnly; Secure; SameSite=Strict"},
		{refreshCookie, "; Path=/oauth/token; Max-Age=604800; HttpOnly; Secure; SameSite=Strict"},
		{csrfCookie, "; Path=/; Max-Age=604800; Secure; SameSite=Strict"},
	} {
		line, ok := cookies[tc.name]
		if !ok {
			t.Errorf("cookie %s not set", tc.name)
			continue
		}
		if want := tc.name + "=" + cookieValue(line) + tc.attrs; line != want || cookieValue(line) == "" {
			t.Errorf("got Set-Cookie %q, want %q with a value", line, want)
		}
	}
	if b.csrf == "" || b.cookies[csrfCookie] != b.csrf {
		t.Errorf("csrf_token %q, CSRF cookie %q: want the same, not empty", b.csrf, b.cookies[csrfCookie])
	}
	if len(b.csrf) != 43 { // 256 bits, base64url
		t.Errorf("CSRF token %q is %d characters, want 43", b.csrf, len(b.csrf))
	}

	var body map[string]any
	res.decode(t, &body)
	if len(body) != 3 || body["expires_in"] != float64(900) || body["session_id"] == "" {
		t.Errorf("body %s, want exactly expires_in, session_id and csrf_token", res.body)
	}
	for _, name := range []string{accessCookie, refreshCookie} {
		if strings.Contains(string(res.body), b.cookies[name]) {
			t.Errorf("body %s contains the token of %s", res.body, name)
		}
	}

	// The access cookie alone authenticates a GET: no CSRF token is
	// needed for a safe method.
	h := http.Header{"Cookie": {b.cookieHeader(accessCookie)}}
	me := f.do(t, request{method: http.MethodGet, path: "/v1/me", header: h})
	if me.status != http.StatusOK {
		t.Fatalf("GET /v1/me with the access cookie: status %d, body %s", me.status, me.body)
	}
	var m meResponse
	me.decode(t, &m)
	if m.Username != "alice" || m.SessionID != b.session {
		t.Errorf("got %+v, want alice in session %s", m, b.session)
	}

	// A token never needs to be in a URL: the query string is not read.
	q := f.do(t, request{method: http.MethodGet, path: "/v1/me?access_token=" + url.QueryEscape(b.cookies[accessCookie])})
	q.wantError(t, http.StatusUnauthorized, codeUnauthorized)

	for _, secret := range []string{b.cookies[accessCookie], b.cookies[refreshCookie], b.csrf} {
		if strings.Contains(f.logs.String(), secret) {
			t.Errorf("logs contain a secret of the cookies")
		}
	}
}

func TestCookieCSRF(t *testing.T) {
	f := newFixture(t, fixtureOptions{cookies: true})
	f.register(t, "alice", testPassword)
	b, _ := f.cookieLogin(t, "alice")
	other, _ := f.cookieLogin(t, "alice")

	for _, tc := range []struct {
		name   string
		change func(h http.Header)
	}{
		{"no CSRF header", func(h http.Header) { h.Del(csrfHeader) }},
		{"empty CSRF header", func(h http.Header) { h.Set(csrfHeader, "") }},
		{"wrong CSRF token", func(h http.Header) { h.Set(csrfHeader, strings.Repeat("A", 43)) }},
		{"two CSRF headers", func(h http.Header) { h.Add(csrfHeader, b.csrf) }},
		{"no CSRF cookie", func(h http.Header) { h.Set("Cookie", b.cookieHeader(accessCookie)) }},
		{"CSRF header differs from the cookie", func(h http.Header) { h.Set(csrfHeader, other.csrf) }},
		{"another session's CSRF token in header and cookie", func(h http.Header) {
			h.Set(csrfHeader, other.csrf)
			h.Set("Cookie", b.cookieHeader(accessCookie)+"; "+csrfCookie+"="+other.csrf)
		}},
		{"cross-site", func(h http.Header) { h.Set("Sec-Fetch-Site", "cross-site") }},
		{"same-site", func(h http.Header) { h.Set("Sec-Fetch-Site", "same-site") }},
		{"user-initiated navigation", func(h http.Header) { h.Set("Sec-Fetch-Site", "none") }},
		{"another origin", func(h http.Header) { h.Del("Sec-Fetch-Site"); h.Set("Origin", "https://evil.example") }},
		{"another origin with same-origin fetch metadata", func(h http.Header) { h.Set("Origin", "https://evil.example") }},
		{"null origin", func(h http.Header) { h.Del("Sec-Fetch-Site"); h.Set("Origin", "null") }},
		{"another port", func(h http.Header) { h.Del("Sec-Fetch-Site"); h.Set("Origin", testIssuer+":8443") }},
		{"http instead of https", func(h http.Header) { h.Del("Sec-Fetch-Site"); h.Set("Origin", "http://auth.test") }},
		{"neither Origin nor Sec-Fetch-Site", func(h http.Header) { h.Del("Sec-Fetch-Site"); h.Del("Origin") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v1/logout", "/v1/logout/all"} {
				req := b.userRequest(http.MethodPost, path)
				tc.change(req.header)
				f.do(t, req).wantError(t, http.StatusForbidden, codeCSRFFailed)
			}
			req := b.userRequest(http.MethodDelete, "/v1/sessions/"+other.session)
			tc.change(req.header)
			f.do(t, req).wantError(t, http.StatusForbidden, codeCSRFFailed)

			req = b.refreshRequest()
			tc.change(req.header)
			if !strings.Contains(req.header.Get("Cookie"), refreshCookie) {
				req.header.Set("Cookie", req.header.Get("Cookie")+"; "+refreshCookie+"="+b.cookies[refreshCookie])
			}
			f.do(t, req).wantError(t, http.StatusForbidden, codeCSRFFailed)
		})
	}

	// Nothing was revoked or rotated: both sessions still work, and the
	// first refresh token is still its session's live one.
	for _, br := range []*cookieJar{b, other} {
		if res := f.do(t, br.userRequest(http.MethodGet, "/v1/me")); res.status != http.StatusOK {
			t.Errorf("session %s after refused requests: status %d, body %s", br.session, res.status, res.body)
		}
	}
	if res := f.do(t, b.refreshRequest()); res.status != http.StatusOK {
		t.Errorf("refresh after refused refreshes: status %d, body %s", res.status, res.body)
	}

	// With Origin alone (older browsers send no Sec-Fetch-Site), and
	// with Sec-Fetch-Site alone, a correct request passes.
	req := b.userRequest(http.MethodDelete, "/v1/sessions/"+other.session)
	req.header.Del("Sec-Fetch-Site")
	if res := f.do(t, req); res.status != http.StatusNoContent {
		t.Errorf("DELETE with Origin only: status %d, body %s", res.status, res.body)
	}
	req = b.userRequest(http.MethodPost, "/v1/logout")
	req.header.Del("Origin")
	if res := f.do(t, req); res.status != http.StatusNoContent {
		t.Errorf("logout with Sec-Fetch-Site only: status %d, body %s", res.status, res.body)
	}
}

func TestCookieRefresh(t *testing.T) {
	f := newFixture(t, fixtureOptions{cookies: true})
	f.register(t, "alice", testPassword)
	b, _ := f.cookieLogin(t, "alice")
	oldAccess, oldRefresh := b.cookies[accessCookie], b.cookies[refreshCookie]

	f.clock.Advance(1)
	res := f.do(t, b.refreshRequest())
	if res.status != http.StatusOK {
		t.Fatalf("cookie refresh: status %d, body %s", res.status, res.body)
	}
	if got := res.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	var body map[string]any
	res.decode(t, &body)
	if len(body) != 3 || body["session_id"] != b.session || body["csrf_token"] != b.csrf {
		t.Errorf("body %s, want expires_in, the same session_id and the same csrf_token", res.body)
	}
	cookies := setCookies(t, res)
	if len(cookies) != 3 {
		t.Fatalf("got cookies %v, want all three set again", cookies)
	}
	if want := refreshCookie + "=" + cookieValue(cookies[refreshCookie]) + "; Path=/oauth/token; Max-Age=604800; HttpOnly; Secure; SameSite=Strict"; cookies[refreshCookie] != want {
		t.Errorf("got %q, want %q", cookies[refreshCookie], want)
	}
	b.update(t, res)
	if b.cookies[refreshCookie] == oldRefresh || b.cookies[accessCookie] == oldAccess {
		t.Errorf("refresh did not rotate the tokens")
	}
	if strings.Contains(string(res.body), b.cookies[refreshCookie]) || strings.Contains(string(res.body), b.cookies[accessCookie]) {
		t.Errorf("body %s contains a token", res.body)
	}
	if res := f.do(t, b.userRequest(http.MethodGet, "/v1/me")); res.status != http.StatusOK {
		t.Errorf("GET /v1/me with the new access cookie: status %d, body %s", res.status, res.body)
	}

	// Both the cookie and the parameter: two credentials.
	req := b.refreshRequest()
	req.body += "&refresh_token=" + url.QueryEscape(b.cookies[refreshCookie])
	f.do(t, req).wantError(t, http.StatusBadRequest, codeInvalidRequest)

	// A refresh cookie that is not a live token: invalid_grant, and the
	// cookies are cleared.
	stale := &cookieJar{cookies: map[string]string{csrfCookie: b.csrf, refreshCookie: "x.y"}, csrf: b.csrf}
	res = f.do(t, stale.refreshRequest())
	res.wantError(t, http.StatusBadRequest, codeInvalidGrant)
	if n := len(setCookies(t, res)); n != 3 {
		t.Errorf("refused refresh set %d cookies, want 3 cleared", n)
	}

	// After the grace window the old refresh token is a theft: the
	// session is revoked and the cookies cleared.
	f.clock.Advance(f.svc.Config().RefreshGrace + 1)
	old := &cookieJar{cookies: map[string]string{csrfCookie: b.csrf, refreshCookie: oldRefresh}, csrf: b.csrf}
	res = f.do(t, old.refreshRequest())
	res.wantError(t, http.StatusBadRequest, codeInvalidGrant)
	for name, line := range setCookies(t, res) {
		if !strings.Contains(line, "Max-Age=0") {
			t.Errorf("cookie %s not cleared: %q", name, line)
		}
	}
}

func TestCookieLogout(t *testing.T) {
	for _, path := range []string{"/v1/logout", "/v1/logout/all"} {
		t.Run(path, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{cookies: true})
			f.register(t, "alice", testPassword)
			b, _ := f.cookieLogin(t, "alice")
			res := f.do(t, b.userRequest(http.MethodPost, path))
			if res.status != http.StatusNoContent {
				t.Fatalf("logout: status %d, body %s", res.status, res.body)
			}
			cookies := setCookies(t, res)
			for _, tc := range []struct{ name, want string }{
				{accessCookie, accessCookie + "=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"},
				{refreshCookie, refreshCookie + "=; Path=/oauth/token; Max-Age=0; HttpOnly; Secure; SameSite=Strict"},
				{csrfCookie, csrfCookie + "=; Path=/; Max-Age=0; Secure; SameSite=Strict"},
			} {
				if got := cookies[tc.name]; got != tc.want {
					t.Errorf("got Set-Cookie %q, want %q", got, tc.want)
				}
			}
			// The session is gone even for a browser that kept the cookies.
			f.do(t, b.userRequest(http.MethodGet, "/v1/me")).wantError(t, http.StatusUnauthorized, codeInvalidToken)
			f.do(t, b.refreshRequest()).wantError(t, http.StatusBadRequest, codeInvalidGrant)
		})
	}
}

func TestCookieModeBearerUnaffected(t *testing.T) {
	f := newFixture(t, fixtureOptions{cookies: true})
	f.register(t, "alice", testPassword)

	// A login that does not ask for cookies gets the tokens in the body
	// and no cookie.
	res := f.postJSON(t, "/v1/login", "", credentialsJSON("alice", testPassword))
	if res.status != http.StatusOK || len(res.header.Values("Set-Cookie")) != 0 {
		t.Fatalf("login without cookies: status %d, Set-Cookie %v", res.status, res.header.Values("Set-Cookie"))
	}
	var tok tokenResponse
	res.decode(t, &tok)
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("body %s, want the tokens", res.body)
	}
	// Refresh and state-changing requests with a bearer header need no
	// CSRF token and no Origin.
	if res := f.refresh(t, tok.RefreshToken); res.status != http.StatusOK {
		t.Fatalf("refresh: status %d, body %s", res.status, res.body)
	} else {
		res.decode(t, &tok)
	}
	if res := f.send(t, http.MethodPost, "/v1/logout", tok.AccessToken); res.status != http.StatusNoContent {
		t.Errorf("bearer logout: status %d, body %s", res.status, res.body)
	}

	// A bearer header and an access cookie together are two credentials.
	b, _ := f.cookieLogin(t, "alice")
	req := b.userRequest(http.MethodGet, "/v1/me")
	req.header.Set("Authorization", "Bearer "+b.cookies[accessCookie])
	f.do(t, req).wantError(t, http.StatusBadRequest, codeInvalidRequest)

	// A login asking for cookies from another origin is refused before
	// the password is checked.
	h := http.Header{"Content-Type": {"application/json"}, "Origin": {"https://evil.example"}}
	body := `{"username":"alice","password":` + jsonString(testPassword) + `,"cookies":true}`
	f.do(t, request{method: http.MethodPost, path: "/v1/login", header: h, body: body}).wantError(t, http.StatusForbidden, codeCSRFFailed)
	h = http.Header{"Content-Type": {"application/json"}}
	f.do(t, request{method: http.MethodPost, path: "/v1/login", header: h, body: body}).wantError(t, http.StatusForbidden, codeCSRFFailed)

	// An invalid access cookie is an invalid token.
	bad := &cookieJar{cookies: map[string]string{accessCookie: "not.a.token"}}
	f.do(t, bad.userRequest(http.MethodGet, "/v1/me")).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	bad.cookies[accessCookie] = strings.Repeat("a", maxAccessTokenLen+1)
	f.do(t, bad.userRequest(http.MethodGet, "/v1/me")).wantError(t, http.StatusUnauthorized, codeInvalidToken)
}

func TestCookieModeOff(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)

	h := sameOrigin()
	h.Set("Content-Type", "application/json")
	res := f.do(t, request{method: http.MethodPost, path: "/v1/login", header: h,
		body: `{"username":"alice","password":` + jsonString(testPassword) + `,"cookies":true}`})
	res.wantError(t, http.StatusBadRequest, codeInvalidRequest)
	if n := len(res.header.Values("Set-Cookie")); n != 0 {
		t.Errorf("got %d Set-Cookie headers, want none", n)
	}

	tok := f.login(t, "alice", testPassword)
	// Cookies carrying valid tokens are ignored.
	b := &cookieJar{cookies: map[string]string{accessCookie: tok.AccessToken, refreshCookie: tok.RefreshToken, csrfCookie: "x"}, csrf: "x"}
	f.do(t, b.userRequest(http.MethodGet, "/v1/me")).wantError(t, http.StatusUnauthorized, codeUnauthorized)
	f.do(t, b.refreshRequest()).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	// With a bearer header as well, the cookie is not a second credential.
	req := b.userRequest(http.MethodPost, "/v1/logout")
	req.header.Set("Authorization", "Bearer "+tok.AccessToken)
	res = f.do(t, req)
	if res.status != http.StatusNoContent || len(res.header.Values("Set-Cookie")) != 0 {
		t.Errorf("logout: status %d, Set-Cookie %v; want 204 and no cookie", res.status, res.header.Values("Set-Cookie"))
	}
}

// The cookies and header of cookie mode, by shorter names.
const (
	accessCookie  = browser.AccessCookie
	refreshCookie = browser.APIRefreshCookie
	csrfCookie    = browser.CSRFCookie
	csrfHeader    = browser.CSRFHeader
)
