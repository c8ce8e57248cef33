package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keycard-auth/keycard/internal/chrometest"
	"github.com/keycard-auth/keycard/internal/demo"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
)

// demoTab is a Chromium tab on the demo.
type demoTab struct {
	t   *testing.T
	ctx context.Context
	d   *demoRun
}

// do runs steps, failing the test with where the tab is and what it
// shows.
func (b *demoTab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 500) : ""`))
		b.t.Fatalf("%s: %v\n  at %s showing:\n%s\nlog:\n%s", what, err, loc, text, b.d.log)
	}
}

// location returns the tab's URL.
func (b *demoTab) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

// text returns the text of the element sel selects.
func (b *demoTab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// exists reports whether the page has an element sel selects.
func (b *demoTab) exists(sel string) bool {
	b.t.Helper()
	ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector(`+"`"+sel+"`"+`) !== null`))
	if err != nil {
		b.t.Fatalf("looking for %s: %v", sel, err)
	}
	return ok
}

// loadUntil loads url again and again until the page has an element sel
// selects, for at most 30 seconds: what happens elsewhere (the
// revocation feed, a back-channel logout) may take a moment to arrive.
func (b *demoTab) loadUntil(what, url, sel string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.do(what, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("body")))
		if b.exists(sel) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: after 30 s, %s still has no %s; log:\n%s", what, b.location(), sel, b.d.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDemoSingleSignOn: in Chromium, signed in at the weather page, the
// travel app (another origin, an OAuth client of the auth server) lets
// the user in without a password; signing out at the weather page ends
// the travel app's session too (a back-channel logout reaches it), and,
// signed in again, signing out at the travel app (RP-initiated logout)
// signs the weather page out.
func TestDemoSingleSignOn(t *testing.T) {
	browser := chrometest.Start(t)
	d := startDemo(t, t.TempDir())
	tab, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The tab's first action opens it, on the tab's own context: a step's
	// shorter one would close it when the step ends.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	b := &demoTab{t: t, ctx: tab, d: d}
	weather, travel := d.gateway+demo.WeatherApp, d.travel+"/"

	// Signed out, the travel app says so, after a silent try.
	b.do("open the travel app signed out", chromedp.Navigate(travel), chromedp.WaitVisible(chromedp.ID("travel-signed-out")))
	if loc := b.location(); !strings.HasPrefix(loc, d.travel+"/callback?") {
		t.Errorf("signed out, the travel app ended at %s, want its callback showing signed out", loc)
	}

	// Sign in at the weather page: it sends the browser to the issuer's
	// authorization endpoint, whose sign-in form is the auth server's.
	b.do("open the weather page", chromedp.Navigate(weather), chromedp.WaitVisible(chromedp.ID("username")))
	if loc := b.location(); !strings.HasPrefix(loc, d.auth+"/signin?") {
		t.Errorf("the weather page's sign-in went to %s, want the auth server's sign-in page", loc)
	}
	b.do("sign in at the weather page", chromedp.KeyEvent(demo.User+kb.Tab+d.demoPassword+kb.Enter), chromedp.WaitVisible(chromedp.CSS("#forecast tr")))
	if user := b.text("#weather-user"); user != demo.User {
		t.Errorf("the weather page shows %q", user)
	}
	if rows := b.text("#forecast"); !strings.Contains(rows, "Lisbon") || !strings.Contains(rows, "°C") {
		t.Errorf("the weather page's forecast, read from the weather service through the gateway: %q", rows)
	}
	if loc := b.location(); loc != weather {
		t.Errorf("signed in, the weather page is at %s, want %s (no code left in the address)", loc, weather)
	}

	// The travel app: in at once, no password asked.
	b.do("open the travel app", chromedp.Navigate(travel), chromedp.WaitVisible(chromedp.ID("travel-user")))
	if loc, user := b.location(), b.text("#travel-user"); loc != travel || user != demo.User {
		t.Errorf("the travel app at %s shows %q, want %s signed in as %s", loc, user, travel, demo.User)
	}

	// Sign out at the weather page: the travel app is out on its next
	// load, its session ended by the back-channel logout.
	b.do("back to the weather page", chromedp.Navigate(weather), chromedp.WaitVisible(chromedp.CSS("#forecast tr")))
	// The page says signed out at once, then goes through the
	// end_session_endpoint and comes back.
	b.do("sign out at the weather page", chromedp.Click(chromedp.ID("weather-signout")), chromedp.WaitVisible(chromedp.ID("weather-signed-out")))
	for deadline := time.Now().Add(30 * time.Second); b.location() != weather+"?signed-out"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after signing out the weather page is at %s, want %s (back from the end_session_endpoint)", b.location(), weather+"?signed-out")
		}
	}
	b.do("signed out, back at the weather page", chromedp.WaitVisible(chromedp.ID("weather-signed-out")))
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(d.log.String(), `"msg":"demo: travel: back-channel logout"`) || !strings.Contains(d.log.String(), `"sessions_ended":1`) {
		if time.Now().After(deadline) {
			t.Fatalf("no back-channel logout ended the travel app's session in 30 s; log:\n%s", d.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.loadUntil("the travel app after signing out at the weather page", travel, "#travel-signed-out")
	if b.exists("#travel-user") {
		t.Errorf("the travel app still shows the user")
	}

	// Sign in at the travel app this time, then out there: the weather
	// page is signed out.
	b.do("sign in from the travel app", chromedp.Click(chromedp.ID("travel-signin")), chromedp.WaitVisible(chromedp.ID("username")))
	if loc := b.location(); !strings.HasPrefix(loc, d.auth+"/signin?") {
		t.Errorf("the travel app's sign-in went to %s, want the auth server's sign-in page", loc)
	}
	b.do("sign in at the auth server", chromedp.KeyEvent(demo.User+kb.Tab+d.demoPassword+kb.Enter), chromedp.WaitVisible(chromedp.ID("travel-user")))
	b.do("the weather page, signed in through the travel app's sign-in", chromedp.Navigate(weather), chromedp.WaitVisible(chromedp.CSS("#forecast tr")))
	b.do("back to the travel app", chromedp.Navigate(travel), chromedp.WaitVisible(chromedp.ID("travel-user")))
	b.do("sign out at the travel app", chromedp.Click(chromedp.ID("travel-signout")), chromedp.WaitVisible(chromedp.ID("travel-signed-out")))
	if loc := b.location(); loc != d.travel+demo.TravelSignedOut {
		t.Errorf("after signing out the travel app is at %s, want %s", loc, d.travel+demo.TravelSignedOut)
	}
	// The weather page's refresh is refused (its grant session ended with
	// the browser session), so it sends the browser to sign in.
	b.do("the weather page after signing out at the travel app", chromedp.Navigate(weather), chromedp.WaitVisible(chromedp.ID("username")))
	if loc := b.location(); !strings.HasPrefix(loc, d.auth+"/signin") {
		t.Errorf("after signing out at the travel app the weather page went to %s, want the sign-in page", loc)
	}
	b.do("the travel app once more", chromedp.Navigate(travel), chromedp.WaitVisible(chromedp.ID("travel-signed-out")))
}

// TestDemoTLSBackchannelLogout: with --tls, the travel app serves HTTPS
// with the local CA's certificate, and the auth server's back-channel
// logout reaches it all the same. A client that trusts the CA alone and
// keeps cookies, as a browser would, signs in at the auth server's pages
// (through the gateway), is in at the travel app without a password, and
// signs out at the account page: the travel app gets the logout token and
// shows signed out. (The weather page is a script, which this client
// does not run: TestDemoSingleSignOn drives it in Chromium.)
func TestDemoTLSBackchannelLogout(t *testing.T) {
	data := t.TempDir()
	d := startDemo(t, data, "--tls")
	if !strings.HasPrefix(d.travel, "https://") {
		t.Fatalf("travel app at %s, want https", d.travel)
	}
	tr, err := tlsconfig.Transport(filepath.Join(data, tlsconfig.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Transport: tr, Jar: jar, Timeout: 30 * time.Second}
	fetch := func(method, u string, form url.Values) (string, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", d.gateway) // the pages' forms, on the gateway's origin
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: ended at %s with %d:\n%s\nlog:\n%s", method, u, res.Request.URL, res.StatusCode, b, d.log)
		}
		return res.Request.URL.String(), string(b)
	}
	csrf := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

	_, page := fetch("GET", d.gateway+"/signin", nil)
	m := csrf.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form token on the sign-in page:\n%s", page)
	}
	_, account := fetch("POST", d.gateway+"/signin", url.Values{"csrf_token": {m[1]}, "username": {demo.User}, "password": {d.demoPassword}})
	if at, page := fetch("GET", d.travel+"/", nil); at != d.travel+"/" || !strings.Contains(page, `id="travel-user">`+demo.User+`<`) {
		t.Fatalf("the travel app at %s:\n%s", at, page)
	}
	m = csrf.FindStringSubmatch(account)
	if m == nil {
		t.Fatalf("no sign-out form on the account page:\n%s", account)
	}
	fetch("POST", d.gateway+"/signout", url.Values{"csrf_token": {m[1]}})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(d.log.String(), `"sessions_ended":1`) {
		if time.Now().After(deadline) {
			t.Fatalf("no back-channel logout reached the travel app over HTTPS in 30 s; log:\n%s", d.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, page := fetch("GET", d.travel+"/", nil); !strings.Contains(page, `id="travel-signed-out"`) {
		t.Errorf("after signing out at the account page the travel app shows:\n%s", page)
	}
}
