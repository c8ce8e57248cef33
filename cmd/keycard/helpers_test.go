package main

import (
	"testing"

	"github.com/keycard-auth/keycard/jose"
)

// publicOf returns the public JWK of a private JWK.
func publicOf(t *testing.T, privJWK string) string {
	t.Helper()
	k, err := jose.ParseJWK([]byte(privJWK))
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Public().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
