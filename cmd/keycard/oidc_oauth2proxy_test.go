package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keycard-auth/keycard/internal/chrometest"
)

// oauth2ProxyVersion is the oauth2-proxy release .ci/run installs and
// docs/oidc.md names.
const oauth2ProxyVersion = "v7.15.6"

// seenRequest is what the upstream behind oauth2-proxy was told of one
// request.
type seenRequest struct {
	user, email, accessToken string
}

// TestOAuth2Proxy puts the real oauth2-proxy (provider oidc, discovery
// from Keycard's issuer URL, PKCE S256) in front of an upstream and signs
// in through it in Chromium: oauth2-proxy sends the browser to Keycard's
// sign-in page, redeems the code and hands the upstream the user and
// Keycard's access token, which reads Keycard's userinfo. With
// --cookie-refresh it refreshes the session with Keycard's refresh
// token. After the user signs out everywhere (POST /v1/logout/all), the
// next refresh is refused with invalid_grant, oauth2-proxy drops its
// session, and the browser lands on Keycard's sign-in page instead of
// the upstream: access ends at the first request after --cookie-refresh,
// as docs/oidc.md says. Its sign-out with rd through Keycard's
// end_session_endpoint ends the Keycard session; its
// --backend-logout-url alone does not.
func TestOAuth2Proxy(t *testing.T) {
	bin := proxyBinary(t, "oauth2-proxy "+oauth2ProxyVersion, "oauth2-proxy", filepath.Join(goBinDir(), "oauth2-proxy"))
	browser := chrometest.Start(t)
	s, admin := interopServer(t)

	var mu sync.Mutex
	var seen []seenRequest
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := seenRequest{r.Header.Get("X-Forwarded-User"), r.Header.Get("X-Forwarded-Email"), r.Header.Get("X-Forwarded-Access-Token")}
		mu.Lock()
		seen = append(seen, req)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>upstream</title><h1>Hello %s</h1>", html.EscapeString(req.email))
	}))
	t.Cleanup(upstream.Close)
	last := func() seenRequest {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return seenRequest{}
		}
		return seen[len(seen)-1]
	}

	addr := freePort(t)
	base := "http://" + addr
	clientID, secret := registerClient(t, s, admin, fmt.Sprintf(
		`{"name":"oauth2-proxy","first_party":true,"grant_types":["authorization_code","refresh_token"],"redirect_uris":[%q],"post_logout_redirect_uris":[%q]}`,
		base+"/oauth2/callback", base+"/"))
	keycardHost := strings.TrimPrefix(s.base, "http://")
	cookieSecret := make([]byte, 32)
	rand.Read(cookieSecret)
	startProxy(t, "oauth2-proxy", bin, []string{
		"--http-address=" + addr,
		"--provider=oidc",
		"--oidc-issuer-url=" + s.base,
		"--client-id=" + clientID,
		"--client-secret=" + secret,
		"--redirect-url=" + base + "/oauth2/callback",
		"--code-challenge-method=S256",
		// Keycard's ID tokens have no email: name the user by
		// preferred_username instead, and let any "domain" in.
		"--oidc-email-claim=preferred_username",
		"--email-domain=*",
		"--upstream=" + upstream.URL,
		"--pass-access-token",
		"--skip-provider-button",
		// Its sign-out may send the browser on to Keycard's
		// end_session_endpoint.
		"--whitelist-domain=" + keycardHost,
		"--backend-logout-url=" + s.base + "/oauth/logout?id_token_hint={id_token}",
		"--cookie-secret=" + base64.RawURLEncoding.EncodeToString(cookieSecret),
		"--cookie-secure=false", // plain http on loopback in the test
		// One CSRF cookie (with the PKCE verifier) per sign-in: the
		// page and its favicon, both sent to sign in at once, would
		// otherwise overwrite each other's, and the page's code would be
		// redeemed with the favicon's verifier (invalid_grant).
		"--cookie-csrf-per-request",
		"--cookie-csrf-per-request-limit=5",
		// How long a session lives at oauth2-proxy before it asks
		// Keycard again (with the refresh token): the bound on how long
		// access outlives a sign-out at Keycard. Short here so that the
		// test need not wait; docs/oidc.md suggests a minute.
		"--cookie-refresh=2s",
	}, addr)

	b := newTab(t, browser)
	b.do("oauth2-proxy to Keycard's sign-in page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("username")))
	b.do("signing in", signIn(), h1Is("Hello alice"))
	first := last()
	if first.email != "alice" || first.user == "" || first.accessToken == "" {
		t.Fatalf("the upstream saw %+v", first)
	}
	if code, name := userInfo(t, s, first.accessToken); code != http.StatusOK || name != "alice" {
		t.Errorf("userinfo with the access token oauth2-proxy passed: %d %q", code, name)
	}

	// Once the session is older than --cookie-refresh, oauth2-proxy
	// refreshes it at Keycard: the upstream gets a new access token.
	refreshed := poll(t, "oauth2-proxy refreshing the session", func() (seenRequest, bool) {
		b.do("reloading", chromedp.Reload(), h1Is("Hello alice"))
		got := last()
		return got, got.accessToken != first.accessToken
	})
	if code, name := userInfo(t, s, refreshed.accessToken); code != http.StatusOK || name != "alice" {
		t.Errorf("userinfo with the refreshed access token: %d %q", code, name)
	}

	// Alice signs out everywhere, through the API.
	mu.Lock()
	beforeLogout := len(seen)
	tokensBefore := map[string]bool{}
	for _, r := range seen {
		tokensBefore[r.accessToken] = true
	}
	mu.Unlock()
	api := s.login(t, "alice", loginPassword)
	if code, _ := call(t, "POST", s.base+"/v1/logout/all", api.AccessToken, "", "", nil); code != http.StatusNoContent {
		t.Fatalf("POST /v1/logout/all: %d", code)
	}
	if code, _ := userInfo(t, s, refreshed.accessToken); code != http.StatusUnauthorized {
		t.Errorf("userinfo with oauth2-proxy's access token after the sign-out: %d, want 401", code)
	}
	// Within --cookie-refresh (and the next request), oauth2-proxy's
	// refresh is refused and the browser is sent to sign in again.
	poll(t, "oauth2-proxy ending the session", func() (struct{}, bool) {
		b.do("reloading", chromedp.Navigate(base+"/"), chromedp.WaitReady(chromedp.CSS("body")))
		return struct{}{}, b.has("username")
	})
	// No request reached the upstream after the sign-out with an access
	// token minted after it.
	mu.Lock()
	for _, r := range seen[beforeLogout:] {
		if !tokensBefore[r.accessToken] {
			t.Errorf("the upstream got an access token minted after the sign-out")
		}
	}
	mu.Unlock()

	// Signed in again, the user signs out at oauth2-proxy alone: its
	// --backend-logout-url calls Keycard's end_session_endpoint from the
	// server, without the browser's cookies, so there is no browser
	// session for Keycard to end (OpenID Connect RP-Initiated Logout §2:
	// the OP must ask the user when the hint is not of the current
	// session), and Keycard's single sign-on lets the browser straight
	// back in.
	b.do("signing in again", signIn(), h1Is("Hello alice"))
	logoutCalls := func() int { return strings.Count(s.log.String(), `"path":"/oauth/logout"`) }
	calls := logoutCalls()
	b.do("signing out at oauth2-proxy alone", chromedp.Navigate(base+"/oauth2/sign_out"), h1Is("Hello alice"))
	if logoutCalls() == calls {
		t.Error("oauth2-proxy did not call its --backend-logout-url")
	}

	// The user signs out at oauth2-proxy with rd, which sends the browser
	// on to Keycard's end_session_endpoint with the ID token as
	// id_token_hint (its {id_token} placeholder): the hint names this
	// browser's session, so Keycard ends it at once, without asking, and
	// sends the browser back to the registered post-logout URI, where
	// oauth2-proxy sends it to sign in again.
	again := last()
	end := s.base + "/oauth/logout?" + "id_token_hint={id_token}&post_logout_redirect_uri=" + url.QueryEscape(base+"/")
	b.do("signing out at oauth2-proxy", chromedp.Navigate(base+"/oauth2/sign_out?rd="+url.QueryEscape(end)), chromedp.WaitVisible(chromedp.ID("username")))
	if loc, err := chromedp.Run(b.ctx, chromedp.Location()); err != nil || !strings.HasPrefix(loc, s.base+"/signin") {
		t.Errorf("after the sign-out the browser is at %s (%v); want Keycard's sign-in page", loc, err)
	}
	if code, _ := userInfo(t, s, again.accessToken); code != http.StatusUnauthorized {
		t.Errorf("userinfo with oauth2-proxy's access token after its sign-out: %d, want 401", code)
	}
}
