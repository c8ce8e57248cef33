package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keycard-auth/keycard/internal/chrometest"
)

// relyingParty is a web app written the way go-oidc's and x/oauth2's
// documentation show: /login sends the browser to the provider with
// state, nonce and a PKCE challenge; /callback checks state, exchanges
// the code with the verifier, verifies the ID token with the provider's
// default verifier, checks the nonce and calls userinfo; /logout sends
// the browser to the end_session_endpoint; /logged-out is the
// post-logout redirect. Each page answers with an <h1> the test reads;
// a failure answers 500 with the reason.
type relyingParty struct {
	name     string
	base     string
	provider *oidc.Provider
	config   oauth2.Config
	verifier *oidc.IDTokenVerifier
	endSess  string

	mu      sync.Mutex
	pending map[string]rpPending // by state
	// Signed in: the tokens, the verified ID token and userinfo of the
	// last sign-in.
	token    *oauth2.Token
	rawID    string
	idToken  *oidc.IDToken
	userInfo *oidc.UserInfo
	logouts  map[string]bool // states of the logouts sent
}

type rpPending struct{ nonce, verifier string }

// startRelyingParty discovers the provider at issuer (go-oidc's
// NewProvider, which checks that the document's issuer is issuer) and
// serves the app on ln until the test ends.
func startRelyingParty(t *testing.T, name string, ln net.Listener, base, issuer, clientID, secret string, scopes []string) *relyingParty {
	t.Helper()
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&extra); err != nil || extra.EndSession == "" {
		t.Fatalf("discovery has no end_session_endpoint: %v", err)
	}
	rp := &relyingParty{
		name: name, base: base, provider: provider,
		config: oauth2.Config{
			ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(),
			RedirectURL: base + "/callback", Scopes: scopes,
		},
		// The defaults: the audience must be the client id, the
		// algorithms those discovery lists, the keys from its jwks_uri.
		verifier: provider.Verifier(&oidc.Config{ClientID: clientID}),
		endSess:  extra.EndSession,
		pending:  map[string]rpPending{},
		logouts:  map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", rp.handleLogin)
	mux.HandleFunc("GET /callback", rp.handleCallback)
	mux.HandleFunc("GET /logout", rp.handleLogout)
	mux.HandleFunc("GET /logged-out", rp.handleLoggedOut)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return rp
}

func (rp *relyingParty) page(w http.ResponseWriter, status int, h1 string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><title>%s</title><h1>%s</h1>", html.EscapeString(rp.name), html.EscapeString(h1))
}

func (rp *relyingParty) fail(w http.ResponseWriter, format string, args ...any) {
	rp.page(w, http.StatusInternalServerError, rp.name+" failed: "+fmt.Sprintf(format, args...))
}

func (rp *relyingParty) handleLogin(w http.ResponseWriter, r *http.Request) {
	state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	rp.mu.Lock()
	rp.pending[state] = rpPending{nonce: nonce, verifier: verifier}
	rp.mu.Unlock()
	http.Redirect(w, r, rp.config.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

func (rp *relyingParty) handleCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rp.mu.Lock()
	p, ok := rp.pending[q.Get("state")]
	delete(rp.pending, q.Get("state"))
	rp.mu.Unlock()
	switch {
	case !ok:
		rp.fail(w, "unknown state")
		return
	case q.Get("error") != "":
		rp.fail(w, "%s: %s", q.Get("error"), q.Get("error_description"))
		return
	case q.Get("iss") != rp.verifierIssuer():
		rp.fail(w, "iss %q", q.Get("iss")) // RFC 9207
		return
	}
	ctx := r.Context()
	tok, err := rp.config.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		rp.fail(w, "exchange: %v", err)
		return
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		rp.fail(w, "no id_token")
		return
	}
	id, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		rp.fail(w, "verify: %v", err)
		return
	}
	if id.Nonce != p.nonce {
		rp.fail(w, "nonce %q, want %q", id.Nonce, p.nonce)
		return
	}
	if err := id.VerifyAccessToken(tok.AccessToken); err != nil { // at_hash
		rp.fail(w, "at_hash: %v", err)
		return
	}
	info, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		rp.fail(w, "userinfo: %v", err)
		return
	}
	if info.Subject != id.Subject {
		rp.fail(w, "userinfo sub %q, ID token sub %q", info.Subject, id.Subject)
		return
	}
	var claims struct {
		Username string `json:"preferred_username"`
	}
	if err := info.Claims(&claims); err != nil {
		rp.fail(w, "userinfo claims: %v", err)
		return
	}
	rp.mu.Lock()
	rp.token, rp.rawID, rp.idToken, rp.userInfo = tok, raw, id, info
	rp.mu.Unlock()
	rp.page(w, http.StatusOK, "Signed in as "+claims.Username)
}

// verifierIssuer is the issuer discovery named (and go-oidc checked).
func (rp *relyingParty) verifierIssuer() string {
	var d struct {
		Issuer string `json:"issuer"`
	}
	rp.provider.Claims(&d)
	return d.Issuer
}

func (rp *relyingParty) handleLogout(w http.ResponseWriter, r *http.Request) {
	rp.mu.Lock()
	raw := rp.rawID
	state := rand.Text()
	rp.logouts[state] = true
	rp.mu.Unlock()
	u, err := url.Parse(rp.endSess)
	if err != nil {
		rp.fail(w, "end_session_endpoint: %v", err)
		return
	}
	q := u.Query()
	q.Set("id_token_hint", raw)
	q.Set("post_logout_redirect_uri", rp.base+"/logged-out")
	q.Set("state", state)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (rp *relyingParty) handleLoggedOut(w http.ResponseWriter, r *http.Request) {
	rp.mu.Lock()
	ok := rp.logouts[r.URL.Query().Get("state")]
	rp.mu.Unlock()
	if !ok {
		rp.fail(w, "post-logout redirect with an unknown state")
		return
	}
	rp.page(w, http.StatusOK, "Signed out")
}

// signedIn returns the tokens and ID token of the last sign-in.
func (rp *relyingParty) signedIn() (*oauth2.Token, *oidc.IDToken, *oidc.UserInfo) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.token, rp.idToken, rp.userInfo
}

// TestGoOIDCClient signs in with coreos/go-oidc v3 and golang.org/x/oauth2
// as a relying party: a third-party confidential client, with a loopback
// redirect URI, asking for offline_access; Chromium goes through its
// /login to Keycard's sign-in and consent pages and back with a code,
// which the app exchanges with PKCE; go-oidc's default verifier, set up
// from discovery alone, accepts the ID token; the nonce, at_hash and
// userinfo check out; x/oauth2's TokenSource refreshes. A second app,
// first party, in the same browser gets a code without a password prompt
// (single sign-on). RP-initiated logout with id_token_hint comes back to
// the registered post-logout URI, and then neither app's refresh token
// works.
func TestGoOIDCClient(t *testing.T) {
	browser := chrometest.Start(t)
	s, admin := interopServer(t)

	lnA, baseA := loopbackListener(t)
	idA, secretA := registerClient(t, s, admin, fmt.Sprintf(`{"name":"Orders","grant_types":["authorization_code","refresh_token"],"redirect_uris":[%q],"post_logout_redirect_uris":[%q]}`,
		baseA+"/callback", baseA+"/logged-out"))
	if secretA == "" {
		t.Fatal("a confidential client got no secret")
	}
	lnB, baseB := loopbackListener(t)
	idB, secretB := registerClient(t, s, admin, fmt.Sprintf(`{"name":"Billing","grant_types":["authorization_code","refresh_token"],"first_party":true,"redirect_uris":[%q]}`, baseB+"/callback"))

	a := startRelyingParty(t, "Orders", lnA, baseA, s.base, idA, secretA, []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess})
	bill := startRelyingParty(t, "Billing", lnB, baseB, s.base, idB, secretB, []string{oidc.ScopeOpenID, "profile"})

	b := newTab(t, browser)
	b.do("Orders' login to the sign-in page", chromedp.Navigate(baseA+"/login"), chromedp.WaitVisible(chromedp.ID("username")))
	b.do("signing in", signIn(), chromedp.WaitVisible(chromedp.ID("consent-allow")))
	b.do("consenting", chromedp.Click(chromedp.ID("consent-allow")), h1Is("Signed in as alice"))

	tokA, idTokA, infoA := a.signedIn()
	if idTokA.Issuer != s.base || idTokA.Audience[0] != idA || idTokA.Subject == "" || infoA.Subject != idTokA.Subject {
		t.Errorf("Orders' ID token: iss %q aud %v sub %q; userinfo sub %q", idTokA.Issuer, idTokA.Audience, idTokA.Subject, infoA.Subject)
	}
	if tokA.RefreshToken == "" || tokA.TokenType != "Bearer" || tokA.Expiry.IsZero() {
		t.Fatalf("Orders' token: type %q, refresh token %t, expiry %v", tokA.TokenType, tokA.RefreshToken != "", tokA.Expiry)
	}
	var sidA struct {
		SID string `json:"sid"`
	}
	if err := idTokA.Claims(&sidA); err != nil || sidA.SID == "" {
		t.Errorf("Orders' ID token has no sid: %v", err)
	}

	// x/oauth2 refreshes an expired token through its TokenSource, with
	// the client's secret, and keeps the rotated refresh token.
	ctx := context.Background()
	expired := *tokA
	expired.Expiry = time.Now().Add(-time.Minute)
	refreshed, err := a.config.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("x/oauth2 refresh: %v", err)
	}
	if refreshed.AccessToken == tokA.AccessToken || refreshed.RefreshToken == "" || refreshed.RefreshToken == tokA.RefreshToken {
		t.Error("the refresh gave no new access token or did not rotate the refresh token")
	}
	rawRefreshed, _ := refreshed.Extra("id_token").(string)
	if idRefreshed, err := a.verifier.Verify(ctx, rawRefreshed); err != nil || idRefreshed.Subject != idTokA.Subject {
		t.Errorf("the refreshed ID token: %v", err)
	}
	if info, err := a.provider.UserInfo(ctx, oauth2.StaticTokenSource(refreshed)); err != nil || info.Subject != idTokA.Subject {
		t.Errorf("userinfo with the refreshed token: %v", err)
	}

	// Single sign-on: Billing, first party, gets a code at once.
	b.do("Billing's login, signed in already", chromedp.Navigate(baseB+"/login"), h1Is("Signed in as alice"))
	tokB, idTokB, _ := bill.signedIn()
	if idTokB.Subject != idTokA.Subject || tokB.RefreshToken == "" {
		t.Errorf("Billing: sub %q (Orders' %q), refresh token %t", idTokB.Subject, idTokA.Subject, tokB.RefreshToken != "")
	}

	// RP-initiated logout from Orders: id_token_hint names this
	// browser's session, so it ends at once and the browser comes back
	// to the registered post-logout URI with Orders' state.
	b.do("RP-initiated logout", chromedp.Navigate(baseA+"/logout"), h1Is("Signed out"))
	for _, tc := range []struct {
		rp  *relyingParty
		tok *oauth2.Token
	}{{a, refreshed}, {bill, tokB}} {
		old := *tc.tok
		old.Expiry = time.Now().Add(-time.Minute)
		_, err := tc.rp.config.TokenSource(ctx, &old).Token()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Errorf("%s's refresh after the logout: %v; want invalid_grant", tc.rp.name, err)
		}
		if _, err := tc.rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tc.tok)); err == nil {
			t.Errorf("%s's access token still reads userinfo after the logout", tc.rp.name)
		}
	}
	// The browser is signed out: Orders' login asks for a password again.
	b.do("Orders' login after the logout", chromedp.Navigate(baseA+"/login"), chromedp.WaitVisible(chromedp.ID("username")))

	// A post-logout URI that is not registered is refused, not followed.
	a.mu.Lock()
	hint := a.rawID
	a.mu.Unlock()
	q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}}
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(a.endSess + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); strings.HasPrefix(loc, "https://evil.example") || res.StatusCode != http.StatusBadRequest {
		t.Errorf("an unregistered post_logout_redirect_uri: status %d, Location %q", res.StatusCode, loc)
	}
}
