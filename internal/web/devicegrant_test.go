package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/throttle"
)

// deviceClient registers a public client of the device grant.
func (f *fixture) deviceClient(t *testing.T, name string, firstParty bool) *keycard.Client {
	t.Helper()
	c, _, err := f.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: name, Scopes: []string{"orders:read"}, OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantDeviceCode, keycard.GrantRefreshToken}, Public: true, FirstParty: firstParty}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// deviceStart is the device's request for codes, over HTTP.
type deviceStart struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
}

// oauthAnswer is a token endpoint's answer, tokens or error.
type oauthAnswer struct {
	status       int
	Error        string `json:"error"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Scope        string `json:"scope"`
}

// apiForm posts a form to the API as a device (no cookies) and decodes
// the JSON answer into out.
func (f *fixture) apiForm(t *testing.T, path string, form url.Values, out any) int {
	t.Helper()
	res, err := http.PostForm(f.url+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("POST %s: %d %q is not JSON", path, res.StatusCode, body)
	}
	return res.StatusCode
}

func (f *fixture) startDevice(t *testing.T, c *keycard.Client, scope string) deviceStart {
	t.Helper()
	var d deviceStart
	if status := f.apiForm(t, "/oauth/device_authorization", url.Values{"client_id": {c.ID}, "scope": {scope}}, &d); status != http.StatusOK {
		t.Fatalf("device authorization: status %d", status)
	}
	return d
}

// poll is one poll of the token endpoint with the device code.
func (f *fixture) poll(t *testing.T, c *keycard.Client, d deviceStart) oauthAnswer {
	t.Helper()
	var a oauthAnswer
	a.status = f.apiForm(t, "/oauth/token", url.Values{"grant_type": {keycard.GrantDeviceCode}, "client_id": {c.ID}, "device_code": {d.DeviceCode}}, &a)
	return a
}

// wantPoll polls after waiting the interval and fails unless the answer
// is the error code want ("" for tokens).
func (f *fixture) wantPoll(t *testing.T, c *keycard.Client, d deviceStart, want string) oauthAnswer {
	t.Helper()
	f.clock.Advance(auth.DeviceInterval)
	a := f.poll(t, c, d)
	if a.Error != want || (want == "") != (a.status == http.StatusOK) {
		t.Fatalf("poll: got status %d, error %q; want error %q", a.status, a.Error, want)
	}
	return a
}

// deviceConfirm signs the browser in if needed, follows the device's
// verification_uri_complete to the code form and submits the code, and
// returns the confirmation page.
func (b *browser) deviceConfirm(d deviceStart, typed string) *page {
	b.t.Helper()
	form := b.get(strings.TrimPrefix(d.VerificationURIComplete, b.base))
	if form.status != http.StatusOK {
		b.t.Fatalf("GET the verification URI: status %d, Location %q", form.status, form.location())
	}
	return b.post("/device", url.Values{"csrf_token": {b.csrf(form)}, "user_code": {typed}})
}

// TestDeviceFlow is the whole device grant over HTTP: a device asks for
// codes and polls; the user follows the verification URI, signs in on the
// way, types the code (in lower case, without its dash), sees the
// application and its scopes, approves; the device gets tokens, once.
func TestDeviceFlow(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c := f.deviceClient(t, "Orders CLI", false)
	d := f.startDevice(t, c, "openid profile offline_access orders:read")
	if d.VerificationURI != f.url+"/device" {
		t.Errorf("got verification_uri %q, want %s/device", d.VerificationURI, f.url)
	}
	f.poll(t, c, d)
	f.wantPoll(t, c, d, auth.DeviceAuthorizationPending)

	b := f.browser(t)
	p := b.get(strings.TrimPrefix(d.VerificationURIComplete, f.url))
	wantSecurityHeaders(t, "GET /device signed out", p)
	loc, err := url.Parse(p.location())
	if p.status != http.StatusSeeOther || err != nil || loc.Path != "/signin" {
		t.Fatalf("signed out, the verification URI: status %d, Location %q; want the sign-in page", p.status, p.location())
	}
	next := loc.Query().Get("next")
	if want := "/device?user_code=" + url.QueryEscape(d.UserCode); next != want {
		t.Errorf("sign-in next %q, want %q", next, want)
	}
	if p := b.signIn("alice", testPassword, next); p.status != http.StatusSeeOther || p.location() != next {
		t.Fatalf("sign in: status %d, Location %q, want back to %q", p.status, p.location(), next)
	}
	form := b.get(next)
	if form.status != http.StatusOK || !strings.Contains(form.body, `value="`+d.UserCode+`"`) {
		t.Fatalf("the code form: status %d, the code not filled in:\n%s", form.status, form.body)
	}
	wantSecurityHeaders(t, "GET /device", form)
	wantAccessibleHTML(t, "GET /device", form.body)

	typed := strings.ToLower(strings.ReplaceAll(d.UserCode, "-", " "))
	confirm := b.post("/device", url.Values{"csrf_token": {b.csrf(form)}, "user_code": {typed}})
	if confirm.status != http.StatusOK {
		t.Fatalf("POST /device: status %d:\n%s", confirm.status, confirm.body)
	}
	wantSecurityHeaders(t, "the confirmation page", confirm)
	wantAccessibleHTML(t, "the confirmation page", confirm.body)
	for _, want := range []string{"Orders CLI", d.UserCode, "See your username and roles", "Stay signed in while you are away", "orders:read", "account page"} {
		if !strings.Contains(confirm.body, want) {
			t.Errorf("the confirmation page does not show %q", want)
		}
	}
	f.wantPoll(t, c, d, auth.DeviceAuthorizationPending)

	done := b.post("/device/decide", url.Values{"csrf_token": {b.csrf(confirm)}, "user_code": {d.UserCode}, "decision": {"approve"}})
	if done.status != http.StatusOK || !strings.Contains(done.body, "Orders CLI is signed in as alice") {
		t.Fatalf("approve: status %d:\n%s", done.status, done.body)
	}
	wantSecurityHeaders(t, "the approval page", done)
	tok := f.wantPoll(t, c, d, "")
	if tok.AccessToken == "" || tok.IDToken == "" || tok.RefreshToken == "" || tok.Scope != "openid profile offline_access orders:read" {
		t.Fatalf("got tokens %+v", tok)
	}
	consents, err := f.svc.Consents(context.Background(), f.userID(t, "alice"))
	if err != nil || len(consents) != 1 || consents[0].ClientID != c.ID {
		t.Errorf("alice's consents after approving a third-party device: %+v, %v", consents, err)
	}
	// The device code is good once; the user code is used up.
	f.wantPoll(t, c, d, "invalid_grant")
	if again := b.deviceConfirm(d, d.UserCode); again.status != http.StatusConflict || !strings.Contains(again.body, "used already") {
		t.Errorf("the used user code again: status %d, want 409", again.status)
	}
	// The second use revoked the first's grant: its refresh token is
	// refused.
	var refreshed oauthAnswer
	if status := f.apiForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ID}, "refresh_token": {tok.RefreshToken}}, &refreshed); status != http.StatusBadRequest {
		t.Errorf("refresh after the device code was used twice: status %d, want 400", status)
	}
}

// userID returns the id of a user.
func (f *fixture) userID(t *testing.T, name string) string {
	t.Helper()
	users, err := f.svc.ListUsers(context.Background(), name, "", 10)
	if err != nil || len(users) == 0 {
		t.Fatalf("user %s: %v", name, err)
	}
	return users[0].ID
}

// TestDeviceDenyAndSignOut: a denied device gets access_denied; an
// approved first-party device's grant ends when the browser signs out.
func TestDeviceDenyAndSignOut(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c := f.deviceClient(t, "Keycard CLI", true)
	b := f.browser(t)
	b.mustSignIn("alice")

	d := f.startDevice(t, c, "openid")
	confirm := b.deviceConfirm(d, d.UserCode)
	if confirm.status != http.StatusOK {
		t.Fatalf("POST /device: status %d", confirm.status)
	}
	if strings.Contains(confirm.body, "account page") {
		t.Error("a first-party device's page speaks of taking a consent back")
	}
	denied := b.post("/device/decide", url.Values{"csrf_token": {b.csrf(confirm)}, "user_code": {d.UserCode}, "decision": {"deny"}})
	if denied.status != http.StatusOK || !strings.Contains(denied.body, "was not signed in") {
		t.Fatalf("deny: status %d:\n%s", denied.status, denied.body)
	}
	f.wantPoll(t, c, d, auth.DeviceAccessDenied)

	d = f.startDevice(t, c, "openid")
	confirm = b.deviceConfirm(d, d.UserCode)
	b.post("/device/decide", url.Values{"csrf_token": {b.csrf(confirm)}, "user_code": {d.UserCode}, "decision": {"approve"}})
	tok := f.wantPoll(t, c, d, "")
	if tok.RefreshToken == "" {
		t.Fatal("a first-party device got no refresh token")
	}
	if p := b.postFrom("/account", "/signout", nil); p.status != http.StatusSeeOther {
		t.Fatalf("sign out: status %d", p.status)
	}
	var a oauthAnswer
	if status := f.apiForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ID}, "refresh_token": {tok.RefreshToken}}, &a); status != http.StatusBadRequest || a.Error != "invalid_grant" {
		t.Errorf("the device's refresh after the browser signed out: status %d %q, want 400 invalid_grant", status, a.Error)
	}
}

// TestDeviceFormsCSRF: the code form and the approval need the session's
// CSRF token and the pages' origin; a refused approval leaves the device
// pending. A browser that is not signed in is sent to sign in.
func TestDeviceFormsCSRF(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	f.addUser(t, "mallory")
	c := f.deviceClient(t, "TV", false)
	d := f.startDevice(t, c, "openid")
	b := f.browser(t)
	b.mustSignIn("alice")
	confirm := b.deviceConfirm(d, d.UserCode)
	token := b.csrf(confirm)

	other := f.browser(t)
	other.mustSignIn("mallory")
	malloryToken := other.csrf(other.get("/device"))

	approve := func(csrf string) url.Values {
		return url.Values{"csrf_token": {csrf}, "user_code": {d.UserCode}, "decision": {"approve"}}
	}
	for _, tc := range []struct {
		name   string
		path   string
		form   url.Values
		header http.Header
	}{
		{"approve without a token", "/device/decide", url.Values{"user_code": {d.UserCode}, "decision": {"approve"}}, nil},
		{"approve with another session's token", "/device/decide", approve(malloryToken), nil},
		{"approve from another site", "/device/decide", approve(token), http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}},
		{"approve with no origin at all", "/device/decide", approve(token), http.Header{}},
		{"a code without a token", "/device", url.Values{"user_code": {d.UserCode}}, nil},
	} {
		p := b.send(http.MethodPost, tc.path, tc.form, tc.header)
		if p.status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", tc.name, p.status)
		}
	}
	f.wantPoll(t, c, d, auth.DeviceAuthorizationPending)
	if p := b.post("/device/decide", approve(token)); p.status != http.StatusOK {
		t.Fatalf("approve: status %d", p.status)
	}
	f.wantPoll(t, c, d, "")

	// Signed out, a form post goes to sign in and back to the code form.
	anon := f.browser(t)
	p := anon.post("/device/decide", approve(token))
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/signin?next=%2Fdevice") {
		t.Errorf("signed out, POST /device/decide: status %d, Location %q; want the sign-in page", p.status, p.location())
	}
	if p := anon.get("/device"); p.status != http.StatusSeeOther || p.location() != "/signin?next=%2Fdevice" {
		t.Errorf("signed out, GET /device: status %d, Location %q", p.status, p.location())
	}
	if p := b.post("/device/decide", url.Values{"csrf_token": {token}, "user_code": {d.UserCode}, "decision": {"maybe"}}); p.status != http.StatusBadRequest {
		t.Errorf("an unknown decision: status %d, want 400", p.status)
	}
}

// TestDeviceCodeGuessing: wrong codes are refused on the form and, past
// the limit, throttled with Retry-After, even for the right code; an
// expired code is refused like an unknown one and its device is told
// expired_token.
func TestDeviceCodeGuessing(t *testing.T) {
	f := newFixture(t, fixtureOptions{throttle: &throttle.Policy{Burst: 3, Refill: time.Hour}})
	f.addUser(t, "alice")
	c := f.deviceClient(t, "TV", false)
	d := f.startDevice(t, c, "openid")
	b := f.browser(t)
	b.mustSignIn("alice")
	form := b.get("/device")
	token := b.csrf(form)
	wrong := "BBBB-BBBB"
	if d.UserCode == wrong {
		wrong = "CCCC-CCCC"
	}
	if p := b.post("/device", url.Values{"csrf_token": {token}, "user_code": {"A1"}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, "8 letters") {
		t.Errorf("a malformed code: status %d, want 400 saying what a code is", p.status)
	}
	for i := range 3 {
		p := b.post("/device", url.Values{"csrf_token": {token}, "user_code": {wrong}})
		if p.status != http.StatusNotFound || !strings.Contains(p.body, "no such code") || !strings.Contains(p.body, `value="`+wrong+`"`) {
			t.Fatalf("wrong code %d: status %d, want 404 on the form with the code kept:\n%s", i+1, p.status, p.body)
		}
	}
	p := b.post("/device", url.Values{"csrf_token": {token}, "user_code": {d.UserCode}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many codes") {
		t.Fatalf("the right code after 3 wrong ones: status %d, Retry-After %q; want 429", p.status, p.header.Get("Retry-After"))
	}
	p = b.post("/device/decide", url.Values{"csrf_token": {token}, "user_code": {d.UserCode}, "decision": {"approve"}})
	if p.status != http.StatusTooManyRequests {
		t.Fatalf("approving while throttled: status %d, want 429", p.status)
	}
	f.wantPoll(t, c, d, auth.DeviceAuthorizationPending)

	// Past the back-off and past the code's lifetime: an expired code is
	// no code.
	f.clock.Advance(keycard.DeviceCodeLifetime)
	if p := b.post("/device", url.Values{"csrf_token": {token}, "user_code": {d.UserCode}}); p.status != http.StatusNotFound {
		t.Errorf("an expired code: status %d, want 404", p.status)
	}
	f.wantPoll(t, c, d, auth.DeviceExpiredToken)
}
