package auth

import (
	"strings"
	"testing"

	"github.com/keycard-auth/keycard"
)

// TestMatchRedirectURI sends the redirect URI variants an attacker tries
// (RFC 9700 section 4.1): every one but the registered URI itself, and a
// loopback IP URI registered without a port on any port (RFC 8252
// section 7.3), is refused.
func TestMatchRedirectURI(t *testing.T) {
	registered := []string{
		"https://app.example.com/callback",
		"https://app.example.com/cb?tenant=a",
		"http://127.0.0.1/native",
		"http://[::1]:5000/v6",
		"http://localhost:8080/dev",
		"com.example.app:/oauth",
	}
	for _, tc := range []struct {
		uri  string
		want bool
	}{
		{"https://app.example.com/callback", true},
		{"https://app.example.com/cb?tenant=a", true},
		{"com.example.app:/oauth", true},
		// Loopback IP literals registered without a port: any port, all
		// else exact. With a port: that port alone.
		{"http://127.0.0.1:49152/native", true},
		{"http://127.0.0.1/native", true},
		{"http://[::1]:5000/v6", true},
		{"http://[::1]:61000/v6", false},
		{"http://[::1]/v6", false},
		{"http://[::1]:49152/native", false},
		{"http://127.0.0.1:49152/native/", false},
		{"http://127.0.0.1:49152/Native", false},
		{"http://127.0.0.1:49152/native?x=1", false},
		{"http://127.0.0.1:49152/native#f", false},
		{"http://127.0.0.2:49152/native", false},
		{"http://user@127.0.0.1:49152/native", false},
		{"http://127.0.0.1:4915x/native", false},
		{"https://127.0.0.1:49152/native", false},
		// localhost is a name, not a loopback IP: exact only.
		{"http://localhost:9999/dev", false},
		{"http://localhost:8080/dev", true},
		// Prefix, suffix, case, encoding, user info, fragment, port.
		{"https://app.example.com/callback/../evil", false},
		{"https://app.example.com/callbackx", false},
		{"https://app.example.com/callback/", false},
		{"https://app.example.com/call", false},
		{"https://APP.example.com/callback", false},
		{"https://app.example.com/Callback", false},
		{"https://app.example.com/%63allback", false},
		{"https://app.example.com%2Fcallback", false},
		{"https://app.example.com/callback?x=1", false},
		{"https://app.example.com/cb?tenant=b", false},
		{"https://app.example.com/cb?tenant=a&x=1", false},
		{"https://app.example.com/callback#frag", false},
		{"https://evil@app.example.com/callback", false},
		{"https://app.example.com@evil.example/callback", false},
		{"https://app.example.com:443/callback", false},
		{"https://app.example.com:8443/callback", false},
		{"http://app.example.com/callback", false},
		{"https://app.example.com.evil.example/callback", false},
		{"https://evil.example/https://app.example.com/callback", false},
		{"com.example.app:/oauth/other", false},
		{"", false},
	} {
		if got := MatchRedirectURI(registered, tc.uri); got != tc.want {
			t.Errorf("MatchRedirectURI(%q) = %v, want %v", tc.uri, got, tc.want)
		}
	}
}

func TestCheckRedirectURI(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://app.example.com/callback", true},
		{"https://app.example.com/cb?x=1", true},
		{"http://localhost:3000/cb", true},
		{"http://127.0.0.1/cb", true},
		{"http://[::1]:8080/cb", true},
		{"com.example.app:/oauth2redirect", true},
		{"http://app.example.com/cb", false},
		{"https://app.example.com/cb#x", false},
		{"https://user:pw@app.example.com/cb", false},
		{"https://*.example.com/cb", false},
		{"https:///cb", false},
		{"/relative", false},
		{"javascript:alert(1)", false},
		{"data:text/html,x", false},
		{"file:///etc/passwd", false},
		{"myapp:/cb", false},
		{"https://app.example.com/c b", false},
		{"https://app.example.com/\\evil", false},
		{"https://app.example.com/" + strings.Repeat("a", 2100), false},
	} {
		if err := checkRedirectURI(tc.uri); (err == nil) != tc.ok {
			t.Errorf("checkRedirectURI(%q) = %v, want ok %v", tc.uri, err, tc.ok)
		}
	}
}

func TestClientSpec(t *testing.T) {
	app := keycard.OAuthSettings{GrantTypes: []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken}, RedirectURIs: []string{"https://app.example/cb"}}
	spa := app
	spa.Public = true
	for _, tc := range []struct {
		name string
		spec ClientSpec
		ok   bool
	}{
		{"service client", ClientSpec{Name: "svc", Scopes: []string{"a"}}, true},
		{"confidential app", ClientSpec{Name: "app", OAuth: app}, true},
		{"public app", ClientSpec{Name: "spa", OAuth: spa}, true},
		{"public with client_credentials", ClientSpec{Name: "x", OAuth: keycard.OAuthSettings{Public: true, GrantTypes: []string{keycard.GrantClientCredentials}}}, false},
		{"public with a secret method", ClientSpec{Name: "x", OAuth: func() keycard.OAuthSettings { o := spa; o.TokenAuthMethod = keycard.AuthClientSecretBasic; return o }()}, false},
		{"confidential with none", ClientSpec{Name: "x", OAuth: func() keycard.OAuthSettings { o := app; o.TokenAuthMethod = keycard.AuthNone; return o }()}, false},
		{"code without redirect URIs", ClientSpec{Name: "x", OAuth: keycard.OAuthSettings{GrantTypes: []string{keycard.GrantAuthorizationCode}}}, false},
		{"redirect URIs without the code grant", ClientSpec{Name: "x", OAuth: keycard.OAuthSettings{RedirectURIs: []string{"https://a.example/cb"}}}, false},
		{"unknown grant", ClientSpec{Name: "x", OAuth: keycard.OAuthSettings{GrantTypes: []string{"implicit"}}}, false},
		{"password grant", ClientSpec{Name: "x", OAuth: keycard.OAuthSettings{GrantTypes: []string{"password"}}}, false},
		{"bad redirect", ClientSpec{Name: "x", OAuth: func() keycard.OAuthSettings { o := app; o.RedirectURIs = []string{"http://evil.example/cb"}; return o }()}, false},
		{"bad back-channel URI", ClientSpec{Name: "x", OAuth: func() keycard.OAuthSettings { o := app; o.BackchannelLogoutURI = "http://rp.example/bcl"; return o }()}, false},
		{"loopback back-channel URI", ClientSpec{Name: "x", OAuth: func() keycard.OAuthSettings { o := app; o.BackchannelLogoutURI = "http://127.0.0.1:9/bcl"; return o }()}, true},
		{"private_key_jwt without keys", ClientSpec{Name: "x", OAuth: func() keycard.OAuthSettings { o := app; o.TokenAuthMethod = keycard.AuthPrivateKeyJWT; return o }()}, false},
		{"keys without private_key_jwt", ClientSpec{Name: "x", OAuth: func() keycard.OAuthSettings { o := app; o.JWKSURI = "https://rp.example/jwks"; return o }()}, false},
		{"private_key_jwt with a JWKS URI", ClientSpec{Name: "x", OAuth: func() keycard.OAuthSettings {
			o := app
			o.TokenAuthMethod, o.JWKSURI = keycard.AuthPrivateKeyJWT, "https://rp.example/jwks"
			return o
		}()}, true},
		{"private_key_jwt with a private key", ClientSpec{Name: "x", OAuth: func() keycard.OAuthSettings {
			o := app
			o.TokenAuthMethod = keycard.AuthPrivateKeyJWT
			o.JWKS = []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`)
			return o
		}()}, false},
		{"negative lifetime", ClientSpec{Name: "x", OAuth: func() keycard.OAuthSettings { o := app; o.AccessTTL = -1; return o }()}, false},
		{"no name", ClientSpec{OAuth: app}, false},
		{"token exchange", ClientSpec{Name: "x", OAuth: keycard.OAuthSettings{GrantTypes: []string{keycard.GrantClientCredentials, keycard.GrantTokenExchange}, TokenExchangeAudiences: []string{"orders-api", "https://orders.example/"}}}, true},
		{"token exchange without audiences", ClientSpec{Name: "x", OAuth: keycard.OAuthSettings{GrantTypes: []string{keycard.GrantTokenExchange}}}, false},
		{"exchange audiences without the grant", ClientSpec{Name: "x", OAuth: keycard.OAuthSettings{TokenExchangeAudiences: []string{"orders-api"}}}, false},
		{"exchange audience with a space", ClientSpec{Name: "x", OAuth: keycard.OAuthSettings{GrantTypes: []string{keycard.GrantTokenExchange}, TokenExchangeAudiences: []string{"orders api"}}}, false},
		{"public client of token exchange", ClientSpec{Name: "x", OAuth: func() keycard.OAuthSettings {
			o := spa
			o.GrantTypes, o.TokenExchangeAudiences = append(o.GrantTypes, keycard.GrantTokenExchange), []string{"orders-api"}
			return o
		}()}, false},
	} {
		c, err := tc.spec.client()
		if (err == nil) != tc.ok {
			t.Errorf("%s: got %v, want ok %v", tc.name, err, tc.ok)
			continue
		}
		if err != nil && keycard.ErrorCode(err) != keycard.EINVALID {
			t.Errorf("%s: got %v, want EINVALID", tc.name, err)
		}
		if tc.name == "public app" && c.OAuth.TokenAuthMethod != keycard.AuthNone {
			t.Errorf("public app: token auth method %q, want none", c.OAuth.TokenAuthMethod)
		}
	}
}
