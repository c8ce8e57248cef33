package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// keyClient registers a client of client_credentials and the code grant
// that authenticates with private_key_jwt, its public key inline, and
// returns it with its private key.
func (f *fixture) keyClient(t *testing.T) (*keycard.Client, *jose.Key) {
	t.Helper()
	key, err := jose.GenerateKey(jose.ES256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if key, err = key.WithKeyID("k1"); err != nil {
		t.Fatal(err)
	}
	set, err := jose.NewKeySet(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(set)
	c, secret, err := f.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "keyed", Scopes: []string{"orders:read"}, OAuth: keycard.OAuthSettings{
		GrantTypes:      []string{keycard.GrantClientCredentials, keycard.GrantAuthorizationCode},
		RedirectURIs:    []string{"https://app.example/cb"},
		TokenAuthMethod: keycard.AuthPrivateKeyJWT, JWKS: jwks,
	}})
	if err != nil || secret != "" {
		t.Fatalf("CreateClient: %v, secret %q", err, secret)
	}
	return c, key
}

// clientAssertion signs an assertion of client id for aud, valid a
// minute from the fixture's now, with a fresh jti.
func (f *fixture) clientAssertion(t *testing.T, key *jose.Key, id, aud string) string {
	t.Helper()
	jti, _ := keycard.NewID(rand.Reader)
	now := f.clock.Now()
	tok, err := jwt.Sign(key, jwt.MapClaims{"iss": id, "sub": id, "aud": aud, "jti": jti, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestPrivateKeyJWTEndpoints: the token, PAR, introspection and
// revocation endpoints take a client assertion, and refuse it mixed with another method, of the
// wrong type, replayed, for another endpoint, or from a client registered
// for secrets; a private_key_jwt client cannot use a secret.
func TestPrivateKeyJWTEndpoints(t *testing.T) {
	f := newFixture(t)
	c, key := f.keyClient(t)
	secretClient := f.newClient(t, []string{"orders:read"}, nil)
	form := func(assertion string, extra ...string) string {
		v := url.Values{"client_assertion_type": {auth.ClientAssertionType}, "client_assertion": {assertion}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v.Encode()
	}
	tokenURL, parURL, introspectURL := testIssuer+"/oauth/token", testIssuer+"/oauth/par", testIssuer+"/oauth/introspect"

	good := f.clientAssertion(t, key, c.ID, tokenURL)
	res := f.postForm(t, "/oauth/token", form(good, "grant_type", "client_credentials"))
	if res.status != http.StatusOK {
		t.Fatalf("client_credentials with an assertion: %d %s", res.status, res.body)
	}
	var tok clientTokenResponse
	res.decode(t, &tok)
	if tok.AccessToken == "" || tok.Scope != "orders:read" {
		t.Errorf("client_credentials: %+v", tok)
	}
	if res := f.postForm(t, "/oauth/token", form(f.clientAssertion(t, key, c.ID, testIssuer), "grant_type", "client_credentials", "client_id", c.ID)); res.status != http.StatusOK {
		t.Errorf("aud the issuer, with client_id: %d %s", res.status, res.body)
	}
	par := url.Values{"response_type": {"code"}, "redirect_uri": {"https://app.example/cb"}, "scope": {"openid"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	parForm := func(assertion string) string {
		v := url.Values{}
		for k, vs := range par {
			v[k] = vs
		}
		v.Set("client_assertion_type", auth.ClientAssertionType)
		v.Set("client_assertion", assertion)
		return v.Encode()
	}
	if res := f.postForm(t, "/oauth/par", parForm(f.clientAssertion(t, key, c.ID, parURL))); res.status != http.StatusCreated {
		t.Errorf("PAR with aud the PAR endpoint: %d %s", res.status, res.body)
	}
	if res := f.postForm(t, "/oauth/par", parForm(f.clientAssertion(t, key, c.ID, tokenURL))); res.status != http.StatusCreated {
		t.Errorf("PAR with aud the token endpoint: %d %s", res.status, res.body)
	}
	for _, aud := range []string{introspectURL, tokenURL, testIssuer} {
		res := f.postForm(t, "/oauth/introspect", form(f.clientAssertion(t, key, c.ID, aud), "token", tok.AccessToken))
		if res.status != http.StatusOK || !strings.Contains(string(res.body), `"active":true`) {
			t.Errorf("introspection with an assertion for %s: %d %s", aud, res.status, res.body)
		}
	}
	if res := f.postForm(t, "/oauth/revoke", form(f.clientAssertion(t, key, c.ID, tokenURL), "token", tok.AccessToken)); res.status != http.StatusOK {
		t.Errorf("revoke with an assertion: %d %s", res.status, res.body)
	}

	secretAssertion := f.clientAssertion(t, key, secretClient.id, tokenURL)
	tests := []struct {
		name   string
		path   string
		header http.Header
		body   string
		status int
		code   string
	}{
		{"replayed", "/oauth/token", formHeader(), form(good, "grant_type", "client_credentials"), 401, codeInvalidClient},
		{"aud the PAR endpoint, at the token endpoint", "/oauth/token", formHeader(), form(f.clientAssertion(t, key, c.ID, parURL), "grant_type", "client_credentials"), 401, codeInvalidClient},
		{"aud another server", "/oauth/token", formHeader(), form(f.clientAssertion(t, key, c.ID, "https://other.example/oauth/token"), "grant_type", "client_credentials"), 401, codeInvalidClient},
		{"client_id of another client", "/oauth/token", formHeader(), form(f.clientAssertion(t, key, c.ID, tokenURL), "grant_type", "client_credentials", "client_id", secretClient.id), 401, codeInvalidClient},
		{"a client registered for secrets", "/oauth/token", formHeader(), form(secretAssertion, "grant_type", "client_credentials"), 401, codeInvalidClient},
		{"with a Basic header too", "/oauth/token", formHeader(basic(secretClient.id, secretClient.secret)), form(f.clientAssertion(t, key, c.ID, tokenURL), "grant_type", "client_credentials"), 400, codeInvalidRequest},
		{"with client_secret too", "/oauth/token", formHeader(), form(f.clientAssertion(t, key, c.ID, tokenURL), "grant_type", "client_credentials", "client_secret", "x"), 400, codeInvalidRequest},
		{"wrong assertion type", "/oauth/token", formHeader(), "grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:saml2-bearer&client_assertion=" + good, 400, codeInvalidRequest},
		{"type without assertion", "/oauth/token", formHeader(), "grant_type=client_credentials&client_assertion_type=" + url.QueryEscape(auth.ClientAssertionType), 400, codeInvalidRequest},
		{"assertion without type", "/oauth/token", formHeader(), "grant_type=client_credentials&client_assertion=" + good, 400, codeInvalidRequest},
		{"junk assertion", "/oauth/token", formHeader(), form("x.y.z", "grant_type", "client_credentials"), 401, codeInvalidClient},
		{"replayed at PAR", "/oauth/par", formHeader(), form(good, "response_type", "code"), 401, codeInvalidClient},
		{"replayed at introspection", "/oauth/introspect", formHeader(), form(good, "token", "x"), 401, codeInvalidClient},
		{"aud the PAR endpoint, at introspection", "/oauth/introspect", formHeader(), form(f.clientAssertion(t, key, c.ID, parURL), "token", "x"), 401, codeInvalidClient},
		{"a client registered for secrets, at introspection", "/oauth/introspect", formHeader(), form(f.clientAssertion(t, key, secretClient.id, introspectURL), "token", "x"), 401, codeInvalidClient},
		{"with client_secret too, at introspection", "/oauth/introspect", formHeader(), form(f.clientAssertion(t, key, c.ID, introspectURL), "token", "x", "client_secret", "x"), 400, codeInvalidRequest},
		{"the private_key_jwt client with a secret", "/oauth/token", formHeader(basic(c.ID, "anything")), "grant_type=client_credentials", 401, codeInvalidClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, request{method: http.MethodPost, path: tt.path, header: tt.header, body: tt.body})
			res.wantError(t, tt.status, tt.code)
			if tt.status == 401 && res.header.Get("WWW-Authenticate") == "" {
				t.Error("a 401 without WWW-Authenticate")
			}
		})
	}
	// The log says why, and never holds an assertion.
	logs := f.logs.String()
	if !strings.Contains(logs, "jti used before") {
		t.Error("the log does not say a jti was replayed")
	}
	if strings.Contains(logs, good) || strings.Contains(logs, secretAssertion) {
		t.Error("the log holds a client assertion")
	}
}
