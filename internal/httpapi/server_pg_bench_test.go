package httpapi_test

import (
	"context"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/postgres"
	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
)

// BenchmarkRefreshGrantPostgres is BenchmarkRefreshGrant on one auth
// server over PostgreSQL, in a fresh database on the server named by
// KEYCARD_TEST_POSTGRES (skipped without it), with the pool serve opens by
// default. The -cpu flag sets the concurrency: RunParallel starts 8
// clients per GOMAXPROCS, so -cpu 2,4 runs 16 and 32 clients.
//
//	KEYCARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
//	go test -run '^$' -bench RefreshGrantPostgres -benchtime 3s -cpu 2,4 ./internal/httpapi
func BenchmarkRefreshGrantPostgres(b *testing.B) {
	benchRefreshGrant(b, newBenchServerOn(b, benchPostgres(b)))
}

// benchPostgres returns the stores of a fresh database on the server
// named by KEYCARD_TEST_POSTGRES, as serve opens them; it skips b without
// it.
func benchPostgres(b *testing.B) keycard.Stores {
	db, err := postgres.Open(context.Background(), pgtest.NewDatabase(b),
		postgres.Options{RevocationTTL: auth.DefaultAccessTTL + auth.DefaultLeeway})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db.Stores()
}

// BenchmarkClientCredentialsPostgres is BenchmarkClientCredentials on one
// auth server over PostgreSQL (KEYCARD_TEST_POSTGRES, skipped without
// it): the client lookup is a round trip to the database.
//
//	KEYCARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
//	go test -run '^$' -bench ClientCredentialsPostgres -benchtime 3s ./internal/httpapi
func BenchmarkClientCredentialsPostgres(b *testing.B) {
	s := newBenchServerOn(b, benchPostgres(b))
	c, secret, err := s.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "bench", Scopes: []string{"bench:read"}})
	if err != nil {
		b.Fatal(err)
	}
	benchClientPost(b, s, "/oauth/token", c.ID, secret, "grant_type=client_credentials", `"access_token"`)
}
