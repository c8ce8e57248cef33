package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/jose"
)

func newProver(t *testing.T) *dpop.Prover {
	t.Helper()
	p, err := dpop.GenerateProver(jose.ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenProof is a proof for POST /oauth/token at the issuer's URL.
func tokenProof(t *testing.T, p *dpop.Prover) string {
	t.Helper()
	proof, err := p.Proof("POST", testIssuer+"/oauth/token", "", "")
	if err != nil {
		t.Fatal(err)
	}
	return proof
}

// withProof returns a token request's header with a DPoP proof.
func withProof(h http.Header, proofs ...string) http.Header {
	h = h.Clone()
	h["Dpop"] = proofs
	return h
}

// cnfOf returns the cnf.jkt of an access token (its signature is checked
// elsewhere).
func cnfOf(t *testing.T, token string) string {
	t.Helper()
	m, err := jose.UnsafeParse(token)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Cnf struct{ JKT string } `json:"cnf"`
	}
	if err := json.Unmarshal(m.Payload, &c); err != nil {
		t.Fatal(err)
	}
	return c.Cnf.JKT
}

// TestTokenDPoPPublicClient: a public client's code bound with dpop_jkt
// is redeemed only with a proof of that key; its tokens are DPoP tokens
// bound to the key, and its refresh token is refused without a proof or
// with another key's.
func TestTokenDPoPPublicClient(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.register(t, "alice", testPassword)
	app, _, err := f.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "SPA", Scopes: []string{"orders:read"}, OAuth: keycard.OAuthSettings{
		Public: true, FirstParty: true, GrantTypes: []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken}, RedirectURIs: []string{"https://app.example/cb"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	key, thief := newProver(t), newProver(t)
	const verifier = rfc7636Verifier
	b, params := f.codeRequest(t, "alice", app.ID)
	params.Set("scope", "openid orders:read")
	params.Set("dpop_jkt", "short")
	if _, err := f.svc.Authorize(ctx, params); err == nil {
		t.Error("Authorize accepted a malformed dpop_jkt")
	}
	params.Set("dpop_jkt", key.Thumbprint())
	code := f.issueCode(t, b, params)
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {app.ID}, "code": {code}, "redirect_uri": {"https://app.example/cb"}, "code_verifier": {verifier}}.Encode()
	redeem := func(h http.Header) *response {
		return f.do(t, request{method: "POST", path: "/oauth/token", header: h, body: form})
	}
	// The bound code, without a proof or with the thief's: refused, and
	// left for the right key.
	redeem(formHeader()).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	redeem(withProof(formHeader(), tokenProof(t, thief))).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	var tok tokenResponse
	ok(t, redeem(withProof(formHeader(), tokenProof(t, key))), http.StatusOK, &tok)
	if tok.TokenType != "DPoP" || cnfOf(t, tok.AccessToken) != key.Thumbprint() {
		t.Fatalf("got token_type %q, cnf.jkt %q; want DPoP bound to %q", tok.TokenType, cnfOf(t, tok.AccessToken), key.Thumbprint())
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}

	other, _, err := f.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "Other SPA", OAuth: keycard.OAuthSettings{
		Public: true, GrantTypes: []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken}, RedirectURIs: []string{"https://other.example/cb"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	refreshAs := func(clientID, rt string, h http.Header) *response {
		return f.do(t, request{method: "POST", path: "/oauth/token", header: h,
			body: url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}}.Encode()})
	}
	// strangers present rt without the key, or as another client: each
	// is refused and spends nothing.
	strangers := func(rt string) {
		t.Helper()
		refreshAs(app.ID, rt, formHeader()).wantError(t, http.StatusBadRequest, codeInvalidDPoPProof)
		refreshAs(app.ID, rt, withProof(formHeader(), tokenProof(t, thief))).wantError(t, http.StatusBadRequest, codeInvalidGrant)
		refreshAs(other.ID, rt, withProof(formHeader(), tokenProof(t, key))).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	}
	strangers(tok.RefreshToken)
	// The legitimate client, after the grace window: its token was not
	// rotated by the refusals, so this is no reuse (which would revoke
	// the session as stolen).
	grace := f.svc.Config().RefreshGrace + time.Second
	f.clock.Advance(grace)
	var next tokenResponse
	ok(t, refreshAs(app.ID, tok.RefreshToken, withProof(formHeader(), tokenProof(t, key))), http.StatusOK, &next)
	if next.TokenType != "DPoP" || cnfOf(t, next.AccessToken) != key.Thumbprint() {
		t.Errorf("refresh: got token_type %q, cnf.jkt %q", next.TokenType, cnfOf(t, next.AccessToken))
	}
	// The rotated token, presented by strangers after its grace window,
	// is refused too, and does not revoke the session: the successor
	// still refreshes.
	f.clock.Advance(grace)
	strangers(tok.RefreshToken)
	var third tokenResponse
	ok(t, refreshAs(app.ID, next.RefreshToken, withProof(formHeader(), tokenProof(t, key))), http.StatusOK, &third)

	// The server's own resources: the bound token works at userinfo only
	// with a proof of its key; as a bearer token it works nowhere.
	userinfo := func(scheme string, proofs ...string) *response {
		h := http.Header{"Authorization": {scheme + " " + next.AccessToken}}
		if len(proofs) > 0 {
			h["Dpop"] = proofs
		}
		return f.do(t, request{method: "GET", path: "/oauth/userinfo", header: h})
	}
	proof := func(p *dpop.Prover, method, path, token string) string {
		s, err := p.Proof(method, testIssuer+path, token, "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if res := userinfo("DPoP", proof(key, "GET", "/oauth/userinfo", next.AccessToken)); res.status != http.StatusOK {
		t.Errorf("userinfo with a proof: got %d %s", res.status, res.body)
	}
	userinfo("Bearer").wantError(t, http.StatusUnauthorized, codeInvalidToken)
	for name, res := range map[string]*response{
		"the thief's proof":   userinfo("DPoP", proof(thief, "GET", "/oauth/userinfo", next.AccessToken)),
		"a proof for POST":    userinfo("DPoP", proof(key, "POST", "/oauth/userinfo", next.AccessToken)),
		"a proof without ath": userinfo("DPoP", proof(key, "GET", "/oauth/userinfo", "")),
		"no proof":            userinfo("DPoP"),
	} {
		if res.status != http.StatusUnauthorized || !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "DPoP ") {
			t.Errorf("userinfo, %s: got %d, WWW-Authenticate %q", name, res.status, res.header.Get("WWW-Authenticate"))
		}
	}
	f.send(t, "GET", "/v1/me", next.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	// An unbound token sent as DPoP is refused too.
	plain := f.login(t, "alice", testPassword)
	res := f.do(t, request{method: "GET", path: "/oauth/userinfo", header: http.Header{
		"Authorization": {"DPoP " + plain.AccessToken}, "Dpop": {proof(key, "GET", "/oauth/userinfo", plain.AccessToken)}}})
	res.wantError(t, http.StatusUnauthorized, codeInvalidToken)
}

// TestTokenDPoPProofRefused sends the token endpoint bad proofs: each is
// 400 invalid_dpop_proof and mints nothing.
func TestTokenDPoPProofRefused(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, []string{"orders:read"}, nil)
	key := newProver(t)
	used := tokenProof(t, key)
	var tok tokenResponse
	ok(t, f.do(t, request{method: "POST", path: "/oauth/token", header: withProof(formHeader(basic(c.id, c.secret)), used), body: "grant_type=client_credentials"}), http.StatusOK, &tok)
	if tok.TokenType != "DPoP" || cnfOf(t, tok.AccessToken) != key.Thumbprint() {
		t.Fatalf("got token_type %q, cnf.jkt %q", tok.TokenType, cnfOf(t, tok.AccessToken))
	}
	otherURL, err := key.Proof("POST", "https://evil.example/oauth/token", "", "")
	if err != nil {
		t.Fatal(err)
	}
	getProof, err := key.Proof("GET", testIssuer+"/oauth/token", "", "")
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]http.Header{
		"replayed":         withProof(formHeader(basic(c.id, c.secret)), used),
		"another URL":      withProof(formHeader(basic(c.id, c.secret)), otherURL),
		"another method":   withProof(formHeader(basic(c.id, c.secret)), getProof),
		"garbage":          withProof(formHeader(basic(c.id, c.secret)), "not.a.proof"),
		"two DPoP headers": withProof(formHeader(basic(c.id, c.secret)), tokenProof(t, key), tokenProof(t, key)),
	} {
		t.Run(name, func(t *testing.T) {
			res := f.do(t, request{method: "POST", path: "/oauth/token", header: h, body: "grant_type=client_credentials"})
			res.wantError(t, http.StatusBadRequest, codeInvalidDPoPProof)
		})
	}
}

// TestTokenDPoPRequired: a client whose policy requires DPoP gets no
// token without a proof; introspection shows the binding.
func TestTokenDPoPRequired(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, secret, err := f.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "strict", Scopes: []string{"orders:read"}, OAuth: keycard.OAuthSettings{DPoP: keycard.DPoPRequired}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "odd", OAuth: keycard.OAuthSettings{DPoP: "sometimes"}}); keycard.ErrorCode(err) != keycard.EINVALID {
		t.Errorf("policy \"sometimes\": got %v, want EINVALID", err)
	}
	h := formHeader(basic(c.ID, secret))
	f.do(t, request{method: "POST", path: "/oauth/token", header: h, body: "grant_type=client_credentials"}).wantError(t, http.StatusBadRequest, codeInvalidDPoPProof)
	key := newProver(t)
	var tok tokenResponse
	ok(t, f.do(t, request{method: "POST", path: "/oauth/token", header: withProof(h, tokenProof(t, key)), body: "grant_type=client_credentials"}), http.StatusOK, &tok)

	var in struct {
		Active    bool              `json:"active"`
		TokenType string            `json:"token_type"`
		Cnf       map[string]string `json:"cnf"`
	}
	ok(t, f.do(t, request{method: "POST", path: "/oauth/introspect", header: h, body: url.Values{"token": {tok.AccessToken}}.Encode()}), http.StatusOK, &in)
	if !in.Active || in.TokenType != "DPoP" || in.Cnf["jkt"] != key.Thumbprint() {
		t.Errorf("introspection: got %+v, want an active DPoP token with cnf.jkt %q", in, key.Thumbprint())
	}
}

// TestTokenDPoPDeviceGrant: the device grant binds the tokens of a public
// client to the key of the proof that came with the poll, its refresh
// token included.
func TestTokenDPoPDeviceGrant(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	public, _, _, _ := f.deviceClients(t)
	d := f.deviceStart(t, public.ID, "openid orders:read")
	if _, err := f.svc.DecideDevice(context.Background(), f.browserSession(t, "alice"), d.UserCode, true, auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	key := newProver(t)
	var tok tokenResponse
	ok(t, f.do(t, request{method: "POST", path: "/oauth/token", header: withProof(formHeader(), tokenProof(t, key)),
		body: url.Values{"grant_type": {keycard.GrantDeviceCode}, "client_id": {public.ID}, "device_code": {d.DeviceCode}}.Encode()}), http.StatusOK, &tok)
	if tok.TokenType != "DPoP" || cnfOf(t, tok.AccessToken) != key.Thumbprint() || tok.RefreshToken == "" {
		t.Fatalf("got token_type %q, cnf.jkt %q, refresh token %t", tok.TokenType, cnfOf(t, tok.AccessToken), tok.RefreshToken != "")
	}
	body := url.Values{"grant_type": {"refresh_token"}, "client_id": {public.ID}, "refresh_token": {tok.RefreshToken}}.Encode()
	f.do(t, request{method: "POST", path: "/oauth/token", header: withProof(formHeader(), tokenProof(t, newProver(t))), body: body}).
		wantError(t, http.StatusBadRequest, codeInvalidGrant)
	ok(t, f.do(t, request{method: "POST", path: "/oauth/token", header: withProof(formHeader(), tokenProof(t, key)), body: body}), http.StatusOK, nil)
}

// TestPARDPoP: a DPoP proof with a pushed authorization request binds its
// code to the proof's key (RFC 9449 section 10.1); a dpop_jkt that names
// another key is refused.
func TestPARDPoP(t *testing.T) {
	f := newFixture(t)
	app, _, err := f.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "SPA", OAuth: keycard.OAuthSettings{
		Public: true, FirstParty: true, GrantTypes: []string{keycard.GrantAuthorizationCode}, RedirectURIs: []string{"https://app.example/cb"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	key, other := newProver(t), newProver(t)
	par := func(extra url.Values, proof string) *response {
		form := url.Values{"client_id": {app.ID}, "response_type": {"code"}, "redirect_uri": {"https://app.example/cb"}, "scope": {"openid"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		for k, v := range extra {
			form[k] = v
		}
		h := formHeader()
		if proof != "" {
			h = withProof(h, proof)
		}
		return f.do(t, request{method: "POST", path: "/oauth/par", header: h, body: form.Encode()})
	}
	parProof := func(p *dpop.Prover) string {
		s, err := p.Proof("POST", testIssuer+"/oauth/par", "", "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	res := par(nil, parProof(key))
	if res.status != http.StatusCreated {
		t.Fatalf("PAR with a proof: %d %s", res.status, res.body)
	}
	var pushed parResponse
	res.decode(t, &pushed)
	a, err := f.svc.Authorize(context.Background(), url.Values{"client_id": {app.ID}, "request_uri": {pushed.RequestURI}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Request.DPoPJKT != key.Thumbprint() {
		t.Errorf("the pushed request's dpop_jkt is %q, want the proof's key %q", a.Request.DPoPJKT, key.Thumbprint())
	}
	par(url.Values{"dpop_jkt": {other.Thumbprint()}}, parProof(key)).wantError(t, http.StatusBadRequest, codeInvalidDPoPProof)
	par(nil, "not-a-proof").wantError(t, http.StatusBadRequest, codeInvalidDPoPProof)
}
