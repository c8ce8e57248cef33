package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// deviceClients registers the clients of the device tests: a first-party
// public one of the device grant, a confidential one (with its secret),
// and a public client of the code grant only.
func (f *fixture) deviceClients(t *testing.T) (public, confidential *keycard.Client, secret string, codeOnly *keycard.Client) {
	t.Helper()
	ctx := context.Background()
	var err error
	public, _, err = f.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "CLI", Scopes: []string{"orders:read"}, OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantDeviceCode, keycard.GrantRefreshToken}, Public: true, FirstParty: true}})
	if err != nil {
		t.Fatal(err)
	}
	confidential, secret, err = f.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "TV", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantDeviceCode}}})
	if err != nil {
		t.Fatal(err)
	}
	codeOnly, _, err = f.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "SPA", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantAuthorizationCode}, RedirectURIs: []string{"https://spa.example/cb"}, Public: true}})
	if err != nil {
		t.Fatal(err)
	}
	return public, confidential, secret, codeOnly
}

// deviceStart asks for a device code over HTTP.
func (f *fixture) deviceStart(t testing.TB, clientID, scope string) deviceAuthorizationResponse {
	t.Helper()
	res := f.postForm(t, "/oauth/device_authorization", url.Values{"client_id": {clientID}, "scope": {scope}}.Encode())
	if res.status != http.StatusOK {
		t.Fatalf("device authorization: status %d, body %s", res.status, res.body)
	}
	var d deviceAuthorizationResponse
	res.decode(t, &d)
	return d
}

// pollDevice polls the token endpoint with a device code.
func (f *fixture) pollDevice(t *testing.T, clientID, deviceCode string) *response {
	t.Helper()
	return f.postForm(t, "/oauth/token", url.Values{"grant_type": {keycard.GrantDeviceCode}, "client_id": {clientID}, "device_code": {deviceCode}}.Encode())
}

// browserSession signs a user in as the pages would.
func (f *fixture) browserSession(t *testing.T, name string) *auth.BrowserSession {
	t.Helper()
	ctx := context.Background()
	tok, err := f.svc.Login(ctx, name, testPassword, auth.Agent{UserAgent: "browser"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.svc.BrowserSession(ctx, tok.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var userCodeRE = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// TestDeviceAuthorizationEndpoint: the device authorization request's
// answer, and its refusals.
func TestDeviceAuthorizationEndpoint(t *testing.T) {
	f := newFixture(t)
	public, confidential, secret, codeOnly := f.deviceClients(t)
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	basic := func(id, secret string) http.Header {
		h := form.Clone()
		r, _ := http.NewRequest("POST", "/", nil)
		r.SetBasicAuth(id, secret)
		h.Set("Authorization", r.Header.Get("Authorization"))
		return h
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		body   string
		status int
		code   string
	}{
		{name: "not a form", header: http.Header{"Content-Type": {"application/json"}}, body: `{"client_id":"x"}`, status: 400, code: codeInvalidRequest},
		{name: "no client", header: form, body: "scope=openid", status: 401, code: codeInvalidClient},
		{name: "unknown client", header: form, body: "client_id=nobody&scope=openid", status: 401, code: codeInvalidClient},
		{name: "a confidential client by its id alone", header: form, body: "client_id=" + confidential.ID + "&scope=openid", status: 401, code: codeInvalidClient},
		{name: "a wrong secret", header: basic(confidential.ID, "wrong"), body: "scope=openid", status: 401, code: codeInvalidClient},
		{name: "a public client that authenticates", header: basic(public.ID, "x"), body: "scope=openid", status: 401, code: codeInvalidClient},
		{name: "a client without the grant", header: form, body: "client_id=" + codeOnly.ID + "&scope=openid", status: 400, code: codeUnauthorizedClient},
		{name: "no scope", header: form, body: "client_id=" + public.ID, status: 400, code: codeInvalidScope},
		{name: "a scope not allowed", header: form, body: "client_id=" + public.ID + "&scope=openid+admin:all", status: 400, code: codeInvalidScope},
		{name: "a malformed scope", header: form, body: "client_id=" + public.ID + "&scope=openid+%22x%22", status: 400, code: codeInvalidScope},
		{name: "a repeated parameter", header: form, body: "client_id=" + public.ID + "&scope=openid&scope=profile", status: 400, code: codeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := f.do(t, request{method: http.MethodPost, path: "/oauth/device_authorization", header: tc.header, body: tc.body})
			res.wantError(t, tc.status, tc.code)
		})
	}
	res := f.do(t, request{method: http.MethodPost, path: "/oauth/device_authorization", header: basic(confidential.ID, secret), body: "scope=openid"})
	if res.status != http.StatusOK {
		t.Fatalf("an authenticated confidential client: status %d, body %s", res.status, res.body)
	}
	res = f.postForm(t, "/oauth/device_authorization", "client_id="+public.ID+"&scope=openid+profile+orders:read")
	if res.status != http.StatusOK {
		t.Fatalf("a public client: status %d, body %s", res.status, res.body)
	}
	if cc := res.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("got Cache-Control %q, want no-store", cc)
	}
	var d deviceAuthorizationResponse
	res.decode(t, &d)
	if !userCodeRE.MatchString(d.UserCode) {
		t.Errorf("got user_code %q, want XXXX-XXXX of the unambiguous letters", d.UserCode)
	}
	if d.VerificationURI != testIssuer+"/device" || d.VerificationURIComplete != testIssuer+"/device?user_code="+d.UserCode {
		t.Errorf("got verification URIs %q and %q", d.VerificationURI, d.VerificationURIComplete)
	}
	if d.ExpiresIn != 600 || d.Interval != 5 || d.DeviceCode == "" {
		t.Errorf("got expires_in %d, interval %d, device_code %q; want 600, 5, a code", d.ExpiresIn, d.Interval, d.DeviceCode)
	}
}

// TestDeviceCodeGrant walks a device code through every answer of RFC
// 8628 §3.5, then uses it twice.
func TestDeviceCodeGrant(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	public, confidential, secret, codeOnly := f.deviceClients(t)
	d := f.deviceStart(t, public.ID, "openid profile orders:read")

	f.pollDevice(t, public.ID, d.DeviceCode).wantError(t, 400, auth.DeviceAuthorizationPending)
	// At once again: too soon.
	f.pollDevice(t, public.ID, d.DeviceCode).wantError(t, 400, auth.DeviceSlowDownError)
	f.clock.Advance(4 * time.Second)
	f.pollDevice(t, public.ID, d.DeviceCode).wantError(t, 400, auth.DeviceSlowDownError) // each poll counts
	f.clock.Advance(auth.DeviceInterval)
	f.pollDevice(t, public.ID, d.DeviceCode).wantError(t, 400, auth.DeviceAuthorizationPending)

	// Requests that are refused whatever the code's state.
	for _, tc := range []struct {
		name   string
		body   url.Values
		status int
		code   string
	}{
		{"no device_code", url.Values{"client_id": {public.ID}}, 400, codeInvalidRequest},
		{"a malformed device code", url.Values{"client_id": {public.ID}, "device_code": {"garbage"}}, 400, codeInvalidGrant},
		{"an unknown device code", url.Values{"client_id": {public.ID}, "device_code": {"AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}, 400, codeInvalidGrant},
		{"the device code with a wrong secret", url.Values{"client_id": {public.ID}, "device_code": {d.DeviceCode[:23] + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}, 400, codeInvalidGrant},
		{"no client", url.Values{"device_code": {d.DeviceCode}}, 401, codeInvalidClient},
		{"a client without the grant", url.Values{"client_id": {codeOnly.ID}, "device_code": {d.DeviceCode}}, 400, codeUnauthorizedClient},
		{"another client's device code", url.Values{"client_id": {confidential.ID}, "client_secret": {secret}, "device_code": {d.DeviceCode}}, 400, codeInvalidGrant},
	} {
		f.clock.Advance(auth.DeviceInterval)
		tc.body.Set("grant_type", keycard.GrantDeviceCode)
		f.postForm(t, "/oauth/token", tc.body.Encode()).wantError(t, tc.status, tc.code)
	}

	b := f.browserSession(t, "alice")
	if _, err := f.svc.DecideDevice(context.Background(), b, d.UserCode, true, auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(auth.DeviceInterval)
	// Approved, the code is still the device's alone.
	f.postForm(t, "/oauth/token", url.Values{"grant_type": {keycard.GrantDeviceCode}, "client_id": {confidential.ID}, "client_secret": {secret},
		"device_code": {d.DeviceCode}}.Encode()).wantError(t, 400, codeInvalidGrant)
	res := f.pollDevice(t, public.ID, d.DeviceCode)
	if res.status != http.StatusOK {
		t.Fatalf("approved: status %d, body %s", res.status, res.body)
	}
	var tok tokenResponse
	res.decode(t, &tok)
	if tok.AccessToken == "" || tok.IDToken == "" || tok.RefreshToken == "" || tok.Scope != "openid profile orders:read" {
		t.Fatalf("got tokens %+v; want access, ID and refresh token (a first-party client) for the scope asked", tok)
	}
	if info := f.send(t, http.MethodGet, "/oauth/userinfo", tok.AccessToken); info.status != http.StatusOK {
		t.Fatalf("userinfo with the device's token: status %d %s", info.status, info.body)
	}

	// Presented again, the code revokes what its first use got.
	f.clock.Advance(auth.DeviceInterval)
	f.pollDevice(t, public.ID, d.DeviceCode).wantError(t, 400, codeInvalidGrant)
	if info := f.send(t, http.MethodGet, "/oauth/userinfo", tok.AccessToken); info.status != http.StatusUnauthorized {
		t.Errorf("userinfo after the device code was used twice: status %d, want 401", info.status)
	}
	f.postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {public.ID}, "refresh_token": {tok.RefreshToken}}.Encode()).
		wantError(t, 400, codeInvalidGrant)
}

// TestDeviceCodeDeniedExpiredEnded: a denied code is access_denied, an
// expired one expired_token (approved or not), and one approved in a
// browser session that has ended since gets nothing.
func TestDeviceCodeDeniedExpiredEnded(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	public, _, _, _ := f.deviceClients(t)
	ctx := context.Background()
	b := f.browserSession(t, "alice")

	denied := f.deviceStart(t, public.ID, "openid")
	if _, err := f.svc.DecideDevice(ctx, b, denied.UserCode, false, auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	f.pollDevice(t, public.ID, denied.DeviceCode).wantError(t, 400, auth.DeviceAccessDenied)
	// Decided, it cannot be approved after all.
	if _, err := f.svc.DecideDevice(ctx, b, denied.UserCode, true, auth.Agent{}); keycard.ErrorCode(err) != keycard.ECONFLICT {
		t.Errorf("approving a denied code: got %v, want ECONFLICT", err)
	}

	pending := f.deviceStart(t, public.ID, "openid")
	approved := f.deviceStart(t, public.ID, "openid")
	if _, err := f.svc.DecideDevice(ctx, b, approved.UserCode, true, auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(keycard.DeviceCodeLifetime)
	f.pollDevice(t, public.ID, pending.DeviceCode).wantError(t, 400, auth.DeviceExpiredToken)
	f.pollDevice(t, public.ID, approved.DeviceCode).wantError(t, 400, auth.DeviceExpiredToken)
	// Its user code is gone with it.
	if _, err := f.svc.LookupDevice(ctx, b, pending.UserCode, auth.Agent{}); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("the user code of an expired device code: got %v, want ENOTFOUND", err)
	}

	b = f.browserSession(t, "alice")
	ended := f.deviceStart(t, public.ID, "openid")
	if _, err := f.svc.DecideDevice(ctx, b, ended.UserCode, true, auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.EndBrowserSession(ctx, b, auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	f.pollDevice(t, public.ID, ended.DeviceCode).wantError(t, 400, codeInvalidGrant)
}
