package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/mail"
	"github.com/keycard-auth/keycard/internal/mailpittest"
)

// mailFixture is a fixture whose server mails through a real Mailpit.
func mailFixture(t *testing.T, opt fixtureOptions) (*fixture, *mailpittest.Server) {
	t.Helper()
	mp := mailpittest.Start(t)
	m, err := mail.New(mail.Config{URL: "smtp://" + mp.SMTPAddr, From: "keycard@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	opt.mailer = m
	return newFixture(t, opt), mp
}

// addUserWithEmail creates a user with the test password and an address.
func (f *fixture) addUserWithEmail(t *testing.T, name, email string, roles ...string) string {
	t.Helper()
	u, err := f.svc.RegisterWithEmail(context.Background(), name, testPassword, email, roles)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

var mailLink = regexp.MustCompile(`https?://[^\s]+/(?:verify-email|reset-password)\?token=[A-Za-z0-9_.-]+`)

// linkIn returns the path and query of the link in a mail.
func linkIn(t *testing.T, f *fixture, m *mailpittest.Message) string {
	t.Helper()
	link := mailLink.FindString(m.Text)
	if !strings.HasPrefix(link, f.url+"/") {
		t.Fatalf("mail %q has no link to %s:\n%s", m.Subject, f.url, m.Text)
	}
	return strings.TrimPrefix(link, f.url)
}

func TestEmailPages(t *testing.T) {
	f, mp := mailFixture(t, fixtureOptions{})
	f.addUserWithEmail(t, "alice", "alice@example.com")
	verify := linkIn(t, f, mp.WaitFor(t, "alice@example.com", 1))
	b := f.browser(t)

	// The verification page.
	if p := b.get(verify); p.status != http.StatusOK || !strings.Contains(p.body, "confirmed") {
		t.Errorf("GET the verification link: %d\n%s", p.status, p.body)
	}
	if p := b.get(verify); p.status != http.StatusBadRequest {
		t.Errorf("the verification link again: %d, want 400", p.status)
	}
	for _, bad := range []string{"/verify-email", "/verify-email?token=x", "/verify-email?token=" + strings.Repeat("A", 4000)} {
		if p := b.get(bad); p.status != http.StatusBadRequest {
			t.Errorf("GET %.40s: %d, want 400", bad, p.status)
		}
	}

	// The sign-in page links to the forgot-password page.
	if p := b.get("/signin"); !strings.Contains(p.body, `href="/forgot-password"`) {
		t.Error("the sign-in page has no forgot-password link")
	}
	// The forgot form needs its CSRF token, like the sign-in form.
	if p := b.post("/forgot-password", url.Values{"email": {"alice@example.com"}}); p.status != http.StatusForbidden {
		t.Errorf("forgot-password without a CSRF token: %d, want 403", p.status)
	}
	// The same page for a known and an unknown address (but the address).
	known := b.postFrom("/forgot-password", "/forgot-password", url.Values{"email": {"alice@example.com"}})
	unknown := b.postFrom("/forgot-password", "/forgot-password", url.Values{"email": {"zed@example.com"}})
	if known.status != http.StatusOK || unknown.status != known.status ||
		strings.ReplaceAll(known.body, "alice@example.com", "X") != strings.ReplaceAll(unknown.body, "zed@example.com", "X") {
		t.Errorf("forgot-password: known %d, unknown %d; the pages differ", known.status, unknown.status)
	}
	if p := b.postFrom("/forgot-password", "/forgot-password", url.Values{"email": {"not an address"}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, "field-error") {
		t.Errorf("forgot-password with a malformed address: %d", p.status)
	}
	reset := linkIn(t, f, mp.WaitFor(t, "alice@example.com", 2))

	// The reset page: opening it twice uses nothing up.
	for range 2 {
		if p := b.get(reset); p.status != http.StatusOK || !strings.Contains(p.body, `name="new_password"`) {
			t.Fatalf("GET the reset link: %d\n%s", p.status, p.body)
		}
	}
	if p := b.get("/reset-password?token=nope"); p.status != http.StatusBadRequest || !strings.Contains(p.body, `href="/forgot-password"`) {
		t.Errorf("a bad reset link: %d", p.status)
	}
	token := strings.TrimPrefix(reset, "/reset-password?token=")
	if p := b.postFrom(reset, "/reset-password", url.Values{"token": {token}, "new_password": {"a new passphrase"}, "confirm_password": {"another"}}); p.status != http.StatusBadRequest {
		t.Errorf("differing passwords: %d", p.status)
	}
	// Signed in elsewhere: that session ends with the reset.
	other := f.browser(t)
	other.mustSignIn("alice")
	p := b.postFrom(reset, "/reset-password", url.Values{"token": {token}, "new_password": {"a new passphrase"}, "confirm_password": {"a new passphrase"}})
	if p.status != http.StatusSeeOther || p.location() != "/signin?reset=1" {
		t.Fatalf("reset: %d %q\n%s", p.status, p.location(), p.body)
	}
	if got, _ := other.follow("/account"); strings.Contains(got.body, `id="sessions"`) {
		t.Error("a session of before the reset still shows the account page")
	}
	if p := b.signIn("alice", "a new passphrase", ""); p.status != http.StatusSeeOther || p.location() != "/account" {
		t.Errorf("sign in with the new password: %d %q", p.status, p.location())
	}
	if p := b.get(reset); p.status != http.StatusBadRequest {
		t.Errorf("the reset link after use: %d, want 400", p.status)
	}
	if n := mp.WaitFor(t, "alice@example.com", 3); !strings.Contains(n.Subject, "password was changed") {
		t.Errorf("third mail %q, want the notification", n.Subject)
	}

	// The account page sets the address; a taken one is refused there.
	f.addUserWithEmail(t, "bob", "bob@example.com")
	if p := b.postFrom("/account", "/account/email", url.Values{"email": {"BOB@example.com"}}); p.status != http.StatusConflict || !strings.Contains(p.body, "email-error") {
		t.Errorf("account: a taken address: %d", p.status)
	}
	if p := b.postFrom("/account", "/account/email", url.Values{"email": {"alice@example.org"}}); p.status != http.StatusSeeOther {
		t.Errorf("account: a new address: %d\n%s", p.status, p.body)
	}
	if p := b.get("/account"); !strings.Contains(p.body, "alice@example.org") || !strings.Contains(p.body, "not confirmed") {
		t.Error("the account page does not show the new, unconfirmed address")
	}
	mp.WaitFor(t, "alice@example.org", 1)
}

func TestAdminEmailPages(t *testing.T) {
	f, mp := mailFixture(t, fixtureOptions{})
	f.addUser(t, "root", auth.RoleAdmin)
	id := f.addUser(t, "carol")
	b := f.browser(t)
	b.mustSignIn("root")
	if p := b.postFrom("/admin/users/"+id, "/admin/users/"+id+"/email", url.Values{"email": {"Carol@Example.com"}, "verified": {"on"}}); p.status != http.StatusSeeOther {
		t.Fatalf("admin set email: %d\n%s", p.status, p.body)
	}
	u, err := f.svc.User(context.Background(), id)
	if err != nil || u.Email != "carol@example.com" || !u.EmailVerified {
		t.Fatalf("after the admin set it: %+v, %v", u, err)
	}
	if p := b.postFrom("/admin/users/"+id, "/admin/users/"+id+"/password-reset", nil); p.status != http.StatusSeeOther {
		t.Fatalf("send a reset link: %d\n%s", p.status, p.body)
	}
	if m := mp.WaitFor(t, "carol@example.com", 1); !strings.Contains(m.Text, "/reset-password?token=") {
		t.Errorf("the admin's reset mail: %q", m.Text)
	}
	events, err := f.svc.AuditEvents(context.Background(), keycard.AuditFilter{Type: auth.AuditPasswordResetRequest})
	if err != nil || len(events) != 1 || events[0].Subject != id || events[0].Actor == "" {
		t.Errorf("audit: %+v, %v", events, err)
	}
}

func TestForgotPasswordNeedsMail(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	if p := b.get("/signin"); strings.Contains(p.body, "/forgot-password") {
		t.Error("the sign-in page offers a password reset without a mailer")
	}
	if p := b.get("/forgot-password"); p.status != http.StatusNotFound {
		t.Errorf("GET /forgot-password without a mailer: %d, want 404", p.status)
	}
}

// TestBrowserForgotPassword: in Chromium, from the sign-in page's
// "Forgot your password?" to a new password through the mailed link.
func TestBrowserForgotPassword(t *testing.T) {
	f, mp := mailFixture(t, fixtureOptions{})
	c := newChrome(t)
	f.addUserWithEmail(t, "dora", "dora@example.com")
	mp.WaitFor(t, "dora@example.com", 1)
	tab := c.tab(f.url)
	tab.do("ask for a reset link",
		chromedp.Navigate(f.url+"/signin"),
		chromedp.Click(chromedp.ID("forgot-password")),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "Dora@Example.com"+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("reset-sent")),
	)
	tab.screenshot("forgot-password.png")
	link := f.url + linkIn(t, f, mp.WaitFor(t, "dora@example.com", 2))
	const next = "a brand new passphrase"
	tab.do("choose a new password",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.ID("new_password")),
		chromedp.SendKeys(chromedp.ID("new_password"), next),
		chromedp.SendKeys(chromedp.ID("confirm_password"), next+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	if p := tab.path(); p != "/signin?reset=1" {
		t.Errorf("after the reset: %s", p)
	}
	tab.do("sign in with the new password",
		chromedp.SendKeys(chromedp.ID("username"), "dora"),
		chromedp.SendKeys(chromedp.ID("password"), next+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("sessions")),
	)
	if got := tab.text("#email-state"); !strings.Contains(got, "dora@example.com") {
		t.Errorf("account page email: %q", got)
	}
}

func TestRegisterWithEmail(t *testing.T) {
	f, mp := mailFixture(t, fixtureOptions{registration: true})
	b := f.browser(t)
	form := func(name, email string) url.Values {
		return url.Values{"username": {name}, "email": {email}, "password": {testPassword}, "confirm": {testPassword}}
	}
	if p := b.postFrom("/register", "/register", form("erin", "not an address")); p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="email-error"`) {
		t.Errorf("register with a malformed address: %d", p.status)
	}
	if p := b.postFrom("/register", "/register", form("erin", "Erin@Example.com")); p.status != http.StatusSeeOther {
		t.Fatalf("register: %d\n%s", p.status, p.body)
	}
	mp.WaitFor(t, "erin@example.com", 1)
	if p := b.postFrom("/register", "/register", form("frank", "erin@example.com")); p.status != http.StatusConflict {
		t.Errorf("register with a taken address: %d", p.status)
	}
	if p := b.postFrom("/register", "/register", form("gus", "")); p.status != http.StatusSeeOther {
		t.Errorf("register without an address: %d", p.status)
	}
}
