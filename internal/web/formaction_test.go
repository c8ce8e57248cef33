package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// TestFormActionAllowsTheRedirect: browsers apply a page's CSP
// form-action to the redirects that follow a form's post, so the sign-in
// page of an authorization request and the consent page allow the
// application's redirect URI (its origin, the port of a loopback one
// included) besides 'self'; other sign-in pages allow 'self' alone.
func TestFormActionAllowsTheRedirect(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "alice")
	c, _, err := f.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "App", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantAuthorizationCode}, Public: true,
		RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1/callback"}}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(strings.Repeat("v", 43)))
	authorize := func(redirect string) string {
		return "/oauth/authorize?" + url.Values{"client_id": {c.ID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
			"state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}.Encode()
	}
	formAction := func(p *page) string {
		for _, d := range strings.Split(p.header.Get("Content-Security-Policy"), ";") {
			if d = strings.TrimSpace(d); strings.HasPrefix(d, "form-action") {
				return d
			}
		}
		return ""
	}
	for _, tc := range []struct{ redirect, want string }{
		{"https://app.example/cb", "form-action 'self' https://app.example"},
		{"http://127.0.0.1:53817/callback", "form-action 'self' http://127.0.0.1:53817"},
	} {
		b := f.browser(t)
		detour := b.get(authorize(tc.redirect))
		if detour.status != http.StatusSeeOther || !strings.HasPrefix(detour.location(), "/signin?") {
			t.Fatalf("signed out, authorize: status %d, Location %q", detour.status, detour.location())
		}
		signin := b.get(detour.location())
		if got := formAction(signin); got != tc.want {
			t.Errorf("the sign-in page of a request to %s: got %q, want %q", tc.redirect, got, tc.want)
		}
		next, _ := url.Parse(detour.location())
		failed := b.post("/signin", url.Values{"csrf_token": {b.csrf(signin)}, "username": {"alice"}, "password": {"wrong password"}, "next": {next.Query().Get("next")}})
		if got := formAction(failed); failed.status != http.StatusUnauthorized || got != tc.want {
			t.Errorf("the sign-in page again after a wrong password: status %d, got %q, want %q", failed.status, got, tc.want)
		}
	}
	b := f.browser(t)
	if got := formAction(b.get("/signin")); got != "form-action 'self'" {
		t.Errorf("a plain sign-in page: got %q", got)
	}
	if got := formAction(b.get("/signin?next=" + url.QueryEscape("/oauth/authorize?client_id=nobody&request_uri=x"))); got != "form-action 'self'" {
		t.Errorf("the sign-in page of a request that does not check out: got %q", got)
	}

	// The consent page of a third-party client.
	third, _, err := f.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "Third", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantAuthorizationCode}, Public: true, RedirectURIs: []string{"https://third.example/cb"}}})
	if err != nil {
		t.Fatal(err)
	}
	c = third
	b.mustSignIn("alice")
	consent := b.get(authorize("https://third.example/cb"))
	if consent.status != http.StatusOK || !strings.Contains(consent.body, "consent-allow") {
		t.Fatalf("the consent page: status %d", consent.status)
	}
	if got := formAction(consent); got != "form-action 'self' https://third.example" {
		t.Errorf("the consent page: got %q", got)
	}
}
