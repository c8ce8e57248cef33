package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// fakeOP is an OpenID Provider the test controls completely: its
// discovery document, its keys, and the ID token its token endpoint
// answers with. It plays the provider that misbehaves, or the attacker
// who stands in for one, in the attack tests below; the sign-ins with
// real providers are in internal/server's federation tests.
type fakeOP struct {
	t      *testing.T
	srv    *httptest.Server
	key    *jose.Key // signs, published in the JWKS
	issAdv bool      // advertises authorization_response_iss_parameter_supported

	mu       sync.Mutex
	idToken  func(code string) string // the id_token the token endpoint answers with
	userinfo map[string]any
	gotForm  url.Values // the last token request
	gotBasic [2]string
}

func newFakeOP(t *testing.T) *fakeOP {
	t.Helper()
	key, err := jose.GenerateKey(jose.ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key, err = key.WithKeyID("k1"); err != nil {
		t.Fatal(err)
	}
	op := &fakeOP{t: t, key: key, issAdv: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer": op.srv.URL, "authorization_endpoint": op.srv.URL + "/authorize", "token_endpoint": op.srv.URL + "/token",
			"userinfo_endpoint": op.srv.URL + "/userinfo", "jwks_uri": op.srv.URL + "/jwks",
			"id_token_signing_alg_values_supported":          []string{"ES256"},
			"authorization_response_iss_parameter_supported": op.issAdv,
			"code_challenge_methods_supported":               []string{"S256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		set, err := jose.NewKeySet(op.key.Public())
		if err != nil {
			t.Error(err)
		}
		writeJSON(w, set)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		op.mu.Lock()
		defer op.mu.Unlock()
		op.gotForm = r.PostForm
		op.gotBasic[0], op.gotBasic[1], _ = r.BasicAuth()
		writeJSON(w, map[string]any{"access_token": "at-" + r.PostForm.Get("code"), "token_type": "Bearer", "id_token": op.idToken(r.PostForm.Get("code"))})
	})
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		defer op.mu.Unlock()
		if op.userinfo == nil || r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		writeJSON(w, op.userinfo)
	})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// sign signs claims with key (the OP's own unless given).
func (op *fakeOP) sign(claims map[string]any, key *jose.Key, opts ...jwt.SignerOption) string {
	op.t.Helper()
	if key == nil {
		key = op.key
	}
	tok, err := jwt.Sign(key, claims, opts...)
	if err != nil {
		op.t.Fatal(err)
	}
	return tok
}

// claims are a good ID token's claims for the flow.
func (op *fakeOP) claims(f *Flow) map[string]any {
	now := time.Now()
	return map[string]any{"iss": op.srv.URL, "sub": "user-1", "aud": "keycard", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": f.Nonce, "email": "ann@corp.example", "email_verified": true, "preferred_username": "ann", "groups": []string{"eng", "staff"}, "sid": "up-sid"}
}

func newProvider(t *testing.T, c Config) *Provider {
	t.Helper()
	set, err := New([]Config{c}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	return set.Provider(c.Name)
}

const redirect = "http://127.0.0.1:9/federation/corp/callback"

// start begins a sign-in and returns its flow and the authorization URL.
func start(t *testing.T, p *Provider) (*Flow, *url.URL) {
	t.Helper()
	target, f, err := p.Start(context.Background(), redirect, "ann@corp.example")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	return f, u
}

func TestFinish(t *testing.T) {
	op := newFakeOP(t)
	p := newProvider(t, Config{Name: "corp", Issuer: op.srv.URL, ClientID: "keycard", ClientSecret: "s3cret", Roles: map[string][]string{"eng": {"developer"}}})
	f, authURL := start(t, p)
	q := authURL.Query()
	for name, want := range map[string]string{"response_type": "code", "client_id": "keycard", "redirect_uri": redirect, "state": f.State,
		"nonce": f.Nonce, "code_challenge": challenge(f.Verifier), "code_challenge_method": "S256", "scope": "openid email profile", "login_hint": "ann@corp.example"} {
		if got := q.Get(name); got != want {
			t.Errorf("authorization request %s: got %q, want %q", name, got, want)
		}
	}
	if len(f.State) < 43 || len(f.Nonce) < 43 || len(f.Verifier) < 43 {
		t.Errorf("state, nonce and verifier must carry 256 bits: %+v", f)
	}
	op.idToken = func(string) string { return op.sign(op.claims(f), nil) }
	id, err := p.Finish(context.Background(), f, url.Values{"code": {"c1"}, "state": {f.State}, "iss": {op.srv.URL}}, redirect)
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	want := Identity{Provider: "corp", Subject: "user-1", Email: "ann@corp.example", EmailVerified: true, Username: "ann",
		Groups: []string{"eng", "staff"}, Roles: []string{"developer"}, SessionID: "up-sid"}
	if got, _ := json.Marshal(id); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("Finish: got %s, want %+v", got, want)
	}
	// The code went with the PKCE verifier, the redirect URI and the
	// secret in a Basic header.
	if op.gotForm.Get("code_verifier") != f.Verifier || op.gotForm.Get("redirect_uri") != redirect || op.gotForm.Get("grant_type") != "authorization_code" ||
		op.gotBasic != [2]string{"keycard", "s3cret"} || op.gotForm.Get("client_secret") != "" {
		t.Errorf("token request: form %v, basic %v", op.gotForm, op.gotBasic)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestFinishAttacks sends each attack on the callback and the ID token;
// every one must be refused with ErrInvalidResponse (or ErrDenied for an
// error response).
func TestFinishAttacks(t *testing.T) {
	op := newFakeOP(t)
	p := newProvider(t, Config{Name: "corp", Issuer: op.srv.URL, ClientID: "keycard"})
	other, err := jose.GenerateKey(jose.ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	if other, err = other.WithKeyID("k1"); err != nil { // the provider's kid, another key: a forgery
		t.Fatal(err)
	}
	hmacKey, err := jose.NewHMACKey(jose.HS256, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		query func(f *Flow) url.Values
		token func(f *Flow) string
		want  error
	}{
		{name: "mix-up: iss of another provider", query: func(f *Flow) url.Values {
			return url.Values{"code": {"c"}, "state": {f.State}, "iss": {"https://evil.example"}}
		}},
		{name: "iss missing from a provider that advertises it", query: func(f *Flow) url.Values {
			return url.Values{"code": {"c"}, "state": {f.State}}
		}},
		{name: "iss repeated", query: func(f *Flow) url.Values {
			return url.Values{"code": {"c"}, "state": {f.State}, "iss": {op.srv.URL, op.srv.URL}}
		}},
		{name: "state of another sign-in", query: func(f *Flow) url.Values {
			// Its first character changed (to one it is not).
			other := "x" + f.State[1:]
			if f.State[0] == 'x' {
				other = "y" + f.State[1:]
			}
			return url.Values{"code": {"c"}, "state": {other}, "iss": {op.srv.URL}}
		}},
		{name: "no code", query: func(f *Flow) url.Values { return url.Values{"state": {f.State}, "iss": {op.srv.URL}} }},
		{name: "error response", query: func(f *Flow) url.Values {
			return url.Values{"error": {"access_denied"}, "state": {f.State}, "iss": {op.srv.URL}}
		}, want: ErrDenied},
		{name: "nonce missing", token: func(f *Flow) string {
			c := op.claims(f)
			delete(c, "nonce")
			return op.sign(c, nil)
		}},
		{name: "nonce replayed from another sign-in", token: func(f *Flow) string {
			c := op.claims(f)
			c["nonce"] = "an-earlier-sign-in-s-nonce-aaaaaaaaaaaaaaaaaa"
			return op.sign(c, nil)
		}},
		{name: "ID token for another audience", token: func(f *Flow) string {
			c := op.claims(f)
			c["aud"] = "another-client"
			return op.sign(c, nil)
		}},
		{name: "several audiences without azp", token: func(f *Flow) string {
			c := op.claims(f)
			c["aud"] = []string{"keycard", "another-client"}
			return op.sign(c, nil)
		}},
		{name: "azp of another client", token: func(f *Flow) string {
			c := op.claims(f)
			c["aud"], c["azp"] = []string{"keycard", "another-client"}, "another-client"
			return op.sign(c, nil)
		}},
		{name: "ID token of another issuer", token: func(f *Flow) string {
			c := op.claims(f)
			c["iss"] = "https://evil.example"
			return op.sign(c, nil)
		}},
		{name: "expired ID token", token: func(f *Flow) string {
			c := op.claims(f)
			c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-30*time.Minute).Unix()
			return op.sign(c, nil)
		}},
		{name: "signed by a key that is not the provider's", token: func(f *Flow) string { return op.sign(op.claims(f), other) }},
		{name: "HMAC-signed", token: func(f *Flow) string { return op.sign(op.claims(f), hmacKey) }},
		{name: "alg none", token: func(f *Flow) string {
			tok := op.sign(op.claims(f), nil)
			parts := strings.Split(tok, ".")
			return "eyJhbGciOiJub25lIn0." + parts[1] + "."
		}},
		{name: "not a JWT", token: func(f *Flow) string { return "garbage" }},
		{name: "no subject", token: func(f *Flow) string {
			c := op.claims(f)
			delete(c, "sub")
			return op.sign(c, nil)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, _ := start(t, p)
			q := url.Values{"code": {"c"}, "state": {f.State}, "iss": {op.srv.URL}}
			if c.query != nil {
				q = c.query(f)
			}
			op.mu.Lock()
			op.idToken = func(string) string { return op.sign(op.claims(f), nil) }
			if c.token != nil {
				op.idToken = func(string) string { return c.token(f) }
			}
			op.mu.Unlock()
			_, err := p.Finish(context.Background(), f, q, redirect)
			want := c.want
			if want == nil {
				want = ErrInvalidResponse
			}
			if !errors.Is(err, want) {
				t.Errorf("Finish: got %v, want %v", err, want)
			}
		})
	}
}

// TestFinishOAuth2 maps a GitHub-style userinfo answer: a numeric id,
// login, and an address the provider is configured to vouch for.
func TestFinishOAuth2(t *testing.T) {
	op := newFakeOP(t)
	p := newProvider(t, Config{Name: "gh", Kind: KindOAuth2, ClientID: "keycard", ClientSecret: "s", AuthMethod: "client_secret_post",
		AuthorizationEndpoint: op.srv.URL + "/authorize", TokenEndpoint: op.srv.URL + "/token", UserinfoEndpoint: op.srv.URL + "/userinfo",
		Scopes: []string{"read:user", "user:email"}, Claims: ClaimMap{Subject: "id", Username: "login", EmailVerified: "true"}})
	f, authURL := start(t, p)
	if authURL.Query().Has("nonce") || authURL.Query().Get("scope") != "read:user user:email" {
		t.Errorf("an OAuth 2.0 request has no nonce and its own scopes: %v", authURL.Query())
	}
	op.idToken = func(string) string { return "" }
	op.userinfo = map[string]any{"id": 583231, "login": "octocat", "email": "octocat@github.example"}
	id, err := p.Finish(context.Background(), f, url.Values{"code": {"c"}, "state": {f.State}}, redirect)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "583231" || id.Username != "octocat" || id.Email != "octocat@github.example" || !id.EmailVerified {
		t.Errorf("mapped identity: %+v", id)
	}
	if op.gotForm.Get("client_secret") != "s" || op.gotBasic[0] != "" {
		t.Errorf("client_secret_post: form %v, basic %v", op.gotForm, op.gotBasic)
	}
	// An iss in the response of a provider without one is a response of
	// another provider.
	f, _ = start(t, p)
	if _, err := p.Finish(context.Background(), f, url.Values{"code": {"c"}, "state": {f.State}, "iss": {op.srv.URL}}, redirect); !errors.Is(err, ErrInvalidResponse) {
		t.Errorf("iss at an OAuth 2.0 provider: got %v", err)
	}
}

func TestVerifyLogoutToken(t *testing.T) {
	op := newFakeOP(t)
	p := newProvider(t, Config{Name: "corp", Issuer: op.srv.URL, ClientID: "keycard"})
	good := func() map[string]any {
		return map[string]any{"iss": op.srv.URL, "aud": "keycard", "iat": time.Now().Unix(), "exp": time.Now().Add(2 * time.Minute).Unix(), "jti": "j1",
			"sub": "user-1", "sid": "up-sid", "events": map[string]any{BackchannelLogoutEvent: map[string]any{}}}
	}
	l, err := p.VerifyLogoutToken(context.Background(), op.sign(good(), nil, jwt.WithHeaderType("logout+jwt")))
	if err != nil || l.Subject != "user-1" || l.SessionID != "up-sid" {
		t.Fatalf("VerifyLogoutToken: %+v, %v", l, err)
	}
	cases := map[string]func(c map[string]any){
		"no events":           func(c map[string]any) { delete(c, "events") },
		"another event":       func(c map[string]any) { c["events"] = map[string]any{"urn:other": map[string]any{}} },
		"a nonce (ID token)":  func(c map[string]any) { c["nonce"] = "n" },
		"neither sub nor sid": func(c map[string]any) { delete(c, "sub"); delete(c, "sid") },
		"another audience":    func(c map[string]any) { c["aud"] = "other" },
		"another issuer":      func(c map[string]any) { c["iss"] = "https://evil.example" },
		"no jti":              func(c map[string]any) { delete(c, "jti") },
	}
	for name, mutate := range cases {
		c := good()
		mutate(c)
		if _, err := p.VerifyLogoutToken(context.Background(), op.sign(c, nil, jwt.WithHeaderType("logout+jwt"))); !errors.Is(err, ErrInvalidResponse) {
			t.Errorf("%s: got %v, want ErrInvalidResponse", name, err)
		}
	}
	if _, err := p.VerifyLogoutToken(context.Background(), op.sign(good(), nil, jwt.WithHeaderType("at+jwt"))); !errors.Is(err, ErrInvalidResponse) {
		t.Errorf("typ at+jwt: got %v", err)
	}
}

func TestConfigCheck(t *testing.T) {
	bad := []Config{
		{Name: "Bad Name", Issuer: "https://idp.example", ClientID: "c"},
		{Name: "x", Issuer: "http://idp.example", ClientID: "c"}, // http off loopback
		{Name: "x", Issuer: "https://idp.example?q=1", ClientID: "c"},
		{Name: "x", Issuer: "https://idp.example"},
		{Name: "x", Kind: KindOAuth2, ClientID: "c", AuthorizationEndpoint: "https://a.example/a"},
		{Name: "x", Kind: "saml", ClientID: "c"},
		{Name: "x", Issuer: "https://idp.example", ClientID: "c", AuthMethod: "private_key_jwt"},
		{Name: "x", Issuer: "https://idp.example", ClientID: "c", Roles: map[string][]string{"g": nil}},
	}
	for _, c := range bad {
		if err := c.Check(); err == nil {
			t.Errorf("Check(%+v): want an error", c)
		}
	}
	if _, err := New([]Config{
		{Name: "a", Issuer: "https://a.example", ClientID: "c", Domains: []string{"corp.example"}},
		{Name: "b", Issuer: "https://b.example", ClientID: "c", Domains: []string{"@CORP.example"}},
	}, Options{}); err == nil {
		t.Error("a domain routed to two providers: want an error")
	}
	set, err := New([]Config{{Name: "a", Issuer: "https://a.example", ClientID: "c", Domains: []string{"@Corp.Example"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p := set.ForEmail("ann@CORP.example"); p == nil || p.Name() != "a" {
		t.Errorf("ForEmail: got %v", p)
	}
	if set.ForEmail("ann@other.example") != nil || set.ForEmail("ann") != nil {
		t.Error("ForEmail: an unrouted address found a provider")
	}
}
