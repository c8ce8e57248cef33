package keycard_test

import (
	"crypto/rand"
	"fmt"

	"github.com/keycard-auth/keycard"
)

func ExampleNewRefreshToken() {
	token, id, hash, err := keycard.NewRefreshToken(rand.Reader)
	if err != nil {
		panic(err)
	}
	// Store id and hash; hand token to the client once.
	gotID, gotHash, err := keycard.ParseRefreshToken(token)
	fmt.Println(err == nil, gotID == id, string(gotHash) == string(hash), len(hash))
	// Output: true true true 32
}

func ExampleErrorCode() {
	err := keycard.Errorf(keycard.ENOTFOUND, "Session not found.")
	fmt.Println(keycard.ErrorCode(err), keycard.ErrorMessage(err))
	// Output: not_found Session not found.
}
