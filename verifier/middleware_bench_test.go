package verifier

import (
	"net/http"
	"net/http/httptest"
	"testing"

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
