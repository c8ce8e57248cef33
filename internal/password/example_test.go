package password_test

import (
	"fmt"

	"github.com/keycard-auth/keycard/internal/password"
)

func ExampleHasher() {
	var h password.Hasher // default parameters, crypto/rand salts
	hash, err := h.Hash("correct horse battery staple")
	if err != nil {
		panic(err)
	}
	ok, needsRehash, err := h.Verify("correct horse battery staple", hash)
	fmt.Println(ok, needsRehash, err)
	// Output: true false <nil>
}
