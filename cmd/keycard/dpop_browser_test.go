package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keycard-auth/keycard/internal/chrometest"
)

// spaPage is a single-page app that keeps its DPoP key as a
// non-extractable WebCrypto key (RFC 9449 with ES256, signed by the
// browser): run refreshes its token twice at the auth server (another
// origin: CORS) with a proof, and calls the API through the gateway (its
// own origin) with each access token and a proof.
const spaPage = `<!doctype html>
<meta charset="utf-8">
<title>DPoP single-page app</title>
<script>
const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const enc = (obj) => b64(new TextEncoder().encode(JSON.stringify(obj)));
async function run(refreshToken, tokenURL, apiURL) {
  const key = await crypto.subtle.generateKey({name: "ECDSA", namedCurve: "P-256"}, false, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", key.publicKey);
  const pub = {kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y};
  async function proof(htm, htu, accessToken) {
    const claims = {jti: crypto.randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000)};
    if (accessToken) claims.ath = b64(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(accessToken)));
    const input = enc({typ: "dpop+jwt", alg: "ES256", jwk: pub}) + "." + enc(claims);
    const sig = await crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"}, key.privateKey, new TextEncoder().encode(input));
    return input + "." + b64(sig);
  }
  async function refresh(rt) {
    const r = await fetch(tokenURL, {method: "POST",
      headers: {"Content-Type": "application/x-www-form-urlencoded", "DPoP": await proof("POST", tokenURL)},
      body: new URLSearchParams({grant_type: "refresh_token", refresh_token: rt})});
    return {status: r.status, body: await r.json()};
  }
  async function api(accessToken) {
    const r = await fetch(apiURL, {headers: {"Authorization": "DPoP " + accessToken, "DPoP": await proof("GET", apiURL, accessToken)}});
    return r.status;
  }
  const out = {extractable: key.privateKey.extractable};
  const first = await refresh(refreshToken);
  out.first = first.status; out.firstType = first.body.token_type; out.api1 = await api(first.body.access_token);
  const second = await refresh(first.body.refresh_token);
  out.second = second.status; out.api2 = await api(second.body.access_token);
  out.access = second.body.access_token;
  return out;
}
</script>
`

// spaResult is what the app's run reports.
type spaResult struct {
	Extractable   bool
	First, Second int
	FirstType     string
	API1, API2    int
	Access        string
}

// TestDPoPBrowser: in Chromium, a single-page app whose DPoP key is a
// non-extractable WebCrypto key gets DPoP-bound tokens from the auth
// server on another origin and calls an API through the gateway, across
// a refresh; its access token copied out of the browser and sent as
// curl would (Bearer, or DPoP without a proof of the key) gets 401.
func TestDPoPBrowser(t *testing.T) {
	browser := chrometest.Start(t)
	s := startServer(t)
	const pass = "correct horse battery staple"
	if code, _, errOut := run(t, pass+"\n", "users", "add", "--data", s.data, "--username", "alice", "--password-stdin",
		"--argon2-memory", "64", "--argon2-iterations", "1"); code != 0 {
		t.Fatalf("users add: %d %s", code, errOut)
	}
	feed := addClient(t, s.data, "--name", "gateway")
	api := newRecordingUpstream(t)
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, spaPage)
	}))
	t.Cleanup(pages.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feed.secret"), []byte(feed.ClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(configPath, fmt.Appendf(nil, `
listen: 127.0.0.1:0
issuer: %s
audience: api
client: {id: %s, secret_file: feed.secret}
routes:
  - path: /app/
    upstream: %s
    auth: none
  - path: /api/
    upstream: %s
    dpop: required
`, s.base, feed.ClientID, pages.URL, api.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, configPath)
	eventually(t, "gateway ready", func() bool {
		code, _ := call(t, "GET", g.base+"/readyz", "", "", "", nil)
		return code == http.StatusOK
	})
	login := s.login(t, "alice", pass)
	apiURL := g.base + "/api/data"

	tab, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancel()
	ctx, cancelStep := context.WithTimeout(tab, 30*time.Second)
	defer cancelStep()
	if err := chromedp.Do(ctx, chromedp.Navigate(g.base+"/app/")); err != nil {
		t.Fatalf("opening the app in Chromium: %v", err)
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[spaResult](fmt.Sprintf("run(%q, %q, %q)", login.RefreshToken, s.base+"/oauth/token", apiURL),
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("the app in Chromium: %v", err)
	}
	if out.Extractable || out.First != 200 || out.FirstType != "DPoP" || out.API1 != 200 || out.Second != 200 || out.API2 != 200 {
		t.Fatalf("the app: %+v (want a non-extractable key, tokens and API calls 200, token_type DPoP)", out)
	}
	if got := api.last().Get("X-Keycard-Key-Thumbprint"); got == "" {
		t.Error("the API did not get the key's thumbprint")
	}
	// The token copied into curl.
	if code, h, _ := dpopDo(t, "GET", apiURL, "Bearer "+out.Access, "", ""); code != http.StatusUnauthorized {
		t.Errorf("the app's token as Bearer: %d %v, want 401", code, h)
	}
	if code, _, _ := dpopDo(t, "GET", apiURL, "DPoP "+out.Access, mustProofFor(t, dpopProver(t), "GET", apiURL, out.Access), ""); code != http.StatusUnauthorized {
		t.Errorf("the app's token with curl's own key: %d, want 401", code)
	}
}
