package auth

import (
	"context"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

func TestACROf(t *testing.T) {
	for _, c := range []struct {
		amr  []string
		want string
	}{
		{nil, ""},
		{[]string{"pwd"}, ACRPassword},
		{[]string{"pwd", "otp", "mfa"}, ACRMFA},
		{[]string{"hwk"}, ACRPassword},
		{[]string{"swk", "mfa"}, ACRMFA},
		{[]string{"hwk", "mfa"}, ACRMFA},
		{[]string{"fed"}, ACRPassword},
	} {
		if got := acrOf(c.amr); got != c.want {
			t.Errorf("acrOf(%q): got %q, want %q", c.amr, got, c.want)
		}
	}
}

// sessionWithAMR signs name in with the authentication methods amr, as a
// second-factor or passkey sign-in would, by writing the session to the
// store directly; it returns the session's refresh token and the browser
// session it makes.
func (f *fixture) sessionWithAMR(t *testing.T, name string, amr []string) (string, *BrowserSession) {
	t.Helper()
	ctx := context.Background()
	u, err := f.svc.UserByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := keycard.NewID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	refresh, rid, hash, err := keycard.NewRefreshToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	sess := &keycard.Session{ID: sid, UserID: u.ID, CreatedAt: now, LastUsedAt: now, AuthTime: now, AMR: amr,
		IdleTimeout: time.Hour, ExpiresAt: now.Add(24 * time.Hour)}
	if err := f.db.Stores().Sessions.CreateSession(ctx, sess, &keycard.RefreshToken{ID: rid, SecretHash: hash, CreatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := f.svc.BrowserSession(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	return refresh, b
}

// accessClaims verifies an access token with the server's keys.
func (f *fixture) accessClaims(t *testing.T, token, aud string) *jwt.AccessClaims {
	t.Helper()
	return f.parseExchanged(t, token, aud)
}

func wantACR(t *testing.T, what string, c *jwt.AccessClaims, acr string, amr []string) {
	t.Helper()
	if c.ACR != acr || !slices.Equal(c.AMR, amr) {
		t.Errorf("%s: got acr %q amr %q, want %q %q", what, c.ACR, c.AMR, acr, amr)
	}
}

// TestAccessTokensSayHowTheUserSignedIn follows a sign-in's amr into the
// access tokens of every minting path: password sign-in, refresh (which
// keeps it), the authorization code and device grants (from the browser
// session), their refreshes, and token exchange (from the subject token).
func TestAccessTokensSayHowTheUserSignedIn(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	mfa := []string{"pwd", "otp", "mfa"}

	login, err := f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	wantACR(t, "password sign-in", f.accessClaims(t, login.AccessToken, "api"), ACRPassword, []string{AMRPassword})
	again, err := f.svc.Refresh(ctx, login.RefreshToken, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	wantACR(t, "refresh of a password sign-in", f.accessClaims(t, again.AccessToken, "api"), ACRPassword, []string{AMRPassword})

	refresh, b := f.sessionWithAMR(t, "alice", mfa)
	for i := range 2 {
		tok, err := f.svc.Refresh(ctx, refresh, Agent{})
		if err != nil {
			t.Fatal(err)
		}
		refresh = tok.RefreshToken
		wantACR(t, "refresh of a second-factor sign-in", f.accessClaims(t, tok.AccessToken, "api"), ACRMFA, mfa)
		if i == 0 {
			p, err := f.svc.Authenticate(ctx, tok.AccessToken)
			if err != nil || p.Claims.ACR != ACRMFA {
				t.Errorf("Authenticate: got %+v, %v; want acr mfa", p, err)
			}
		}
	}
	passkey, _ := f.sessionWithAMR(t, "alice", []string{"hwk"})
	tok, err := f.svc.Refresh(ctx, passkey, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	wantACR(t, "a passkey alone", f.accessClaims(t, tok.AccessToken, "api"), ACRPassword, []string{"hwk"})

	// The authorization code grant: the grant session takes the browser
	// session's amr, and so does its refresh and its ID token.
	granted, authed := f.codeFlow(t, b)
	wantACR(t, "authorization code", f.accessClaims(t, granted.AccessToken, "api"), ACRMFA, mfa)
	var idc IDClaims
	keys, _ := f.svc.Keys().VerificationKeys(ctx)
	if err := jwt.NewParser(keys, jwt.WithAudience(authed.ID), jwt.WithNow(f.clock.Now)).Parse(granted.IDToken, &idc); err != nil {
		t.Fatal(err)
	}
	if idc.ACR != ACRMFA || !slices.Equal(idc.AMR, mfa) {
		t.Errorf("ID token: got acr %q amr %q, want mfa %q", idc.ACR, idc.AMR, mfa)
	}
	regranted, err := f.svc.RefreshFor(ctx, granted.RefreshToken, authed, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	wantACR(t, "refresh of a grant session", f.accessClaims(t, regranted.AccessToken, "api"), ACRMFA, mfa)

	// The device grant, approved from the same browser session.
	dev := f.deviceApp(t, true)
	start, err := f.svc.StartDevice(ctx, dev, "openid offline_access")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DecideDevice(ctx, b, start.UserCode, true, Agent{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(DeviceInterval)
	devTok, err := f.svc.DeviceToken(ctx, dev, start.DeviceCode, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	wantACR(t, "device grant", f.accessClaims(t, devTok.AccessToken, "api"), ACRMFA, mfa)

	// Token exchange keeps the user's sign-in: a service cannot raise it.
	svc := f.exchanger(t, "service A", "orders-api")
	ex, err := f.svc.ExchangeToken(ctx, svc, subjectRequest(granted.AccessToken), Agent{})
	if err != nil {
		t.Fatal(err)
	}
	wantACR(t, "token exchange", f.accessClaims(t, ex.AccessToken, "orders-api"), ACRMFA, mfa)
	ex, err = f.svc.ExchangeToken(ctx, svc, subjectRequest(login.AccessToken), Agent{})
	if err != nil {
		t.Fatal(err)
	}
	wantACR(t, "token exchange of a password token", f.accessClaims(t, ex.AccessToken, "orders-api"), ACRPassword, []string{AMRPassword})

	// A service client's own token has no user, and so neither.
	cc, err := f.svc.ClientCredentials(ctx, svc, "")
	if err != nil {
		t.Fatal(err)
	}
	wantACR(t, "client credentials", f.accessClaims(t, cc.AccessToken, "api"), "", nil)
}

// TestAuthorizeACRValues: acr_values asking for mfa makes a password-only
// browser session sign in again, like an expired max_age, while a
// second-factor session (or a request satisfied by pwd) goes through;
// unknown values are ignored; a sign-in made for the request is taken as
// the best this server can do (acr_values are voluntary).
func TestAuthorizeACRValues(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	c, _ := f.app(t, true, false)
	pwd := f.browser(t, "alice")
	_, mfa := f.sessionWithAMR(t, "alice", []string{"pwd", "otp", "mfa"})
	f.clock.Advance(time.Second) // the request begins after both sign-ins
	for _, tc := range []struct {
		acrValues string
		b         *BrowserSession
		want      bool
	}{
		{"", pwd, false},
		{"mfa", pwd, true},
		{"mfa", mfa, false},
		{"pwd", pwd, false},
		{"pwd", mfa, false}, // a second factor is more than asked
		{"mfa pwd", pwd, false},
		{"urn:example:loa:4", pwd, false}, // unknown: ignored
		{"urn:example:loa:4 mfa", pwd, true},
	} {
		a, err := f.svc.Authorize(ctx, authzParams(c, "acr_values", tc.acrValues))
		if err != nil {
			t.Fatal(err)
		}
		if got := f.svc.NeedsLogin(a, tc.b); got != tc.want {
			t.Errorf("acr_values %q, session amr %v: NeedsLogin %v, want %v", tc.acrValues, tc.b.Session.AMR, got, tc.want)
		}
	}
	// Signed in since the request began: answered, whatever the class.
	a, err := f.svc.Authorize(ctx, authzParams(c, "acr_values", "mfa"))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	if f.svc.NeedsLogin(a, f.browser(t, "alice")) {
		t.Error("a password sign-in made for the request is asked to sign in again: a loop for a user without a second factor")
	}
	if _, err := f.svc.Authorize(ctx, authzParams(c, "acr_values", strings.Repeat("a", maxACRValuesParam+1))); err == nil {
		t.Error("an overlong acr_values was accepted")
	}
}

func TestACRSatisfies(t *testing.T) {
	for _, tc := range []struct {
		acr  string
		want []string
		ok   bool
	}{
		{"pwd", nil, true},
		{"", nil, true},
		{"pwd", []string{"mfa"}, false},
		{"", []string{"pwd"}, false},
		{"mfa", []string{"mfa"}, true},
		{"mfa", []string{"pwd"}, true},
		{"pwd", []string{"pwd", "mfa"}, true},
	} {
		if got := ACRSatisfies(tc.acr, tc.want); got != tc.ok {
			t.Errorf("ACRSatisfies(%q, %q) = %v, want %v", tc.acr, tc.want, got, tc.ok)
		}
	}
}
