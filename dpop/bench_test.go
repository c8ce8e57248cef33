package dpop_test

import (
	"testing"
	"time"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/jose"
)

// BenchmarkCheck is the check of a fresh ES256 proof with an access
// token (ath), the key seen before, against its floor: the ES256
// signature check of the same proof alone. Both run in each iteration,
// so that their ratio (check/verify) is measured under the same load.
// Proofs are made before the timing.
//
//	go test -run '^$' -bench BenchmarkCheck -benchmem ./dpop/
func BenchmarkCheck(b *testing.B) {
	key := mustKey(b, jose.ES256)
	p, err := dpop.NewProver(key)
	if err != nil {
		b.Fatal(err)
	}
	p.Now = func() time.Time { return testNow }
	const token = "eyJhbGciOiJFUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJ1c2VyIiwiY25mIjp7ImprdCI6IngifX0.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl"
	proofs := make([]string, 4000)
	for i := range proofs {
		if proofs[i], err = p.Proof("GET", testURL, token, ""); err != nil {
			b.Fatal(err)
		}
	}
	pub := key.Public()
	c := newChecker()
	c.Window = 1 << 40 // proofs are reused once the pool is spent
	req := dpop.Request{Method: "GET", URL: testURL, AccessToken: token}
	var verify, check time.Duration
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		proof := proofs[i%len(proofs)]
		if i%len(proofs) == 0 {
			c = newChecker() // a fresh replay cache for the next round
			c.Window = 1 << 40
		}
		t0 := time.Now()
		if _, err := jose.Verify(proof, pub); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := c.Check(proof, req); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		verify += t1.Sub(t0)
		check += t2.Sub(t1)
		i++
	}
	b.ReportMetric(float64(verify.Nanoseconds())/float64(b.N), "verify-ns/op")
	b.ReportMetric(float64(check.Nanoseconds())/float64(b.N), "check-ns/op")
	b.ReportMetric(float64(check)/float64(verify), "check/verify")
}
