package auth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// exchanger registers a service client allowed token exchange for the
// audiences, and returns it as authenticated.
func (f *fixture) exchanger(t *testing.T, name string, audiences ...string) *keycard.Client {
	t.Helper()
	ctx := context.Background()
	c, secret, err := f.svc.CreateClient(ctx, Operator(), ClientSpec{Name: name, OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantClientCredentials, keycard.GrantTokenExchange}, TokenExchangeAudiences: audiences,
	}})
	if err != nil {
		t.Fatal(err)
	}
	authed, err := f.svc.AuthenticateClient(ctx, c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	return authed
}

// grantTokens runs the code flow for alice with an application and
// returns her tokens: an access token with scope "openid profile
// offline_access orders:read", an ID token and a refresh token.
func (f *fixture) grantTokens(t *testing.T) *Tokens {
	t.Helper()
	f.user(t, "alice")
	tok, _ := f.codeFlow(t, f.browser(t, "alice"))
	return tok
}

// codeFlow runs the code flow of a new first-party application in the
// browser session b, and returns the tokens and the application,
// authenticated.
func (f *fixture) codeFlow(t *testing.T, b *BrowserSession) (*Tokens, *keycard.Client) {
	t.Helper()
	ctx := context.Background()
	c, secret := f.app(t, true, false)
	a, err := f.svc.Authorize(ctx, authzParams(c))
	if err != nil {
		t.Fatal(err)
	}
	code, err := f.svc.IssueCode(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	authed, err := f.svc.AuthenticateClient(ctx, c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.svc.ExchangeCode(ctx, authed, code, testRedirect, testVerifier, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	return tok, authed
}

// parseExchanged verifies an exchanged token with the server's published
// keys, for the audience.
func (f *fixture) parseExchanged(t *testing.T, token, aud string) *jwt.AccessClaims {
	t.Helper()
	keys, err := f.svc.Keys().VerificationKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.AccessClaims
	if err := jwt.NewParser(keys, jwt.WithIssuer("https://auth.test"), jwt.WithAudience(aud), jwt.WithType("at+jwt"), jwt.WithNow(f.clock.Now)).Parse(token, &c); err != nil {
		t.Fatalf("exchanged token: %v", err)
	}
	return &c
}

func subjectRequest(token string) ExchangeRequest {
	return ExchangeRequest{SubjectToken: token, SubjectTokenType: TokenTypeURIAccess, Audience: "orders-api"}
}

// TestExchangeToken exchanges a user's token for one to another service,
// then that one again through a second service: same sub and sid, the
// narrower scope, the target audience, the nested actors, a lifetime
// within the subject token's; and the session's end makes both inactive.
func TestExchangeToken(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	user := f.grantTokens(t)
	a := f.exchanger(t, "service A", "orders-api")
	b := f.exchanger(t, "service B", "billing-api")
	var subject jwt.AccessClaims
	if _, err := f.svc.liveExchangeToken(ctx, user.AccessToken, &subject); err != nil {
		t.Fatal(err)
	}

	f.clock.Advance(5 * time.Minute) // the exchanged token may not outlive the subject token
	req := subjectRequest(user.AccessToken)
	req.Scope = "orders:read openid"
	ex, err := f.svc.ExchangeToken(ctx, a, req, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if ex.IssuedTokenType != TokenTypeURIAccess || ex.Scope != "orders:read openid" {
		t.Errorf("exchange: got %+v", ex)
	}
	c := f.parseExchanged(t, ex.AccessToken, "orders-api")
	if c.Subject != subject.Subject || c.SessionID != subject.SessionID || c.ClientID != a.ID || c.Scope != "orders:read openid" ||
		!slices.Equal(c.Audience, []string{"orders-api"}) || !slices.Equal(c.Act.Chain(), []string{a.ID}) || c.ID == subject.ID ||
		!c.AuthTime.Equal(subject.AuthTime.Time) || !slices.Equal(c.Roles, subject.Roles) {
		t.Errorf("exchanged claims %+v (act %v), subject %+v", c, c.Act.Chain(), subject)
	}
	if !c.ExpiresAt.Equal(subject.ExpiresAt.Time) {
		t.Errorf("exchanged exp %v, want the subject token's %v (its remaining lifetime is shorter than a new token's)", c.ExpiresAt, subject.ExpiresAt)
	}
	if want := int64(subject.ExpiresAt.Sub(f.clock.Now()) / time.Second); ex.ExpiresIn != want {
		t.Errorf("expires_in %d, want %d", ex.ExpiresIn, want)
	}

	// A second hop: B exchanges A's token; the chain nests (RFC 8693
	// section 4.1), most recent first.
	req2 := ExchangeRequest{SubjectToken: ex.AccessToken, SubjectTokenType: TokenTypeURIAccess, Audience: "billing-api"}
	ex2, err := f.svc.ExchangeToken(ctx, b, req2, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	c2 := f.parseExchanged(t, ex2.AccessToken, "billing-api")
	if !slices.Equal(c2.Act.Chain(), []string{b.ID, a.ID}) || c2.Scope != "orders:read openid" || c2.SessionID != subject.SessionID {
		t.Errorf("second hop: act %v, scope %q, sid %q", c2.Act.Chain(), c2.Scope, c2.SessionID)
	}

	// Introspection sees both as active, for the user.
	for _, tok := range []string{ex.AccessToken, ex2.AccessToken} {
		in, err := f.svc.Introspect(ctx, tok)
		if err != nil || !in.Active || in.Subject != subject.Subject || in.SessionID != subject.SessionID {
			t.Errorf("introspect: %+v, %v", in, err)
		}
	}
	// A delegated token does not manage the user's account.
	if _, err := f.svc.Authenticate(ctx, ex.AccessToken); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("Authenticate(exchanged token): got %v, want EUNAUTHORIZED", err)
	}
	if evs, err := f.svc.AuditEvents(ctx, keycard.AuditFilter{Type: AuditTokenExchanged}); err != nil || len(evs) != 2 {
		t.Errorf("token.exchanged audit events: got %d (%v), want 2", len(evs), err)
	}

	// The session ends: every token of it, exchanged or not, is inactive,
	// and none is exchanged any more.
	if _, err := f.db.Stores().Sessions.RevokeSession(ctx, subject.SessionID, f.clock.Now(), keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{user.AccessToken, ex.AccessToken, ex2.AccessToken} {
		if in, err := f.svc.Introspect(ctx, tok); err != nil || in.Active {
			t.Errorf("introspect after logout: %+v, %v", in, err)
		}
	}
	wantExchangeError(t, "after logout", ExchangeInvalidRequest)(f.svc.ExchangeToken(ctx, a, req, Agent{}))
	wantExchangeError(t, "exchanged token after logout", ExchangeInvalidRequest)(f.svc.ExchangeToken(ctx, b, req2, Agent{}))
}

// TestExchangeLifetimeCap: a fresh subject token outlives a token the
// server mints now when the client's lifetime is shorter.
func TestExchangeLifetimeCap(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	user := f.grantTokens(t)
	c, secret, err := f.svc.CreateClient(ctx, Operator(), ClientSpec{Name: "short", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantTokenExchange}, TokenExchangeAudiences: []string{"orders-api"}, AccessTTL: time.Minute,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err = f.svc.AuthenticateClient(ctx, c.ID, secret); err != nil {
		t.Fatal(err)
	}
	ex, err := f.svc.ExchangeToken(ctx, c, subjectRequest(user.AccessToken), Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if ex.ExpiresIn != 60 {
		t.Errorf("expires_in %d, want 60 (the client's access-token lifetime)", ex.ExpiresIn)
	}
	if claims := f.parseExchanged(t, ex.AccessToken, "orders-api"); claims.Scope != "openid profile offline_access orders:read" {
		t.Errorf("without a scope parameter: got scope %q, want all of the subject token's", claims.Scope)
	}
}

// wantExchangeError returns a check that the exchange was refused with
// the code.
func wantExchangeError(t *testing.T, name, code string) func(*Exchanged, error) {
	t.Helper()
	return func(ex *Exchanged, err error) {
		t.Helper()
		ee, ok := errors.AsType[*ExchangeError](err)
		if !ok || ee.Code != code || ex != nil {
			t.Errorf("%s: got a token %v, error %v; want an ExchangeError %s", name, ex != nil, err, code)
		}
	}
}

// TestExchangeRefusals sends what an attacker would: each is refused with
// its RFC 8693 / RFC 6749 code.
func TestExchangeRefusals(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	user := f.grantTokens(t)
	a := f.exchanger(t, "service A", "orders-api", "https://orders.example/")
	svc, svcSecret, err := f.svc.CreateClient(ctx, Operator(), ClientSpec{Name: "plain service", Scopes: []string{"orders:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if svc, err = f.svc.AuthenticateClient(ctx, svc.ID, svcSecret); err != nil {
		t.Fatal(err)
	}
	public, _ := f.app(t, true, true)
	aToken, err := f.svc.ClientCredentials(ctx, a, "")
	if err != nil {
		t.Fatal(err)
	}
	svcToken, err := f.svc.ClientCredentials(ctx, svc, "")
	if err != nil {
		t.Fatal(err)
	}

	// Tokens signed with the server's own key but claims it never
	// issues; and one signed by a key it does not know.
	signer, _, err := f.svc.Keys().Signer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var subject jwt.AccessClaims
	if _, err := f.svc.liveExchangeToken(ctx, user.AccessToken, &subject); err != nil {
		t.Fatal(err)
	}
	forge := func(edit func(c *jwt.AccessClaims), s *jwt.Signer) string {
		c := subject
		c.Audience = slices.Clone(c.Audience)
		edit(&c)
		tok, err := s.Sign(&c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	foreignIssuer := forge(func(c *jwt.AccessClaims) { c.Issuer = "https://evil.example" }, signer)
	other, err := jose.GenerateKey(jose.ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	if other, err = other.WithKeyID(signerKID(t, user.AccessToken)); err != nil {
		t.Fatal(err)
	}
	otherSigner, err := jwt.NewSigner(other, jwt.WithHeaderType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	foreignKey := forge(func(*jwt.AccessClaims) {}, otherSigner)
	deep := forge(func(c *jwt.AccessClaims) {
		for i := range MaxActorChain {
			c.Act = &jwt.Actor{Subject: "hop" + string(rune('a'+i)), Act: c.Act}
		}
	}, signer)
	mismatchedSub := forge(func(c *jwt.AccessClaims) { c.Subject = "someone-else" }, signer)

	// A revoked jti.
	revoked := f.grantTokensAgain(t)
	if err := f.svc.RevokeToken(ctx, svc, revoked, Agent{}); err != nil {
		t.Fatal(err)
	}

	ok := subjectRequest(user.AccessToken)
	with := func(edit func(r *ExchangeRequest)) ExchangeRequest {
		r := ok
		edit(&r)
		return r
	}
	for _, tc := range []struct {
		name   string
		client *keycard.Client
		req    ExchangeRequest
		code   string
	}{
		{"client without the grant", svc, ok, ExchangeUnauthorizedClient},
		{"public client", public, ok, ExchangeUnauthorizedClient},
		{"no client", nil, ok, ExchangeUnauthorizedClient},
		{"no subject token", a, with(func(r *ExchangeRequest) { r.SubjectToken = "" }), ExchangeInvalidRequest},
		{"no subject token type", a, with(func(r *ExchangeRequest) { r.SubjectTokenType = "" }), ExchangeInvalidRequest},
		{"subject token type jwt", a, with(func(r *ExchangeRequest) { r.SubjectTokenType = TokenTypeURIJWT }), ExchangeInvalidRequest},
		{"subject token type refresh", a, with(func(r *ExchangeRequest) { r.SubjectTokenType = TokenTypeURIRefresh }), ExchangeInvalidRequest},
		{"ID token as subject", a, with(func(r *ExchangeRequest) { r.SubjectToken = user.IDToken }), ExchangeInvalidRequest},
		{"ID token declared as one", a, with(func(r *ExchangeRequest) { r.SubjectToken, r.SubjectTokenType = user.IDToken, TokenTypeURIID }), ExchangeInvalidRequest},
		{"refresh token as subject", a, with(func(r *ExchangeRequest) { r.SubjectToken = user.RefreshToken }), ExchangeInvalidRequest},
		{"service client's token as subject", a, with(func(r *ExchangeRequest) { r.SubjectToken = svcToken.AccessToken }), ExchangeInvalidRequest},
		{"garbage subject", a, with(func(r *ExchangeRequest) { r.SubjectToken = "not.a.token" }), ExchangeInvalidRequest},
		{"foreign issuer", a, with(func(r *ExchangeRequest) { r.SubjectToken = foreignIssuer }), ExchangeInvalidRequest},
		{"foreign key", a, with(func(r *ExchangeRequest) { r.SubjectToken = foreignKey }), ExchangeInvalidRequest},
		{"sub not the session's user", a, with(func(r *ExchangeRequest) { r.SubjectToken = mismatchedSub }), ExchangeInvalidRequest},
		{"revoked jti", a, with(func(r *ExchangeRequest) { r.SubjectToken = revoked }), ExchangeInvalidRequest},
		{"chain too long", a, with(func(r *ExchangeRequest) { r.SubjectToken = deep }), ExchangeInvalidRequest},
		{"wider scope", a, with(func(r *ExchangeRequest) { r.Scope = "orders:read orders:write" }), ExchangeInvalidScope},
		{"malformed scope", a, with(func(r *ExchangeRequest) { r.Scope = "orders:read \"x\"" }), ExchangeInvalidScope},
		{"no target", a, with(func(r *ExchangeRequest) { r.Audience = "" }), ExchangeInvalidRequest},
		{"disallowed audience", a, with(func(r *ExchangeRequest) { r.Audience = "billing-api" }), ExchangeInvalidTarget},
		{"audience differing in case", a, with(func(r *ExchangeRequest) { r.Audience = "Orders-API" }), ExchangeInvalidTarget},
		{"disallowed resource", a, with(func(r *ExchangeRequest) { r.Resource = "https://billing.example/" }), ExchangeInvalidTarget},
		{"relative resource", a, with(func(r *ExchangeRequest) { r.Audience, r.Resource = "", "orders-api" }), ExchangeInvalidTarget},
		{"resource with a fragment", a, with(func(r *ExchangeRequest) { r.Audience, r.Resource = "", "https://orders.example/#x" }), ExchangeInvalidTarget},
		{"requested refresh token", a, with(func(r *ExchangeRequest) { r.RequestedTokenType = TokenTypeURIRefresh }), ExchangeInvalidRequest},
		{"requested ID token", a, with(func(r *ExchangeRequest) { r.RequestedTokenType = TokenTypeURIID }), ExchangeInvalidRequest},
		{"actor token type without token", a, with(func(r *ExchangeRequest) { r.ActorTokenType = TokenTypeURIAccess }), ExchangeInvalidRequest},
		{"actor token without type", a, with(func(r *ExchangeRequest) { r.ActorToken = aToken.AccessToken }), ExchangeInvalidRequest},
		{"actor token of another client", a, with(func(r *ExchangeRequest) { r.ActorToken, r.ActorTokenType = svcToken.AccessToken, TokenTypeURIAccess }), ExchangeInvalidRequest},
		{"user's token as actor", a, with(func(r *ExchangeRequest) { r.ActorToken, r.ActorTokenType = user.AccessToken, TokenTypeURIAccess }), ExchangeInvalidRequest},
		{"garbage actor", a, with(func(r *ExchangeRequest) { r.ActorToken, r.ActorTokenType = "x", TokenTypeURIAccess }), ExchangeInvalidRequest},
	} {
		wantExchangeError(t, tc.name, tc.code)(f.svc.ExchangeToken(ctx, tc.client, tc.req, Agent{}))
	}

	// The controls: the same request succeeds, with the client's own
	// actor token, and with a resource.
	if _, err := f.svc.ExchangeToken(ctx, a, ok, Agent{}); err != nil {
		t.Errorf("control: %v", err)
	}
	withActor := with(func(r *ExchangeRequest) { r.ActorToken, r.ActorTokenType = aToken.AccessToken, TokenTypeURIAccess })
	if _, err := f.svc.ExchangeToken(ctx, a, withActor, Agent{}); err != nil {
		t.Errorf("control with the client's own actor token: %v", err)
	}
	both := with(func(r *ExchangeRequest) { r.Resource = "https://orders.example/" })
	ex, err := f.svc.ExchangeToken(ctx, a, both, Agent{})
	if err != nil {
		t.Fatalf("control with audience and resource: %v", err)
	}
	if c := f.parseExchanged(t, ex.AccessToken, "https://orders.example/"); !slices.Equal(c.Audience, []string{"orders-api", "https://orders.example/"}) {
		t.Errorf("aud %v, want both targets", c.Audience)
	}

	// Expired: past the subject token's exp, with no leeway.
	f.clock.Advance(DefaultAccessTTL)
	wantExchangeError(t, "expired subject", ExchangeInvalidRequest)(f.svc.ExchangeToken(ctx, a, ok, Agent{}))
}

// grantTokensAgain signs alice in again and returns the access token of
// the new session.
func (f *fixture) grantTokensAgain(t *testing.T) string {
	t.Helper()
	tok, err := f.svc.Login(context.Background(), "alice", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// signerKID returns the kid of a token's header.
func signerKID(t *testing.T, token string) string {
	t.Helper()
	m, err := jose.UnsafeParse(token)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.KeyID == "" || strings.ContainsAny(m.Header.KeyID, " ") {
		t.Fatalf("kid %q", m.Header.KeyID)
	}
	return m.Header.KeyID
}

// TestExchangeCarriesCustomClaims: the exchanged token has the custom
// claims of the subject token, without asking the hook again, and
// Keycard's own act and scope, never the hook's.
func TestExchangeCarriesCustomClaims(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	h := &hookFunc{fn: func(*ClaimsRequest) (*CustomClaims, error) {
		return &CustomClaims{AccessToken: map[string]json.RawMessage{"tenant": raw(`"acme"`), "perms": raw(`["read"]`)}}, nil
	}}
	f.withHook(t, h, false)
	tok, err := f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	a := f.exchanger(t, "service A", "orders-api")
	calls := len(h.reqs)
	ex, err := f.svc.ExchangeToken(ctx, a, subjectRequest(tok.AccessToken), Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.reqs) != calls {
		t.Errorf("the exchange asked the hook %d times, want none", len(h.reqs)-calls)
	}
	m := f.claimsOf(t, ex.AccessToken)
	act, _ := m["act"].(map[string]any)
	if m["tenant"] != "acme" || len(m["perms"].([]any)) != 1 || act["sub"] != a.ID || m["client_id"] != a.ID || m["sid"] != tok.SessionID {
		t.Errorf("exchanged token claims %v", m)
	}
}

// TestExchangeDPoP: token exchange is a grant like the others for DPoP
// (RFC 9449 section 5): with a proof of the exchanging client's key the
// new token is bound to that key (never to the subject token's), and a
// client whose policy requires DPoP gets nothing without one.
func TestExchangeDPoP(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	user := f.grantTokens(t)
	a := f.exchanger(t, "service A", "orders-api")
	req := subjectRequest(user.AccessToken)

	ex, err := f.svc.ExchangeToken(WithDPoPKey(ctx, "jkt-of-A"), a, req, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if c := f.parseExchanged(t, ex.AccessToken, "orders-api"); c.Confirmation.JKT != "jkt-of-A" || ex.TokenType != TokenTypeDPoP {
		t.Errorf("with a proof: cnf.jkt %q, token type %q; want jkt-of-A and DPoP", c.Confirmation.JKT, ex.TokenType)
	}
	ex, err = f.svc.ExchangeToken(ctx, a, req, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if c := f.parseExchanged(t, ex.AccessToken, "orders-api"); c.Confirmation.JKT != "" || ex.TokenType != TokenTypeBearer {
		t.Errorf("without a proof: cnf.jkt %q, token type %q; want none and Bearer", c.Confirmation.JKT, ex.TokenType)
	}

	a.OAuth.DPoP = keycard.DPoPRequired
	var dpopErr *DPoPError
	if _, err := f.svc.ExchangeToken(ctx, a, req, Agent{}); !errors.As(err, &dpopErr) {
		t.Errorf("a client that requires DPoP, without a proof: %v, want a DPoPError", err)
	}
}
