package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// TestTokenSealedCodeMalformed: codes that are not a sealed code of this
// server — cut, extended, re-encoded with another alphabet, padded,
// with a dot (read as a stored code), of control characters, as long as
// a body may carry (opened, refused, no more than a body's work) — are
// each 400 invalid_grant, never a 5xx; a body larger than MaxBodyBytes
// is 400 invalid_request before any code is looked at; and the real code still works
// after them.
func TestTokenSealedCodeMalformed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.register(t, "alice", testPassword)
	app, _, err := f.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "SPA", OAuth: keycard.OAuthSettings{
		Public: true, FirstParty: true, GrantTypes: []string{keycard.GrantAuthorizationCode}, RedirectURIs: []string{"https://app.example/cb"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	key := newProver(t)
	b, params := f.codeRequest(t, "alice", app.ID)
	code := f.issueCode(t, b, params)
	redeem := func(code string) *response {
		form := url.Values{"grant_type": {"authorization_code"}, "client_id": {app.ID}, "code": {code},
			"redirect_uri": {"https://app.example/cb"}, "code_verifier": {rfc7636Verifier}}.Encode()
		return f.do(t, request{method: "POST", path: "/oauth/token", header: withProof(formHeader(), tokenProof(t, key)), body: form})
	}
	std := strings.NewReplacer("-", "+", "_", "/")
	for name, bad := range map[string]string{
		"cut":                   code[:len(code)-1],
		"cut to the version":    code[:2],
		"extended":              code + "A",
		"standard alphabet":     std.Replace(code) + "/+",
		"padded":                code + "==",
		"a dot":                 code[:20] + "." + code[20:],
		"control characters":    "\x00\x01\x7f",
		"as long as a body":     strings.Repeat("A", MaxBodyBytes-1024),
		"long, not base64":      strings.Repeat("~", MaxBodyBytes-1024),
		"version 2":             "Ag" + code[2:],
		"empty after trimming":  " ",
		"the code twice joined": code + code,
	} {
		t.Run(name, func(t *testing.T) {
			redeem(bad).wantError(t, http.StatusBadRequest, codeInvalidGrant)
		})
	}
	// The token endpoint answers a body too large as OAuth errors are
	// (RFC 6749 section 5.2): 400 invalid_request.
	redeem(strings.Repeat("A", MaxBodyBytes+1)).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	var tok tokenResponse
	ok(t, redeem(code), http.StatusOK, &tok)
}

// rfc7636Verifier is the PKCE verifier of RFC 7636 appendix B, whose S256
// challenge codeRequest asks for.
const rfc7636Verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

// codeRequest signs username in (with testPassword) and returns the
// browser session and the parameters of an authorization request of
// clientID (redirect URI https://app.example/cb, scope openid, the S256
// challenge of rfc7636Verifier).
func (f *fixture) codeRequest(t *testing.T, username, clientID string) (*auth.BrowserSession, url.Values) {
	t.Helper()
	login := f.login(t, username, testPassword)
	b, err := f.svc.BrowserSession(context.Background(), login.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	return b, url.Values{"client_id": {clientID}, "response_type": {"code"}, "redirect_uri": {"https://app.example/cb"},
		"scope": {"openid"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
}

// issueCode authorizes the request of params and issues its code to the
// user of b.
func (f *fixture) issueCode(t *testing.T, b *auth.BrowserSession, params url.Values) string {
	t.Helper()
	ctx := context.Background()
	a, err := f.svc.Authorize(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	code, err := f.svc.IssueCode(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	return code
}
