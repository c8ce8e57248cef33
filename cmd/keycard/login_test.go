package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keycard-auth/keycard/internal/chrometest"
	"github.com/keycard-auth/keycard/internal/cliauth"
)

const loginPassword = "correct horse battery"

// loginServer starts a real keycard serve with alice and the public
// client keycard login needs, registered through the admin API as an
// admin would: first party, loopback redirect, the code, refresh and
// device grants. It returns the server and the client's id.
func loginServer(t *testing.T) (*runningServer, string) {
	t.Helper()
	s, admin := interopServer(t) // oidc_gooidc_test.go
	id, _ := registerClient(t, s, admin, `{"name":"keycard login","public":true,"first_party":true,
		"grant_types":["authorization_code","refresh_token","urn:ietf:params:oauth:grant-type:device_code"],
		"redirect_uris":["http://127.0.0.1/callback"]}`)
	return s, id
}

// loginRun is a keycard login command running in the background.
type loginRun struct {
	stdout, stderr *syncBuffer
	done           chan int
	cancel         context.CancelFunc
}

func startLogin(t *testing.T, args ...string) *loginRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &loginRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan int, 1), cancel: cancel}
	go func() {
		r.done <- Main(ctx, append([]string{"login"}, args...), strings.NewReader(""), r.stdout, r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// waitFor polls the command's stderr until re matches, and returns the
// submatches.
func (r *loginRun) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(r.stderr.String()); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("keycard login never printed %v; stderr:\n%s", re, r.stderr.String())
	return nil
}

// exit waits for the command to end and returns its exit code.
func (r *loginRun) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		r.done <- code // for the cleanup
		return code
	case <-time.After(60 * time.Second):
		t.Fatalf("keycard login did not end; stderr:\n%s", r.stderr.String())
		return 0
	}
}

var authURLRE = regexp.MustCompile(`\n  (http://\S+/oauth/authorize\?\S+)\n`)

// authRequest waits for the printed authorization URL and returns it with
// its parameters.
func (r *loginRun) authRequest(t *testing.T) (string, url.Values) {
	t.Helper()
	raw := r.waitFor(t, authURLRE)[1]
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return raw, u.Query()
}

// getPage GETs a URL as a browser following a redirect would.
func getPage(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// userInfo calls the userinfo endpoint with an access token.
func userInfo(t *testing.T, s *runningServer, token string) (int, string) {
	t.Helper()
	var m map[string]any
	code, _ := call(t, "GET", s.base+"/oauth/userinfo", token, "", "", &m)
	name, _ := m["preferred_username"].(string)
	return code, name
}

// readCredentials reads the credentials file as JSON.
func readCredentials(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestLoginBrowser signs in with keycard login through headless Chromium
// against a real keycard serve: the loopback redirect, PKCE and the ID
// token checks; a forged callback with a wrong state on the way is
// refused; the tokens land in the user's config directory, 0600 in
// 0700; keycard login token prints them, refreshes and rotates them when
// the access token is about to expire; keycard login logout revokes them.
func TestLoginBrowser(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the default credentials path is tested on Linux")
	}
	browser := chrometest.Start(t)
	s, clientID := loginServer(t)
	config := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", config) // os.UserConfigDir on Linux
	path := filepath.Join(config, "keycard", "credentials.json")

	r := startLogin(t, "--issuer", s.base, "--client-id", clientID, "--no-browser")
	authURL, q := r.authRequest(t)
	redirect := q.Get("redirect_uri")
	if !strings.HasPrefix(redirect, "http://127.0.0.1:") || q.Get("code_challenge_method") != "S256" || q.Get("state") == "" || q.Get("nonce") == "" {
		t.Fatalf("the authorization request %s", authURL)
	}
	// A page on another site that knows the port sends the browser to the
	// listener with its own code: refused, and the login waits on.
	if code, body := getPage(t, redirect+"?"+url.Values{"code": {"stolen"}, "state": {"guessed"}, "iss": {s.base}}.Encode()); code != http.StatusBadRequest || !strings.Contains(body, "not for the login") {
		t.Errorf("a callback with a wrong state: status %d", code)
	}
	r.waitFor(t, regexp.MustCompile(`wrong state was refused`))

	tab, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancel()
	ctx, cancelStep := context.WithTimeout(tab, 30*time.Second)
	defer cancelStep()
	err := chromedp.Do(ctx,
		chromedp.Navigate(authURL),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.KeyEvent("alice"+kb.Tab+loginPassword+kb.Enter),
	)
	if err != nil {
		t.Fatalf("signing in in Chromium: %v; stderr:\n%s", err, r.stderr.String())
	}
	if code := r.exit(t); code != exitOK {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("keycard login: exit %d, the browser at %s; stderr:\n%s", code, loc, r.stderr.String())
	}
	// The browser lands on the listener's page, which answers once the
	// code is exchanged.
	var loc, h1 string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		loc, _ = chromedp.Run(ctx, chromedp.Location())
		if strings.HasPrefix(loc, redirect+"?") {
			h1, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
			if h1 != "" {
				break
			}
		}
	}
	if !strings.HasPrefix(loc, redirect+"?") || h1 != "Signed in" {
		t.Errorf("the browser ended at %s showing %q; want the loopback page saying Signed in", loc, h1)
	}
	if out := r.stdout.String(); out != "Signed in to "+s.base+" as alice.\n" {
		t.Errorf("stdout %q", out)
	}

	for p, want := range map[string]os.FileMode{filepath.Dir(path): 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
	}
	store := &cliauth.Store{Path: path}
	first, err := store.Get(s.base, clientID)
	if err != nil {
		t.Fatal(err)
	}
	if first.Username != "alice" || first.RefreshToken == "" || first.IDToken == "" {
		t.Errorf("stored %+v", first)
	}
	if code, name := userInfo(t, s, first.AccessToken); code != http.StatusOK || name != "alice" {
		t.Errorf("userinfo with the stored token: %d %q", code, name)
	}

	// A fresh token is printed as it is.
	code, out, errOut := run(t, "", "login", "token")
	if code != exitOK || strings.TrimSpace(out) != first.AccessToken {
		t.Fatalf("login token: exit %d, %q, %s", code, out, errOut)
	}
	// One with less than 30 seconds left is refreshed: a new access token,
	// the refresh token rotated in the file.
	if err := store.Update("", "", func(c *cliauth.Credentials) (*cliauth.Credentials, error) {
		c.Expiry = time.Now().Add(10 * time.Second)
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run(t, "", "login", "token")
	if code != exitOK {
		t.Fatalf("login token (refresh): exit %d, %s", code, errOut)
	}
	second, _ := store.Get("", "")
	if got := strings.TrimSpace(out); got == first.AccessToken || got != second.AccessToken {
		t.Errorf("login token printed %q; want a new token, the one stored", got)
	}
	if second.RefreshToken == first.RefreshToken || second.RefreshToken == "" {
		t.Error("the refresh token was not rotated in the file")
	}
	if code, name := userInfo(t, s, second.AccessToken); code != http.StatusOK || name != "alice" {
		t.Errorf("userinfo with the refreshed token: %d %q", code, name)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("after the refresh the file is %04o", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files, want the credentials file alone", len(entries))
	}

	code, out, errOut = run(t, "", "login", "logout")
	if code != exitOK || out != "Signed out of "+s.base+".\n" {
		t.Fatalf("login logout: exit %d, %q, %s", code, out, errOut)
	}
	if code, _ := userInfo(t, s, second.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("userinfo after logout: status %d, want 401", code)
	}
	if logins := readCredentials(t, path)["logins"].(map[string]any); len(logins) != 0 {
		t.Errorf("the file keeps %d logins after logout", len(logins))
	}
	if code, _, errOut := run(t, "", "login", "token"); code != exitFailure || !strings.Contains(errOut, "run keycard login") {
		t.Errorf("login token after logout: exit %d, %s", code, errOut)
	}
}

// pageBrowser is a browser for the device pages: cookies by name, the
// Origin of a form posted from the site, no redirects followed.
type pageBrowser struct {
	t       *testing.T
	base    string
	cookies map[string]string
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (b *pageBrowser) do(method, path string, form url.Values) (int, string, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.base)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	for _, c := range res.Cookies() {
		b.cookies[c.Name] = c.Value
	}
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Location"), string(data)
}

func (b *pageBrowser) csrf(page string) string {
	b.t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no CSRF field on the page:\n%s", page)
	}
	return m[1]
}

// TestLoginDevice signs in with keycard login --device: it prints the
// code and the verification URI; a user signs in and approves on /device
// in a browser; the command, polling, gets the tokens.
func TestLoginDevice(t *testing.T) {
	s, clientID := loginServer(t)
	path := filepath.Join(t.TempDir(), "creds", "credentials.json")
	r := startLogin(t, "--issuer", s.base, "--client-id", clientID, "--device", "--credentials", path, "--scope", "openid profile")
	m := r.waitFor(t, regexp.MustCompile(`visit (\S+) and enter the code:\n\n  ([A-Z]{4}-[A-Z]{4})\n`))
	verify, userCode := m[1], m[2]
	if verify != s.base+"/device" {
		t.Errorf("verification URI %q", verify)
	}

	b := &pageBrowser{t: t, base: s.base, cookies: map[string]string{}}
	status, loc, _ := b.do("GET", "/device?user_code="+userCode, nil)
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/signin?") {
		t.Fatalf("signed out, /device: %d %q", status, loc)
	}
	next, _ := url.Parse(loc)
	_, _, signin := b.do("GET", "/signin", nil)
	status, loc, _ = b.do("POST", "/signin", url.Values{"csrf_token": {b.csrf(signin)}, "username": {"alice"}, "password": {loginPassword},
		"next": {next.Query().Get("next")}})
	if status != http.StatusSeeOther || loc != "/device?user_code="+userCode {
		t.Fatalf("sign in: %d %q", status, loc)
	}
	_, _, form := b.do("GET", loc, nil)
	status, _, confirm := b.do("POST", "/device", url.Values{"csrf_token": {b.csrf(form)}, "user_code": {userCode}})
	if status != http.StatusOK || !strings.Contains(confirm, "keycard login") {
		t.Fatalf("POST /device: %d\n%s", status, confirm)
	}
	status, _, done := b.do("POST", "/device/decide", url.Values{"csrf_token": {b.csrf(confirm)}, "user_code": {userCode}, "decision": {"approve"}})
	if status != http.StatusOK || !strings.Contains(done, "signed in as alice") {
		t.Fatalf("approve: %d\n%s", status, done)
	}
	if code := r.exit(t); code != exitOK {
		t.Fatalf("keycard login --device: exit %d; stderr:\n%s", code, r.stderr.String())
	}
	c, err := (&cliauth.Store{Path: path}).Get(s.base, clientID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != "alice" || c.Scope != "openid profile" || c.RefreshToken == "" {
		t.Errorf("stored %+v", c)
	}
	if code, name := userInfo(t, s, c.AccessToken); code != http.StatusOK || name != "alice" {
		t.Errorf("userinfo with the device's token: %d %q", code, name)
	}
	if code, out, errOut := run(t, "", "login", "token", "--credentials", path, "--issuer", s.base, "--client-id", clientID); code != exitOK || strings.TrimSpace(out) != c.AccessToken {
		t.Errorf("login token: exit %d %q %s", code, out, errOut)
	}
}

// TestLoginRefusesMixUp: an authorization response with this login's
// state but another issuer's iss (a mix-up attack, RFC 9207) ends the
// login without exchanging the code, and nothing is stored.
func TestLoginRefusesMixUp(t *testing.T) {
	s, clientID := loginServer(t)
	path := filepath.Join(t.TempDir(), "credentials.json")
	r := startLogin(t, "--issuer", s.base, "--client-id", clientID, "--no-browser", "--credentials", path)
	_, q := r.authRequest(t)
	status, body := getPage(t, q.Get("redirect_uri")+"?"+url.Values{"code": {"AAAA.BBBB"}, "state": {q.Get("state")}, "iss": {"https://evil.example"}}.Encode())
	if status != http.StatusBadRequest || !strings.Contains(body, "not from the issuer") {
		t.Errorf("the callback: status %d\n%s", status, body)
	}
	if code := r.exit(t); code != exitFailure || !strings.Contains(r.stderr.String(), "not from the issuer") {
		t.Errorf("keycard login: exit %d; stderr:\n%s", code, r.stderr.String())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a credentials file was written: %v", err)
	}
}

// TestLoginUsage: the command's flags and the errors of a missing login.
func TestLoginUsage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials.json")
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"login"}, exitUsage, "--issuer and --client-id are required"},
		{[]string{"login", "--issuer", "http://127.0.0.1:1"}, exitUsage, "required"},
		{[]string{"login", "--issuer", "http://auth.example.com", "--client-id", "x"}, exitFailure, "must be https"},
		{[]string{"login", "token", "--credentials", path}, exitFailure, "run keycard login first"},
		{[]string{"login", "token", "--credentials", path, "--issuer", "https://a"}, exitUsage, "both --issuer and --client-id"},
		{[]string{"login", "logout", "--credentials", path}, exitFailure, "run keycard login first"},
		{[]string{"login", "token", "extra"}, exitUsage, "want 0 argument"},
	} {
		code, _, errOut := run(t, "", tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.err) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.err)
		}
	}
	if code, out, _ := run(t, "", "login", "help"); code != exitOK || !strings.Contains(out, "keycard login token") {
		t.Errorf("login help: exit %d %q", code, out)
	}
}
