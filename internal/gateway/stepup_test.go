package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/authtest"
	"github.com/keycard-auth/keycard/jwt"
	"github.com/keycard-auth/keycard/verifier"
)

// stepUpToken signs a token for sub with acr and amr, its user signed in
// age ago.
func (a *testAuth) stepUpToken(t *testing.T, sub, acr string, amr []string, age time.Duration) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.Sign(a.key, &jwt.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testIssuer, Subject: sub, Audience: jwt.Audience{"api"},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: "jti-" + sub,
		},
		SessionID: "sid-" + sub, AuthTime: jwt.NewNumericDate(now.Add(-age)), ACR: acr, AMR: amr,
	}, jwt.WithHeaderType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// wantStepUp checks a 401 insufficient_user_authentication answer and
// the parameters of its challenge.
func wantStepUp(t *testing.T, what string, w interface {
	Result() *http.Response
}, params ...string) {
	t.Helper()
	res := w.Result()
	ch := res.Header.Get("WWW-Authenticate")
	if res.StatusCode != http.StatusUnauthorized || !contains(ch, append([]string{`error="insufficient_user_authentication"`, "error_description="}, params...)...) {
		t.Errorf("%s: status %d, challenge %q; want 401 insufficient_user_authentication with %q", what, res.StatusCode, ch, params)
	}
}

// TestStepUpRoutes sends tokens of password and second-factor sign-ins,
// recent and old, to routes with acr and max_age: a route's demand is
// met or answered 401 insufficient_user_authentication naming it (RFC
// 9470), counted apart in the metrics.
func TestStepUpRoutes(t *testing.T) {
	up := newUpstream(t)
	g := newTestGateway(t, header+`
routes:
  - {path: /mfa/, upstream: '`+up.URL+`', acr: [mfa]}
  - {path: /either/, upstream: '`+up.URL+`', acr: [pwd, mfa]}
  - {path: /recent/, upstream: '`+up.URL+`', max_age: 5m}
  - {path: /both/, upstream: '`+up.URL+`', acr: [mfa], max_age: 10m}
  - {path: /open/, upstream: '`+up.URL+`'}
`)
	pwd := g.auth.stepUpToken(t, "alice", "pwd", []string{"pwd"}, time.Minute)
	mfa := g.auth.stepUpToken(t, "bob", "mfa", []string{"pwd", "otp", "mfa"}, time.Minute)
	oldMFA := g.auth.stepUpToken(t, "carol", "mfa", []string{"hwk", "mfa"}, time.Hour)
	oldPwd := g.auth.stepUpToken(t, "dave", "pwd", []string{"pwd"}, time.Hour)
	for _, tc := range []struct {
		path, token string
		params      []string // nil: let through
	}{
		{"/mfa/", mfa, nil},
		{"/mfa/", pwd, []string{`acr_values="mfa"`}},
		{"/either/", pwd, nil},
		{"/either/", mfa, nil},
		{"/recent/", pwd, nil},
		{"/recent/", oldMFA, []string{`max_age="300"`}},
		{"/both/", mfa, nil},
		{"/both/", oldMFA, []string{`max_age="600"`}},
		{"/both/", pwd, []string{`acr_values="mfa"`}},
		{"/both/", oldPwd, []string{`acr_values="mfa"`, `max_age="600"`}},
		{"/open/", oldPwd, nil},
	} {
		before := up.count()
		w := g.do(t, "GET", tc.path+"x", tc.token, nil)
		if tc.params == nil {
			if w.Code != 200 || up.count() != before+1 {
				t.Errorf("%s: status %d %q, want 200 from the upstream", tc.path, w.Code, w.Body)
			}
			continue
		}
		wantStepUp(t, tc.path, w, tc.params...)
		if !strings.Contains(w.Body.String(), `"error":"insufficient_user_authentication"`) || up.count() != before {
			t.Errorf("%s: body %q, upstream reached: %v", tc.path, w.Body, up.count() != before)
		}
	}
	if got := testutilCount(t, g.Metrics(), "keycard_gateway_auth_failures_total", `reason="insufficient_user_authentication"`); got != 5 {
		t.Errorf("insufficient_user_authentication failures counted: %v, want 5", got)
	}
}

// TestStepUpForwardAuth: forward-auth subrequests meet the same demands.
func TestStepUpForwardAuth(t *testing.T) {
	a := newTestAuth(t)
	g := forwardAuthGateway(t, a, forwardAuthConfig+`  - path: /transfers/
    acr: [mfa]
`)
	const proxy = "127.0.0.1:5555"
	pwd := a.stepUpToken(t, "alice", "pwd", []string{"pwd"}, time.Minute)
	mfa := a.stepUpToken(t, "bob", "mfa", []string{"pwd", "otp", "mfa"}, time.Minute)
	w := httptest.NewRecorder()
	g.ServeHTTP(w, subrequest(proxy, "POST", "/transfers/1", pwd))
	wantStepUp(t, "pwd token", w, `acr_values="mfa"`)
	w = httptest.NewRecorder()
	g.ServeHTTP(w, subrequest(proxy, "POST", "/transfers/1", mfa))
	if w.Code != 200 || w.Header().Get(HeaderSubject) != "bob" {
		t.Errorf("mfa token: status %d, subject %q; want 200 for bob", w.Code, w.Header().Get(HeaderSubject))
	}
}

// TestStepUpWithAuthServerTokens sends the gateway tokens that an
// auth.Service minted: a password sign-in's is refused on an acr: [mfa]
// route; that of a session with a second factor (its AMR set as the
// second-factor sign-in sets it) passes, and still passes after a
// refresh.
func TestStepUpWithAuthServerTokens(t *testing.T) {
	ctx := context.Background()
	env := authtest.New(t, nil)
	svc, err := auth.NewService(env.Deps(), auth.Config{Issuer: testIssuer, Registration: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := svc.Register(ctx, "alice", "correct horse battery", nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := env.Keys.VerificationKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(ctx, verifier.Config{Issuer: testIssuer, Keys: keys, NoRevocationFeed: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	up := newUpstream(t)
	g, err := New(mustParse(t, header+"routes:\n  - {path: /transfers/, upstream: '"+up.URL+"', acr: [mfa]}\n"), Options{Auth: &testAuth{v: v}})
	if err != nil {
		t.Fatal(err)
	}
	tg := &testGateway{Gateway: g}

	login, err := svc.Login(ctx, "alice", "correct horse battery", auth.Agent{})
	if err != nil {
		t.Fatal(err)
	}
	wantStepUp(t, "password sign-in", tg.do(t, "POST", "/transfers/1", login.AccessToken, nil), `acr_values="mfa"`)

	refresh := env.SignInWithAMR(t, u.ID, []string{"pwd", "otp", "mfa"}, time.Now())
	for i := range 2 {
		tok, err := svc.Refresh(ctx, refresh, auth.Agent{})
		if err != nil {
			t.Fatal(err)
		}
		refresh = tok.RefreshToken
		if w := tg.do(t, "POST", "/transfers/1", tok.AccessToken, nil); w.Code != 200 {
			t.Errorf("second-factor session, refresh %d: status %d %q, want 200", i+1, w.Code, w.Body)
		}
	}
}
