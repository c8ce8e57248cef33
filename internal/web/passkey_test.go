package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/throttle"
)

// postJSON posts body as JSON from a page of the site, with the CSRF
// token csrf in its header ("" for none).
func (b *browser) postJSON(path, csrf, body string) *page {
	b.t.Helper()
	h := http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {b.base}}
	if csrf != "" {
		h.Set("X-CSRF-Token", csrf)
	}
	return b.sendBody(http.MethodPost, path, "application/json", strings.NewReader(body), h)
}

// TestPasskeyEndpointsRefuse: the ceremonies' JSON endpoints answer
// every malformed, forged or out-of-turn request with a 4xx and a JSON
// error, never a 5xx.
func TestPasskeyEndpointsRefuse(t *testing.T) {
	f := newFixture(t, fixtureOptions{passkeys: true})
	f.addUser(t, "alice")
	anon := f.browser(t)
	form := anon.csrf(anon.get("/signin"))

	check := func(what string, p *page, want int) {
		t.Helper()
		var body struct {
			Error string `json:"error"`
		}
		if p.status != want || json.Unmarshal([]byte(p.body), &body) != nil || body.Error == "" {
			t.Errorf("%s: %d %s, want %d with a JSON error", what, p.status, p.body, want)
		}
	}
	check("options without the form token", anon.postJSON("/signin/passkey/options", "", `{}`), http.StatusForbidden)
	// Another token: its first character changed (to one it is not).
	other := "x" + form[1:]
	if form[0] == 'x' {
		other = "y" + form[1:]
	}
	check("options with another token", anon.postJSON("/signin/passkey/options", other, `{}`), http.StatusForbidden)
	p := anon.sendBody(http.MethodPost, "/signin/passkey/options", "application/json", strings.NewReader(`{}`),
		http.Header{"Origin": {"https://evil.example"}, "X-CSRF-Token": {form}})
	check("options from another origin", p, http.StatusForbidden)
	p = anon.sendBody(http.MethodPost, "/signin/passkey/options", "text/plain", strings.NewReader(`{}`),
		http.Header{"Origin": {anon.base}, "X-CSRF-Token": {form}})
	check("options as text/plain", p, http.StatusUnsupportedMediaType)
	check("options with a body that is not JSON", anon.postJSON("/signin/passkey/options", form, `{`), http.StatusBadRequest)

	// No ceremony pending (no cookie): refused.
	check("an answer without a ceremony", anon.postJSON("/signin/passkey", form, `{"credential":{"id":"AA"}}`), http.StatusUnauthorized)
	for _, body := range []string{`{`, `[]`, `{"credential":"x"}`, `{"credential":{}}`, `{"credential":null}`, `{"next":7}`,
		`{"credential":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA"}}}`} {
		if p := anon.postJSON("/signin/passkey/options", form, `{}`); p.status != http.StatusOK || !strings.Contains(p.body, `"challenge"`) {
			t.Fatalf("options: %d %s", p.status, p.body)
		}
		p := anon.postJSON("/signin/passkey", form, body)
		if p.status < 400 || p.status >= 500 {
			t.Errorf("answer %s: %d %s, want a 4xx", body, p.status, p.body)
		}
	}
	check("a body too large", anon.postJSON("/signin/passkey", form, `{"credential":"`+strings.Repeat("A", 70<<10)+`"}`), http.StatusRequestEntityTooLarge)
	// The ceremony is used up by the first answer, whatever it was.
	anon.postJSON("/signin/passkey/options", form, `{}`)
	anon.postJSON("/signin/passkey", form, `{"credential":{}}`)
	check("a second answer to one ceremony", anon.postJSON("/signin/passkey", form, `{"credential":{"id":"AA"}}`), http.StatusUnauthorized)

	// The account's ceremony needs a session and its CSRF token.
	check("registration options signed out", anon.postJSON("/account/passkeys/options", form, `{}`), http.StatusUnauthorized)
	alice := f.browser(t)
	alice.mustSignIn("alice")
	csrf := alice.csrf(alice.get("/account"))
	check("registration options with the form token", alice.postJSON("/account/passkeys/options", form, `{}`), http.StatusForbidden)
	opts := alice.postJSON("/account/passkeys/options", csrf, `{}`)
	var begun struct {
		ID      string          `json:"id"`
		Options json.RawMessage `json:"options"`
	}
	if opts.status != http.StatusOK || json.Unmarshal([]byte(opts.body), &begun) != nil || begun.ID == "" {
		t.Fatalf("registration options: %d %s", opts.status, opts.body)
	}
	for _, body := range []string{`{`, `{"id":"` + begun.ID + `"}`, `{"id":"` + begun.ID + `","credential":{}}`,
		`{"id":"nope","credential":{"id":"AA"}}`, `{"id":"` + begun.ID + `","name":"` + strings.Repeat("n", 100) + `","credential":{"id":"AA"}}`} {
		p := alice.postJSON("/account/passkeys", csrf, body)
		if p.status < 400 || p.status >= 500 {
			t.Errorf("registration answer %s: %d %s, want a 4xx", body, p.status, p.body)
		}
	}

	// The MFA step's passkey without an MFA sign-in under way.
	p = anon.postJSON("/signin/mfa/passkey/options", form, `{}`)
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, `"redirect"`) {
		t.Errorf("MFA passkey options without an MFA sign-in: %d %s, want 401 sending back to the password", p.status, p.body)
	}
	check("MFA passkey answer without a sign-in", anon.postJSON("/signin/mfa/passkey", form, `{"id":"x","credential":{"id":"AA"}}`), http.StatusUnauthorized)

	// Rename and remove are forms of the account page: another user's
	// passkey is not found.
	if p := alice.post("/account/passkeys/nope/remove", map[string][]string{"csrf_token": {csrf}}); p.status != http.StatusNotFound {
		t.Errorf("removing an unknown passkey: %d", p.status)
	}
}

// TestPasskeysOff: without a relying party, the sign-in page offers no
// passkey and the endpoints are 404.
func TestPasskeysOff(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	page := b.get("/signin")
	if strings.Contains(page.body, "webauthn") || strings.Contains(page.body, "passkey-button") {
		t.Errorf("the sign-in page offers passkeys with passkeys off")
	}
	if p := b.postJSON("/signin/passkey/options", b.csrf(page), `{}`); p.status != http.StatusNotFound {
		t.Errorf("options with passkeys off: %d", p.status)
	}
}

// TestAdminPasskeys: the console lists a user's passkeys on their page
// and removes one, audited with the admin as actor.
func TestAdminPasskeys(t *testing.T) {
	f := newFixture(t, fixtureOptions{passkeys: true})
	root := f.addUser(t, "root", auth.RoleAdmin)
	alice := f.addUser(t, "alice")
	pk := &keycard.Passkey{ID: "pk-1", UserID: alice, CredentialID: []byte("cred-1"), PublicKey: []byte{0xa5}, Name: "Alice's key",
		CreatedAt: f.clock.Now()}
	if err := f.stores.Passkeys.CreatePasskey(context.Background(), pk); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.mustSignIn("root")
	page := b.get("/admin/users/" + alice)
	if page.status != http.StatusOK || !strings.Contains(page.body, "Alice&#39;s key") {
		t.Fatalf("the user's page does not list the passkey: %d\n%s", page.status, page.body)
	}
	p := b.post("/admin/users/"+alice+"/passkeys/pk-1/remove", url.Values{"csrf_token": {b.csrf(page)}})
	if p.status != http.StatusSeeOther || !strings.Contains(p.location(), "done=passkeyremoved") {
		t.Fatalf("remove: %d %s", p.status, p.location())
	}
	if pks, _ := f.svc.ListPasskeys(context.Background(), alice); len(pks) != 0 {
		t.Errorf("%d passkeys left, want 0", len(pks))
	}
	events, _ := f.stores.Audit.ListAudit(context.Background(), keycard.AuditFilter{Type: auth.AuditPasskeyRemoved})
	if len(events) != 1 || events[0].Actor != root || events[0].Subject != alice {
		t.Errorf("audit %+v, want one removal by root of alice's", events)
	}
	// A non-admin cannot.
	a := f.browser(t)
	a.mustSignIn("alice")
	if p := a.post("/admin/users/"+alice+"/passkeys/pk-1/remove", url.Values{"csrf_token": {a.csrf(a.get("/account"))}}); p.status != http.StatusForbidden {
		t.Errorf("a user on the console's removal: %d", p.status)
	}
}

// TestPasskeySignInThrottled: the anonymous ceremony of a passkey
// sign-in is throttled per client address — a flood of
// /signin/passkey/options meets 429 with Retry-After once the address's
// burst is spent, storing no more challenges — and refused answers count
// as failed logins of the address, which then waits for passkeys and
// passwords alike.
// passkeyCookieName is the cookie that holds a browser's pending passkey
// sign-in.
const passkeyCookieName = "__Host-keycard_passkey"

func TestPasskeySignInThrottled(t *testing.T) {
	ctx := context.Background()
	policy := throttle.Policy{Burst: 4, BaseDelay: time.Minute, Refill: time.Hour}
	t.Run("options flood", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{passkeys: true, addressThrottle: &policy})
		anon := f.browser(t)
		form := anon.csrf(anon.get("/signin"))
		ceremony := func() string {
			if c := anon.cookies[passkeyCookieName]; c != nil {
				return c.Value
			}
			return ""
		}
		var ids []string
		for i := range 4 {
			p := anon.postJSON("/signin/passkey/options", form, `{}`)
			if p.status != http.StatusOK {
				t.Fatalf("ceremony %d: %d %s", i+1, p.status, p.body)
			}
			ids = append(ids, ceremony())
		}
		for range 3 {
			p := anon.postJSON("/signin/passkey/options", form, `{}`)
			if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, `"error"`) {
				t.Fatalf("the flood: %d %q %s, want 429 with Retry-After", p.status, p.header.Get("Retry-After"), p.body)
			}
		}
		// The refused calls stored nothing: the cookie still names the
		// last ceremony begun, and it is there to be answered.
		if got := ceremony(); got != ids[3] {
			t.Errorf("the ceremony cookie changed under the throttle")
		}
		if _, err := f.stores.Passkeys.TakePasskeyChallenge(ctx, ids[3], f.clock.Now()); err != nil {
			t.Errorf("the last ceremony: %v", err)
		}
		// After the back-off, one more.
		f.clock.Advance(time.Minute + time.Second)
		if p := anon.postJSON("/signin/passkey/options", form, `{}`); p.status != http.StatusOK {
			t.Errorf("after the back-off: %d %s", p.status, p.body)
		}
	})
	t.Run("refused answers", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{passkeys: true, addressThrottle: &policy})
		f.addUser(t, "alice")
		anon := f.browser(t)
		form := anon.csrf(anon.get("/signin"))
		for i := range 4 {
			if p := anon.postJSON("/signin/passkey/options", form, `{}`); p.status != http.StatusOK {
				t.Fatalf("ceremony %d: %d %s", i+1, p.status, p.body)
			}
			if p := anon.postJSON("/signin/passkey", form, `{"credential":{"id":"AA"}}`); p.status < 400 || p.status >= 500 || p.status == http.StatusTooManyRequests {
				t.Fatalf("refused answer %d: %d %s", i+1, p.status, p.body)
			}
		}
		// The address backs off: an answer is refused before it is
		// looked at, and so is the password from there.
		p := anon.postJSON("/signin/passkey", form, `{"credential":{"id":"AA"}}`)
		if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
			t.Errorf("answer after four refused: %d %s, want 429", p.status, p.body)
		}
		if _, err := f.svc.Login(ctx, "alice", testPassword, auth.Agent{Addr: "127.0.0.1"}); keycard.ErrorCode(err) != keycard.ETHROTTLED {
			t.Errorf("password login from the address: %v, want throttled", err)
		}
		events, err := f.stores.Audit.ListAudit(ctx, keycard.AuditFilter{Type: keycard.AuditLoginThrottled})
		if err != nil || len(events) == 0 {
			t.Errorf("login.throttled events: %v %v", events, err)
		}
	})
}
