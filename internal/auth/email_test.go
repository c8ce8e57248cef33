package auth

import (
	"context"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

func TestNormalizeEmail(t *testing.T) {
	good := []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"  Alice.Smith+Tag@Example.COM\t", "alice.smith+tag@example.com"}, // the whole address lower-cased
		{"o'brien@mail.example.co.uk", "o'brien@mail.example.co.uk"},
		{"dev@localhost", "dev@localhost"},
		{"Jörg@Bücher.example", "jörg@bücher.example"},
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + ".example", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + ".example"},
	}
	for _, tt := range good {
		got, err := NormalizeEmail(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	bad := []string{
		"", "   ", "alice", "alice@", "@example.com", "a@b@example.com",
		"a b@example.com", "a@exa mple.com", "a\r\n@example.com", "a@example.com\r\nBcc: x@example.com",
		"a\x00@example.com", "\"quoted\"@example.com", "a<b>@example.com", "a,b@example.com", "a;b@example.com",
		"a@[127.0.0.1]", "a@example..com", "a@.example.com", "a@example.com.", "a@-example.com", "a@example-.com",
		".a@example.com", "a.@example.com", "a..b@example.com", "a@exam_ple.com",
		strings.Repeat("a", 65) + "@example.com",
		"a@" + strings.Repeat("b", 64) + ".example",
		"a@" + strings.Repeat("b.", 130) + "example", // over 254 bytes
		"a\xff@example.com",
	}
	for _, in := range bad {
		if got, err := NormalizeEmail(in); keycard.ErrorCode(err) != keycard.EINVALID {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want EINVALID", in, got, err)
		}
	}
}

// TestEmailClaims: the ID token and userinfo carry email and
// email_verified with the email scope, for a user with an address, and
// email_verified is true only after verification.
func TestEmailClaims(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	c, secret := f.app(t, true, false)
	authed, err := f.svc.AuthenticateClient(ctx, c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t, "alice")
	keys, _ := f.svc.Keys().VerificationKeys(ctx)
	parser := jwt.NewParser(keys, jwt.WithIssuer("https://auth.test"), jwt.WithAudience(c.ID), jwt.WithType("JWT"), jwt.WithNow(f.clock.Now))
	claims := func(scope string) (*IDClaims, *IDClaims) {
		t.Helper()
		a, err := f.svc.Authorize(ctx, authzParams(c, "scope", scope))
		if err != nil {
			t.Fatal(err)
		}
		code, err := f.svc.IssueCode(ctx, a, b)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := f.svc.ExchangeCode(ctx, authed, code, testRedirect, testVerifier, Agent{})
		if err != nil {
			t.Fatal(err)
		}
		var idc IDClaims
		if err := parser.Parse(tok.IDToken, &idc); err != nil {
			t.Fatal(err)
		}
		info, err := f.svc.UserInfo(ctx, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		return &idc, info
	}
	want := func(what string, c *IDClaims, email string, verified *bool) {
		t.Helper()
		if c.Email != email || (c.EmailVerified == nil) != (verified == nil) || (verified != nil && *c.EmailVerified != *verified) {
			t.Errorf("%s: email %q, email_verified %v; want %q, %v", what, c.Email, c.EmailVerified, email, verified)
		}
	}
	no, yes := false, true

	// No address: no email claims, even with the scope.
	idc, info := claims("openid email")
	want("ID token, no address", idc, "", nil)
	want("userinfo, no address", info, "", nil)

	if _, err := f.svc.SetEmail(ctx, Operator(), b.User.ID, "Alice@Example.com", false); err != nil {
		t.Fatal(err)
	}
	idc, info = claims("openid email")
	want("ID token, unverified", idc, "alice@example.com", &no)
	want("userinfo, unverified", info, "alice@example.com", &no)
	idc, info = claims("openid profile")
	want("ID token without the email scope", idc, "", nil)
	want("userinfo without the email scope", info, "", nil)

	if _, err := f.svc.SetEmail(ctx, Operator(), b.User.ID, "alice@example.com", true); err != nil {
		t.Fatal(err)
	}
	idc, info = claims("openid email")
	want("ID token, verified", idc, "alice@example.com", &yes)
	want("userinfo, verified", info, "alice@example.com", &yes)
}
