package dpop_test

import (
	"crypto/rand"
	"fmt"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/jose"
)

// A client makes a proof for each request with its key; the server checks
// it against the request and binds tokens to the key's thumbprint.
func Example() {
	client, _ := dpop.GenerateProver(jose.ES256, rand.Reader)
	proof, _ := client.Proof("POST", "https://auth.example.com/oauth/token", "", "")

	var server dpop.Checker
	p, err := server.Check(proof, dpop.Request{Method: "POST", URL: "https://auth.example.com/oauth/token"})
	fmt.Println(err, p.Thumbprint == client.Thumbprint())

	_, err = server.Check(proof, dpop.Request{Method: "POST", URL: "https://auth.example.com/oauth/token"})
	fmt.Println(err)
	// Output:
	// <nil> true
	// dpop: proof replayed
}
