package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/internal/chrometest"
	"github.com/keycard-auth/keycard/internal/demo"
	"github.com/keycard-auth/keycard/jose"
)

// browserJSPage is a single-page app on @keycard/browser (js/browser, the
// bundle the demo embeds): it starts the client, signs in when its
// address is /?signin, and says in its heading who is signed in or
// why the session ended. kc, the client, is on window for the test.
const browserJSPage = `<!doctype html>
<meta charset="utf-8"><title>app</title><h1>loading</h1>
<script type="module">
import { KeycardClient } from "/keycard-browser.js";
const show = s => { document.querySelector("h1").textContent = s; };
try {
  const kc = await KeycardClient.create({issuer: %q, clientId: %q, redirectUri: location.origin + "/",
    postLogoutRedirectUri: location.origin + "/", scope: "openid profile", refreshMargin: %d, peerWait: 5000});
  window.kc = kc;
  kc.on("signedout", e => show("signed out: " + e.reason));
  kc.on("tokens", e => show("signed in as " + e.claims?.preferred_username));
  window.userinfo = async () => { const r = await kc.fetch(kc.metadata.userinfo_endpoint); return r.status + " " + (r.ok ? (await r.json()).preferred_username : ""); };
  const user = await kc.start();
  if (user) show("signed in as " + user.preferred_username);
  else if (location.search === "?signin") await kc.signIn({returnTo: "/"});
  else if (document.querySelector("h1").textContent === "loading") show("signed out");
} catch (e) { show("error: " + e.message); }
</script>`

// browserJSApp starts a keycard serve with alice, registers the page's
// public client (access tokens of lifetime seconds) and serves the page on
// a loopback origin of its own. serveArgs go to keycard serve. It
// returns the server, an admin token, the page's base URL.
func browserJSApp(t *testing.T, lifetime, margin int, serveArgs ...string) (*runningServer, string, string) {
	t.Helper()
	s, admin := interopServer(t, serveArgs...)
	ln, base := loopbackListener(t)
	id, _ := registerClient(t, s, admin, fmt.Sprintf(`{"name":"JS app","public":true,"first_party":true,"grant_types":["authorization_code","refresh_token"],`+
		`"redirect_uris":[%q],"post_logout_redirect_uris":[%[1]q],"access_token_lifetime":%d}`, base+"/", lifetime))
	page := fmt.Sprintf(browserJSPage, s.base, id, margin)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page)
		case "/keycard-browser.js":
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write(demo.BrowserBundle())
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s, admin, base
}

// eval evaluates a JavaScript expression in the tab (awaiting a promise).
func eval[T any](b *browserTab, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// sameContextTab opens another tab in b's browser context: the same
// origin storage, Web Locks and BroadcastChannels, as a user's tabs.
func sameContextTab(t *testing.T, b *browserTab) *browserTab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return &browserTab{t: t, ctx: ctx}
}

// metricValue returns the sum of the server's metric samples (from
// /metrics) whose line re matches.
func metricValue(t *testing.T, s *runningServer, re *regexp.Regexp) float64 {
	t.Helper()
	res, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if re.MatchString(line) {
			f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			sum += f
		}
	}
	return sum
}

var (
	tokenRequestsRE = regexp.MustCompile(`^keycard_http_requests_total\{.*route="POST /oauth/token".*\} `)
	refreshesRE     = regexp.MustCompile(`^keycard_refresh_grants_total\{`)
)

// TestBrowserPackageTabs: ten tabs of one browser on @keycard/browser.
// Their access tokens (30 s) reach their renewal time together, and the
// server sees exactly one refresh: one tab refreshed under the Web Lock
// and handed the new token to the nine others, none of which was signed
// out, and every tab calls userinfo with it (DPoP). The token copied out
// of the page is refused without the key. A sign-out in one tab reaches
// every other; so does a session ended at the server, which the next
// refresh learns (invalid_grant).
func TestBrowserPackageTabs(t *testing.T) {
	browser := chrometest.StartFor(t, 5*time.Minute)
	s, admin, base := browserJSApp(t, 30, 12)

	first := newTab(t, browser)
	first.do("signing in", chromedp.Navigate(base+"/?signin"), signIn(), h1Is("signed in as alice"))
	tabs := []*browserTab{first}
	for i := 1; i < 10; i++ {
		b := sameContextTab(t, first)
		b.do(fmt.Sprintf("tab %d", i+1), chromedp.Navigate(base+"/"), h1Is("signed in as alice"))
		tabs = append(tabs, b)
	}
	tokenRequests, refreshes := metricValue(t, s, tokenRequestsRE), metricValue(t, s, refreshesRE)
	if tokenRequests != 1 || refreshes != 0 {
		t.Errorf("after one sign-in and nine tabs opened: %v token requests, %v refreshes; want 1 and 0 (the new tabs take the token from the first)", tokenRequests, refreshes)
	}
	old := eval[string](first, `kc.accessToken()`)
	for i, b := range tabs {
		if got := eval[string](b, `kc.accessToken()`); got != old {
			t.Fatalf("tab %d holds another access token than the first tab", i+1)
		}
	}

	// The renewal time (30 s - 12 s) passes in every tab.
	var renewed string
	for i, b := range tabs {
		renewed = poll(t, fmt.Sprintf("tab %d renewing its token", i+1), func() (string, bool) {
			tok := eval[string](b, `kc.accessToken()`)
			return tok, tok != old
		})
		if i > 0 && renewed != eval[string](tabs[0], `kc.accessToken()`) {
			t.Fatalf("tab %d holds another token than tab 1", i+1)
		}
	}
	if got := metricValue(t, s, tokenRequestsRE) - tokenRequests; got != 1 {
		t.Errorf("ten tabs at expiry made %v token requests, want 1", got)
	}
	if got := metricValue(t, s, refreshesRE) - refreshes; got != 1 {
		t.Errorf("ten tabs at expiry made %v refreshes, want 1", got)
	}
	for i, b := range tabs {
		if got := eval[string](b, `userinfo()`); got != "200 alice" {
			t.Errorf("tab %d: userinfo with the renewed token: %q, want 200 alice", i+1, got)
		}
		if h1 := eval[string](b, `document.querySelector("h1").textContent`); h1 != "signed in as alice" {
			t.Errorf("tab %d shows %q after the renewal", i+1, h1)
		}
	}

	// The token copied out of the page: bound to the page's key.
	userinfo := s.base + "/oauth/userinfo"
	try := func(how string, set func(h http.Header)) {
		req, _ := http.NewRequest("GET", userinfo, nil)
		set(req.Header)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("the page's token %s: status %d, want 401", how, res.StatusCode)
		}
	}
	try("as a bearer token", func(h http.Header) { h.Set("Authorization", "Bearer "+renewed) })
	try("as DPoP without a proof", func(h http.Header) { h.Set("Authorization", "DPoP "+renewed) })
	thief, err := dpop.GenerateProver(jose.ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := thief.Proof("GET", userinfo, renewed, "")
	if err != nil {
		t.Fatal(err)
	}
	try("with another key's proof", func(h http.Header) { h.Set("Authorization", "DPoP "+renewed); h.Set("DPoP", proof) })

	// Sign-out in tab 3 (RP-initiated logout, back to the page) reaches
	// every other tab.
	tabs[2].do("signing out in tab 3", chromedp.Evaluate[chromedp.Void](`void kc.signOut()`), h1Is("signed out"))
	for i, b := range tabs {
		if i != 2 {
			b.do(fmt.Sprintf("tab %d hearing of the sign-out", i+1), h1Is("signed out: signed_out"))
		}
	}

	// Signed in again (the sign-out ended the sign-in at Keycard too: the
	// form asks for the password), every tab has the session; then an
	// admin ends alice's sessions, and the next refresh, in any tab, signs
	// every tab out.
	first.do("signing in again", chromedp.Navigate(base+"/?signin"), signIn(), h1Is("signed in as alice"))
	for i, b := range tabs[1:] {
		b.do(fmt.Sprintf("tab %d hearing of the sign-in", i+2), h1Is("signed in as alice"))
	}
	sub := eval[string](first, `kc.user().sub`)
	if code, _ := call(t, "DELETE", s.base+"/admin/v1/users/"+sub+"/sessions", admin, "", "", nil); code != http.StatusOK {
		t.Fatalf("ending alice's sessions: %d", code)
	}
	if got := eval[string](tabs[4], `userinfo()`); got != "401 " {
		t.Errorf("userinfo after the session ended: %q, want 401", got)
	}
	for i, b := range tabs {
		b.do(fmt.Sprintf("tab %d hearing of the ended session", i+1), h1Is("signed out: invalid_grant"))
	}
}

// TestBrowserPackageStolenRefreshToken: the refresh token the package
// keeps in IndexedDB, copied out of the page, is refused without the
// page's key: without a proof (invalid_dpop_proof) and with a proof of
// another key (invalid_grant).
func TestBrowserPackageStolenRefreshToken(t *testing.T) {
	browser := chrometest.Start(t)
	s, _, base := browserJSApp(t, 300, 60)
	b := newTab(t, browser)
	b.do("signing in", chromedp.Navigate(base+"/?signin"), signIn(), h1Is("signed in as alice"))
	stolen := eval[string](b, `new Promise((resolve, reject) => {
		const open = indexedDB.open("keycard:" + kc.options.issuer + ":" + kc.options.clientId, 1);
		open.onerror = () => reject(open.error);
		open.onsuccess = () => {
			const get = open.result.transaction("state").objectStore("state").get("refresh");
			get.onsuccess = () => resolve(get.result.token);
			get.onerror = () => reject(get.error);
		};
	})`)
	if stolen == "" {
		t.Fatal("no refresh token in the page's IndexedDB")
	}
	clientID := eval[string](b, `kc.options.clientId`)
	form := "grant_type=refresh_token&client_id=" + url.QueryEscape(clientID) + "&refresh_token=" + url.QueryEscape(stolen)
	refresh := func(how, proof string) (int, string) {
		req, _ := http.NewRequest("POST", s.base+"/oauth/token", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			Error string `json:"error"`
		}
		json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body.Error
	}
	if code, e := refresh("without a proof", ""); code != http.StatusBadRequest || e != "invalid_dpop_proof" {
		t.Errorf("the stolen refresh token without a proof: %d %s, want 400 invalid_dpop_proof", code, e)
	}
	thief, err := dpop.GenerateProver(jose.ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := thief.Proof("POST", s.base+"/oauth/token", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if code, e := refresh("with another key's proof", proof); code != http.StatusBadRequest || e != "invalid_grant" {
		t.Errorf("the stolen refresh token with another key's proof: %d %s, want 400 invalid_grant", code, e)
	}
}

// TestBrowserPackageDPoPNonce: with server nonces on (keycard serve
// --dpop-nonce), the page's code grant goes through the nonce dance (RFC
// 9449 §8) across origins: the token endpoint's 400 use_dpop_nonce,
// retried once with the DPoP-Nonce the server exposes to scripts; its
// userinfo calls, on the same origin, carry that nonce from the start.
// (A 401 use_dpop_nonce at an API is retried the same way: unit tests.)
func TestBrowserPackageDPoPNonce(t *testing.T) {
	browser := chrometest.Start(t)
	s, _, base := browserJSApp(t, 300, 60, "--dpop-nonce")
	b := newTab(t, browser)
	b.do("signing in", chromedp.Navigate(base+"/?signin"), signIn(), h1Is("signed in as alice"))
	if got := eval[string](b, `userinfo()`); got != "200 alice" {
		t.Errorf("userinfo with server nonces: %q, want 200 alice", got)
	}
	if got := eval[string](b, `userinfo()`); got != "200 alice" {
		t.Errorf("userinfo again: %q, want 200 alice", got)
	}
	tokenAnswers := func(code string) float64 {
		return metricValue(t, s, regexp.MustCompile(`^keycard_http_requests_total\{code="`+code+`",route="POST /oauth/token"\} `))
	}
	if ok, nonce := tokenAnswers("200"), tokenAnswers("400"); ok != 1 || nonce != 1 {
		t.Errorf("token endpoint: %v answers 200 and %v answers 400, want 1 (the code grant) and 1 (use_dpop_nonce)", ok, nonce)
	}
	if got := metricValue(t, s, refreshesRE); got != 0 {
		t.Errorf("%v refreshes, want none: the nonce dance at userinfo needs no new token", got)
	}
	userinfo := func(code string) float64 {
		return metricValue(t, s, regexp.MustCompile(`^keycard_http_requests_total\{code="`+code+`",route="GET /oauth/userinfo"\} `))
	}
	if refused, ok := userinfo("401"), userinfo("200"); refused != 0 || ok != 2 {
		t.Errorf("userinfo: %v answers 401 and %v answers 200, want 0 (the nonce the token endpoint gave serves the same origin) and 2", refused, ok)
	}
}
