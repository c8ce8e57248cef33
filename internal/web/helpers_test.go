package web_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/authtest"
	"github.com/keycard-auth/keycard/internal/demo"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/gateway"
	"github.com/keycard-auth/keycard/internal/httpapi"
	"github.com/keycard-auth/keycard/internal/passkey"
	"github.com/keycard-auth/keycard/internal/password"
	"github.com/keycard-auth/keycard/internal/throttle"
	"github.com/keycard-auth/keycard/internal/web"
	"github.com/keycard-auth/keycard/verifier"
)

const testPassword = "correct horse battery"

// clock is a settable test clock.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Now().UTC().Truncate(time.Second).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.t.Add(int64(d)) }

// fastHasher keeps tests quick; the parameters are still argon2id.
var fastHasher = &password.Hasher{Params: password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}}

type fixtureOptions struct {
	registration bool
	reauthWithin time.Duration    // auth.Config.ReauthWithin
	throttle     *throttle.Policy // per account
	// addressThrottle is the per-address login limiter's policy.
	addressThrottle *throttle.Policy
	redirects       []string
	// weather serves the demo weather page at weatherPath of its own
	// upstream, verifying tokens with a real verifier that follows the
	// fixture's feed, behind a real gateway that also routes the pages'
	// paths to the auth server, as the demo does.
	weather bool
	// mailer is the service's mailer; the fixture runs the mail worker.
	mailer auth.Mailer
	// passkeys serves the fixture at http://localhost:PORT (browsers
	// accept no IP address as a WebAuthn relying party id) with
	// passkeys on, relying party id localhost.
	passkeys bool
	// requireMFA is auth.Config.RequireMFAForRoles.
	requireMFA []string
}

const weatherPath = "/weather-app/"

// fixture is the auth server (httpapi) with the pages mounted, over a real
// auth.Service on SQLite, served over loopback. Its issuer is its own URL,
// so that the pages' origin check sees the browser's Origin.
type fixture struct {
	svc    *auth.Service
	stores keycard.Stores
	clock  *clock
	url    string
	// gateway is the URL of the gateway in front of the weather page and
	// the pages (fixtureOptions.weather).
	gateway string
}

func newFixture(t testing.TB, opts ...fixtureOptions) *fixture {
	t.Helper()
	var opt fixtureOptions
	if len(opts) > 0 {
		opt = opts[0]
	}
	clk := newClock()
	env := authtest.New(t, clk.Now)
	stores, sealer, km := env.Stores, env.Sealer, env.Keys
	deps := auth.Deps{Stores: stores, Keys: km, Sealer: sealer, Hasher: fastHasher, Now: clk.Now, Mailer: opt.mailer}
	if opt.throttle != nil {
		deps.LoginLimits = auth.LoginLimits{Account: throttle.NewMemory(*opt.throttle, clk.Now)}
	}
	if opt.addressThrottle != nil {
		deps.LoginLimits.Address = throttle.NewMemory(*opt.addressThrottle, clk.Now)
	}
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	if opt.passkeys {
		base = "http://localhost:" + strconv.Itoa(ts.Listener.Addr().(*net.TCPAddr).Port)
		rp, err := passkey.New(passkey.Config{RPID: "localhost", Origins: []string{base}})
		if err != nil {
			t.Fatal(err)
		}
		deps.WebAuthn = rp
	}
	svc, err := auth.NewService(deps, auth.Config{Issuer: base, Registration: opt.registration, ReauthWithin: opt.reauthWithin, RequireMFAForRoles: opt.requireMFA})
	if err != nil {
		t.Fatal(err)
	}
	if opt.mailer != nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			svc.RunMail(ctx)
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	webOpt := web.Options{CSRFKey: key, RedirectPrefixes: opt.redirects}
	var gw *httptest.Server
	if opt.weather {
		gw = httptest.NewUnstartedServer(nil)
		webOpt.RedirectPrefixes = append(webOpt.RedirectPrefixes, weatherPath)
		webOpt.Origins = []string{"http://" + gw.Listener.Addr().String()}
	}
	pages, err := web.New(svc, webOpt)
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(svc, httpapi.Options{Now: clk.Now, Cookies: true, CSRFKey: key, Pages: pages})
	ts.Config.Handler = api
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(api.StopFeeds)
	f := &fixture{svc: svc, stores: stores, clock: clk, url: base}
	if opt.weather {
		f.gateway = "http://" + gw.Listener.Addr().String()
		startWeather(t, f, gw)
	}
	return f
}

// startWeather starts the weather page's upstream and the gateway gw in
// front of it and of the pages.
func startWeather(t testing.TB, f *fixture, gw *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	c, secret, err := f.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "weather", Scopes: nil, Audiences: nil})
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(ctx, verifier.Config{Issuer: f.url, ClientID: c.ID, ClientSecret: secret, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	page, err := demo.NewWeather(v, demo.WeatherOptions{Path: weatherPath, Now: f.clock.Now,
		Username: func(ctx context.Context, sub string) (string, error) {
			u, err := f.svc.User(ctx, sub)
			if err != nil {
				return "", err
			}
			return u.Username, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewServer(page)
	t.Cleanup(upstream.Close)

	secretFile := filepath.Join(t.TempDir(), "gateway.secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf("issuer: %s\naudience: api\nclient:\n  id: %s\n  secret_file: %s\nroutes:\n  - path: %s\n    upstream: %s\n    auth: none\n",
		f.url, c.ID, secretFile, weatherPath, upstream.URL)
	for _, p := range []string{"/signin", "/signout", "/session/", "/account", "/assets/"} {
		yaml += fmt.Sprintf("  - path: %s\n    upstream: %s\n    auth: none\n", p, f.url)
	}
	cfg, err := gateway.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, gateway.Options{Auth: v})
	if err != nil {
		t.Fatal(err)
	}
	gw.Config.Handler = g
	gw.Start()
	t.Cleanup(gw.Close)
}

// addUser creates a user with the test password.
func (f *fixture) addUser(t testing.TB, name string, roles ...string) string {
	t.Helper()
	u, err := f.svc.Register(context.Background(), name, testPassword, roles)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// browser is a minimal browser for the fixture: it keeps cookies by name
// (the fixture has one host; paths are checked where they matter), sends
// Origin and Sec-Fetch-Site as a browser would for same-origin forms, and
// never follows redirects, so that tests see each one.
type browser struct {
	t       testing.TB
	f       *fixture
	base    string // the origin it talks to: the server's, or the gateway's
	cookies map[string]*http.Cookie
	// setCookies collects every Set-Cookie header received.
	setCookies []*http.Cookie
	// locations collects every Location header received.
	locations []string
	client    *http.Client
}

func (f *fixture) browser(t testing.TB) *browser {
	return f.browserAt(t, f.url)
}

// browserAt is a browser talking to base (the gateway's URL, say).
func (f *fixture) browserAt(t testing.TB, base string) *browser {
	return &browser{t: t, f: f, base: base, cookies: map[string]*http.Cookie{}, client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is a response read in full.
type page struct {
	status int
	header http.Header
	body   string
}

func (p *page) location() string { return p.header.Get("Location") }

// send sends a request with the browser's cookies (those whose path
// matches) and extra headers; a nil header means a same-origin browser
// request.
func (b *browser) send(method, path string, form url.Values, header http.Header) *page {
	b.t.Helper()
	if form == nil {
		return b.sendBody(method, path, "", nil, header)
	}
	return b.sendBody(method, path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), header)
}

// sendBody is send with a body of any type (none when contentType is
// empty).
func (b *browser) sendBody(method, path, contentType string, body io.Reader, header http.Header) *page {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if header == nil {
		header = http.Header{"Sec-Fetch-Site": {"same-origin"}}
		if method == http.MethodPost {
			header.Set("Origin", b.base)
		}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "web-test")
	for _, c := range b.cookies {
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
	for _, c := range res.Cookies() {
		b.setCookies = append(b.setCookies, c)
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	if loc := res.Header.Get("Location"); loc != "" {
		b.locations = append(b.locations, loc)
	}
	return &page{status: res.StatusCode, header: res.Header, body: string(data)}
}

func (b *browser) get(path string) *page { b.t.Helper(); return b.send(http.MethodGet, path, nil, nil) }

// post posts a form as the browser would from a page of the site.
func (b *browser) post(path string, form url.Values) *page {
	b.t.Helper()
	return b.send(http.MethodPost, path, form, nil)
}

var hiddenRE = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// csrf returns the CSRF token of the first form on a page.
func (b *browser) csrf(p *page) string {
	b.t.Helper()
	m := hiddenRE.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no CSRF field on the page (status %d):\n%s", p.status, p.body)
	}
	return m[1]
}

// signIn signs in through the form and returns the redirect's response.
func (b *browser) signIn(user, pass, next string) *page {
	b.t.Helper()
	form := b.get("/signin")
	if form.status != http.StatusOK {
		b.t.Fatalf("GET /signin: status %d", form.status)
	}
	return b.post("/signin", url.Values{"csrf_token": {b.csrf(form)}, "username": {user}, "password": {pass}, "next": {next}})
}

// mustSignIn signs in and fails the test unless it worked.
func (b *browser) mustSignIn(user string) {
	b.t.Helper()
	p := b.signIn(user, testPassword, "")
	if p.status != http.StatusSeeOther || p.location() != "/account" {
		b.t.Fatalf("sign in %s: status %d, Location %q, body:\n%s", user, p.status, p.location(), p.body)
	}
}

// follow GETs a page and follows same-site redirects, returning the last
// response and the paths visited.
func (b *browser) follow(path string) (*page, []string) {
	b.t.Helper()
	var visited []string
	for range 10 {
		visited = append(visited, path)
		p := b.get(path)
		if p.status != http.StatusSeeOther && p.status != http.StatusFound {
			return p, visited
		}
		path = p.location()
	}
	b.t.Fatalf("redirect loop: %v", visited)
	return nil, nil
}

// postForm GETs page, then posts form values to action with the page's
// CSRF token.
func (b *browser) postFrom(pagePath, action string, form url.Values) *page {
	b.t.Helper()
	p := b.get(pagePath)
	if p.status != http.StatusOK {
		b.t.Fatalf("GET %s: status %d", pagePath, p.status)
	}
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", b.csrf(p))
	return b.post(action, form)
}
