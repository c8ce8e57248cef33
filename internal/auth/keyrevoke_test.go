package auth

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/postgres"
	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
	"github.com/keycard-auth/keycard/internal/sqlite"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// sharedStore opens, each time it is called, another handle on one
// database: what another process (the CLI, another instance) has.
type sharedStore func(t *testing.T) keycard.Stores

// sharedStores are the backends the emergency key revocation is tested
// on: a SQLite file, and PostgreSQL when KEYCARD_TEST_POSTGRES is set.
func sharedStores(clk *clock) map[string]func(t *testing.T) sharedStore {
	return map[string]func(t *testing.T) sharedStore{
		"sqlite": func(t *testing.T) sharedStore {
			path := filepath.Join(t.TempDir(), "keycard.db")
			return func(t *testing.T) keycard.Stores {
				db, err := sqlite.Open(context.Background(), path, sqlite.Options{Now: clk.Now})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db.Stores()
			}
		},
		"postgres": func(t *testing.T) sharedStore {
			url := pgtest.NewDatabase(t)
			return func(t *testing.T) keycard.Stores {
				db, err := postgres.Open(context.Background(), url, postgres.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db.Stores()
			}
		},
	}
}

// newInstance is one auth server (or the CLI) on its own handle of a shared
// store, with its own KeyManager and Service.
func newInstance(t *testing.T, stores keycard.Stores, sealer *Sealer, clk *clock) *Service {
	t.Helper()
	km, err := NewKeyManager(stores.Keys, sealer, KeyOptions{Algorithm: jose.ES256, RetainFor: DefaultAccessTTL + DefaultLeeway}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(Deps{Stores: stores, Keys: km, Sealer: sealer, Hasher: fastHasher, Now: clk.Now}, Config{Issuer: "https://auth.test"})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// tokenKID returns the kid of a token's header.
func tokenKID(t *testing.T, token string) string {
	t.Helper()
	m, err := jose.UnsafeParse(token)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	return m.Header.KeyID
}

// An emergency key revocation by one process (the CLI, another instance,
// here another Service on its own handle of the same database) holds at
// every other instance from the moment it returns: the next token minted
// there — at login, at a refresh, for a service client — is signed by
// another key, one the revoking side publishes, with no wait. The clock
// stands still, so no key cache expires and no notification arrives: the
// instance learns of the revocation from the read its operation makes.
func TestRevokeKeyHoldsAtOtherInstances(t *testing.T) {
	clk := newClock()
	for name, shared := range sharedStores(clk) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			open := shared(t)
			sealer := newTestSealer(t)
			cli := newInstance(t, open(t), sealer, clk)
			if _, err := cli.Register(ctx, "alice", "correct horse battery", nil); err != nil {
				t.Fatal(err)
			}
			client, secret, err := cli.CreateClient(ctx, Operator(), ClientSpec{Name: "gateway", Scopes: []string{"feed:read"}})
			if err != nil {
				t.Fatal(err)
			}

			mints := []struct {
				name string
				// prepare runs before the revocation and returns what
				// mint needs (a refresh token, from a login).
				prepare func(t *testing.T, svc *Service) string
				mint    func(t *testing.T, svc *Service, prepared string) string
			}{
				{"login", func(*testing.T, *Service) string { return "" },
					func(t *testing.T, svc *Service, _ string) string {
						tok, err := svc.Login(ctx, "alice", "correct horse battery", Agent{})
						if err != nil {
							t.Fatal(err)
						}
						return tok.AccessToken
					}},
				{"refresh", func(t *testing.T, svc *Service) string {
					tok, err := svc.Login(ctx, "alice", "correct horse battery", Agent{})
					if err != nil {
						t.Fatal(err)
					}
					return tok.RefreshToken
				}, func(t *testing.T, svc *Service, refresh string) string {
					tok, err := svc.Refresh(ctx, refresh, Agent{})
					if err != nil {
						t.Fatal(err)
					}
					return tok.AccessToken
				}},
				{"client_credentials", func(*testing.T, *Service) string { return "" },
					func(t *testing.T, svc *Service, _ string) string {
						c, err := svc.AuthenticateClient(ctx, client.ID, secret)
						if err != nil {
							t.Fatal(err)
						}
						tok, err := svc.ClientCredentials(ctx, c, "")
						if err != nil {
							t.Fatal(err)
						}
						return tok.AccessToken
					}},
			}
			for _, m := range mints {
				t.Run(m.name, func(t *testing.T) {
					// A running instance, its view of the keys in
					// memory.
					inst := newInstance(t, open(t), sealer, clk)
					prepared := m.prepare(t, inst)
					_, revoked, err := inst.Keys().Signer(ctx)
					if err != nil {
						t.Fatal(err)
					}

					active, err := cli.RevokeKey(ctx, Operator(), revoked)
					if err != nil {
						t.Fatal(err)
					}
					if active.KID == revoked {
						t.Fatalf("RevokeKey left %s active", revoked)
					}
					// The instance has not heard of it: its cached
					// view still signs with the revoked key.
					if v := inst.keys.view.Load(); v.kid != revoked {
						t.Fatalf("the instance's view signs with %s, want the stale %s: the test proves nothing", v.kid, revoked)
					}

					tok := m.mint(t, inst, prepared)
					if kid := tokenKID(t, tok); kid != active.KID {
						t.Errorf("%s right after the revocation: signed by %s, want %s (revoked: %s)", m.name, kid, active.KID, revoked)
					}
					// Every verifier accepts it: it verifies under
					// the JWKS the revoking side now publishes.
					jwks, err := cli.Keys().JWKS(ctx)
					if err != nil {
						t.Fatal(err)
					}
					set, err := jose.ParseKeySet(jwks)
					if err != nil {
						t.Fatal(err)
					}
					if err := jwt.NewParser(set, jwt.WithNow(clk.Now)).Parse(tok, nil); err != nil {
						t.Errorf("%s right after the revocation: the token does not verify under the published keys: %v", m.name, err)
					}
				})
			}

			// Every instance's JWKS has the new key, and not the
			// revoked one, from the moment the revocation returns: a
			// verifier that meets the new kid asks once, then not
			// again for a while.
			peer := newInstance(t, open(t), sealer, clk)
			_, revoked, err := peer.Keys().Signer(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := peer.Keys().JWKS(ctx); err != nil {
				t.Fatal(err)
			}
			active, err := cli.RevokeKey(ctx, Operator(), revoked)
			if err != nil {
				t.Fatal(err)
			}
			jwks, err := peer.Keys().JWKS(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if set, err := jose.ParseKeySet(jwks); err != nil || set.Lookup(active.KID) == nil || set.Lookup(revoked) != nil {
				t.Errorf("another instance's JWKS right after the revocation: %s, %v; want %s and not %s", jwks, err, active.KID, revoked)
			}

			// Introspection at another instance, after the client's
			// lookup, no longer takes a token of the revoked key.
			inst := newInstance(t, open(t), sealer, clk)
			tok, err := inst.Login(ctx, "alice", "correct horse battery", Agent{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cli.RevokeKey(ctx, Operator(), tokenKID(t, tok.AccessToken)); err != nil {
				t.Fatal(err)
			}
			if _, err := inst.AuthenticateClient(ctx, client.ID, secret); err != nil {
				t.Fatal(err)
			}
			if in, err := inst.Introspect(ctx, tok.AccessToken); err != nil || in.Active {
				t.Errorf("introspecting a token of the revoked key at another instance: %+v, %v; want inactive", in, err)
			}
		})
	}
}

// countingKeys counts the reads a KeyManager makes of its store.
type countingKeys struct {
	keycard.KeyStore
	lists, gens atomic.Int64
}

func (c *countingKeys) ListKeys(ctx context.Context) ([]*keycard.SigningKey, error) {
	c.lists.Add(1)
	return c.KeyStore.ListKeys(ctx)
}

func (c *countingKeys) KeyGeneration(ctx context.Context) (int64, error) {
	c.gens.Add(1)
	return c.KeyStore.KeyGeneration(ctx)
}

// The key manager reads the store only when it must: for a generation
// newer than its view (once, however many callers wait for it), and,
// when its cache expires, the generation alone if the keys did not
// change. A store that went back (a restored backup) costs one read, not
// one per signature.
func TestKeyManagerObserve(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	store := &countingKeys{KeyStore: f.db.Stores().Keys}
	km, err := NewKeyManager(store, f.svc.sealer, KeyOptions{RetainFor: DefaultAccessTTL + DefaultLeeway}, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	_, kid0, err := km.Signer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reads := func(what string, wantGens, wantLists int64) {
		t.Helper()
		if g, l := store.gens.Swap(0), store.lists.Swap(0); g != wantGens || l != wantLists {
			t.Errorf("%s: %d generation and %d key reads, want %d and %d", what, g, l, wantGens, wantLists)
		}
	}
	reads("first use", 1, 1)
	gen, _ := f.db.Stores().Keys.KeyGeneration(ctx)

	km.Observe(gen)
	km.Observe(gen - 1)
	if _, kid, _ := km.Signer(ctx); kid != kid0 {
		t.Errorf("signing kid %s, want %s", kid, kid0)
	}
	reads("a generation the view has", 0, 0)

	// Another instance makes a new key active. Until this manager
	// hears of it, its view stands (for CacheFor); then every waiting
	// caller shares one read.
	other := f.svc.Keys()
	fresh, err := other.Rotate(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, kid, _ := km.Signer(ctx); kid != kid0 {
		t.Errorf("signing kid %s before hearing of the rotation, want the cached %s", kid, kid0)
	}
	reads("before hearing of the rotation", 0, 0)
	newGen, _ := f.db.Stores().Keys.KeyGeneration(ctx)
	km.Observe(newGen)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if _, kid, err := km.Signer(ctx); err != nil || kid != fresh.KID {
				t.Errorf("signing kid %s, %v after hearing of the rotation, want %s", kid, err, fresh.KID)
			}
		})
	}
	wg.Wait()
	reads("32 signers after hearing of the rotation", 1, 1)

	// The cache expires: the generation says nothing changed.
	f.clock.Advance(DefaultKeyCacheFor)
	if _, kid, _ := km.Signer(ctx); kid != fresh.KID {
		t.Errorf("signing kid %s after the cache expired, want %s", kid, fresh.KID)
	}
	reads("cache expiry with no change", 1, 0)

	// A generation the store never reaches (it went back): one read,
	// then the view stands again.
	km.Observe(newGen + 100)
	for range 3 {
		if _, kid, _ := km.Signer(ctx); kid != fresh.KID {
			t.Errorf("signing kid %s, want %s", kid, fresh.KID)
		}
	}
	reads("a store that went back", 1, 0)
}
