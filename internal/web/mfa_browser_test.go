package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keycard-auth/keycard/internal/authtest"
)

// TestBrowserMFA: in Chromium, set up an authenticator app from the
// account page (its QR code drawn, the key shown, the first code typed),
// see the recovery codes once, then sign in from another browser with
// the password and a code.
func TestBrowserMFA(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c := newChrome(t)

	first := c.tab(f.url)
	first.do("sign in", chromedp.Navigate(f.url+"/signin"))
	first.signIn("alice")
	first.do("set up an app", chromedp.Click(chromedp.ID("setup-totp")), chromedp.WaitVisible(chromedp.ID("totp-secret")))
	if p := first.path(); p != "/account/totp" {
		t.Errorf("set-up page at %s", p)
	}
	if w := first.eval(`document.querySelector("svg.qr").getBoundingClientRect().width`); w.(float64) < 100 {
		t.Errorf("the QR code is %v px wide", w)
	}
	if n := first.eval(`document.querySelectorAll("svg.qr path").length`); n != 1.0 {
		t.Errorf("the QR code has %v paths", n)
	}
	secret := strings.TrimSpace(first.text("#totp-secret"))
	first.screenshot("mfa-setup.png")
	first.do("type the first code",
		chromedp.Focus(chromedp.ID("code")),
		chromedp.KeyEvent(authtest.TOTPCode(t, secret, f.clock.Now())+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")))
	if n := first.eval(`document.querySelectorAll("#recovery-codes li").length`); n != 10.0 {
		t.Errorf("%v recovery codes shown", n)
	}
	first.screenshot("mfa-recovery-codes.png")
	first.do("continue", chromedp.Click(chromedp.ID("codes-continue")), chromedp.WaitVisible(chromedp.ID("mfa-state")))
	if s := first.text("#mfa-state"); !strings.HasPrefix(s, "On") {
		t.Errorf("account page says %q", s)
	}

	second := c.tab(f.url)
	second.do("password", chromedp.Navigate(f.url+"/signin"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.KeyEvent("alice"+kb.Tab+testPassword+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("code")))
	if p := second.path(); !strings.HasPrefix(p, "/signin/mfa?") {
		t.Errorf("after the password: %s, want /signin/mfa", p)
	}
	if focused := second.eval(`document.activeElement.id`); focused != "code" {
		t.Errorf("focus on %v, want the code field", focused)
	}
	second.screenshot("mfa-signin.png")
	wrong := "000000"
	if authtest.TOTPCode(t, secret, f.clock.Now()) == wrong {
		wrong = "111111"
	}
	second.do("a wrong code", chromedp.KeyEvent(wrong+kb.Enter), chromedp.WaitVisible(chromedp.ID("code-error")))
	f.clock.Advance(30 * time.Second)
	second.do("the code",
		chromedp.Clear(chromedp.ID("code")), chromedp.Focus(chromedp.ID("code")),
		chromedp.KeyEvent(authtest.TOTPCode(t, secret, f.clock.Now())+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("sessions")))
	if p := second.path(); p != "/account" {
		t.Errorf("after the code: %s", p)
	}
	if n := second.eval(`document.querySelectorAll("li.session").length`); n != 2.0 {
		t.Errorf("%v sessions listed, want 2", n)
	}
}
