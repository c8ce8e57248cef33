package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// clusterBrowser is a browser for the cluster test: it keeps cookies by
// name (Keycard's are host-only, Secure and __Host-: the test talks to
// each instance's loopback address in plain HTTP, so it keeps them
// itself), sends Origin and Sec-Fetch-Site as a browser on a page of the
// issuer would, and does not follow redirects.
type clusterBrowser struct {
	c       *cluster
	cookies map[string]string
}

// send sends a request to instance i and returns the answer.
func (b *clusterBrowser) send(t *testing.T, i int, method, path string, form url.Values) clusterReply {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.c.instances[i].base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.c.lb.URL)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("User-Agent", "keycard-cluster-browser")
	for name, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: v})
	}
	client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, b.c.instances[i].name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(b.cookies, ck.Name)
		} else {
			b.cookies[ck.Name] = ck.Value
		}
	}
	return clusterReply{code: resp.StatusCode, body: data, header: resp.Header}
}

var clusterCSRF = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// testClusterBackchannelLogout: a user signs in at instance 1, where an
// application gets a code; the application redeems it at instance 2; the
// user signs out at instance 3 (RP-initiated logout). The application's
// back-channel logout endpoint gets exactly one valid logout token,
// although three instances run the worker.
func testClusterBackchannelLogout(t *testing.T, bin string) {
	c := newCluster(t, bin, clusterOptions{})
	ctx := context.Background()

	var (
		mu       sync.Mutex
		received []string
	)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		received = append(received, r.PostFormValue("logout_token"))
	}))
	defer app.Close()

	const redirect = "https://app.example/cb"
	r := c.on(t, 0, "POST", "/admin/v1/clients", c.admin, "application/json", `{"name":"Orders","first_party":true,
		"grant_types":["authorization_code","refresh_token"],"redirect_uris":["`+redirect+`"],
		"backchannel_logout_uri":"`+app.URL+`/backchannel"}`)
	var created struct {
		ID     string `json:"id"`
		Secret string `json:"client_secret"`
	}
	if r.code != http.StatusCreated || r.decode(&created) != nil || created.ID == "" || created.Secret == "" {
		t.Fatalf("POST /admin/v1/clients: %d %s", r.code, r.body)
	}
	client := clientSecret{ClientID: created.ID, ClientSecret: created.Secret}
	c.secrets = append(c.secrets, client.ClientSecret)
	c.register(t, 0, "gwen")

	// Sign in at instance 1, and authorize the application there.
	b := &clusterBrowser{c: c, cookies: map[string]string{}}
	form := b.send(t, 0, "GET", "/signin", nil)
	m := clusterCSRF.FindSubmatch(form.body)
	if form.code != http.StatusOK || m == nil {
		t.Fatalf("GET /signin: %d", form.code)
	}
	if r := b.send(t, 0, "POST", "/signin", url.Values{"csrf_token": {string(m[1])}, "username": {"gwen"}, "password": {clusterPassword}}); r.code != http.StatusSeeOther {
		t.Fatalf("POST /signin: %d %s", r.code, r.body)
	}
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	sum := sha256.Sum256([]byte(verifier))
	authz := b.send(t, 0, "GET", "/oauth/authorize?"+url.Values{"client_id": {client.ClientID}, "redirect_uri": {redirect},
		"response_type": {"code"}, "scope": {"openid"}, "state": {"st"}, "nonce": {"nn"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}.Encode(), nil)
	loc, err := url.Parse(authz.header.Get("Location"))
	if authz.code/100 != 3 || err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("GET /oauth/authorize: %d, Location %q, %s", authz.code, authz.header.Get("Location"), authz.body)
	}

	// Redeem the code at instance 2.
	tok, err := c.do("POST", c.instances[1].base+"/oauth/token", "", "application/x-www-form-urlencoded", url.Values{
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirect}, "code_verifier": {verifier},
	}.Encode(), &client)
	var tr struct {
		IDToken      string `json:"id_token"`
		RefreshToken string `json:"refresh_token"`
		SessionID    string `json:"session_id"`
	}
	if err != nil || tok.code != http.StatusOK || tok.decode(&tr) != nil || tr.IDToken == "" {
		t.Fatalf("code exchange on instance 2: %v %d %s", err, tok.code, tok.body)
	}
	c.secrets = append(c.secrets, tr.RefreshToken)
	jwksReply, err := c.do("GET", c.lb.URL+"/.well-known/jwks.json", "", "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := jose.ParseKeySet(jwksReply.body)
	if err != nil {
		t.Fatal(err)
	}
	var id struct {
		jwt.RegisteredClaims
		SID string `json:"sid"`
	}
	if err := jwt.NewParser(keys, jwt.WithIssuer(c.lb.URL), jwt.WithAudience(client.ClientID), jwt.WithType("JWT")).Parse(tr.IDToken, &id); err != nil {
		t.Fatalf("ID token: %v", err)
	}

	// Sign out at instance 3.
	out := b.send(t, 2, "GET", "/oauth/logout?"+url.Values{"id_token_hint": {tr.IDToken}}.Encode(), nil)
	if out.code != http.StatusSeeOther {
		t.Fatalf("GET /oauth/logout on instance 3: %d %s", out.code, out.body)
	}

	// Delivered once: the outbox says so, and the application saw one.
	conn, err := pgx.Connect(ctx, c.store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var state string
	var attempts int
	c.eventually(t, "the back-channel logout is delivered", 30*time.Second, func() bool {
		err := conn.QueryRow(ctx, `SELECT state, attempts FROM logout_deliveries WHERE session_id = $1`, tr.SessionID).Scan(&state, &attempts)
		return err == nil && state == "delivered"
	})
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM logout_deliveries`).Scan(&n); err != nil || n != 1 || attempts != 1 {
		t.Errorf("outbox: %d deliveries (%v), the grant session's after %d attempts; want 1 delivered at the first", n, err, attempts)
	}
	mu.Lock()
	got := append([]string{}, received...)
	mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("the application got %d logout tokens, want 1", len(got))
	}
	var lt struct {
		jwt.RegisteredClaims
		SID    string                     `json:"sid"`
		Events map[string]json.RawMessage `json:"events"`
		Nonce  *string                    `json:"nonce"`
	}
	if err := jwt.NewParser(keys, jwt.WithIssuer(c.lb.URL), jwt.WithAudience(client.ClientID), jwt.WithType("logout+jwt"),
		jwt.WithRequired("iat", "jti", "sid", "events")).Parse(got[0], &lt); err != nil {
		t.Fatalf("logout token: %v", err)
	}
	if lt.SID != id.SID || lt.Subject != id.Subject || lt.Nonce != nil ||
		string(lt.Events["http://schemas.openid.net/event/backchannel-logout"]) != "{}" || len(lt.Events) != 1 {
		t.Errorf("logout token sid %q sub %q events %v nonce %v; want the ID token's sid %q and sub %q, the back-channel event, no nonce",
			lt.SID, lt.Subject, lt.Events, lt.Nonce, id.SID, id.Subject)
	}
}
