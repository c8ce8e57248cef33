package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keycard-auth/keycard/internal/chrometest"
)

// The interop tests sign in to a real keycard serve with OpenID Connect
// clients nobody here wrote: coreos/go-oidc with golang.org/x/oauth2
// (oidc_gooidc_test.go), oauth2-proxy (oidc_oauth2proxy_test.go) and openid-client
// for Node.js (oidc_openidclient_test.go), each driven through headless
// Chromium. docs/oidc.md, "Tested with", says what each covers. This file
// holds what they share.

// interopServer starts a real keycard serve with an admin (root) and a
// user (alice, password loginPassword), and returns it with an admin
// access token to register clients with.
func interopServer(t *testing.T, extra ...string) (*runningServer, string) {
	t.Helper()
	s := startServer(t, extra...)
	for _, u := range []struct{ name, role string }{{"root", "admin"}, {"alice", ""}} {
		args := []string{"users", "add", "--data", s.data, "--username", u.name, "--password-stdin"}
		if u.role != "" {
			args = append(args, "--role", u.role)
		}
		if code, _, errOut := run(t, loginPassword+"\n", args...); code != exitOK {
			t.Fatalf("users add %s: exit %d: %s", u.name, code, errOut)
		}
	}
	return s, s.login(t, "root", loginPassword).AccessToken
}

// registerClient registers a client through the admin API, as an admin
// would, and returns its id and secret (empty for a public client).
func registerClient(t *testing.T, s *runningServer, admin, body string) (id, secret string) {
	t.Helper()
	var c struct {
		ID     string `json:"id"`
		Secret string `json:"client_secret"`
		Error  string `json:"error_description"`
	}
	if code, _ := call(t, "POST", s.base+"/admin/v1/clients", admin, "application/json", body, &c); code != http.StatusCreated || c.ID == "" {
		t.Fatalf("registering a client: status %d, %+v", code, c)
	}
	return c.ID, c.Secret
}

// loopbackListener listens on a free loopback port for a relying party,
// whose URL must be known before its client is registered.
func loopbackListener(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

// browserTab is a tab in a browser context of its own (its own
// cookies).
type browserTab struct {
	t   *testing.T
	ctx context.Context
}

func newTab(t *testing.T, browser context.Context) *browserTab {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil { // the tab lives as long as tab
		t.Fatalf("opening a tab: %v", err)
	}
	return &browserTab{t: t, ctx: tab}
}

// do runs actions within 30 seconds, failing the test with what the page
// shows.
func (b *browserTab) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		c2, cancel2 := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel2()
		loc, errLoc := chromedp.Run(c2, chromedp.Location())
		text, errText := chromedp.Run(c2, chromedp.Text(chromedp.CSS("body")))
		if errLoc != nil || errText != nil {
			b.t.Logf("reading the page: %v, %v", errLoc, errText)
		}
		b.t.Fatalf("%s: %v; the browser is at %s showing:\n%s", step, err, loc, text)
	}
}

// has reports whether the page has an element with the id.
func (b *browserTab) has(id string) bool {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`!!document.getElementById(%q)`, id)))
	return err == nil && ok
}

// signIn fills in and sends Keycard's sign-in form, once it shows, as
// alice.
func signIn() chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), loginPassword+kb.Enter),
	)
}

// h1Is waits until the page's h1 reads want, through the navigations
// on the way (the step's context bounds the wait).
func h1Is(want string) chromedp.Action[chromedp.Void] { return chrometest.HeadingIs(want) }

// poll calls f, at most every half second, until it reports done, and
// returns its value; it fails the test after 60 seconds.
func poll[T any](t *testing.T, what string, f func() (T, bool)) T {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, done := f()
		if done {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60 seconds", what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
