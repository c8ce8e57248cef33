package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// exchangeForm returns the form of a token exchange of subject for the
// audience, with extra parameters (name, value pairs).
func exchangeForm(subject, audience string, extra ...string) string {
	v := url.Values{"grant_type": {keycard.GrantTokenExchange}, "subject_token": {subject},
		"subject_token_type": {auth.TokenTypeURIAccess}, "audience": {audience}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v.Encode()
}

// TestTokenExchangeEndpoint exchanges a token at POST /oauth/token, and
// sends the endpoint's attacks: each answered 4xx with its RFC 8693 /
// RFC 6749 code, never 5xx. Registration, the admin API's field and
// discovery come along.
func TestTokenExchangeEndpoint(t *testing.T) {
	f := newAdminFixture(t)
	// A service client of token exchange, registered by the admin API,
	// for orders-api and for the server's own audience ("api").
	res := f.call(t, http.MethodPost, "/admin/v1/clients", `{"name":"service A","grant_types":["client_credentials","`+keycard.GrantTokenExchange+`"],"token_exchange_audiences":["orders-api","api"]}`)
	var created adminClientJSON
	ok(t, res, http.StatusCreated, &created)
	if !slices.Equal(created.TokenExchangeAudiences, []string{"orders-api", "api"}) || !slices.Contains(created.GrantTypes, keycard.GrantTokenExchange) {
		t.Fatalf("created client %+v", created)
	}
	a := serviceClient{created.ID, created.Secret}
	res = f.call(t, http.MethodPost, "/admin/v1/clients", `{"name":"no audiences","grant_types":["`+keycard.GrantTokenExchange+`"]}`)
	res.wantError(t, http.StatusBadRequest, codeInvalidRequest)
	plain := f.newClient(t, []string{"orders:read"}, nil)

	f.register(t, "alice", testPassword)
	user := f.login(t, "alice", testPassword)

	res = f.postClient(t, "/oauth/token", a, exchangeForm(user.AccessToken, "orders-api"))
	if res.status != http.StatusOK {
		t.Fatalf("exchange: status %d, body %s", res.status, res.body)
	}
	var got map[string]any
	res.decode(t, &got)
	if got["issued_token_type"] != auth.TokenTypeURIAccess || got["token_type"] != "Bearer" || got["access_token"] == "" ||
		got["expires_in"] == nil || got["refresh_token"] != nil {
		t.Errorf("exchange response %v", got)
	}
	if cc := res.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	exchanged := got["access_token"].(string)
	if in := f.introspect(t, a, exchanged); in["active"] != true || in["sid"] != user.SessionID || in["client_id"] != a.id || in["aud"] != "orders-api" {
		t.Errorf("introspection of the exchanged token: %v", in)
	}

	// A delegated token for the server's own audience is still no key to
	// the user's account or the admin API.
	res = f.postClient(t, "/oauth/token", a, exchangeForm(f.token, "api"))
	if res.status != http.StatusOK {
		t.Fatalf("exchange of the admin's token: status %d, body %s", res.status, res.body)
	}
	res.decode(t, &got)
	delegated := got["access_token"].(string)
	f.send(t, http.MethodGet, "/admin/v1/clients", delegated).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	f.send(t, http.MethodGet, "/v1/me", delegated).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	f.postJSON(t, "/v1/logout", delegated, "").wantError(t, http.StatusUnauthorized, codeInvalidToken)

	form := func(extra ...string) string { return exchangeForm(user.AccessToken, "orders-api", extra...) }
	for _, tc := range []struct {
		name   string
		client *serviceClient // nil: no client authentication
		header http.Header
		body   string
		status int
		code   string
	}{
		{name: "no client authentication", body: form(), status: http.StatusUnauthorized, code: codeInvalidClient},
		{name: "client_id alone", body: form("client_id", a.id), status: http.StatusUnauthorized, code: codeInvalidClient},
		{name: "wrong secret", client: &serviceClient{a.id, a.secret + "x"}, body: form(), status: http.StatusUnauthorized, code: codeInvalidClient},
		{name: "client without the grant", client: &plain, body: form(), status: http.StatusBadRequest, code: codeUnauthorizedClient},
		{name: "disallowed audience", client: &a, body: exchangeForm(user.AccessToken, "billing-api"), status: http.StatusBadRequest, code: "invalid_target"},
		{name: "wider scope", client: &a, body: form("scope", "orders:write"), status: http.StatusBadRequest, code: codeInvalidScope},
		{name: "refresh token as subject", client: &a, body: exchangeForm(user.RefreshToken, "orders-api"), status: http.StatusBadRequest, code: codeInvalidRequest},
		{name: "garbage subject", client: &a, body: exchangeForm("x.y.z", "orders-api"), status: http.StatusBadRequest, code: codeInvalidRequest},
		{name: "oversized subject", client: &a, body: exchangeForm(strings.Repeat("a", 20000), "orders-api"), status: http.StatusBadRequest, code: codeInvalidRequest},
		{name: "no subject", client: &a, body: form("subject_token", ""), status: http.StatusBadRequest, code: codeInvalidRequest},
		{name: "requested refresh token", client: &a, body: form("requested_token_type", auth.TokenTypeURIRefresh), status: http.StatusBadRequest, code: codeInvalidRequest},
		{name: "audience twice", client: &a, body: form() + "&audience=orders-api", status: http.StatusBadRequest, code: codeInvalidRequest},
		{name: "subject twice", client: &a, body: form() + "&subject_token=x", status: http.StatusBadRequest, code: codeInvalidRequest},
		{name: "actor without type", client: &a, body: form("actor_token", user.AccessToken), status: http.StatusBadRequest, code: codeInvalidRequest},
		{name: "invalid UTF-8", client: &a, body: form("scope", "\xff"), status: http.StatusBadRequest, code: codeInvalidScope},
	} {
		h := formHeader()
		if tc.client != nil {
			h = formHeader(basic(tc.client.id, tc.client.secret))
		}
		res := f.do(t, request{method: http.MethodPost, path: "/oauth/token", header: h, body: tc.body})
		if res.status >= 500 {
			t.Errorf("%s: status %d", tc.name, res.status)
		}
		t.Run(tc.name, func(t *testing.T) { res.wantError(t, tc.status, tc.code) })
	}

	// Discovery names the grant.
	var meta map[string]any
	f.send(t, http.MethodGet, "/.well-known/openid-configuration", "").decode(t, &meta)
	if grants, _ := meta["grant_types_supported"].([]any); !slices.Contains(grants, any(keycard.GrantTokenExchange)) {
		t.Errorf("grant_types_supported %v lacks token exchange", meta["grant_types_supported"])
	}
	// Logout of the user ends the exchanged token.
	f.postJSON(t, "/v1/logout", user.AccessToken, "")
	f.wantInactive(t, a, "exchanged token after logout", exchanged)
}
