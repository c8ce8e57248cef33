package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/authtest"
	"github.com/keycard-auth/keycard/internal/backchannel"
	"github.com/keycard-auth/keycard/internal/federation"
	"github.com/keycard-auth/keycard/internal/outbox"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
	"github.com/keycard-auth/keycard/verifier"
)

// The federation tests run two real auth servers in this process: the
// upstream, an OpenID Provider at http://localhost:PORT, and the
// downstream, at http://127.0.0.1:PORT, which signs users in there
// (docs/federation.md). Two host names, so that their cookies stay apart
// in one browser as they would on two domains.

const fedPassword = "correct horse battery"

// app is a served App.
type app struct {
	*App
	base string
}

// serveOn opens an App with c on ln, serves it under issuer, and stops it
// at the end of the test.
func serveOn(t *testing.T, c Config, ln net.Listener, issuer string) *app {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c.Issuer = issuer
	a, err := Open(ctx, c, Options{Keys: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- a.Serve(ctx, ln, &tlsconfig.Secured{}, func() { close(ready) }) }()
	<-ready
	t.Cleanup(func() {
		cancel()
		<-done
		a.Close()
	})
	return &app{App: a, base: issuer}
}

func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return ln, port
}

type fedEnv struct {
	up, down         *app
	clientID, secret string // the downstream's registration at the upstream
}

// newFedEnv starts the two servers: the upstream with users ann (role
// eng, verified address ann@corp.example) and its client for the
// downstream, whose provider "up" maps the upstream's roles eng to
// developer and may create users.
func newFedEnv(t *testing.T, mutate func(*federation.Config)) *fedEnv {
	t.Helper()
	return newFedEnvWith(t, mutate, nil)
}

// newFedEnvWith is newFedEnv with the downstream's configuration changed
// by down.
func newFedEnvWith(t *testing.T, mutate func(*federation.Config), down func(*Config)) *fedEnv {
	t.Helper()
	ctx := context.Background()
	downLn, downPort := listen(t)
	downBase := "http://127.0.0.1:" + downPort
	upLn, upPort := listen(t)
	upCfg := testConfig(t)
	upCfg.Backchannel = backchannel.Options{Settings: outbox.Settings{Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, PollInterval: 20 * time.Millisecond}}
	e := &fedEnv{up: serveOn(t, upCfg, upLn, "http://localhost:"+upPort)}
	usvc := e.up.Service()
	client, secret, err := usvc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "Downstream Keycard", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantAuthorizationCode}, RedirectURIs: []string{downBase + "/federation/up/callback"},
		FirstParty: true, BackchannelLogoutURI: downBase + "/federation/up/backchannel-logout",
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.clientID, e.secret = client.ID, secret
	e.upUser(t, "ann", "ann@corp.example", true, "eng")

	downCfg := testConfig(t)
	p := federation.Config{Name: "up", DisplayName: "Upstream Keycard", Issuer: e.up.base, ClientID: client.ID, ClientSecret: secret,
		Claims: federation.ClaimMap{Groups: "roles"}, Roles: map[string][]string{"eng": {"developer"}}, CreateUsers: true}
	if mutate != nil {
		mutate(&p)
	}
	downCfg.Federation = []federation.Config{p}
	if down != nil {
		down(&downCfg)
	}
	e.down = serveOn(t, downCfg, downLn, downBase)
	return e
}

// upUser creates a user at the upstream.
func (e *fedEnv) upUser(t *testing.T, name, email string, verified bool, roles ...string) {
	t.Helper()
	ctx := context.Background()
	svc := e.up.Service()
	u, err := svc.CreateUser(ctx, auth.Operator(), name, fedPassword, roles)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetEmail(ctx, auth.Operator(), u.ID, email, verified); err != nil {
		t.Fatal(err)
	}
}

// fedBrowser is a browser enough for these tests: cookies per host name
// (not port, as browsers keep them), redirects not followed.
type fedBrowser struct {
	t       *testing.T
	cookies map[string]map[string]*http.Cookie
	client  *http.Client
}

func newFedBrowser(t *testing.T) *fedBrowser {
	return &fedBrowser{t: t, cookies: map[string]map[string]*http.Cookie{}, client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type fedPage struct {
	status int
	header http.Header
	body   string
}

func (p *fedPage) location() string { return p.header.Get("Location") }

func (b *fedBrowser) send(method, rawURL string, form url.Values) *fedPage {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", req.URL.Scheme+"://"+req.URL.Host)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for _, c := range b.cookies[req.URL.Hostname()] {
		if strings.HasPrefix(req.URL.Path, c.Path) {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	jar := b.cookies[req.URL.Hostname()]
	if jar == nil {
		jar = map[string]*http.Cookie{}
		b.cookies[req.URL.Hostname()] = jar
	}
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 {
			delete(jar, c.Name)
		} else {
			jar[c.Name] = c
		}
	}
	return &fedPage{status: res.StatusCode, header: res.Header, body: string(data)}
}

func (b *fedBrowser) get(u string) *fedPage { b.t.Helper(); return b.send(http.MethodGet, u, nil) }

// resolve returns loc resolved against base.
func resolve(t *testing.T, base, loc string) string {
	t.Helper()
	bu, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u, err := bu.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

func csrfOf(t *testing.T, p *fedPage) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token on the page (status %d):\n%s", p.status, p.body)
	}
	return m[1]
}

// toCallback follows a sign-in from its start URL at the downstream
// through the upstream (signing in there as user unless its session is
// still there) and returns the callback URL the upstream sends the
// browser to, without visiting it.
func (e *fedEnv) toCallback(t *testing.T, b *fedBrowser, start, user string) string {
	t.Helper()
	u := start
	for range 12 {
		if strings.HasPrefix(u, e.down.base+"/federation/") {
			return u
		}
		p := b.get(u)
		if p.status == http.StatusOK && strings.Contains(p.body, `action="/signin"`) && strings.HasPrefix(u, e.up.base) {
			pu, _ := url.Parse(u)
			next := pu.Query().Get("next")
			p = b.send(http.MethodPost, e.up.base+"/signin", url.Values{"csrf_token": {csrfOf(t, p)}, "username": {user}, "password": {fedPassword}, "next": {next}})
		}
		if p.status != http.StatusSeeOther && p.status != http.StatusFound {
			t.Fatalf("GET %s: status %d, want a redirect:\n%s", u, p.status, p.body)
		}
		u = resolve(t, u, p.location())
	}
	t.Fatalf("no callback after 12 redirects, at %s", u)
	return ""
}

// accessClaims decodes (without verifying) the downstream access token
// cookie's claims.
func (b *fedBrowser) accessClaims(t *testing.T, host string) map[string]any {
	t.Helper()
	c := b.cookies[host]["__Host-keycard_access"]
	if c == nil {
		t.Fatalf("no access token cookie at %s", host)
	}
	return decodeClaims(t, c.Value)
}

func decodeClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFederationSignIn signs in at the downstream through the upstream:
// the account is made just in time with the identity linked, the roles
// mapped from the upstream's, and the tokens say so (amr fed, idp).
func TestFederationSignIn(t *testing.T) {
	ctx := context.Background()
	e := newFedEnv(t, nil)
	b := newFedBrowser(t)
	page := b.get(e.down.base + "/signin")
	if !strings.Contains(page.body, `id="signin-with-up"`) || !strings.Contains(page.body, "Sign in with Upstream Keycard") {
		t.Fatalf("the sign-in page has no button for the provider:\n%s", page.body)
	}
	cb := e.toCallback(t, b, e.down.base+"/signin/up?next=%2Faccount", "ann")
	cbURL, _ := url.Parse(cb)
	if cbURL.Query().Get("iss") != e.up.base {
		t.Errorf("the upstream's response has iss %q, want %q (RFC 9207)", cbURL.Query().Get("iss"), e.up.base)
	}
	saved := map[string]*http.Cookie{}
	for k, v := range b.cookies["127.0.0.1"] {
		saved[k] = v
	}
	done := b.get(cb)
	if done.status != http.StatusOK || !strings.Contains(done.body, `action="/account"`) {
		t.Fatalf("callback: status %d:\n%s", done.status, done.body)
	}
	svc := e.down.Service()
	ann, err := svc.UserByName(ctx, "ann")
	if err != nil {
		t.Fatalf("the user was not created: %v", err)
	}
	if ann.HasPassword() || ann.Email != "ann@corp.example" || !ann.EmailVerified || !slices.Equal(ann.Roles, []string{"developer"}) {
		t.Errorf("created user: %+v; want no password, the verified address, role developer", ann)
	}
	ids, err := svc.Identities(ctx, ann.ID)
	if err != nil || len(ids) != 1 || ids[0].Provider != "up" {
		t.Fatalf("linked identities: %+v, %v", ids, err)
	}
	upAnn, _ := e.up.Service().UserByName(ctx, "ann")
	if ids[0].Subject != upAnn.ID {
		t.Errorf("linked subject %q, want the upstream's user id %q", ids[0].Subject, upAnn.ID)
	}
	claims := b.accessClaims(t, "127.0.0.1")
	if claims["sub"] != ann.ID || claims["idp"] != "up" {
		t.Errorf("access token: sub %v idp %v; want %s and up", claims["sub"], claims["idp"], ann.ID)
	}
	// A refreshed access token still names the provider.
	refreshed, err := svc.Refresh(ctx, b.cookies["127.0.0.1"]["__Secure-keycard_page_refresh"].Value, auth.Agent{})
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if c := decodeClaims(t, refreshed.AccessToken); c["idp"] != "up" {
		t.Errorf("refreshed access token: idp %v, want up", c["idp"])
	}
	sess, err := svc.UserSessions(ctx, ann.ID, "", 10)
	if err != nil || len(sess) != 1 || !slices.Equal(sess[0].AMR, []string{"fed"}) || sess[0].IdP != "up" || sess[0].IdPSessionID == "" {
		t.Fatalf("sessions: %+v, %v; want one with amr [fed], idp up and the upstream's sid", sess, err)
	}
	// The account page lists the provider and offers no unlink that
	// would lock ann out: unlinking it is refused.
	acct := b.get(e.down.base + "/account")
	if acct.status != http.StatusOK || !strings.Contains(acct.body, `data-provider="up"`) {
		t.Fatalf("account page: %d\n%s", acct.status, acct.body)
	}
	un := b.send(http.MethodPost, e.down.base+"/account/identities/unlink", url.Values{"csrf_token": {csrfOf(t, acct)}, "provider": {"up"}, "subject": {upAnn.ID}})
	if un.status != http.StatusForbidden {
		t.Errorf("unlinking the last way in: status %d, want 403", un.status)
	}

	// Replayed state: the same callback again, with the flow's cookie put
	// back, is refused; so is it without the cookie.
	for name, c := range saved {
		b.cookies["127.0.0.1"][name] = c
	}
	if p := b.get(cb); p.status != http.StatusBadRequest {
		t.Errorf("replayed callback: status %d, want 400", p.status)
	}
	if p := b.get(cb); p.status != http.StatusBadRequest {
		t.Errorf("replayed callback without the flow cookie: status %d, want 400", p.status)
	}

	// The admin API lists the identity and the provider (no secret), and
	// refuses to unlink ann's last way in.
	if _, err := svc.CreateUser(ctx, auth.Operator(), "root", fedPassword, []string{auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	root, err := svc.Login(ctx, "root", fedPassword, auth.Agent{})
	if err != nil {
		t.Fatal(err)
	}
	admin := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, e.down.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+root.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	if code, body := admin("GET", "/admin/v1/users/"+ann.ID+"/identities"); code != http.StatusOK || !strings.Contains(body, `"provider":"up"`) || !strings.Contains(body, upAnn.ID) {
		t.Errorf("admin identities: %d %s", code, body)
	}
	if code, body := admin("GET", "/admin/v1/federation/providers"); code != http.StatusOK || !strings.Contains(body, `"callback_url":"`+e.down.base+`/federation/up/callback"`) || strings.Contains(body, e.secret) {
		t.Errorf("admin providers: %d %s", code, body)
	}
	// The console's page of the user shows the provider and the session's.
	rootBrowser := newFedBrowser(t)
	rootBrowser.cookies["127.0.0.1"] = map[string]*http.Cookie{"__Host-keycard_access": {Name: "__Host-keycard_access", Value: root.AccessToken, Path: "/"}}
	if p := rootBrowser.get(e.down.base + "/admin/users/" + ann.ID); p.status != http.StatusOK || !strings.Contains(p.body, `data-provider="up"`) ||
		!strings.Contains(p.body, "none: signs in through a provider") || !strings.Contains(p.body, "through up") {
		t.Errorf("the console's user page: %d\n%s", p.status, p.body)
	}
	if code, _ := admin("DELETE", "/admin/v1/users/"+ann.ID+"/identities/up/"+upAnn.ID); code != http.StatusForbidden {
		t.Errorf("admin unlink of the last way in: %d, want 403", code)
	}
	if code, _ := admin("DELETE", "/admin/v1/users/"+ann.ID+"/identities/up/nobody"); code != http.StatusNotFound {
		t.Errorf("admin unlink of an unknown identity: %d, want 404", code)
	}

	// A second sign-in finds the linked account: no new user.
	b2 := newFedBrowser(t)
	if p := b2.get(e.toCallback(t, b2, e.down.base+"/signin/up", "ann")); p.status != http.StatusOK {
		t.Fatalf("second sign-in: %d\n%s", p.status, p.body)
	}
	if c := b2.accessClaims(t, "127.0.0.1"); c["sub"] != ann.ID {
		t.Errorf("second sign-in: sub %v, want %s", c["sub"], ann.ID)
	}

	// Disabling the user ends the federated sessions and refuses the
	// next federated sign-in.
	if _, err := svc.SetUserDisabled(ctx, auth.Operator(), ann.ID, true); err != nil {
		t.Fatal(err)
	}
	for _, s := range sess {
		if _, err := svc.BrowserSession(ctx, s.ID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
			t.Errorf("session %s outlived the user's disabling: %v", s.ID, err)
		}
	}
	if _, err := svc.Authenticate(ctx, b2.cookies["127.0.0.1"]["__Host-keycard_access"].Value); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("the federated access token after disabling: %v, want refused", err)
	}
	b3 := newFedBrowser(t)
	if p := b3.get(e.toCallback(t, b3, e.down.base+"/signin/up", "ann")); p.status != http.StatusUnauthorized {
		t.Errorf("sign-in of a disabled user: status %d, want 401", p.status)
	}
}

// TestFederationMixUp: a response whose iss is not the provider's (the
// mix-up attack, RFC 9207) is refused before the code is used, and the
// code is then still unredeemed.
func TestFederationMixUp(t *testing.T) {
	e := newFedEnv(t, nil)
	b := newFedBrowser(t)
	cb := e.toCallback(t, b, e.down.base+"/signin/up", "ann")
	u, _ := url.Parse(cb)
	q := u.Query()
	q.Set("iss", "http://evil.example")
	u.RawQuery = q.Encode()
	if p := b.get(u.String()); p.status != http.StatusBadRequest {
		t.Fatalf("callback with another iss: status %d, want 400:\n%s", p.status, p.body)
	}
	if _, err := e.down.Service().UserByName(context.Background(), "ann"); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("a refused response created the user: %v", err)
	}
	if b.cookies["127.0.0.1"]["__Host-keycard_access"] != nil {
		t.Error("a refused response signed the browser in")
	}
}

// TestFederationMalformedCallbacks sends callbacks no provider made:
// every one is a 4xx, never a 5xx.
func TestFederationMalformedCallbacks(t *testing.T) {
	e := newFedEnv(t, nil)
	b := newFedBrowser(t)
	cb := e.toCallback(t, b, e.down.base+"/signin/up", "ann")
	u, _ := url.Parse(cb)
	state := u.Query().Get("state")
	long := strings.Repeat("A", 5000)
	for _, q := range []string{
		"", "state=", "code=x", "state=short", "state=" + long, "state=" + state + "&state=" + state,
		"state=" + state + "&code=" + long, "state=" + state + "&error=access_denied&iss=" + url.QueryEscape(e.up.base),
		"state=%ZZ", "state=" + state + "&code=a%00b&iss=" + url.QueryEscape(e.up.base),
	} {
		p := b.get(e.down.base + "/federation/up/callback?" + q)
		if p.status < 400 || p.status >= 500 {
			t.Errorf("callback ?%.80s: status %d, want a 4xx", q, p.status)
		}
	}
	if p := b.get(e.down.base + "/federation/nope/callback?" + u.RawQuery); p.status != http.StatusNotFound {
		t.Errorf("callback of an unknown provider: status %d, want 404", p.status)
	}
	// Sign-ins started over and over keep a few cookies, not one each.
	for range 10 {
		b.get(e.down.base + "/signin/up")
	}
	n := 0
	for name := range b.cookies["127.0.0.1"] {
		if strings.HasPrefix(name, "__Host-keycard_fed_") {
			n++
		}
	}
	if n > 4 {
		t.Errorf("%d sign-in cookies after 10 sign-ins started, want at most 4", n)
	}
	if p := b.get(e.down.base + "/signin/nope"); p.status != http.StatusNotFound {
		t.Errorf("start at an unknown provider: status %d, want 404", p.status)
	}
	for _, body := range []url.Values{nil, {"logout_token": {"garbage"}}, {"logout_token": {"a", "b"}}} {
		p := b.send(http.MethodPost, e.down.base+"/federation/up/backchannel-logout", body)
		if p.status != http.StatusBadRequest {
			t.Errorf("back-channel logout %v: status %d, want 400", body, p.status)
		}
	}
}

// TestFederationNoSilentLinking is the account takeover: an upstream
// account whose address is that of an existing downstream account must
// not get into it. With the address verified upstream the user is asked
// to sign in to the account first; unverified, it is not even looked at
// (a new account is made, without the address). Then the owner signs in
// with their password and links the provider from the account page.
func TestFederationNoSilentLinking(t *testing.T) {
	ctx := context.Background()
	e := newFedEnv(t, nil)
	svc := e.down.Service()
	victim, err := svc.CreateUserWithEmail(ctx, auth.Operator(), "victim", fedPassword, "victim@corp.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetEmail(ctx, auth.Operator(), victim.ID, "victim@corp.example", true); err != nil {
		t.Fatal(err)
	}
	e.upUser(t, "eve", "victim@corp.example", true)
	e.upUser(t, "mallory", "VICTIM+x@corp.example", false)
	// Mallory's address differs at the upstream (addresses are unique
	// there); give the downstream victim an unverified twin to match.
	if _, err := svc.SetEmail(ctx, auth.Operator(), victim.ID, "victim+x@corp.example", true); err != nil {
		t.Fatal(err)
	}

	// Mallory: an unverified address equal to the victim's. A new,
	// separate account, which does not get the address.
	b := newFedBrowser(t)
	if p := b.get(e.toCallback(t, b, e.down.base+"/signin/up", "mallory")); p.status != http.StatusOK {
		t.Fatalf("mallory's sign-in: %d\n%s", p.status, p.body)
	}
	c := b.accessClaims(t, "127.0.0.1")
	if c["sub"] == victim.ID {
		t.Fatal("an unverified address got into the account that has it")
	}
	mal, err := svc.User(ctx, c["sub"].(string))
	if err != nil || mal.Email != "" {
		t.Errorf("mallory's account: %+v, %v; want one without the unverified address", mal, err)
	}

	// Eve: the victim's address, verified upstream. Refused, nothing
	// linked, no session.
	if _, err := svc.SetEmail(ctx, auth.Operator(), victim.ID, "victim@corp.example", true); err != nil {
		t.Fatal(err)
	}
	b = newFedBrowser(t)
	p := b.get(e.toCallback(t, b, e.down.base+"/signin/up", "eve"))
	if p.status != http.StatusForbidden || !strings.Contains(p.body, `id="signin-to-link"`) {
		t.Fatalf("eve's sign-in: status %d, want 403 and the page asking to sign in first:\n%s", p.status, p.body)
	}
	if b.cookies["127.0.0.1"]["__Host-keycard_access"] != nil {
		t.Error("eve got a session")
	}
	if ids, _ := svc.Identities(ctx, victim.ID); len(ids) != 0 {
		t.Fatalf("the identity was linked silently: %+v", ids)
	}

	// The owner signs in with the password and links the provider.
	form := b.get(e.down.base + "/signin")
	if p := b.send(http.MethodPost, e.down.base+"/signin", url.Values{"csrf_token": {csrfOf(t, form)}, "username": {"victim"}, "password": {fedPassword}, "next": {"/account"}}); p.status != http.StatusSeeOther {
		t.Fatalf("password sign-in: %d\n%s", p.status, p.body)
	}
	acct := b.get(e.down.base + "/account")
	if !strings.Contains(acct.body, `id="link-up"`) {
		t.Fatalf("the account page offers no link:\n%s", acct.body)
	}
	if csp := acct.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+e.up.base) {
		t.Errorf("the account page's form-action does not let its link form go on to the provider: %q", csp)
	}
	start := b.send(http.MethodPost, e.down.base+"/account/identities/link", url.Values{"csrf_token": {csrfOf(t, acct)}, "provider": {"up"}})
	if start.status != http.StatusSeeOther || !strings.HasPrefix(start.location(), e.up.base) {
		t.Fatalf("link: status %d, Location %q", start.status, start.location())
	}
	done := b.get(e.toCallback(t, b, start.location(), "eve"))
	if done.status != http.StatusOK || !strings.Contains(done.body, "done") {
		t.Fatalf("link callback: %d\n%s", done.status, done.body)
	}
	ids, _ := svc.Identities(ctx, victim.ID)
	if len(ids) != 1 || ids[0].Provider != "up" {
		t.Fatalf("after linking: %+v", ids)
	}
	// Now eve's upstream account signs in to the victim's (its owner's).
	b = newFedBrowser(t)
	if p := b.get(e.toCallback(t, b, e.down.base+"/signin/up", "eve")); p.status != http.StatusOK {
		t.Fatalf("sign-in after linking: %d\n%s", p.status, p.body)
	}
	if c := b.accessClaims(t, "127.0.0.1"); c["sub"] != victim.ID {
		t.Errorf("sign-in after linking: sub %v, want %s", c["sub"], victim.ID)
	}
	// With a password, the provider may be unlinked.
	if err := svc.UnlinkIdentity(ctx, auth.UserActor(victim.ID, auth.Agent{}), victim.ID, "up", ids[0].Subject); err != nil {
		t.Errorf("unlinking with a password left: %v", err)
	}
}

// TestFederationExistingOnly: a provider that may not create accounts
// admits only linked identities.
func TestFederationExistingOnly(t *testing.T) {
	e := newFedEnv(t, func(c *federation.Config) { c.CreateUsers = false })
	b := newFedBrowser(t)
	if p := b.get(e.toCallback(t, b, e.down.base+"/signin/up", "ann")); p.status != http.StatusForbidden {
		t.Errorf("an unlinked identity at a provider without JIT: status %d, want 403", p.status)
	}
	if _, err := e.down.Service().UserByName(context.Background(), "ann"); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("a user was created: %v", err)
	}
}

// TestFederationRouting: login_hint of a routed domain, an address typed
// at the sign-in form, and idp= on the authorization endpoint each go
// straight to the provider.
func TestFederationRouting(t *testing.T) {
	ctx := context.Background()
	e := newFedEnv(t, func(c *federation.Config) { c.Domains = []string{"corp.example"} })
	b := newFedBrowser(t)
	p := b.get(e.down.base + "/signin?login_hint=ann%40corp.example")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/signin/up?") {
		t.Fatalf("login_hint of a routed domain: %d %q", p.status, p.location())
	}
	p = b.get(resolve(t, e.down.base, p.location()))
	if loc, _ := url.Parse(p.location()); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), e.up.base) || loc.Query().Get("login_hint") != "ann@corp.example" {
		t.Fatalf("start: %d %q", p.status, p.location())
	}
	form := b.get(e.down.base + "/signin")
	p = b.send(http.MethodPost, e.down.base+"/signin", url.Values{"csrf_token": {csrfOf(t, form)}, "username": {"Ann@Corp.Example"}, "password": {"anything"}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), e.up.base) {
		t.Errorf("an address of a routed domain at the form: %d %q", p.status, p.location())
	}
	if p := b.get(e.down.base + "/signin?login_hint=bob%40other.example"); p.status != http.StatusOK {
		t.Errorf("login_hint of another domain: %d", p.status)
	}

	// idp= on the authorization endpoint of an application of the
	// downstream.
	svc := e.down.Service()
	appClient, _, err := svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "App", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantAuthorizationCode}, RedirectURIs: []string{"https://app.example/cb"}, FirstParty: true, Public: true}})
	if err != nil {
		t.Fatal(err)
	}
	appID := appClient.ID
	q := url.Values{"client_id": {appID}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"}, "scope": {"openid"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}, "state": {"s"}}
	b = newFedBrowser(t)
	q.Set("idp", "up")
	p = b.get(e.down.base + "/oauth/authorize?" + q.Encode())
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/signin/up?") {
		t.Fatalf("idp=up: %d %q", p.status, p.location())
	}
	cb := e.toCallback(t, b, resolve(t, e.down.base, p.location()), "ann")
	done := b.get(cb)
	if done.status != http.StatusOK || !strings.Contains(done.body, `action="/oauth/authorize"`) {
		t.Fatalf("callback: %d\n%s", done.status, done.body)
	}
	// The continue page's form goes back to the authorization endpoint,
	// which answers the application with a code; its tokens name the
	// provider (idp) and the ID token says amr fed.
	fields := regexp.MustCompile(`name="([^"]+)" value="([^"]*)"`).FindAllStringSubmatch(done.body, -1)
	back := url.Values{}
	for _, f := range fields {
		back.Add(f[1], strings.ReplaceAll(f[2], "&amp;", "&"))
	}
	p = b.get(e.down.base + "/oauth/authorize?" + back.Encode())
	redirect, err := url.Parse(p.location())
	if p.status != http.StatusSeeOther || err != nil || redirect.Query().Get("code") == "" {
		t.Fatalf("back at the authorization endpoint: %d %q\n%s", p.status, p.location(), p.body)
	}
	res, err := http.PostForm(e.down.base+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {redirect.Query().Get("code")},
		"redirect_uri": {"https://app.example/cb"}, "client_id": {appID}, "code_verifier": {"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("code grant: %d, %v", res.StatusCode, err)
	}
	idc, atc := decodeClaims(t, tok.IDToken), decodeClaims(t, tok.AccessToken)
	if idc["idp"] != "up" || atc["idp"] != "up" || !slices.Equal(idc["amr"].([]any), []any{"fed"}) {
		t.Errorf("the application's tokens: ID token idp %v amr %v, access token idp %v; want up, [fed], up", idc["idp"], idc["amr"], atc["idp"])
	}
	q.Set("idp", "nope")
	p = newFedBrowser(t).get(e.down.base + "/oauth/authorize?" + q.Encode())
	if loc, _ := url.Parse(p.location()); p.status != http.StatusSeeOther || loc.Query().Get("error") != "invalid_request" {
		t.Errorf("idp of no provider: %d %q, want invalid_request to the client", p.status, p.location())
	}
}

// TestFederationBackchannelLogout: the upstream ends the user's session;
// its back-channel logout reaches the downstream, which ends the session
// it started, and a verifier following the downstream's revocation feed
// refuses the access token.
func TestFederationBackchannelLogout(t *testing.T) {
	ctx := context.Background()
	e := newFedEnv(t, nil)
	b := newFedBrowser(t)
	if p := b.get(e.toCallback(t, b, e.down.base+"/signin/up", "ann")); p.status != http.StatusOK {
		t.Fatalf("sign-in: %d\n%s", p.status, p.body)
	}
	access := b.cookies["127.0.0.1"]["__Host-keycard_access"].Value
	svc := e.down.Service()
	ann, err := svc.UserByName(ctx, "ann")
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := svc.UserSessions(ctx, ann.ID, "", 10)
	if err != nil || len(sessions) != 1 {
		t.Fatalf("ann's sessions: %+v, %v", sessions, err)
	}
	annSession := sessions[0]
	feed, feedSecret, err := svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "feed"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(ctx, verifier.Config{Issuer: e.down.base, Audience: svc.Config().Audience, ClientID: feed.ID, ClientSecret: feedSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if _, err := v.Verify(access); err != nil {
		t.Fatalf("the verifier refuses the fresh token: %v", err)
	}
	// A second user's session at the downstream is left alone.
	e.upUser(t, "bob", "bob@corp.example", true)
	bb := newFedBrowser(t)
	if p := bb.get(e.toCallback(t, bb, e.down.base+"/signin/up", "bob")); p.status != http.StatusOK {
		t.Fatalf("bob's sign-in: %d", p.status)
	}

	// ann signs out at the upstream (its own sign-out, which ends the
	// browser session its ID token's sid names).
	up := b.get(e.up.base + "/account")
	if p := b.send(http.MethodPost, e.up.base+"/signout", url.Values{"csrf_token": {csrfOf(t, up)}}); p.status != http.StatusSeeOther {
		t.Fatalf("upstream sign-out: %d\n%s", p.status, p.body)
	}
	var revokedAt time.Time
	for deadline := time.Now().Add(30 * time.Second); revokedAt.IsZero(); {
		_, err := svc.BrowserSession(ctx, annSession.ID)
		switch keycard.ErrorCode(err) {
		case keycard.ENOTFOUND:
			revokedAt = time.Now()
			continue
		case "":
		default:
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the downstream session was not ended by the upstream's back-channel logout within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		if _, err := v.Verify(access); err != nil {
			t.Logf("the verifier refused the token %v after the downstream session ended (%v)", time.Since(revokedAt), err)
			break
		}
		if time.Since(revokedAt) > 30*time.Second {
			t.Fatal("the verifier still accepts the token 30 s after its session ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
	bob, _ := svc.UserByName(ctx, "bob")
	if sess, _ := svc.UserSessions(ctx, bob.ID, "", 10); len(sess) != 1 {
		t.Errorf("bob's sessions: %+v; want his one, live", sess)
	}
}

// TestFederationLinkNeedsRecentSignIn: linking an upstream identity adds
// a way to sign in, so a session older than --reauth-within (here any
// session: 1ns) is sent to sign in again instead of to the provider, and
// nothing is linked. Without it, a stolen session cookie would let an
// attacker link their own upstream account and sign in to the victim's
// from then on, past a password change.
func TestFederationLinkNeedsRecentSignIn(t *testing.T) {
	ctx := context.Background()
	e := newFedEnvWith(t, nil, func(c *Config) { c.ReauthWithin = time.Nanosecond })
	svc := e.down.Service()
	victim, err := svc.CreateUser(ctx, auth.Operator(), "victim", fedPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newFedBrowser(t)
	form := b.get(e.down.base + "/signin")
	if p := b.send(http.MethodPost, e.down.base+"/signin", url.Values{"csrf_token": {csrfOf(t, form)}, "username": {"victim"}, "password": {fedPassword}, "next": {"/account"}}); p.status != http.StatusSeeOther {
		t.Fatalf("password sign-in: %d\n%s", p.status, p.body)
	}
	acct := b.get(e.down.base + "/account")
	start := b.send(http.MethodPost, e.down.base+"/account/identities/link", url.Values{"csrf_token": {csrfOf(t, acct)}, "provider": {"up"}})
	if start.status != http.StatusSeeOther || !strings.HasPrefix(start.location(), "/signin?reauth=1") {
		t.Fatalf("link with an old sign-in: status %d, Location %q; want 303 to /signin?reauth=1", start.status, start.location())
	}
	if ids, _ := svc.Identities(ctx, victim.ID); len(ids) != 0 {
		t.Fatalf("linked without a recent sign-in: %+v", ids)
	}
}

// TestFederationSecondFactor: a user who set up a second factor at
// Keycard is asked for it after signing in at a linked provider, as after
// a password; the provider's word alone gets no session. The session the
// factor then starts is the provider's (amr fed and the factor's, idp).
func TestFederationSecondFactor(t *testing.T) {
	ctx := context.Background()
	e := newFedEnv(t, nil)
	svc := e.down.Service()
	victim, err := svc.CreateUser(ctx, auth.Operator(), "victim", fedPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &auth.Principal{User: victim}
	enr, err := svc.BeginTOTP(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := svc.ConfirmTOTP(ctx, p, authtest.TOTPCode(t, enr.Secret, time.Now()), auth.Agent{})
	if err != nil {
		t.Fatal(err)
	}
	ann, err := e.up.Service().UserByName(ctx, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.LinkIdentity(ctx, p, auth.UpstreamIdentity{Provider: "up", Subject: ann.ID}, auth.Agent{}); err != nil {
		t.Fatal(err)
	}

	b := newFedBrowser(t)
	cont := b.get(e.toCallback(t, b, e.down.base+"/signin/up?next=%2Faccount", "ann"))
	if cont.status != http.StatusOK || !strings.Contains(cont.body, `action="/signin/mfa"`) {
		t.Fatalf("callback of a user with a second factor: %d, want 200 and the page going on to /signin/mfa:\n%s", cont.status, cont.body)
	}
	if b.cookies["127.0.0.1"]["__Host-keycard_access"] != nil || b.cookies["127.0.0.1"]["__Host-keycard_refresh"] != nil {
		t.Fatal("the provider's sign-in alone got a session past the user's second factor")
	}
	form := b.get(e.down.base + "/signin/mfa?next=%2Faccount")
	if form.status != http.StatusOK {
		t.Fatalf("GET /signin/mfa: %d\n%s", form.status, form.body)
	}
	done := b.send(http.MethodPost, e.down.base+"/signin/mfa", url.Values{"csrf_token": {csrfOf(t, form)}, "code": {codes[0]}, "next": {"/account"}})
	if done.status != http.StatusSeeOther || done.location() != "/account" {
		t.Fatalf("recovery code: %d %q\n%s", done.status, done.location(), done.body)
	}
	c := b.accessClaims(t, "127.0.0.1")
	amr, _ := json.Marshal(c["amr"])
	if c["sub"] != victim.ID || string(amr) != `["fed","otp","mfa"]` || c["acr"] != "mfa" || c["idp"] != "up" {
		t.Errorf("claims after the second factor: sub %v amr %s acr %v idp %v; want %s [fed otp mfa] mfa up", c["sub"], amr, c["acr"], c["idp"], victim.ID)
	}
}
