package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/authtest"
)

// TestAttackMFANextRedirects: the second factor's pages take next from
// the query and the form; another site's address, in every spelling
// browsers read as one, ends at /account (an open redirect otherwise:
// RFC 9700 section 4.11).
func TestAttackMFANextRedirects(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	b := f.browser(t)
	b.mustSignIn("alice")
	secret, codes := enrolOnAccountPage(t, f, b)
	evil := []string{"https://evil.example/", "//evil.example", "/\\evil.example", "/%2F%2Fevil.example", "/%5cevil.example",
		"\t//evil.example", "javascript:alert(1)", "/signin/../\\evil.example", "https:evil.example"}
	for i, next := range evil {
		b := f.browser(t)
		r := b.signIn("alice", testPassword, next)
		if r.status != http.StatusSeeOther || r.location() != "/signin/mfa?next=%2Faccount" {
			t.Errorf("sign-in with next %q: %d %q, want /signin/mfa?next=%%2Faccount", next, r.status, r.location())
		}
		form := b.get("/signin/mfa?next=" + url.QueryEscape(next))
		if strings.Contains(form.body, "evil.example") {
			t.Errorf("the code's page carries next %q on", next)
		}
		code := codes[i] // a recovery code each: no TOTP step replayed
		if i == 0 {
			f.clock.Advance(30 * time.Second)
			code = authtest.TOTPCode(t, secret, f.clock.Now())
		}
		p := b.post("/signin/mfa", url.Values{"csrf_token": {b.csrf(form)}, "code": {code}, "next": {next}})
		if p.status != http.StatusSeeOther || p.location() != "/account" {
			t.Errorf("the right code with next %q: %d %q, want /account", next, p.status, p.location())
		}
	}
	// The enrolment page as well (without the cookie it sends to sign in,
	// keeping only a safe next).
	for _, next := range evil {
		if p := f.browser(t).get("/signin/enroll?next=" + url.QueryEscape(next)); strings.Contains(p.location()+p.body, "evil.example") {
			t.Errorf("enrolment page with next %q: %d %q", next, p.status, p.location())
		}
	}
}
