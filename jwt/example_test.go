package jwt_test

import (
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// exampleHMACJWK is a shared HS256 secret of 32 bytes, as a JWK. Real
// secrets come from a secret store, never from source code.
const exampleHMACJWK = `{"kty":"oct","alg":"HS256","kid":"hs-2026","k":"a2V5Y2FyZC1leGFtcGxlLXNlY3JldC0zMi1ieXRlcyE"}`

// exampleNow is the clock of the examples: 2027-01-15T08:00:00Z.
var exampleNow = time.Date(2027, 1, 15, 8, 0, 0, 0, time.UTC)

func exampleClaims() *jwt.AccessClaims {
	return &jwt.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    "https://auth.example.com",
			Subject:   "user-42",
			Audience:  jwt.Audience{"api"},
			ExpiresAt: jwt.NewNumericDate(exampleNow.Add(15 * time.Minute)),
			IssuedAt:  jwt.NewNumericDate(exampleNow),
			ID:        "tok-1",
		},
		SessionID: "sess-7",
		Scope:     "orders:read",
		Roles:     []string{"customer"},
	}
}

func ExampleSign() {
	key, err := jose.ParseJWK([]byte(exampleHMACJWK))
	if err != nil {
		log.Fatal(err)
	}
	token, err := jwt.Sign(key, exampleClaims(), jwt.WithHeaderType("at+jwt"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(token) // HMAC is deterministic: the same claims give the same token
	// Output:
	// eyJhbGciOiJIUzI1NiIsImtpZCI6ImhzLTIwMjYiLCJ0eXAiOiJhdCtqd3QifQ.eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20iLCJzdWIiOiJ1c2VyLTQyIiwiYXVkIjoiYXBpIiwiZXhwIjoxODAwMDAwOTAwLCJpYXQiOjE4MDAwMDAwMDAsImp0aSI6InRvay0xIiwic2lkIjoic2Vzcy03Iiwic2NvcGUiOiJvcmRlcnM6cmVhZCIsInJvbGVzIjpbImN1c3RvbWVyIl19.tX-HMbyktuPn2cNBxUrwKCo4c9oiqbGSWpJCrwBGgWM
}

func ExampleNewParser() {
	key, err := jose.ParseJWK([]byte(exampleHMACJWK))
	if err != nil {
		log.Fatal(err)
	}
	token, err := jwt.Sign(key, exampleClaims(), jwt.WithHeaderType("at+jwt"))
	if err != nil {
		log.Fatal(err)
	}

	// The key says which algorithm is accepted (HS256 here); the options
	// say what the claims must hold.
	p := jwt.NewParser(key,
		jwt.WithIssuer("https://auth.example.com"),
		jwt.WithAudience("api"),
		jwt.WithType("at+jwt"),
		jwt.WithNow(func() time.Time { return exampleNow.Add(time.Minute) }),
	)
	var claims jwt.AccessClaims
	if err := p.Parse(token, &claims); err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Subject, claims.SessionID, claims.Scope, claims.Roles, claims.ExpiresAt.UTC().Format(time.RFC3339))

	// Twenty minutes later the token has expired, leeway included, and
	// nothing from it is handed back.
	late := jwt.NewParser(key, jwt.WithNow(func() time.Time { return exampleNow.Add(20 * time.Minute) }))
	err = late.Parse(token, &claims)
	fmt.Println(errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrInvalidClaims), claims.Subject == "")
	// Output:
	// user-42 sess-7 orders:read [customer] 2027-01-15T08:15:00Z
	// true true true
}

func ExampleNewParser_keySet() {
	// The auth server signs with its private key…
	priv, err := jose.ParseJWK([]byte(`{"kty":"OKP","crv":"Ed25519","kid":"ed-2026",` +
		`"d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`))
	if err != nil {
		log.Fatal(err)
	}
	token, err := jwt.Sign(priv, exampleClaims(), jwt.WithHeaderType("at+jwt"))
	if err != nil {
		log.Fatal(err)
	}

	// …and a resource server verifies with the JWK Set it publishes. The
	// token's "kid" picks the key; an unknown kid is ErrKeyNotFound, never
	// another key.
	jwks := `{"keys":[
		{"kty":"OKP","crv":"Ed25519","kid":"ed-2026","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
		{"kty":"EC","crv":"P-256","kid":"ec-2026","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
	]}`
	set, err := jose.ParseKeySet([]byte(jwks))
	if err != nil {
		log.Fatal(err)
	}
	p := jwt.NewParser(set,
		jwt.WithIssuer("https://auth.example.com"),
		jwt.WithAudience("api"),
		jwt.WithType("at+jwt"),
		jwt.WithNow(func() time.Time { return exampleNow }),
	)
	var claims jwt.AccessClaims
	header, err := p.ParseWithHeader(token, &claims)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(header.Algorithm, header.KeyID, claims.Subject, claims.Scope)
	// Output:
	// EdDSA ed-2026 user-42 orders:read
}

func ExampleMapClaims() {
	key, err := jose.ParseJWK([]byte(exampleHMACJWK))
	if err != nil {
		log.Fatal(err)
	}
	token, err := jwt.Sign(key, map[string]any{
		"sub":    "user-42",
		"exp":    exampleNow.Add(time.Hour).Unix(),
		"tenant": "acme",
		"flags":  []string{"beta"},
	})
	if err != nil {
		log.Fatal(err)
	}

	// The registered claims are still read and checked strictly;
	// encoding/json then fills the map, numbers as float64.
	p := jwt.NewParser(key, jwt.WithRequired("tenant"), jwt.WithNow(func() time.Time { return exampleNow }))
	var claims jwt.MapClaims
	if err := p.Parse(token, &claims); err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims["sub"], claims["tenant"], claims["flags"], claims["exp"].(float64) == float64(exampleNow.Add(time.Hour).Unix()))
	// Output:
	// user-42 acme [beta] true
}

// ExampleActor reads the actor chain of a token obtained by token
// exchange (RFC 8693 section 4.1): service B acting, after service A, for
// user-42.
func ExampleActor() {
	key, err := jose.ParseJWK([]byte(exampleHMACJWK))
	if err != nil {
		log.Fatal(err)
	}
	c := exampleClaims()
	c.ClientID = "service-b"
	c.Act = &jwt.Actor{Subject: "service-b", Act: &jwt.Actor{Subject: "service-a"}}
	token, err := jwt.Sign(key, c, jwt.WithHeaderType("at+jwt"))
	if err != nil {
		log.Fatal(err)
	}
	var got jwt.AccessClaims
	p := jwt.NewParser(key, jwt.WithType("at+jwt"), jwt.WithNow(func() time.Time { return exampleNow }))
	if err := p.Parse(token, &got); err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Subject, got.Act.Chain(), got.Act.Depth())
	// Output:
	// user-42 [service-b service-a] 2
}
