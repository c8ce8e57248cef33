package verifier

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/jose"
)

// BenchmarkMiddleware measures what the middleware adds to a request, for
// each algorithm, with the verification cache ("cached") and without it
// ("cold": signature and claims every time). "baseline" is the least any
// middleware that hands claims to the handler through the request's
// context costs: context.WithValue and Request.WithContext, two
// allocations. Compare the others with it: what Keycard adds beyond that
// is the verification itself, and on the cached path 0 allocations.
//
//	go test -run '^$' -bench Middleware -benchmem ./verifier/
func BenchmarkMiddleware(b *testing.B) {
	for _, alg := range []jose.Algorithm{jose.HS256, jose.ES256, jose.EdDSA} {
		b.Run(string(alg), func(b *testing.B) {
			for _, mode := range []string{"baseline", "cold", "cached"} {
				b.Run(mode, func(b *testing.B) {
					size := 0
					if mode == "cold" {
						size = -1
					}
					f := newFixture(b, alg, Config{CacheSize: size})
					tok := f.sign(b, f.claims())
					var h http.Handler
					// An interface value, as the middleware's next is.
					var next http.Handler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
					if mode == "baseline" {
						c, err := f.v.Verify(tok)
						if err != nil {
							b.Fatal(err)
						}
						h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
							next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
						})
					} else {
						h = f.v.Middleware()(next)
					}
					r := httptest.NewRequest("GET", "/weather", nil)
					r.Header.Set("Authorization", "Bearer "+tok)
					var w http.ResponseWriter = httptest.NewRecorder()
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						h.ServeHTTP(w, r)
					}
				})
			}
		})
	}
}

// BenchmarkVerifyCached is Verify of a token in the cache: the cost of a
// cache lookup, the expiry check and the revocation check.
func BenchmarkVerifyCached(b *testing.B) {
	f := newFixture(b, jose.ES256, Config{})
	tok := f.sign(b, f.claims())
	if _, err := f.v.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.v.Verify(tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDPoP measures a DPoP-protected request through the middleware
// (a cached token, its proof checked: ES256 signature, claims, ath, the
// replay cache) against its floor: the same request with a cached bearer
// token plus one ES256 verification of a proof, the least any DPoP check
// must add. Both run in each iteration, in turns, so that the ratio
// (dpop/floor) compares them under the same load; the target is 1.1.
//
//	go test -run '^$' -bench DPoP -benchmem ./verifier/
func BenchmarkDPoP(b *testing.B) {
	f := newFixture(b, jose.ES256, Config{})
	key, err := dpop.GenerateProver(jose.ES256, nil)
	if err != nil {
		b.Fatal(err)
	}
	pk := key.Key()
	key.Now = f.clock.now
	c := f.claims()
	c.Confirmation.JKT = key.Thumbprint()
	bound := f.sign(b, c)
	c.ID, c.Confirmation.JKT = "jti-bearer", ""
	bearer := f.sign(b, c)
	const url = "http://api.example/weather"
	var next http.Handler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	h := f.v.Middleware()(next)
	var w http.ResponseWriter = httptest.NewRecorder()

	floorReq := httptest.NewRequest("GET", url, nil)
	floorReq.Header.Set("Authorization", "Bearer "+bearer)
	sample := mustProof(b, key, "GET", url, bound)
	verifyKey := pk.Public()

	dpopReq := httptest.NewRequest("GET", url, nil)
	dpopReq.Header.Set("Authorization", "DPoP "+bound)
	// Proofs are used once: make them in batches, outside the timing.
	var pool []string
	refill := func() {
		pool = pool[:0]
		for range 2000 {
			pool = append(pool, mustProof(b, key, "GET", url, bound))
		}
	}
	refill()
	// Warm the token cache for both tokens.
	serveOnce := func(r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != 200 {
			b.Fatalf("got %d %s", rec.Code, rec.Body)
		}
	}
	serveOnce(floorReq)
	dpopReq.Header.Set("DPoP", pool[0])
	serveOnce(dpopReq)
	pool = pool[1:]

	var floor, withDPoP time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if len(pool) == 0 {
			b.StopTimer()
			refill()
			b.StartTimer()
		}
		t0 := time.Now()
		h.ServeHTTP(w, floorReq)
		if _, err := jose.Verify(sample, verifyKey); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		dpopReq.Header["Dpop"] = pool[:1]
		h.ServeHTTP(w, dpopReq)
		t2 := time.Now()
		pool = pool[1:]
		floor += t1.Sub(t0)
		withDPoP += t2.Sub(t1)
	}
	b.ReportMetric(float64(floor.Nanoseconds())/float64(b.N), "floor-ns/op")
	b.ReportMetric(float64(withDPoP.Nanoseconds())/float64(b.N), "dpop-ns/op")
	b.ReportMetric(float64(withDPoP)/float64(floor), "dpop/floor")
}
