package main

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/keycard-auth/keycard/internal/chrometest"
)

// corsSPAPage is a single-page app with no back end, as one is written with
// the browser's own APIs: PKCE with WebCrypto, the code exchanged, the
// token refreshed and revoked, and userinfo read with fetch, across
// origins. It also tries to read the introspection endpoint, which must
// stay closed to it. Its heading says how it went.
const corsSPAPage = `<!doctype html>
<meta charset="utf-8"><title>SPA</title><h1>starting</h1>
<script type="module">
const issuer = %q, clientID = %q, redirect = location.origin + "/";
const show = s => { document.querySelector("h1").textContent = s; };
const b64 = a => btoa(String.fromCharCode(...new Uint8Array(a))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const form = o => ({method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: new URLSearchParams(o)});
const json = async r => { const b = await r.json(); if (!r.ok) throw new Error(r.status + " " + JSON.stringify(b)); return b; };
try {
  const meta = await json(await fetch(issuer + "/.well-known/openid-configuration"));
  const q = new URLSearchParams(location.search);
  if (!q.has("code")) {
    const verifier = b64(crypto.getRandomValues(new Uint8Array(32)));
    const state = b64(crypto.getRandomValues(new Uint8Array(16)));
    sessionStorage.setItem("verifier", verifier);
    sessionStorage.setItem("state", state);
    const challenge = b64(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    location.assign(meta.authorization_endpoint + "?" + new URLSearchParams({response_type: "code", client_id: clientID,
      redirect_uri: redirect, scope: "openid profile offline_access", state, code_challenge: challenge, code_challenge_method: "S256"}));
  } else {
    if (q.get("state") !== sessionStorage.getItem("state") || q.get("iss") !== meta.issuer) throw new Error("state or iss");
    const tok = await json(await fetch(meta.token_endpoint, form({grant_type: "authorization_code", code: q.get("code"),
      redirect_uri: redirect, client_id: clientID, code_verifier: sessionStorage.getItem("verifier")})));
    const me = await json(await fetch(meta.userinfo_endpoint, {headers: {Authorization: "Bearer " + tok.access_token}}));
    const next = await json(await fetch(meta.token_endpoint, form({grant_type: "refresh_token", refresh_token: tok.refresh_token, client_id: clientID})));
    const revoked = await fetch(meta.revocation_endpoint, form({token: next.refresh_token, client_id: clientID}));
    if (!revoked.ok) throw new Error("revocation: " + revoked.status);
    const again = await fetch(meta.token_endpoint, form({grant_type: "refresh_token", refresh_token: next.refresh_token, client_id: clientID}));
    let introspection = "closed";
    try { await fetch(meta.introspection_endpoint, form({token: tok.access_token})); introspection = "readable"; } catch { }
    show("SPA signed in as " + me.preferred_username + "; refreshed; revoked refresh " + again.status + "; introspection " + introspection);
  }
} catch (e) { show("error: " + e.message); }
</script>`

// TestSinglePageApp: a single-page app on another origin, a public client
// with no back end, signs in through the browser and calls the token,
// userinfo and revocation endpoints itself, as the browser's CORS rules
// allow (docs/decisions/auth-server.md); introspection stays closed to it.
func TestSinglePageApp(t *testing.T) {
	browser := chrometest.Start(t)
	s, admin := interopServer(t)
	ln, base := loopbackListener(t)
	id, secret := registerClient(t, s, admin, fmt.Sprintf(`{"name":"SPA","public":true,"first_party":true,"grant_types":["authorization_code","refresh_token"],"redirect_uris":[%q]}`, base+"/"))
	if secret != "" {
		t.Fatal("a public client got a secret")
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, corsSPAPage, s.base, id)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	b := newTab(t, browser)
	b.do("the app's sign-in", chromedp.Navigate(base+"/"), signIn(),
		h1Is("SPA signed in as alice; refreshed; revoked refresh 400; introspection closed"))
}
