package demo

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
	"github.com/keycard-auth/keycard/verifier"
)

// The travel app's own checks, each attack sent. The whole flow against
// the real auth server, in Chromium, is cmd/keycard's
// TestDemoSingleSignOn.

const (
	testTravelBase = "http://127.0.0.1:8090"
	testIssuer     = "http://127.0.0.1:4000"
	testClientID   = "travel-client"
)

// accessResult answers Verify with a fixed error (nil: accepted).
type accessResult struct{ err error }

func (a accessResult) Verify(string) (*verifier.Claims, error) { return &verifier.Claims{}, a.err }

type travelFixture struct {
	app  *Travel
	key  *jose.Key // the issuer's signing key
	now  time.Time
	sess string // the seeded session's cookie value
}

// newTravelFixture returns an app whose keys are key's, with one session
// of user-1 in browser session sid-1. issuer, when not empty, is where
// its token endpoint is.
func newTravelFixture(t *testing.T, access AccessVerifier, issuer string) *travelFixture {
	t.Helper()
	key, err := jose.GenerateKey(jose.ES256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, _ = key.WithKeyID("k1")
	keys, err := jose.NewKeySet(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if issuer == "" {
		issuer = testIssuer
	}
	f := &travelFixture{key: key, now: time.Now()}
	app, err := NewTravel(TravelOptions{BaseURL: testTravelBase, Issuer: issuer, ClientID: testClientID, ClientSecret: "s",
		Keys: keys, Access: access, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.app = app
	f.sess = "session-cookie-value"
	app.sessions[f.sess] = &travelSession{created: f.now, csrf: "csrf-1", subject: "user-1", sid: "sid-1", name: "alice",
		idToken: "id-token", accessToken: "access", refresh: "refresh"}
	return f
}

func (f *travelFixture) hasSession() bool {
	f.app.mu.Lock()
	defer f.app.mu.Unlock()
	return f.app.sessions[f.sess] != nil
}

func (f *travelFixture) serve(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	f.app.ServeHTTP(rec, req)
	return rec
}

// logoutToken signs claims as the issuer's logout token.
func (f *travelFixture) logoutToken(t *testing.T, key *jose.Key, typ string, edit func(map[string]any)) string {
	t.Helper()
	claims := map[string]any{
		"iss": testIssuer, "aud": testClientID, "iat": f.now.Unix(), "exp": f.now.Add(2 * time.Minute).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString([]byte(f.now.String() + t.Name())), "sub": "user-1", "sid": "sid-1",
		"events": map[string]any{backchannelLogoutEvent: map[string]any{}},
	}
	if edit != nil {
		edit(claims)
	}
	tok, err := jwt.Sign(key, claims, jwt.WithHeaderType(typ), jwt.WithKeyID("k1"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func backchannelRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, TravelBackchannelLogout, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func TestTravelBackchannelLogout(t *testing.T) {
	other, _ := jose.GenerateKey(jose.ES256, rand.Reader)
	hmacKey, _ := jose.NewHMACKey(jose.HS256, []byte("a secret that is long enough for HS256 keys"))
	for _, tc := range []struct {
		name     string
		key      func(f *travelFixture) *jose.Key // nil: the issuer's
		typ      string
		edit     func(map[string]any)
		status   int
		loggedIn bool // the session survives
	}{
		{name: "valid", status: http.StatusOK},
		{name: "sid alone", edit: func(c map[string]any) { delete(c, "sub") }, status: http.StatusOK},
		{name: "sub alone", edit: func(c map[string]any) { delete(c, "sid") }, status: http.StatusOK},
		{name: "another sid", edit: func(c map[string]any) { c["sid"] = "sid-2" }, status: http.StatusOK, loggedIn: true},
		{name: "the sid of another user", edit: func(c map[string]any) { c["sub"] = "user-2" }, status: http.StatusOK, loggedIn: true},
		{name: "another key", key: func(*travelFixture) *jose.Key { return other }, status: http.StatusBadRequest, loggedIn: true},
		{name: "HMAC", key: func(*travelFixture) *jose.Key { return hmacKey }, status: http.StatusBadRequest, loggedIn: true},
		{name: "ID token type", typ: "JWT", status: http.StatusBadRequest, loggedIn: true},
		{name: "another issuer", edit: func(c map[string]any) { c["iss"] = "http://evil.example" }, status: http.StatusBadRequest, loggedIn: true},
		{name: "another audience", edit: func(c map[string]any) { c["aud"] = "other-client" }, status: http.StatusBadRequest, loggedIn: true},
		{name: "expired", edit: func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-58*time.Minute).Unix()
		}, status: http.StatusBadRequest, loggedIn: true},
		{name: "no jti", edit: func(c map[string]any) { delete(c, "jti") }, status: http.StatusBadRequest, loggedIn: true},
		{name: "no iat", edit: func(c map[string]any) { delete(c, "iat") }, status: http.StatusBadRequest, loggedIn: true},
		{name: "no events", edit: func(c map[string]any) { delete(c, "events") }, status: http.StatusBadRequest, loggedIn: true},
		{name: "another event", edit: func(c map[string]any) { c["events"] = map[string]any{"urn:other": map[string]any{}} }, status: http.StatusBadRequest, loggedIn: true},
		{name: "event not an object", edit: func(c map[string]any) { c["events"] = map[string]any{backchannelLogoutEvent: "x"} }, status: http.StatusBadRequest, loggedIn: true},
		{name: "a nonce", edit: func(c map[string]any) { c["nonce"] = "n" }, status: http.StatusBadRequest, loggedIn: true},
		{name: "neither sid nor sub", edit: func(c map[string]any) { delete(c, "sid"); delete(c, "sub") }, status: http.StatusBadRequest, loggedIn: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTravelFixture(t, accessResult{}, "")
			key := f.key
			if tc.key != nil {
				key = tc.key(f)
			}
			typ := tc.typ
			if typ == "" {
				typ = "logout+jwt"
			}
			tok := f.logoutToken(t, key, typ, tc.edit)
			rec := f.serve(backchannelRequest(url.Values{"logout_token": {tok}}.Encode()))
			if rec.Code != tc.status || f.hasSession() != tc.loggedIn {
				t.Errorf("status %d, session kept %v; want %d, %v", rec.Code, f.hasSession(), tc.status, tc.loggedIn)
			}
			if rec.Code == http.StatusOK {
				// The same token again: a replay, refused.
				if rec := f.serve(backchannelRequest(url.Values{"logout_token": {tok}}.Encode())); rec.Code != http.StatusBadRequest {
					t.Errorf("replayed logout token: status %d, want 400", rec.Code)
				}
			}
		})
	}

	f := newTravelFixture(t, accessResult{}, "")
	tok := f.logoutToken(t, f.key, "logout+jwt", nil)
	for _, tc := range []struct {
		name string
		req  *http.Request
		want int
	}{
		{"no token", backchannelRequest(""), http.StatusBadRequest},
		{"two tokens", backchannelRequest(url.Values{"logout_token": {tok, tok}}.Encode()), http.StatusBadRequest},
		{"garbage", backchannelRequest("logout_token=not.a.jwt"), http.StatusBadRequest},
		{"unreadable form", backchannelRequest("logout_token=%zz"), http.StatusBadRequest},
		{"too large", backchannelRequest("logout_token=" + strings.Repeat("a", travelMaxForm+1)), http.StatusBadRequest},
		{"JSON", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, TravelBackchannelLogout, strings.NewReader(`{"logout_token":"`+tok+`"}`))
			r.Header.Set("Content-Type", "application/json")
			return r
		}(), http.StatusBadRequest},
		{"GET", httptest.NewRequest(http.MethodGet, TravelBackchannelLogout+"?logout_token="+tok, nil), http.StatusMethodNotAllowed},
	} {
		if rec := f.serve(tc.req); rec.Code != tc.want || !f.hasSession() {
			t.Errorf("%s: status %d, session kept %v; want %d and the session kept", tc.name, rec.Code, f.hasSession(), tc.want)
		}
	}
}

func TestTravelLoginAndCallback(t *testing.T) {
	f := newTravelFixture(t, accessResult{}, "")
	// GET / without a session: a silent sign-in.
	if rec := f.serve(httptest.NewRequest(http.MethodGet, "/", nil)); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login?silent=1" {
		t.Fatalf("signed out: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	login := func(silent bool) (state string, cookie *http.Cookie) {
		t.Helper()
		target := "/login"
		if silent {
			target += "?silent=1"
		}
		rec := f.serve(httptest.NewRequest(http.MethodGet, target, nil))
		loc, err := url.Parse(rec.Header().Get("Location"))
		if rec.Code != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc.String(), testIssuer+"/oauth/authorize?") {
			t.Fatalf("login: %d %q", rec.Code, rec.Header().Get("Location"))
		}
		q := loc.Query()
		state = q.Get("state")
		f.app.mu.Lock()
		p := f.app.pending[state]
		f.app.mu.Unlock()
		sum := sha256.Sum256([]byte(p.verifier))
		if q.Get("client_id") != testClientID || q.Get("redirect_uri") != testTravelBase+TravelCallback || q.Get("code_challenge_method") != "S256" ||
			q.Get("code_challenge") != base64.RawURLEncoding.EncodeToString(sum[:]) || q.Get("nonce") != p.nonce || len(p.verifier) != 43 ||
			(q.Get("prompt") == "none") != silent || q.Get("scope") != "openid profile" {
			t.Errorf("authorization request %s", loc)
		}
		for _, c := range rec.Result().Cookies() {
			if c.Name == travelStateCookie {
				cookie = c
			}
		}
		if cookie == nil || cookie.Value != state || !cookie.HttpOnly || cookie.Path != TravelCallback {
			t.Fatalf("state cookie %+v", cookie)
		}
		return state, cookie
	}
	callback := func(q url.Values, cookie *http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, TravelCallback+"?"+q.Encode(), nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		return f.serve(r)
	}

	state, cookie := login(true)
	// A callback from another browser (no state cookie, or another one),
	// as a login-CSRF page would send: refused.
	if rec := callback(url.Values{"code": {"c"}, "state": {state}, "iss": {testIssuer}}, nil); rec.Code != http.StatusBadRequest {
		t.Errorf("callback without the state cookie: %d", rec.Code)
	}
	if rec := callback(url.Values{"code": {"c"}, "state": {"forged"}, "iss": {testIssuer}}, cookie); rec.Code != http.StatusBadRequest {
		t.Errorf("callback with another state: %d", rec.Code)
	}
	// Another issuer's answer (mix-up, RFC 9207): refused, and the
	// sign-in is used up.
	if rec := callback(url.Values{"code": {"c"}, "state": {state}, "iss": {"http://evil.example"}}, cookie); rec.Code != http.StatusBadRequest {
		t.Errorf("callback from another issuer: %d", rec.Code)
	}
	if rec := callback(url.Values{"error": {"login_required"}, "state": {state}, "iss": {testIssuer}}, cookie); rec.Code != http.StatusBadRequest {
		t.Errorf("the used-up sign-in again: %d", rec.Code)
	}
	// A silent sign-in that needs a password: the signed-out page.
	state, cookie = login(true)
	rec := callback(url.Values{"error": {"login_required"}, "state": {state}, "iss": {testIssuer}}, cookie)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `id="travel-signed-out"`) || !strings.Contains(rec.Body.String(), `id="travel-signin"`) {
		t.Errorf("silent sign-in refused: %d\n%s", rec.Code, rec.Body)
	}
	// A sign-in the user refused: an error, shown escaped.
	state, cookie = login(false)
	rec = callback(url.Values{"error": {"access_denied<script>"}, "state": {state}, "iss": {testIssuer}}, cookie)
	if rec.Code != http.StatusBadRequest || strings.Contains(rec.Body.String(), "<script>") {
		t.Errorf("refused sign-in: %d\n%s", rec.Code, rec.Body)
	}
	// An expired sign-in.
	state, cookie = login(false)
	f.now = f.now.Add(travelPendingLifetime + time.Second)
	if rec := callback(url.Values{"code": {"c"}, "state": {state}, "iss": {testIssuer}}, cookie); rec.Code != http.StatusBadRequest {
		t.Errorf("expired sign-in: %d", rec.Code)
	}
}

func TestTravelSignOut(t *testing.T) {
	f := newTravelFixture(t, accessResult{}, "")
	post := func(csrf string, withSession bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/signout", strings.NewReader(url.Values{"csrf_token": {csrf}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if withSession {
			r.AddCookie(&http.Cookie{Name: travelSessionCookie, Value: f.sess})
		}
		return f.serve(r)
	}
	// The page shows the user and the form's token.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: travelSessionCookie, Value: f.sess})
	if rec := f.serve(r); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `<strong id="travel-user">alice</strong>`) ||
		!strings.Contains(rec.Body.String(), `value="csrf-1"`) || rec.Header().Get("X-Frame-Options") != "DENY" {
		t.Fatalf("signed in: %d\n%s", rec.Code, rec.Body)
	}
	// A cross-site form without the token: refused, still signed in.
	if rec := post("", true); rec.Code != http.StatusForbidden || !f.hasSession() {
		t.Errorf("sign-out without the token: %d, session kept %v", rec.Code, f.hasSession())
	}
	if rec := post("csrf-2", true); rec.Code != http.StatusForbidden || !f.hasSession() {
		t.Errorf("sign-out with a wrong token: %d, session kept %v", rec.Code, f.hasSession())
	}
	rec := post("csrf-1", true)
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || f.hasSession() || loc == nil || !strings.HasPrefix(loc.String(), testIssuer+"/oauth/logout?") ||
		loc.Query().Get("id_token_hint") != "id-token" || loc.Query().Get("post_logout_redirect_uri") != testTravelBase+TravelSignedOut {
		t.Errorf("sign-out: %d to %q, session kept %v", rec.Code, rec.Header().Get("Location"), f.hasSession())
	}
	if rec := post("csrf-1", false); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != TravelSignedOut {
		t.Errorf("sign-out without a session: %d %q", rec.Code, rec.Header().Get("Location"))
	}
}

// TestTravelRefusedAccessToken: an access token the verifier refuses
// (revoked, expired) is renewed with the refresh token; when the auth
// server refuses that too, the session ends. The verifier unavailable is
// a 503, not a sign-out.
func TestTravelRefusedAccessToken(t *testing.T) {
	var refreshes atomic.Int32
	var answer atomic.Int32
	answer.Store(http.StatusBadRequest)
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth/token" || r.FormValue("grant_type") != "refresh_token" || r.FormValue("refresh_token") != "refresh" && r.FormValue("refresh_token") != "refresh-2" {
			http.Error(w, "unexpected", http.StatusNotFound)
			return
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != testClientID || secret != "s" {
			http.Error(w, "no client authentication", http.StatusUnauthorized)
			return
		}
		refreshes.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(answer.Load()))
		if answer.Load() == http.StatusOK {
			w.Write([]byte(`{"access_token":"access-2","refresh_token":"refresh-2"}`))
		} else {
			w.Write([]byte(`{"error":"invalid_grant"}`))
		}
	}))
	t.Cleanup(issuer.Close)
	home := func(f *travelFixture) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: travelSessionCookie, Value: f.sess})
		return f.serve(r)
	}
	revoked := accessResult{err: &verifier.Error{Status: http.StatusUnauthorized, Code: verifier.CodeInvalidToken, Err: verifier.ErrInvalidToken}}

	f := newTravelFixture(t, revoked, issuer.URL)
	if rec := home(f); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `id="travel-signed-out"`) || f.hasSession() || refreshes.Load() != 1 {
		t.Errorf("revoked, refresh refused: %d, session kept %v, %d refreshes\n%s", rec.Code, f.hasSession(), refreshes.Load(), rec.Body)
	}

	answer.Store(http.StatusOK)
	f = newTravelFixture(t, revoked, issuer.URL)
	if rec := home(f); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `id="travel-user"`) || !f.hasSession() {
		t.Errorf("expired, refreshed: %d, session kept %v\n%s", rec.Code, f.hasSession(), rec.Body)
	}
	if s := f.app.sessions[f.sess]; s.accessToken != "access-2" || s.refresh != "refresh-2" {
		t.Errorf("after the refresh the session holds %q, %q", s.accessToken, s.refresh)
	}
	// Loads of one session at once (go test -race): each refreshes.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if rec := home(f); rec.Code != http.StatusOK {
				t.Errorf("concurrent load: %d", rec.Code)
			}
		})
	}
	wg.Wait()

	f = newTravelFixture(t, accessResult{err: &verifier.Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable"}}, issuer.URL)
	if rec := home(f); rec.Code != http.StatusServiceUnavailable || !f.hasSession() {
		t.Errorf("verifier unavailable: %d, session kept %v", rec.Code, f.hasSession())
	}
}
