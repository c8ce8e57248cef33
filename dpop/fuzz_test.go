package dpop_test

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/jose"
)

// FuzzCheck feeds the checker arbitrary proofs: it must refuse them with
// one of its errors and never panic.
func FuzzCheck(f *testing.F) {
	key, _ := jose.GenerateKey(jose.ES256, rand.Reader)
	p, _ := dpop.NewProver(key)
	p.Now = func() time.Time { return testNow }
	good, _ := p.Proof("GET", testURL, "tok", "")
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, proof string) {
		c := newChecker()
		_, err := c.Check(proof, dpop.Request{Method: "GET", URL: testURL, AccessToken: "tok"})
		if err != nil && !errors.Is(err, dpop.ErrInvalidProof) && !errors.Is(err, dpop.ErrUseNonce) {
			t.Errorf("error %v is none of the package's", err)
		}
	})
}
