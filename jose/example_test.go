package jose_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log"

	"github.com/keycard-auth/keycard/jose"
)

// The Ed25519 key of RFC 8037 Appendix A.1, and the JWS of its Appendix A.4.
const (
	rfc8037PrivateJWK = `{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`
	rfc8037PublicJWK  = `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`
	rfc8037Token      = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)

func ExampleSign() {
	// An Ed25519 private key. Without an "alg" member the key is bound to
	// the algorithm its curve implies, EdDSA.
	key, err := jose.ParseJWK([]byte(rfc8037PrivateJWK))
	if err != nil {
		log.Fatal(err)
	}
	token, err := jose.Sign(key, jose.Header{}, []byte("Example of Ed25519 signing"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(token) // Ed25519 is deterministic: this is the JWS of RFC 8037 A.4

	// The verifier holds only the public half.
	msg, err := jose.Verify(token, key.Public())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %q\n", msg.Header.Algorithm, msg.Payload)
	// Output:
	// eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg
	// EdDSA "Example of Ed25519 signing"
}

func ExampleVerify() {
	key, err := jose.ParseJWK([]byte(rfc8037PublicJWK))
	if err != nil {
		log.Fatal(err)
	}
	msg, err := jose.Verify(rfc8037Token, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("verified: %q\n", msg.Payload)

	// Tokens an attacker might send instead. Each gets a sentinel error to
	// match with errors.Is, and no message.
	enc := base64.RawURLEncoding.EncodeToString
	sig := rfc8037Token[len(rfc8037Token)-86:]
	for _, tc := range []struct {
		name, token string
	}{
		{"other payload", "eyJhbGciOiJFZERTQSJ9." + enc([]byte("Example of Ed448 signing")) + "." + sig},
		{"alg none", enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte("Example of Ed25519 signing")) + "." + sig},
		{"alg HS256", enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte("Example of Ed25519 signing")) + "." + sig},
		{"padded", rfc8037Token + "=="},
	} {
		msg, err := jose.Verify(tc.token, key)
		switch {
		case errors.Is(err, jose.ErrSignatureInvalid):
			fmt.Println(tc.name+": signature invalid", msg == nil)
		case errors.Is(err, jose.ErrUnsupportedAlgorithm):
			fmt.Println(tc.name+": unsupported algorithm", msg == nil)
		case errors.Is(err, jose.ErrAlgorithmMismatch):
			fmt.Println(tc.name+": algorithm not allowed for the key", msg == nil)
		case errors.Is(err, jose.ErrMalformed):
			fmt.Println(tc.name+": malformed", msg == nil)
		}
	}
	// Output:
	// verified: "Example of Ed25519 signing"
	// other payload: signature invalid true
	// alg none: unsupported algorithm true
	// alg HS256: algorithm not allowed for the key true
	// padded: malformed true
}

func ExampleJWSVerifier() {
	key, err := jose.ParseJWK([]byte(rfc8037PublicJWK))
	if err != nil {
		log.Fatal(err)
	}
	// A JWSVerifier made once and used for every token: it limits the
	// algorithms and the size further than the key does, and it skips
	// parsing a header it saw in the token before.
	v := &jose.JWSVerifier{Keys: key, Algorithms: []jose.Algorithm{jose.EdDSA}, MaxSize: 4 << 10}
	msg, err := v.Verify(rfc8037Token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %q\n", msg.Header.Algorithm, msg.Payload)

	strict := &jose.JWSVerifier{Keys: key, Algorithms: []jose.Algorithm{jose.ES256}}
	_, err = strict.Verify(rfc8037Token)
	fmt.Println(errors.Is(err, jose.ErrAlgorithmMismatch))
	// Output:
	// EdDSA "Example of Ed25519 signing"
	// true
}

func ExampleParseKeySet() {
	// A JWK Set as an issuer publishes it. The X25519 key is for key
	// agreement, which this package does not do: it is skipped and
	// reported, and the rest of the set stays usable.
	jwks := `{"keys":[
		{"kty":"OKP","crv":"Ed25519","kid":"ed-2026","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
		{"kty":"EC","crv":"P-256","kid":"ec-2026","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
		{"kty":"OKP","crv":"X25519","kid":"x-2026","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}
	]}`
	set, err := jose.ParseKeySet([]byte(jwks))
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range set.Keys() {
		fmt.Println("key", k.KeyID(), k.Algorithm())
	}
	for _, err := range set.Skipped() {
		var skipped *jose.SkippedKeyError
		if errors.As(err, &skipped) {
			fmt.Println("skipped", skipped.Index, skipped.KeyID, errors.Is(err, jose.ErrUnsupportedKey))
		}
	}

	// A token without "kid" gets the set's only key for its algorithm.
	msg, err := jose.Verify(rfc8037Token, set)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", msg.Payload)
	// Output:
	// key ed-2026 EdDSA
	// key ec-2026 ES256
	// skipped 2 x-2026 true
	// "Example of Ed25519 signing"
}

func ExampleKey_Thumbprint() {
	// The RSA key of RFC 7638 section 3.1.
	key, err := jose.ParseJWK([]byte(`{"kty":"RSA","kid":"2011-04-29","alg":"RS256","e":"AQAB",` +
		`"n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.Thumbprint())
	// Output:
	// NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs
}
