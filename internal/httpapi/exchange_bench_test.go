package httpapi_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// BenchmarkTokenExchange measures POST /oauth/token with the token
// exchange grant (RFC 8693): the client's secret check, the subject
// token's ES256 signature, claims, jti, session and user from the SQLite
// store, a new ES256-signed token and the token.exchanged audit event.
// Beside BenchmarkClientCredentials and BenchmarkIntrospect in one run it
// shows what the exchange adds to them.
//
//	go test -run '^$' -bench 'TokenExchange|Introspect|ClientCredentials' ./internal/httpapi/
func BenchmarkTokenExchange(b *testing.B) {
	s := newBenchServer(b)
	if err := s.register("exchanged"); err != nil {
		b.Fatal(err)
	}
	tok, err := s.login("exchanged")
	if err != nil {
		b.Fatal(err)
	}
	c, secret, err := s.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "bench", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantTokenExchange}, TokenExchangeAudiences: []string{"orders-api"}}})
	if err != nil {
		b.Fatal(err)
	}
	body := url.Values{"grant_type": {keycard.GrantTokenExchange}, "subject_token": {tok.AccessToken},
		"subject_token_type": {auth.TokenTypeURIAccess}, "audience": {"orders-api"}}.Encode()
	benchClientPost(b, s, "/oauth/token", c.ID, secret, body, `"issued_token_type"`)
}
