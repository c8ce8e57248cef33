package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

func TestRegister(t *testing.T) {
	f := newFixture(t)
	res := f.postJSON(t, "/v1/users", "", credentialsJSON("Alice", testPassword))
	if res.status != http.StatusCreated {
		t.Fatalf("got status %d, want 201 (body %s)", res.status, res.body)
	}
	var u map[string]any
	res.decode(t, &u)
	if u["username"] != "Alice" || u["id"] == "" || u["email_verified"] != false || len(u) != 3 {
		t.Errorf("got %s, want {id, username:Alice, email_verified:false}", res.body)
	}

	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"taken, in another case", credentialsJSON("ALICE", testPassword), http.StatusConflict, codeConflict},
		{"short password", credentialsJSON("bob", "short"), http.StatusBadRequest, codeInvalidRequest},
		{"long password", credentialsJSON("bob", strings.Repeat("x", 1025)), http.StatusBadRequest, codeInvalidRequest},
		{"empty username", credentialsJSON("", testPassword), http.StatusBadRequest, codeInvalidRequest},
		{"username with a space", credentialsJSON("bob smith", testPassword), http.StatusBadRequest, codeInvalidRequest},
		{"roles are not accepted", `{"username":"bob","password":"correct horse battery","roles":["admin"]}`, http.StatusBadRequest, codeInvalidRequest},
		{"missing password", `{"username":"bob"}`, http.StatusBadRequest, codeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := f.postJSON(t, "/v1/users", "", tt.body).wantError(t, tt.status, tt.code)
			t.Logf("description: %s", e.Description)
		})
	}
}

func TestRegistrationDisabled(t *testing.T) {
	f := newFixture(t, fixtureOptions{noRegistration: true})
	f.postJSON(t, "/v1/users", "", credentialsJSON("alice", testPassword)).wantError(t, http.StatusForbidden, codeRegistrationDisabled)
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	res := f.postJSON(t, "/v1/login", "", credentialsJSON("Alice", testPassword))
	if res.status != http.StatusOK {
		t.Fatalf("got status %d, want 200 (body %s)", res.status, res.body)
	}
	if got := res.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("got Cache-Control %q, want no-store", got)
	}
	if got := res.header.Get("Pragma"); got != "no-cache" {
		t.Errorf("got Pragma %q, want no-cache", got)
	}
	var m map[string]any
	res.decode(t, &m)
	for _, k := range []string{"access_token", "refresh_token", "session_id"} {
		if s, _ := m[k].(string); s == "" {
			t.Errorf("got %s = %v, want a string", k, m[k])
		}
	}
	if m["token_type"] != "Bearer" || m["expires_in"] != float64(900) {
		t.Errorf("got token_type %v, expires_in %v, want Bearer, 900", m["token_type"], m["expires_in"])
	}
}

func TestLoginFailuresLookTheSame(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	bodies := []string{
		credentialsJSON("alice", "wrong password!"),
		credentialsJSON("nobody", testPassword),
		credentialsJSON("alice", "short"),
		credentialsJSON("alice", ""),
		credentialsJSON("", testPassword),
		credentialsJSON("bad name", testPassword),
		credentialsJSON("alice", strings.Repeat("p", 5000)),
	}
	var first *response
	for _, body := range bodies {
		res := f.postJSON(t, "/v1/login", "", body)
		e := res.wantError(t, http.StatusUnauthorized, codeInvalidGrant)
		if e.Description != "Invalid username or password." {
			t.Errorf("got description %q", e.Description)
		}
		if got := res.header.Get("WWW-Authenticate"); got != "Bearer" {
			t.Errorf("got WWW-Authenticate %q, want Bearer", got)
		}
		if first == nil {
			first = res
		} else if string(res.body) != string(first.body) {
			t.Errorf("got body %s, want the same as for a wrong password: %s", res.body, first.body)
		}
	}
}

func TestRefreshGrant(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword)

	res := f.refresh(t, tok.RefreshToken)
	if res.status != http.StatusOK {
		t.Fatalf("got status %d, want 200 (body %s)", res.status, res.body)
	}
	if res.header.Get("Cache-Control") != "no-store" || res.header.Get("Pragma") != "no-cache" {
		t.Errorf("got Cache-Control %q, Pragma %q, want no-store, no-cache", res.header.Get("Cache-Control"), res.header.Get("Pragma"))
	}
	var next tokenResponse
	res.decode(t, &next)
	if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken || next.AccessToken == "" ||
		next.TokenType != "Bearer" || next.ExpiresIn != 900 || next.SessionID != tok.SessionID {
		t.Errorf("got %+v, want a new refresh token in session %s", next, tok.SessionID)
	}
	if res := f.send(t, http.MethodGet, "/v1/me", next.AccessToken); res.status != http.StatusOK {
		t.Errorf("new access token: got status %d, want 200", res.status)
	}

	// Within the grace window, the old token gets the same successor.
	var again tokenResponse
	f.refresh(t, tok.RefreshToken).decode(t, &again)
	if again.RefreshToken != next.RefreshToken {
		t.Errorf("repeat within grace: got another refresh token, want the same successor")
	}

	// After it, the reuse is theft: 400 invalid_grant, session revoked.
	f.clock.Advance(time.Minute)
	f.refresh(t, tok.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	f.refresh(t, next.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	f.send(t, http.MethodGet, "/v1/me", next.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
}

func TestTokenEndpointErrors(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword)
	rt := url.QueryEscape(tok.RefreshToken)

	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	tests := []struct {
		name   string
		path   string
		header http.Header
		body   string
		status int
		code   string
	}{
		{"JSON content type", "/oauth/token", http.Header{"Content-Type": {"application/json"}}, `{"grant_type":"refresh_token","refresh_token":"` + tok.RefreshToken + `"}`, 400, codeInvalidRequest},
		{"no content type", "/oauth/token", nil, "grant_type=refresh_token&refresh_token=" + rt, 400, codeInvalidRequest},
		{"missing grant_type", "/oauth/token", form, "refresh_token=" + rt, 400, codeInvalidRequest},
		{"empty grant_type is omitted", "/oauth/token", form, "grant_type=&refresh_token=" + rt, 400, codeInvalidRequest},
		{"duplicated grant_type", "/oauth/token", form, "grant_type=refresh_token&grant_type=refresh_token&refresh_token=" + rt, 400, codeInvalidRequest},
		{"duplicated refresh_token", "/oauth/token", form, "grant_type=refresh_token&refresh_token=" + rt + "&refresh_token=" + rt, 400, codeInvalidRequest},
		{"missing refresh_token", "/oauth/token", form, "grant_type=refresh_token", 400, codeInvalidRequest},
		{"parameters in the query string are not read", "/oauth/token?grant_type=refresh_token&refresh_token=" + rt, form, "", 400, codeInvalidRequest},
		{"bad percent-encoding", "/oauth/token", form, "grant_type=refresh_token&refresh_token=%zz", 400, codeInvalidRequest},
		{"client_credentials, unknown client", "/oauth/token", form, "grant_type=client_credentials&client_id=a&client_secret=b", 401, codeInvalidClient},
		{"password grant", "/oauth/token", form, "grant_type=password&username=alice&password=x", 400, codeUnsupportedGrantType},
		{"authorization_code grant without a client", "/oauth/token", form, "grant_type=authorization_code&code=x", 401, codeInvalidClient},
		{"device grant", "/oauth/token", form, "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=x", 400, codeUnsupportedGrantType},
		{"scope", "/oauth/token", form, "grant_type=refresh_token&scope=admin&refresh_token=" + rt, 400, codeInvalidScope},
		{"malformed refresh token", "/oauth/token", form, "grant_type=refresh_token&refresh_token=nope", 400, codeInvalidGrant},
		{"unknown refresh token", "/oauth/token", form, "grant_type=refresh_token&refresh_token=AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 400, codeInvalidGrant},
		{"oversized body", "/oauth/token", form, "grant_type=refresh_token&x=" + strings.Repeat("a", MaxBodyBytes), 400, codeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, request{method: http.MethodPost, path: tt.path, header: tt.header, body: tt.body})
			res.wantError(t, tt.status, tt.code)
			if res.header.Get("Cache-Control") != "no-store" {
				t.Errorf("got Cache-Control %q, want no-store", res.header.Get("Cache-Control"))
			}
		})
	}
	// None of the failures above used up the token; unknown parameters
	// and client_id are ignored (RFC 6749 §3.2).
	res := f.postForm(t, "/oauth/token", "client_id=web&foo=bar&grant_type=refresh_token&refresh_token="+rt)
	if res.status != http.StatusOK {
		t.Errorf("got status %d, want 200 (body %s)", res.status, res.body)
	}
	// A charset parameter is fine.
	res = f.do(t, request{method: http.MethodPost, path: "/oauth/token", header: http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=UTF-8"}}, body: "grant_type=refresh_token&refresh_token=" + rt})
	if res.status != http.StatusOK {
		t.Errorf("with charset: got status %d, want 200 (body %s)", res.status, res.body)
	}
}

func TestBearerAuthentication(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword)

	// No credentials: a bare challenge (RFC 6750 §3.1).
	for _, h := range []http.Header{{}, {"Authorization": {"Basic YWxpY2U6cHc="}}} {
		res := f.do(t, request{method: http.MethodGet, path: "/v1/me", header: h})
		res.wantError(t, http.StatusUnauthorized, codeUnauthorized)
		if got := res.header.Get("WWW-Authenticate"); got != "Bearer" {
			t.Errorf("%v: got WWW-Authenticate %q, want Bearer", h, got)
		}
	}
	// The token is never read from the query string.
	res := f.send(t, http.MethodGet, "/v1/me?access_token="+url.QueryEscape(tok.AccessToken), "")
	res.wantError(t, http.StatusUnauthorized, codeUnauthorized)

	// The scheme is case-insensitive.
	res = f.do(t, request{method: http.MethodGet, path: "/v1/me", header: http.Header{"Authorization": {"bearer " + tok.AccessToken}}})
	if res.status != http.StatusOK {
		t.Errorf("lower-case scheme: got status %d, want 200", res.status)
	}

	other := newFixture(t) // same issuer, different keys
	other.register(t, "alice", testPassword)
	forged := other.login(t, "alice", testPassword).AccessToken
	bad := []struct {
		name   string
		header []string
	}{
		{"garbage", []string{"Bearer garbage"}},
		{"empty", []string{"Bearer "}},
		{"refresh token", []string{"Bearer " + tok.RefreshToken}},
		{"signed by another server", []string{"Bearer " + forged}},
		{"tampered", []string{"Bearer " + tok.AccessToken[:len(tok.AccessToken)-4] + "AAAA"}},
		{"huge", []string{"Bearer " + strings.Repeat("a", 20000)}},
		{"two headers", []string{"Bearer " + tok.AccessToken, "Bearer " + tok.AccessToken}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, request{method: http.MethodGet, path: "/v1/me", header: http.Header{"Authorization": tt.header}})
			res.wantError(t, http.StatusUnauthorized, codeInvalidToken)
			got := res.header.Get("WWW-Authenticate")
			if !strings.HasPrefix(got, `Bearer error="invalid_token", error_description="`) {
				t.Errorf("got WWW-Authenticate %q, want Bearer error=\"invalid_token\", error_description=…", got)
			}
		})
	}

	// Expired.
	f.clock.Advance(16 * time.Minute)
	f.send(t, http.MethodGet, "/v1/me", tok.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
}

func TestMe(t *testing.T) {
	f := newFixture(t)
	id := f.register(t, "Alice", testPassword)
	tok := f.login(t, "alice", testPassword)
	res := f.send(t, http.MethodGet, "/v1/me", tok.AccessToken)
	if res.status != http.StatusOK {
		t.Fatalf("got status %d, want 200 (body %s)", res.status, res.body)
	}
	var m map[string]any
	res.decode(t, &m)
	roles, ok := m["roles"].([]any)
	if m["id"] != id || m["username"] != "Alice" || m["session_id"] != tok.SessionID || !ok || len(roles) != 0 || m["email_verified"] != false || len(m) != 5 {
		t.Errorf("got %s, want id %s, username Alice, email_verified false, roles [], session_id %s", res.body, id, tok.SessionID)
	}
}

func TestSessionsAndRevoke(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	f.register(t, "bob", testPassword)
	login := func(user, agent string) tokenResponse {
		res := f.do(t, request{method: http.MethodPost, path: "/v1/login",
			header: http.Header{"Content-Type": {"application/json"}, "User-Agent": {agent}, "X-Forwarded-For": {"203.0.113.9"}},
			body:   credentialsJSON(user, testPassword)})
		var tok tokenResponse
		res.decode(t, &tok)
		return tok
	}
	phone := login("alice", "phone/1.0")
	f.clock.Advance(time.Second)
	laptop := login("alice", "laptop/2.0")
	bob := login("bob", "bob/1.0")

	res := f.send(t, http.MethodGet, "/v1/sessions", laptop.AccessToken)
	if res.status != http.StatusOK {
		t.Fatalf("got status %d, want 200 (body %s)", res.status, res.body)
	}
	var list struct {
		Sessions []map[string]any `json:"sessions"`
	}
	res.decode(t, &list)
	if len(list.Sessions) != 2 {
		t.Fatalf("got %d sessions, want 2: %s", len(list.Sessions), res.body)
	}
	want := []struct {
		id, agent string
		current   bool
	}{{laptop.SessionID, "laptop/2.0", true}, {phone.SessionID, "phone/1.0", false}}
	for i, w := range want {
		s := list.Sessions[i]
		if s["id"] != w.id || s["user_agent"] != w.agent || s["current"] != w.current || s["client_addr"] != "127.0.0.1" {
			t.Errorf("session %d: got %v, want id %s, agent %s, current %v, client_addr 127.0.0.1 (X-Forwarded-For ignored)", i, s, w.id, w.agent, w.current)
		}
		for _, k := range []string{"created_at", "last_used_at", "expires_at", "idle_expires_at"} {
			if _, err := time.Parse(time.RFC3339, s[k].(string)); err != nil {
				t.Errorf("session %d: %s = %v, want an RFC 3339 time", i, k, s[k])
			}
		}
	}

	// Another user's session and an unknown one look the same: 404.
	e1 := f.send(t, http.MethodDelete, "/v1/sessions/"+bob.SessionID, laptop.AccessToken).wantError(t, http.StatusNotFound, codeNotFound)
	e2 := f.send(t, http.MethodDelete, "/v1/sessions/nope", laptop.AccessToken).wantError(t, http.StatusNotFound, codeNotFound)
	if e1 != e2 {
		t.Errorf("got %v for another user's session and %v for an unknown one, want the same", e1, e2)
	}
	if res := f.send(t, http.MethodGet, "/v1/me", bob.AccessToken); res.status != http.StatusOK {
		t.Errorf("bob's session: got status %d after alice tried to revoke it, want 200", res.status)
	}

	// Revoke the phone from the laptop.
	if res := f.send(t, http.MethodDelete, "/v1/sessions/"+phone.SessionID, laptop.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("got status %d, want 204 (body %s)", res.status, res.body)
	}
	if res := f.send(t, http.MethodDelete, "/v1/sessions/"+phone.SessionID, laptop.AccessToken); res.status != http.StatusNoContent {
		t.Errorf("revoking it again: got status %d, want 204 (body %s)", res.status, res.body)
	}
	f.send(t, http.MethodGet, "/v1/me", phone.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	f.refresh(t, phone.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	res = f.send(t, http.MethodGet, "/v1/sessions", laptop.AccessToken)
	res.decode(t, &list)
	if len(list.Sessions) != 1 || list.Sessions[0]["id"] != laptop.SessionID {
		t.Errorf("after revoking the phone: got %s, want the laptop only", res.body)
	}
}

func TestLogout(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	a := f.login(t, "alice", testPassword)
	b := f.login(t, "alice", testPassword)
	if res := f.send(t, http.MethodPost, "/v1/logout", a.AccessToken); res.status != http.StatusNoContent || len(res.body) != 0 {
		t.Fatalf("got status %d body %q, want 204 and no body", res.status, res.body)
	}
	f.send(t, http.MethodGet, "/v1/me", a.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	f.refresh(t, a.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	if res := f.send(t, http.MethodGet, "/v1/me", b.AccessToken); res.status != http.StatusOK {
		t.Errorf("other session: got status %d, want 200", res.status)
	}
	// Logging out twice: the token no longer authenticates.
	f.send(t, http.MethodPost, "/v1/logout", a.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
}

func TestLogoutAll(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	f.register(t, "bob", testPassword)
	a := f.login(t, "alice", testPassword)
	b := f.login(t, "alice", testPassword)
	bob := f.login(t, "bob", testPassword)
	if res := f.send(t, http.MethodPost, "/v1/logout/all", a.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("got status %d, want 204 (body %s)", res.status, res.body)
	}
	for _, tok := range []tokenResponse{a, b} {
		f.send(t, http.MethodGet, "/v1/me", tok.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
		f.refresh(t, tok.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	}
	if res := f.send(t, http.MethodGet, "/v1/me", bob.AccessToken); res.status != http.StatusOK {
		t.Errorf("bob: got status %d, want 200", res.status)
	}
}

func TestChangePassword(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	a := f.login(t, "alice", testPassword)
	b := f.login(t, "alice", testPassword)
	const newPassword = "tr0ub4dor & 3 staples"

	f.postJSON(t, "/v1/password", a.AccessToken, `{"current_password":"wrong password!","new_password":"`+newPassword+`"}`).
		wantError(t, http.StatusForbidden, codeAccessDenied)
	f.postJSON(t, "/v1/password", a.AccessToken, `{"current_password":"`+testPassword+`","new_password":"short"}`).
		wantError(t, http.StatusBadRequest, codeInvalidRequest)
	f.postJSON(t, "/v1/password", a.AccessToken, `{"current_password":"`+testPassword+`"}`).
		wantError(t, http.StatusBadRequest, codeInvalidRequest)
	f.postJSON(t, "/v1/password", "", `{"current_password":"`+testPassword+`","new_password":"`+newPassword+`"}`).
		wantError(t, http.StatusUnauthorized, codeUnauthorized)

	res := f.postJSON(t, "/v1/password", a.AccessToken, `{"current_password":"`+testPassword+`","new_password":"`+newPassword+`"}`)
	if res.status != http.StatusNoContent {
		t.Fatalf("got status %d, want 204 (body %s)", res.status, res.body)
	}
	if res := f.send(t, http.MethodGet, "/v1/me", a.AccessToken); res.status != http.StatusOK {
		t.Errorf("calling session: got status %d, want 200", res.status)
	}
	f.send(t, http.MethodGet, "/v1/me", b.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	f.postJSON(t, "/v1/login", "", credentialsJSON("alice", testPassword)).wantError(t, http.StatusUnauthorized, codeInvalidGrant)
	f.login(t, "alice", newPassword)
}

func TestJWKS(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword)
	res := f.send(t, http.MethodGet, "/.well-known/jwks.json", "")
	if res.status != http.StatusOK {
		t.Fatalf("got status %d, want 200", res.status)
	}
	if got, want := res.header.Get("Cache-Control"), "public, max-age=300"; got != want {
		t.Errorf("got Cache-Control %q, want %q", got, want)
	}
	if got := res.header.Get("Pragma"); got != "" {
		t.Errorf("got Pragma %q, want none", got)
	}
	if got := res.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("got Content-Type %q, want application/json", got)
	}
	set, err := jose.ParseKeySet(res.body)
	if err != nil {
		t.Fatalf("JWKS %s: %v", res.body, err)
	}
	var c jwt.AccessClaims
	p := jwt.NewParser(set, jwt.WithType("at+jwt"), jwt.WithIssuer(testIssuer), jwt.WithAudience("api"), jwt.WithNow(f.clock.Now))
	if err := p.Parse(tok.AccessToken, &c); err != nil {
		t.Fatalf("access token does not verify against the served JWKS: %v", err)
	}
	if strings.Contains(string(res.body), `"d"`) {
		t.Errorf("JWKS holds a private member: %s", res.body)
	}
}

func TestDiscovery(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		res := f.send(t, http.MethodGet, path, "")
		if res.status != http.StatusOK {
			t.Fatalf("%s: got status %d, want 200", path, res.status)
		}
		if got := res.header.Get("Cache-Control"); got != "public, max-age=300" {
			t.Errorf("%s: got Cache-Control %q", path, got)
		}
		var m map[string]any
		res.decode(t, &m)
		assertionAlgs := []any{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
		want := map[string]any{
			"issuer":                                testIssuer,
			"authorization_endpoint":                testIssuer + "/oauth/authorize",
			"token_endpoint":                        testIssuer + "/oauth/token",
			"userinfo_endpoint":                     testIssuer + "/oauth/userinfo",
			"jwks_uri":                              testIssuer + "/.well-known/jwks.json",
			"end_session_endpoint":                  testIssuer + "/oauth/logout",
			"pushed_authorization_request_endpoint": testIssuer + "/oauth/par",
			"device_authorization_endpoint":         testIssuer + "/oauth/device_authorization",
			"introspection_endpoint":                testIssuer + "/oauth/introspect",
			"revocation_endpoint":                   testIssuer + "/oauth/revoke",
			"scopes_supported":                      []any{"openid", "profile", "email", "offline_access"},
			"response_types_supported":              []any{"code"},
			"response_modes_supported":              []any{"query", "form_post"},
			"grant_types_supported":                 []any{"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange"},
			"code_challenge_methods_supported":      []any{"S256"},
			"subject_types_supported":               []any{"public"},
			// The active key's algorithm, so that clients accept the
			// ID tokens (go-oidc's default verifier wants it listed).
			"id_token_signing_alg_values_supported":         []any{"ES256"},
			"token_endpoint_auth_methods_supported":         []any{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
			"introspection_endpoint_auth_methods_supported": []any{"client_secret_basic", "client_secret_post", "private_key_jwt"},
			"revocation_endpoint_auth_methods_supported":    []any{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
			// private_key_jwt assertions: asymmetric algorithms only.
			"token_endpoint_auth_signing_alg_values_supported":         assertionAlgs,
			"revocation_endpoint_auth_signing_alg_values_supported":    assertionAlgs,
			"introspection_endpoint_auth_signing_alg_values_supported": assertionAlgs,
			"claims_supported": []any{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "at_hash",
				"preferred_username", "roles", "email", "email_verified"},
			"prompt_values_supported":                        []any{"none", "login", "consent", "select_account"},
			"acr_values_supported":                           []any{"pwd", "mfa"},
			"backchannel_logout_supported":                   true,
			"backchannel_logout_session_supported":           true,
			"authorization_response_iss_parameter_supported": true,
			"request_parameter_supported":                    false,
			"request_uri_parameter_supported":                true,
			// DPoP proofs (RFC 9449): asymmetric algorithms only.
			"dpop_signing_alg_values_supported":  []any{"ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"},
			"keycard_revocation_feed_endpoint":   testIssuer + "/v1/revocations",
			"keycard_revocation_stream_endpoint": testIssuer + "/v1/revocations/stream",
		}
		if len(m) != len(want) {
			t.Errorf("%s: got %d members, want %d: %s", path, len(m), len(want), res.body)
		}
		for k, v := range want {
			if !equalJSON(m[k], v) {
				t.Errorf("%s: got %s = %v, want %v", path, k, m[k], v)
			}
		}
	}
}

func equalJSON(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestHealthAndReady(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		res := f.send(t, http.MethodGet, path, "")
		if res.status != http.StatusOK || string(res.body) != "{\"status\":\"ok\"}\n" {
			t.Errorf("%s: got %d %s, want 200 {\"status\":\"ok\"}", path, res.status, res.body)
		}
	}

	var deadline bool
	g := newFixture(t, fixtureOptions{ready: func(ctx context.Context) error {
		_, deadline = ctx.Deadline()
		return errors.New("database is not reachable")
	}})
	res := g.send(t, http.MethodGet, "/readyz", "")
	if res.status != http.StatusServiceUnavailable {
		t.Errorf("got status %d, want 503", res.status)
	}
	var m map[string]string
	res.decode(t, &m)
	if m["status"] != "unavailable" || m["error"] != codeUnavailable || m["error_description"] != "database is not reachable" {
		t.Errorf("got %s", res.body)
	}
	if !deadline {
		t.Error("Ready was called without a deadline")
	}
	if res := g.send(t, http.MethodGet, "/healthz", ""); res.status != http.StatusOK {
		t.Errorf("healthz while not ready: got %d, want 200", res.status)
	}

	// Degraded is still ready, with the reasons.
	reasons := []string{"login throttle: per-instance limits (redis: connection refused)"}
	d := newFixture(t, fixtureOptions{degraded: func() []string { return reasons }})
	res = d.send(t, http.MethodGet, "/readyz", "")
	var body struct {
		Status   string   `json:"status"`
		Degraded []string `json:"degraded"`
	}
	res.decode(t, &body)
	if res.status != http.StatusOK || body.Status != "degraded" || len(body.Degraded) != 1 || body.Degraded[0] != reasons[0] {
		t.Errorf("degraded readyz: got %d %s", res.status, res.body)
	}
	reasons = nil
	if res := d.send(t, http.MethodGet, "/readyz", ""); res.status != http.StatusOK || string(res.body) != "{\"status\":\"ok\"}\n" {
		t.Errorf("recovered readyz: got %d %s", res.status, res.body)
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	f.send(t, http.MethodGet, "/nope", "").wantError(t, http.StatusNotFound, codeNotFound)
	f.send(t, http.MethodGet, "/v1/users/", "").wantError(t, http.StatusNotFound, codeNotFound)
	f.send(t, http.MethodDelete, "/v1/sessions/", "").wantError(t, http.StatusNotFound, codeNotFound)

	tests := []struct {
		method, path, allow string
	}{
		{http.MethodGet, "/v1/login", "POST"},
		{http.MethodGet, "/oauth/token", "OPTIONS, POST"},
		{http.MethodPut, "/v1/users", "POST"},
		{http.MethodPost, "/v1/me", "GET, HEAD"},
		{http.MethodPost, "/.well-known/jwks.json", "GET, HEAD, OPTIONS"},
		{http.MethodGet, "/v1/sessions/abc", "DELETE"},
		{http.MethodOptions, "/v1/login", "POST"},
	}
	for _, tt := range tests {
		res := f.send(t, tt.method, tt.path, "")
		res.wantError(t, http.StatusMethodNotAllowed, codeMethodNotAllowed)
		if got := res.header.Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: got Allow %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
}

func TestRequestID(t *testing.T) {
	f := newFixture(t)
	res := f.do(t, request{method: http.MethodGet, path: "/healthz", header: http.Header{"X-Request-Id": {"abc-123.x:y_z"}}})
	if got := res.header.Get("X-Request-Id"); got != "abc-123.x:y_z" {
		t.Errorf("got X-Request-Id %q, want the client's", got)
	}
	for _, bad := range []string{"", "has space", strings.Repeat("a", 65), "quote\"", "naïve"} {
		res := f.do(t, request{method: http.MethodGet, path: "/healthz", header: http.Header{"X-Request-Id": {bad}}})
		got := res.header.Get("X-Request-Id")
		if got == "" || got == bad || !plainID(got) {
			t.Errorf("client id %q: got X-Request-Id %q, want a new plain id", bad, got)
		}
	}
	a := f.send(t, http.MethodGet, "/healthz", "").header.Get("X-Request-Id")
	b := f.send(t, http.MethodGet, "/healthz", "").header.Get("X-Request-Id")
	if a == "" || a == b {
		t.Errorf("got ids %q and %q, want two different ids", a, b)
	}
	if !strings.Contains(f.logs.String(), `"request_id":"abc-123.x:y_z"`) {
		t.Errorf("log does not carry the request id:\n%s", f.logs.String())
	}
}
