package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// serviceClient is a registered client and its secret.
type serviceClient struct {
	id, secret string
}

func (f *fixture) newClient(t testing.TB, scopes, audiences []string) serviceClient {
	t.Helper()
	c, secret, err := f.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "test client", Scopes: scopes, Audiences: audiences})
	if err != nil {
		t.Fatal(err)
	}
	return serviceClient{c.ID, secret}
}

// basic returns an Authorization header value for id and secret, each
// form-urlencoded first as RFC 6749 §2.3.1 says.
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// postClient posts a form with the client's credentials in a Basic header.
func (f *fixture) postClient(t testing.TB, path string, c serviceClient, body string) *response {
	t.Helper()
	return f.do(t, request{method: http.MethodPost, path: path, body: body, header: http.Header{
		"Content-Type":  {"application/x-www-form-urlencoded"},
		"Authorization": {basic(c.id, c.secret)},
	}})
}

// clientToken gets a client_credentials token.
func (f *fixture) clientToken(t testing.TB, c serviceClient, scope string) clientTokenResponse {
	t.Helper()
	res := f.postClient(t, "/oauth/token", c, "grant_type=client_credentials&scope="+url.QueryEscape(scope))
	if res.status != http.StatusOK {
		t.Fatalf("client_credentials: status %d, body %s", res.status, res.body)
	}
	var tok clientTokenResponse
	res.decode(t, &tok)
	return tok
}

// introspect introspects a token as c and returns the response as a map.
func (f *fixture) introspect(t testing.TB, c serviceClient, token string) map[string]any {
	t.Helper()
	res := f.postClient(t, "/oauth/introspect", c, "token="+url.QueryEscape(token))
	if res.status != http.StatusOK {
		t.Fatalf("introspect: status %d, body %s", res.status, res.body)
	}
	if got := res.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("introspect: got Cache-Control %q, want no-store", got)
	}
	var m map[string]any
	res.decode(t, &m)
	return m
}

// wantInactive fails unless the introspection of token is exactly
// {"active":false}.
func (f *fixture) wantInactive(t testing.TB, c serviceClient, what, token string) {
	t.Helper()
	if m := f.introspect(t, c, token); len(m) != 1 || m["active"] != false {
		t.Errorf("introspect(%s) = %v, want exactly {\"active\":false}", what, m)
	}
}

// formHeader returns the headers of a form post with the given
// Authorization header values, if any.
func formHeader(auth ...string) http.Header {
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if len(auth) > 0 {
		h["Authorization"] = auth
	}
	return h
}

// percentEncodeAll percent-encodes every byte of s, which a form decoder
// must turn back into s.
func percentEncodeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

func TestClientCredentialsGrant(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, []string{"weather:read", "feed:read"}, []string{"weather"})
	form := "grant_type=client_credentials"
	ok := []struct {
		name      string
		header    http.Header
		body      string
		wantScope string
	}{
		{"Basic", formHeader(basic(c.id, c.secret)), form, "weather:read feed:read"},
		{"Basic, lower-case scheme", formHeader("basic " + base64.StdEncoding.EncodeToString([]byte(c.id+":"+c.secret))), form, "weather:read feed:read"},
		{"Basic with a url-encoded id and secret", formHeader("Basic " + base64.StdEncoding.EncodeToString([]byte(percentEncodeAll(c.id)+":"+percentEncodeAll(c.secret)))), form, "weather:read feed:read"},
		{"Basic and the same client_id in the body", formHeader(basic(c.id, c.secret)), form + "&client_id=" + c.id, "weather:read feed:read"},
		{"client_secret_post", formHeader(), form + "&client_id=" + c.id + "&client_secret=" + c.secret, "weather:read feed:read"},
		{"one scope", formHeader(basic(c.id, c.secret)), form + "&scope=feed:read", "feed:read"},
		{"both scopes, other order", formHeader(basic(c.id, c.secret)), form + "&scope=feed:read+weather:read", "feed:read weather:read"},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, request{method: http.MethodPost, path: "/oauth/token", header: tt.header, body: tt.body})
			if res.status != http.StatusOK {
				t.Fatalf("got status %d, want 200 (body %s)", res.status, res.body)
			}
			if got := res.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("got Cache-Control %q, want no-store", got)
			}
			var m map[string]any
			res.decode(t, &m)
			if m["token_type"] != "Bearer" || m["access_token"] == "" || m["expires_in"] != float64(auth.DefaultAccessTTL.Seconds()) ||
				m["scope"] != tt.wantScope || m["refresh_token"] != nil || m["session_id"] != nil || len(m) != 4 {
				t.Errorf("got %s, want a Bearer token with scope %q and no refresh token or session", res.body, tt.wantScope)
			}
		})
	}

	other := f.newClient(t, nil, nil)
	bad := []struct {
		name      string
		header    http.Header
		body      string
		status    int
		code      string
		challenge bool
	}{
		{"wrong secret, Basic", formHeader(basic(c.id, other.secret)), form, 401, codeInvalidClient, true},
		{"wrong secret, post", formHeader(), form + "&client_id=" + c.id + "&client_secret=" + other.secret, 401, codeInvalidClient, true},
		{"unknown client, Basic", formHeader(basic("nosuchclient", c.secret)), form, 401, codeInvalidClient, true},
		{"unknown client, post", formHeader(), form + "&client_id=nosuchclient&client_secret=" + c.secret, 401, codeInvalidClient, true},
		{"no credentials", formHeader(), form, 401, codeInvalidClient, true},
		{"client_id without a secret", formHeader(), form + "&client_id=" + c.id, 401, codeInvalidClient, true},
		{"Bearer instead of client credentials", formHeader("Bearer x"), form, 401, codeInvalidClient, true},
		{"Basic, not base64", formHeader("Basic !!!"), form, 401, codeInvalidClient, true},
		{"Basic, no colon", formHeader("Basic " + base64.StdEncoding.EncodeToString([]byte(c.id+c.secret))), form, 401, codeInvalidClient, true},
		{"Basic, bad percent-encoding", formHeader("Basic " + base64.StdEncoding.EncodeToString([]byte(c.id+":%zz"))), form, 401, codeInvalidClient, true},
		{"Basic, empty", formHeader("Basic"), form, 401, codeInvalidClient, true},
		{"two Authorization headers", formHeader(basic(c.id, c.secret), basic(c.id, c.secret)), form, 401, codeInvalidClient, true},
		{"both methods", formHeader(basic(c.id, c.secret)), form + "&client_id=" + c.id + "&client_secret=" + c.secret, 400, codeInvalidRequest, false},
		{"Basic and another client_id", formHeader(basic(c.id, c.secret)), form + "&client_id=" + other.id, 400, codeInvalidRequest, false},
		{"scope not allowed", formHeader(basic(c.id, c.secret)), form + "&scope=admin", 400, codeInvalidScope, false},
		{"one scope of two not allowed", formHeader(basic(c.id, c.secret)), form + "&scope=feed:read+admin", 400, codeInvalidScope, false},
		{"malformed scope", formHeader(basic(c.id, c.secret)), form + "&scope=%22x%22", 400, codeInvalidScope, false},
		{"duplicated client_secret", formHeader(), form + "&client_id=" + c.id + "&client_secret=a&client_secret=b", 400, codeInvalidRequest, false},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, request{method: http.MethodPost, path: "/oauth/token", header: tt.header, body: tt.body})
			res.wantError(t, tt.status, tt.code)
			if got := res.header.Get("WWW-Authenticate"); tt.challenge && got != `Basic realm="keycard"` {
				t.Errorf("got WWW-Authenticate %q, want %q", got, `Basic realm="keycard"`)
			}
		})
	}
	// The client's token is for its first audience and says whose it is.
	tok := f.clientToken(t, c, "")
	in := f.introspect(t, c, tok.AccessToken)
	if in["active"] != true || in["sub"] != c.id || in["client_id"] != c.id || in["aud"] != "weather" {
		t.Errorf("introspect(client token) = %v, want active, sub and client_id %s, aud weather", in, c.id)
	}
	// The secret never reaches the log.
	if logs := f.logs.String(); strings.Contains(logs, c.secret) || strings.Contains(logs, tok.AccessToken) {
		t.Errorf("the log holds a client secret or token: %s", logs)
	}
}

// A refresh needs no client authentication, but client authentication
// that is presented must succeed (RFC 6749 §2.3, §6): a wrong secret or
// an unknown client is refused as for client_credentials, and the refresh
// token survives the refusal.
func TestRefreshGrantClientAuthentication(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	other := f.newClient(t, nil, nil)
	f.register(t, "alice", testPassword)
	rt := f.login(t, "alice", testPassword).RefreshToken
	grant := func() string { return "grant_type=refresh_token&refresh_token=" + url.QueryEscape(rt) }

	bad := []struct {
		name   string
		header http.Header
		body   string
		status int
		code   string
	}{
		{"wrong secret, Basic", formHeader(basic(c.id, other.secret)), "", 401, codeInvalidClient},
		{"unknown client, Basic", formHeader(basic("nosuchclient", c.secret)), "", 401, codeInvalidClient},
		{"empty secret, Basic", formHeader(basic(c.id, "")), "", 401, codeInvalidClient},
		{"Basic, not base64", formHeader("Basic !!!"), "", 401, codeInvalidClient},
		{"Basic, empty", formHeader("Basic"), "", 401, codeInvalidClient},
		{"two Authorization headers", formHeader(basic(c.id, c.secret), basic(c.id, c.secret)), "", 401, codeInvalidClient},
		{"wrong secret, post", formHeader(), "&client_id=" + c.id + "&client_secret=" + other.secret, 401, codeInvalidClient},
		{"unknown client, post", formHeader(), "&client_id=nosuchclient&client_secret=" + c.secret, 401, codeInvalidClient},
		{"client_secret without client_id", formHeader(), "&client_secret=" + c.secret, 401, codeInvalidClient},
		{"both methods", formHeader(basic(c.id, c.secret)), "&client_id=" + c.id + "&client_secret=" + c.secret, 400, codeInvalidRequest},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, request{method: http.MethodPost, path: "/oauth/token", header: tt.header, body: grant() + tt.body})
			res.wantError(t, tt.status, tt.code)
			if got, want := res.header.Get("WWW-Authenticate"), `Basic realm="keycard"`; tt.status == 401 && got != want {
				t.Errorf("got WWW-Authenticate %q, want %q", got, want)
			}
		})
	}

	// None of the refusals spent the token: past the grace window, a
	// token that one of them had rotated would be a reuse, refused as
	// theft. Each of these rotates it again.
	f.clock.Advance(keycard.DefaultRotationGrace + time.Second)
	ok := []struct {
		name   string
		header http.Header
		body   string
	}{
		{"no client authentication", formHeader(), ""},
		{"client_id alone identifies, does not authenticate", formHeader(), "&client_id=web"},
		{"a Bearer header is not client authentication", formHeader("Bearer x"), ""},
		{"right secret, Basic", formHeader(basic(c.id, c.secret)), ""},
		{"right secret, post", formHeader(), "&client_id=" + c.id + "&client_secret=" + c.secret},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, request{method: http.MethodPost, path: "/oauth/token", header: tt.header, body: grant() + tt.body})
			if res.status != http.StatusOK {
				t.Fatalf("got status %d, want 200 (body %s)", res.status, res.body)
			}
			var tok tokenResponse
			res.decode(t, &tok)
			if tok.RefreshToken == "" || tok.RefreshToken == rt {
				t.Fatalf("got refresh token %q, want a new one (a rotation, not a replay)", tok.RefreshToken)
			}
			rt = tok.RefreshToken
		})
	}
	if logs := f.logs.String(); strings.Contains(logs, c.secret) || strings.Contains(logs, other.secret) {
		t.Errorf("the log holds a client secret: %s", logs)
	}
}

// TestIntrospectEndpoint runs without and with the server's cache of
// introspection answers and client authentications: every answer is the
// same, each inactive one after the same token's active answer was
// cached where the test introspected it before.
func TestIntrospectEndpoint(t *testing.T) {
	for _, cache := range []int{0, 100} {
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) { testIntrospectEndpoint(t, cache) })
	}
}

func testIntrospectEndpoint(t *testing.T, cache int) {
	f := newFixture(t, fixtureOptions{introspectionCache: cache})
	c := f.newClient(t, []string{"feed:read"}, nil)
	userID := f.register(t, "alice", testPassword)
	user := f.login(t, "alice", testPassword)

	// A user's access token: all the RFC 7662 members.
	m := f.introspect(t, c, user.AccessToken)
	now := f.clock.Now().Unix()
	want := map[string]any{
		"active": true, "client_id": auth.DefaultClientID, "username": "alice", "token_type": "Bearer", "token_use": "access_token",
		"exp": float64(now + int64(auth.DefaultAccessTTL.Seconds())), "iat": float64(now), "sub": userID,
		"aud": auth.DefaultAudience, "iss": testIssuer, "sid": user.SessionID,
		"auth_time": float64(now), "acr": auth.ACRPassword, // how the user signed in (RFC 9470 section 6)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("introspect(user access token): got %s = %v, want %v", k, m[k], v)
		}
	}
	if jti, _ := m["jti"].(string); jti == "" || !slices.Equal(toStrings(m["amr"]), []string{auth.AMRPassword}) || len(m) != len(want)+2 {
		t.Errorf("introspect(user access token) = %v, want exactly the members %v, jti and amr [pwd]", m, want)
	}
	// A refresh token: no RFC 6749 §5.1 access token type, since it is
	// none; token_use says what it is.
	m = f.introspect(t, c, user.RefreshToken)
	if _, hasType := m["token_type"]; m["active"] != true || hasType || m["token_use"] != "refresh_token" || m["sid"] != user.SessionID || m["username"] != "alice" || m["sub"] != userID ||
		m["acr"] != auth.ACRPassword || m["auth_time"] != float64(now) {
		t.Errorf("introspect(refresh token) = %v, want active, no token_type, token_use refresh_token", m)
	}
	// A service client's token is a Bearer token too.
	if m := f.introspect(t, c, f.clientToken(t, c, "").AccessToken); m["token_type"] != "Bearer" || m["token_use"] != "access_token" {
		t.Errorf("introspect(client token) = %v, want token_type Bearer, token_use access_token", m)
	}
	// Through client_secret_post too.
	res := f.postForm(t, "/oauth/introspect", "client_id="+c.id+"&client_secret="+c.secret+"&token="+url.QueryEscape(user.AccessToken)+"&token_type_hint=access_token")
	if res.status != http.StatusOK || !strings.Contains(string(res.body), `"active":true`) {
		t.Errorf("introspect with client_secret_post: %d %s", res.status, res.body)
	}

	for _, tt := range []struct{ name, token string }{
		{"garbage", "garbage"},
		{"three dots", "a.b.c"},
		{"unknown refresh token", "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"tampered access token", user.AccessToken[:len(user.AccessToken)-4] + "AAAA"},
		{"a JWT of another issuer", "eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJ4In0.c2ln"},
	} {
		f.wantInactive(t, c, tt.name, tt.token)
	}

	// Revoked: logout ends both of the session's tokens.
	if res := f.postJSON(t, "/v1/logout", user.AccessToken, ""); res.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", res.status, res.body)
	}
	f.wantInactive(t, c, "access token after logout", user.AccessToken)
	f.wantInactive(t, c, "refresh token after logout", user.RefreshToken)

	// Expired.
	tok := f.clientToken(t, c, "")
	if f.introspect(t, c, tok.AccessToken)["active"] != true {
		t.Fatalf("fresh client token inactive")
	}
	f.clock.Advance(auth.DefaultAccessTTL)
	f.wantInactive(t, c, "expired access token", tok.AccessToken)

	// Errors. A client_id alone authenticates nothing: neither a
	// confidential client's nor a public client's may introspect.
	public, _, err := f.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "SPA", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantAuthorizationCode}, RedirectURIs: []string{"https://spa.example/cb"}, Public: true}})
	if err != nil {
		t.Fatal(err)
	}
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	bad := []struct {
		name   string
		header http.Header
		body   string
		status int
		code   string
	}{
		{"no client authentication", form, "token=x", 401, codeInvalidClient},
		{"a confidential client's client_id alone", form, "token=x&client_id=" + c.id, 401, codeInvalidClient},
		{"a public client", form, "token=" + url.QueryEscape(user.AccessToken) + "&client_id=" + public.ID, 401, codeInvalidClient},
		{"wrong secret", http.Header{"Content-Type": form["Content-Type"], "Authorization": {basic(c.id, "wrong")}}, "token=x", 401, codeInvalidClient},
		{"a user's access token instead", http.Header{"Content-Type": form["Content-Type"], "Authorization": {"Bearer " + user.AccessToken}}, "token=x", 401, codeInvalidClient},
		{"no token", http.Header{"Content-Type": form["Content-Type"], "Authorization": {basic(c.id, c.secret)}}, "", 400, codeInvalidRequest},
		{"token twice", http.Header{"Content-Type": form["Content-Type"], "Authorization": {basic(c.id, c.secret)}}, "token=a&token=b", 400, codeInvalidRequest},
		{"JSON body", http.Header{"Content-Type": {"application/json"}, "Authorization": {basic(c.id, c.secret)}}, `{"token":"x"}`, 400, codeInvalidRequest},
		{"both methods", http.Header{"Content-Type": form["Content-Type"], "Authorization": {basic(c.id, c.secret)}}, "token=x&client_secret=" + c.secret, 400, codeInvalidRequest},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, request{method: http.MethodPost, path: "/oauth/introspect", header: tt.header, body: tt.body})
			res.wantError(t, tt.status, tt.code)
		})
	}
	if res := f.send(t, http.MethodGet, "/oauth/introspect", ""); res.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /oauth/introspect: got %d, want 405", res.status)
	}
}

func TestRevokeEndpoint(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, []string{"feed:read"}, nil)
	other := f.newClient(t, nil, nil)
	f.register(t, "alice", testPassword)
	ctx := context.Background()
	revoke := func(as serviceClient, token string) *response {
		t.Helper()
		return f.postClient(t, "/oauth/revoke", as, "token="+url.QueryEscape(token)+"&token_type_hint=refresh_token")
	}
	wantOK := func(what string, res *response) {
		t.Helper()
		if res.status != http.StatusOK || len(res.body) != 0 || res.header.Get("Cache-Control") != "no-store" {
			t.Errorf("revoke %s: got %d %q (Cache-Control %q), want 200 with an empty body, no-store", what, res.status, res.body, res.header.Get("Cache-Control"))
		}
	}

	// A refresh token: the whole session dies.
	user := f.login(t, "alice", testPassword)
	wantOK("refresh token", revoke(c, user.RefreshToken))
	f.wantInactive(t, c, "revoked refresh token", user.RefreshToken)
	f.wantInactive(t, c, "access token of the revoked session", user.AccessToken)
	f.refresh(t, user.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	f.send(t, http.MethodGet, "/v1/me", user.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	sess, err := f.stores.Sessions.Session(ctx, user.SessionID)
	if err != nil || !sess.Revoked() {
		t.Errorf("session after revoking its refresh token: %+v, %v; want revoked", sess, err)
	}

	// A user's access token: a jti entry in the revocation store; the
	// session lives on.
	user = f.login(t, "alice", testPassword)
	jti, _ := f.introspect(t, c, user.AccessToken)["jti"].(string)
	wantOK("access token", f.postForm(t, "/oauth/revoke", "token="+url.QueryEscape(user.AccessToken)+"&client_id="+c.id+"&client_secret="+c.secret))
	revs, err := f.stores.Revocations.Revocations(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if last := revs[len(revs)-1]; last.Kind != keycard.RevokeToken || last.Value != jti || jti == "" {
		t.Errorf("last revocation %+v, want a token entry for jti %q", last, jti)
	}
	f.wantInactive(t, c, "revoked access token", user.AccessToken)
	f.send(t, http.MethodGet, "/v1/me", user.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	if res := f.refresh(t, user.RefreshToken); res.status != http.StatusOK {
		t.Errorf("refresh after revoking only the access token: %d %s, want 200", res.status, res.body)
	}

	// A client's token: only by that client.
	tok := f.clientToken(t, c, "")
	revoke(other, tok.AccessToken).wantError(t, http.StatusBadRequest, codeUnauthorizedClient)
	if f.introspect(t, c, tok.AccessToken)["active"] != true {
		t.Errorf("client token after another client's refused revocation: inactive")
	}
	wantOK("own client token", revoke(c, tok.AccessToken))
	f.wantInactive(t, c, "revoked client token", tok.AccessToken)

	// Unknown and invalid tokens are answered 200 (RFC 7009 §2.2).
	for _, token := range []string{"garbage", "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", tok.AccessToken, user.RefreshToken + "x"} {
		wantOK("invalid token", revoke(c, token))
	}

	// Errors.
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	f.do(t, request{method: http.MethodPost, path: "/oauth/revoke", header: form, body: "token=x"}).wantError(t, 401, codeInvalidClient)
	f.postClient(t, "/oauth/revoke", serviceClient{c.id, other.secret}, "token=x").wantError(t, 401, codeInvalidClient)
	f.postClient(t, "/oauth/revoke", c, "").wantError(t, 400, codeInvalidRequest)
	f.postClient(t, "/oauth/revoke", c, "token=%zz").wantError(t, 400, codeInvalidRequest)

	// No secret or token of the walk above reaches the debug log.
	logs := f.logs.String()
	for _, secret := range []string{c.secret, other.secret, basic(c.id, c.secret), tok.AccessToken, user.AccessToken, user.RefreshToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// FuzzClientEndpoints sends arbitrary form bodies and Authorization
// headers to the endpoints that authenticate clients, and fails on any
// 5xx and any error response without the {"error","error_description"}
// shape.
func FuzzClientEndpoints(f *testing.F) {
	fx := newFixture(f)
	c := fx.newClient(f, []string{"a"}, nil)
	paths := []string{"/oauth/token", "/oauth/introspect", "/oauth/revoke", "/oauth/par"}
	seeds := []struct {
		path          uint8
		authorization string
		body          string
	}{
		{0, basic(c.id, c.secret), "grant_type=client_credentials&scope=a"},
		{0, "", "grant_type=client_credentials&client_id=" + c.id + "&client_secret=" + c.secret},
		{0, basic(c.id, c.secret), "grant_type=client_credentials&scope=%7F"},
		{1, basic(c.id, c.secret), "token=a.b.c"},
		{1, "Basic " + base64.StdEncoding.EncodeToString([]byte("%:%")), "token=x"},
		{2, basic(c.id, c.secret), "token=AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{2, "Basic ===", "token=x&client_secret=y"},
		// Client assertions (private_key_jwt), well-formed and not.
		{0, "", "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" +
			"&client_assertion=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
		{0, "", "grant_type=client_credentials&client_assertion_type=x&client_assertion=a.b.c&client_id=" + c.id},
		{3, "", "response_type=code&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=..."},
	}
	for _, s := range seeds {
		f.Add(s.path, s.authorization, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, path uint8, authorization string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, paths[int(path)%len(paths)], strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authorization != "" {
			r.Header["Authorization"] = []string{authorization}
		}
		w := httptest.NewRecorder()
		fx.server.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("POST %s (Authorization %q, body %q): got status %d, body %s", r.URL.Path, authorization, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			var e map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e["error"] == "" || e["error_description"] == "" {
				t.Fatalf("POST %s: got status %d with body %q, want the error shape", r.URL.Path, w.Code, w.Body)
			}
		}
	})
}
