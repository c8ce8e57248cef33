package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

const (
	testRedirect = "https://app.example/cb"
	testVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" // RFC 7636 appendix B
)

var testChallenge = func() string {
	sum := sha256.Sum256([]byte(testVerifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}()

// app registers an application client; first says first party, public a
// public client.
func (f *fixture) app(t *testing.T, first, public bool) (*keycard.Client, string) {
	t.Helper()
	c, secret, err := f.svc.CreateClient(context.Background(), Operator(), ClientSpec{Name: "App", Scopes: []string{"orders:read"}, OAuth: keycard.OAuthSettings{
		GrantTypes:             []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken},
		RedirectURIs:           []string{testRedirect, "http://127.0.0.1/native"},
		PostLogoutRedirectURIs: []string{"https://app.example/bye"},
		FirstParty:             first, Public: public,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c, secret
}

// browser signs name in as the pages would and returns the browser
// session.
func (f *fixture) browser(t *testing.T, name string) *BrowserSession {
	t.Helper()
	ctx := context.Background()
	tok, err := f.svc.Login(ctx, name, "correct horse battery", Agent{UserAgent: "browser"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.svc.BrowserSession(ctx, tok.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func authzParams(c *keycard.Client, extra ...string) url.Values {
	v := url.Values{"client_id": {c.ID}, "redirect_uri": {testRedirect}, "response_type": {"code"}, "scope": {"openid profile offline_access orders:read"},
		"state": {"st"}, "nonce": {"n-0S6_WzA2Mj"}, "code_challenge": {testChallenge}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			v.Del(extra[i])
		} else {
			v.Set(extra[i], extra[i+1])
		}
	}
	return v
}

// TestAuthorizeRefusals sends the malformed and hostile authorization
// requests of RFC 9700 and OpenID Connect Core: each is refused with its
// code, and only those whose client and redirect URI are established may
// be redirected.
func TestAuthorizeRefusals(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	c, _ := f.app(t, true, false)
	svcClient, _, err := f.svc.CreateClient(ctx, Operator(), ClientSpec{Name: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		params   url.Values
		code     string
		redirect bool
	}{
		{"no client", authzParams(c, "client_id", ""), "invalid_request", false},
		{"unknown client", authzParams(c, "client_id", "nobody"), "invalid_request", false},
		{"service client", authzParams(svcClient), "invalid_request", false},
		{"no redirect_uri", authzParams(c, "redirect_uri", ""), "invalid_request", false},
		{"unregistered redirect_uri", authzParams(c, "redirect_uri", "https://evil.example/cb"), "invalid_request", false},
		{"redirect_uri with a suffix", authzParams(c, "redirect_uri", testRedirect+"/x"), "invalid_request", false},
		{"redirect_uri with a fragment", authzParams(c, "redirect_uri", testRedirect+"#x"), "invalid_request", false},
		{"redirect_uri with user info", authzParams(c, "redirect_uri", "https://evil@app.example/cb"), "invalid_request", false},
		{"repeated redirect_uri", func() url.Values { v := authzParams(c); v.Add("redirect_uri", testRedirect); return v }(), "invalid_request", false},
		{"repeated client_id", func() url.Values { v := authzParams(c); v.Add("client_id", c.ID); return v }(), "invalid_request", false},
		{"repeated state", func() url.Values { v := authzParams(c); v.Add("state", "b"); return v }(), "invalid_request", true},
		{"implicit", authzParams(c, "response_type", "token"), "unsupported_response_type", true},
		{"hybrid", authzParams(c, "response_type", "code id_token"), "unsupported_response_type", true},
		{"no response_type", authzParams(c, "response_type", ""), "invalid_request", true},
		{"fragment response mode", authzParams(c, "response_mode", "fragment"), "invalid_request", true},
		{"no PKCE", authzParams(c, "code_challenge", "", "code_challenge_method", ""), "invalid_request", true},
		{"plain PKCE", authzParams(c, "code_challenge_method", "plain"), "invalid_request", true},
		{"PKCE method missing", authzParams(c, "code_challenge_method", ""), "invalid_request", true},
		{"short challenge", authzParams(c, "code_challenge", "abc"), "invalid_request", true},
		{"no scope", authzParams(c, "scope", ""), "invalid_scope", true},
		{"scope not allowed", authzParams(c, "scope", "openid admin:all"), "invalid_scope", true},
		{"malformed scope", authzParams(c, "scope", "openid \"x\""), "invalid_scope", true},
		{"unknown prompt", authzParams(c, "prompt", "frob"), "invalid_request", true},
		{"prompt none with login", authzParams(c, "prompt", "none login"), "invalid_request", true},
		{"bad max_age", authzParams(c, "max_age", "-1"), "invalid_request", true},
		{"request object", authzParams(c, "request", "eyJ..."), "request_not_supported", true},
		{"unknown request_uri", authzParams(c, "request_uri", PushedRequestURIPrefix+"nope"), "invalid_request_uri", false},
		{"foreign request_uri", authzParams(c, "request_uri", "https://evil.example/req"), "invalid_request_uri", false},
		{"long state", authzParams(c, "state", strings.Repeat("s", 2000)), "invalid_request", true},
		{"long nonce", authzParams(c, "nonce", strings.Repeat("n", 600)), "invalid_request", true},
	} {
		a, err := f.svc.Authorize(ctx, tc.params)
		ae, ok := errors.AsType[*AuthorizeError](err)
		if !ok {
			t.Errorf("%s: got %v, want an AuthorizeError", tc.name, err)
			continue
		}
		if ae.Code != tc.code || ae.Redirect != tc.redirect {
			t.Errorf("%s: got %s (redirect %v), want %s (redirect %v)", tc.name, ae.Code, ae.Redirect, tc.code, tc.redirect)
		}
		if ae.Redirect && (a == nil || a.Request.RedirectURI != testRedirect) {
			t.Errorf("%s: a redirectable error without the established redirect URI", tc.name)
		}
		if tc.name == "long state" && a.Request.State != "" {
			t.Errorf("long state: it would be echoed")
		}
	}
}

// TestCodeFlow: a code is issued in a browser session, exchanged once for
// an access, ID and refresh token of a grant session under that browser
// session; everything a thief could try with it is refused; a second use
// revokes what the first got; signing the browser out ends the grant.
func TestCodeFlow(t *testing.T) {
	// With the introspection cache: the grant's access token, cached
	// active, is inactive at once after the code's reuse.
	f := newFixtureConfig(t, jose.ES256, Config{Issuer: "https://auth.test", Registration: true, IntrospectionCache: 100}, nil)
	ctx := context.Background()
	f.user(t, "alice")
	c, secret := f.app(t, true, false)
	other, _ := f.app(t, true, false)
	b := f.browser(t, "alice")
	a, err := f.svc.Authorize(ctx, authzParams(c))
	if err != nil {
		t.Fatal(err)
	}
	if f.svc.NeedsLogin(a, b) || f.svc.NeedsLogin(a, nil) == false {
		t.Fatal("NeedsLogin: a signed-in browser needs no login, an anonymous one does")
	}
	code, err := f.svc.IssueCode(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	authed, err := f.svc.AuthenticateClient(ctx, c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                   string
		client                 *keycard.Client
		code, redirect, verify string
	}{
		{"other client", other, code, testRedirect, testVerifier},
		{"wrong verifier", authed, code, testRedirect, strings.Repeat("x", 43)},
		{"short verifier", authed, code, testRedirect, "abc"},
		{"no verifier", authed, code, testRedirect, ""},
		{"other redirect_uri", authed, code, "http://127.0.0.1/native", testVerifier},
		{"malformed code", authed, "x" + code, testRedirect, testVerifier},
		{"wrong secret part", authed, code[:strings.Index(code, ".")+1] + strings.Repeat("A", 43), testRedirect, testVerifier},
	} {
		if _, err := f.svc.ExchangeCode(ctx, tc.client, tc.code, tc.redirect, tc.verify, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
			t.Errorf("%s: got %v, want EUNAUTHORIZED (invalid_grant)", tc.name, err)
		}
	}
	tok, err := f.svc.ExchangeCode(ctx, authed, code, testRedirect, testVerifier, Agent{UserAgent: "app"})
	if err != nil {
		t.Fatalf("the refusals above must not have used up the code: %v", err)
	}
	if tok.AccessToken == "" || tok.IDToken == "" || tok.RefreshToken == "" {
		t.Fatalf("tokens %+v: want access, ID and refresh tokens", tok)
	}
	// The grant is audited (in the redemption's transaction).
	if e := f.lastAudit(t, AuditGrant); e.Subject != b.User.ID || e.UserAgent != "app" ||
		!strings.Contains(string(e.Detail), `"session":"`+tok.SessionID+`"`) || !strings.Contains(string(e.Detail), `"client":"`+c.ID+`"`) {
		t.Errorf("grant audit event %+v %s", e, e.Detail)
	}
	// The ID token (OpenID Connect Core section 2).
	keys, _ := f.svc.Keys().VerificationKeys(ctx)
	var idc IDClaims
	if err := jwt.NewParser(keys, jwt.WithIssuer("https://auth.test"), jwt.WithAudience(c.ID), jwt.WithType("JWT"), jwt.WithNow(f.clock.Now)).Parse(tok.IDToken, &idc); err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if idc.Subject != b.User.ID || idc.Nonce != "n-0S6_WzA2Mj" || idc.AZP != c.ID || idc.SessionID != b.Session.ID ||
		idc.AuthTime.IsZero() || idc.ACR != ACRPassword || len(idc.AMR) != 1 || idc.AMR[0] != AMRPassword || idc.PreferredUsername != "alice" {
		t.Errorf("ID token claims %+v", idc)
	}
	if want, _ := halfHash(jose.ES256, tok.AccessToken); idc.AccessTokenHash != want {
		t.Errorf("at_hash %q, want %q", idc.AccessTokenHash, want)
	}
	// The access token is the grant session's, for the client.
	var ac jwt.AccessClaims
	if err := f.svc.introspector.Parse(tok.AccessToken, &ac); err != nil {
		t.Fatal(err)
	}
	if ac.ClientID != c.ID || ac.SessionID != tok.SessionID || ac.SessionID == b.Session.ID || !strings.Contains(ac.Scope, "orders:read") {
		t.Errorf("access claims %+v", ac)
	}
	if info, err := f.svc.UserInfo(ctx, tok.AccessToken); err != nil || info.Subject != b.User.ID || info.PreferredUsername != "alice" {
		t.Errorf("userinfo: %+v, %v", info, err)
	}
	// A refresh by the client: new tokens, an ID token again.
	next, err := f.svc.RefreshFor(ctx, tok.RefreshToken, authed, Agent{})
	if err != nil || next.IDToken == "" || next.SessionID != tok.SessionID {
		t.Fatalf("refresh: %+v, %v", next, err)
	}
	// By another client, or none: refused.
	if _, err := f.svc.RefreshFor(ctx, next.RefreshToken, other, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("refresh by another client: %v", err)
	}
	if _, err := f.svc.Refresh(ctx, next.RefreshToken, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("refresh without a client: %v", err)
	}
	for range 2 {
		if in, err := f.svc.Introspect(ctx, next.AccessToken); err != nil || !in.Active {
			t.Fatalf("Introspect(the grant's access token) = %+v, %v; want active", in, err)
		}
	}
	// The code again: refused, and the grant it gave is revoked.
	if _, err := f.svc.ExchangeCode(ctx, authed, code, testRedirect, testVerifier, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("second use: %v", err)
	}
	if in, err := f.svc.Introspect(ctx, next.AccessToken); err != nil || in.Active {
		t.Errorf("Introspect(the grant's access token) after the code's reuse = %+v, %v; want inactive", in, err)
	}
	if _, err := f.svc.UserInfo(ctx, next.AccessToken); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("after the code's reuse the grant's tokens still work: %v", err)
	}
	f.lastAudit(t, AuditCodeReuse)

	// A new grant, then the browser signs out: the grant ends with it.
	a2, _ := f.svc.Authorize(ctx, authzParams(c))
	code2, _ := f.svc.IssueCode(ctx, a2, b)
	tok2, err := f.svc.ExchangeCode(ctx, authed, code2, testRedirect, testVerifier, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.EndBrowserSession(ctx, b, Agent{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UserInfo(ctx, tok2.AccessToken); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("after signing out the app's token still works: %v", err)
	}
	if _, err := f.svc.RefreshFor(ctx, tok2.RefreshToken, authed, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("after signing out the app's refresh token still works: %v", err)
	}
	if _, err := f.svc.BrowserSession(ctx, b.Session.ID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("the browser session is still there: %v", err)
	}
}

// TestCodeExpiresAndPublicClients: a code dies after its minute; a public
// client gets no refresh token without offline_access unless first party,
// and a third-party client needs consent once per scope set.
func TestCodeExpiresAndConsent(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	spa, _ := f.app(t, false, true)
	b := f.browser(t, "alice")
	a, err := f.svc.Authorize(ctx, authzParams(spa, "scope", "openid"))
	if err != nil {
		t.Fatal(err)
	}
	if need, err := f.svc.NeedsConsent(ctx, a, b); err != nil || !need {
		t.Fatalf("third-party client: NeedsConsent = %v, %v; want true", need, err)
	}
	if err := f.svc.Consent(ctx, b, a, Agent{}); err != nil {
		t.Fatal(err)
	}
	if need, _ := f.svc.NeedsConsent(ctx, a, b); need {
		t.Error("consent asked again for the same scopes")
	}
	wider, _ := f.svc.Authorize(ctx, authzParams(spa, "scope", "openid orders:read"))
	if need, _ := f.svc.NeedsConsent(ctx, wider, b); !need {
		t.Error("a wider scope did not need consent")
	}
	forced, _ := f.svc.Authorize(ctx, authzParams(spa, "scope", "openid", "prompt", "consent"))
	if need, _ := f.svc.NeedsConsent(ctx, forced, b); !need {
		t.Error("prompt=consent did not ask")
	}
	code, _ := f.svc.IssueCode(ctx, a, b)
	pub, err := f.svc.PublicClient(ctx, spa.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(keycard.AuthCodeLifetime + time.Second)
	if _, err := f.svc.ExchangeCode(ctx, pub, code, testRedirect, testVerifier, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("expired code: %v", err)
	}
	a, _ = f.svc.Authorize(ctx, authzParams(spa, "scope", "openid"))
	code, _ = f.svc.IssueCode(ctx, a, b)
	tok, err := f.svc.ExchangeCode(ctx, pub, code, testRedirect, testVerifier, Agent{})
	if err != nil || tok.RefreshToken != "" || tok.IDToken == "" {
		t.Errorf("public third-party client without offline_access: %+v, %v; want no refresh token", tok, err)
	}
	// Taking the consent back ends the client's grants.
	if err := f.svc.RevokeConsent(ctx, UserActor(b.User.ID, Agent{}), b.User.ID, spa.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UserInfo(ctx, tok.AccessToken); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("after the consent was revoked the token still works: %v", err)
	}
	if need, _ := f.svc.NeedsConsent(ctx, a, b); !need {
		t.Error("after the consent was revoked it is not asked again")
	}
	if _, err := f.svc.PublicClient(ctx, "nobody"); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("PublicClient(unknown): %v", err)
	}
}

// TestNeedsLogin: prompt=login and max_age ask for a sign-in, satisfied
// by one after the request began.
func TestNeedsLogin(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	c, _ := f.app(t, true, false)
	b := f.browser(t, "alice")
	f.clock.Advance(10 * time.Minute)
	for _, tc := range []struct {
		extra []string
		want  bool
	}{
		{nil, false},
		{[]string{"prompt", "login"}, true},
		{[]string{"prompt", "select_account"}, true},
		{[]string{"max_age", "60"}, true},
		{[]string{"max_age", "3600"}, false},
		{[]string{"max_age", "0"}, true},
	} {
		a, err := f.svc.Authorize(ctx, authzParams(c, tc.extra...))
		if err != nil {
			t.Fatal(err)
		}
		if got := f.svc.NeedsLogin(a, b); got != tc.want {
			t.Errorf("%v: NeedsLogin = %v, want %v", tc.extra, got, tc.want)
		}
		// After a fresh sign-in the request is satisfied.
		a.Since = f.clock.Now().Add(-time.Second)
		fresh := f.browser(t, "alice")
		if f.svc.NeedsLogin(a, fresh) {
			t.Errorf("%v: a sign-in after the request began does not satisfy it", tc.extra)
		}
	}
}

func TestPushedAuthorization(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	c, _ := f.app(t, true, false)
	other, _ := f.app(t, true, false)
	uri, ttl, err := f.svc.PushAuthorization(ctx, c, authzParams(c))
	if err != nil || !strings.HasPrefix(uri, PushedRequestURIPrefix) || ttl != keycard.PushedRequestLifetime {
		t.Fatalf("PushAuthorization = %q, %v, %v", uri, ttl, err)
	}
	a, err := f.svc.Authorize(ctx, url.Values{"client_id": {c.ID}, "request_uri": {uri}, "scope": {"openid admin:all"}})
	if err != nil || a.Request.State != "st" || a.RequestURI != uri {
		t.Errorf("authorize with the request_uri: %+v, %v; want the pushed parameters, others ignored", a, err)
	}
	if _, err := f.svc.Authorize(ctx, url.Values{"client_id": {other.ID}, "request_uri": {uri}}); err == nil {
		t.Error("another client used the request_uri")
	}
	if _, _, err := f.svc.PushAuthorization(ctx, c, authzParams(c, "redirect_uri", "https://evil.example/cb")); err == nil {
		t.Error("a pushed request with an unregistered redirect_uri was accepted")
	}
	if _, _, err := f.svc.PushAuthorization(ctx, c, authzParams(other)); err == nil {
		t.Error("a pushed request naming another client was accepted")
	}
	f.clock.Advance(keycard.PushedRequestLifetime + time.Second)
	if _, err := f.svc.Authorize(ctx, url.Values{"client_id": {c.ID}, "request_uri": {uri}}); err == nil {
		t.Error("an expired request_uri was accepted")
	}
}

func TestEndSession(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	c, secret := f.app(t, true, false)
	other, _ := f.app(t, true, false)
	b := f.browser(t, "alice")
	a, _ := f.svc.Authorize(ctx, authzParams(c))
	code, _ := f.svc.IssueCode(ctx, a, b)
	authed, _ := f.svc.AuthenticateClient(ctx, c.ID, secret)
	tok, err := f.svc.ExchangeCode(ctx, authed, code, testRedirect, testVerifier, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	es, err := f.svc.CheckEndSession(ctx, EndSessionRequest{IDTokenHint: tok.IDToken, PostLogoutRedirectURI: "https://app.example/bye", State: "s"})
	if err != nil || es.SessionID != b.Session.ID || es.RedirectURI != "https://app.example/bye" || es.Client.ID != c.ID {
		t.Fatalf("CheckEndSession = %+v, %v", es, err)
	}
	// An expired hint still names its session.
	f.clock.Advance(2 * time.Hour)
	if es, err := f.svc.CheckEndSession(ctx, EndSessionRequest{IDTokenHint: tok.IDToken}); err != nil || es.SessionID != b.Session.ID {
		t.Errorf("expired hint: %+v, %v", es, err)
	}
	for _, tc := range []struct {
		name string
		req  EndSessionRequest
	}{
		{"unregistered post-logout URI", EndSessionRequest{IDTokenHint: tok.IDToken, PostLogoutRedirectURI: "https://evil.example/"}},
		{"open redirect by prefix", EndSessionRequest{IDTokenHint: tok.IDToken, PostLogoutRedirectURI: "https://app.example/bye/../../evil"}},
		{"post-logout URI without client", EndSessionRequest{PostLogoutRedirectURI: "https://app.example/bye"}},
		{"client_id disagrees with the hint", EndSessionRequest{IDTokenHint: tok.IDToken, ClientID: other.ID}},
		{"an access token as hint", EndSessionRequest{IDTokenHint: tok.AccessToken}},
		{"a forged hint", EndSessionRequest{IDTokenHint: tok.IDToken[:len(tok.IDToken)-4] + "AAAA"}},
		{"unknown client", EndSessionRequest{ClientID: "nobody"}},
	} {
		if _, err := f.svc.CheckEndSession(ctx, tc.req); keycard.ErrorCode(err) != keycard.EINVALID {
			t.Errorf("%s: got %v, want EINVALID", tc.name, err)
		}
	}
}
