package auth

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
)

// countingStores counts the reads an introspection makes: a cached
// answer makes none.
type countingStores struct {
	sessions, users, clients atomic.Int64
}

type countSessions struct {
	keycard.SessionStore
	n *atomic.Int64
}

func (s countSessions) Session(ctx context.Context, id string) (*keycard.Session, error) {
	s.n.Add(1)
	return s.SessionStore.Session(ctx, id)
}

type countUsers struct {
	keycard.UserStore
	n *atomic.Int64
}

func (s countUsers) UserByID(ctx context.Context, id string) (*keycard.User, error) {
	s.n.Add(1)
	return s.UserStore.UserByID(ctx, id)
}

type countClients struct {
	keycard.ClientStore
	n *atomic.Int64
}

func (s countClients) Client(ctx context.Context, id string) (*keycard.Client, error) {
	s.n.Add(1)
	return s.ClientStore.Client(ctx, id)
}

func (c *countingStores) wrap(st keycard.Stores) keycard.Stores {
	st.Sessions = countSessions{st.Sessions, &c.sessions}
	st.Users = countUsers{st.Users, &c.users}
	st.Clients = countClients{st.Clients, &c.clients}
	return st
}

func (c *countingStores) reads() int64 { return c.sessions.Load() + c.users.Load() + c.clients.Load() }

// cachedFixture is a fixture whose Service caches introspection answers
// (and client authentications), with a user alice and a service client.
type cachedFixture struct {
	*fixture
	count  *countingStores
	client *keycard.Client
	secret string
}

func newCachedFixture(t *testing.T, size int) *cachedFixture {
	t.Helper()
	count := new(countingStores)
	f := newFixtureConfig(t, jose.ES256, Config{Issuer: "https://auth.test", Registration: true, IntrospectionCache: size}, count.wrap)
	f.user(t, "Alice")
	c, secret := f.client(t, []string{"feed:read"}, nil)
	return &cachedFixture{fixture: f, count: count, client: c, secret: secret}
}

func (f *cachedFixture) login(t *testing.T) *Tokens {
	t.Helper()
	tok, err := f.svc.Login(context.Background(), "alice", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *cachedFixture) introspect(t *testing.T, token string) *Introspection {
	t.Helper()
	in, err := f.svc.Introspect(context.Background(), token)
	if err != nil {
		t.Fatalf("Introspect: %v", err)
	}
	return in
}

// cachedHit introspects token twice and checks that the second answer,
// active, came from the cache: no store read.
func (f *cachedFixture) cachedHit(t *testing.T, token string) *Introspection {
	t.Helper()
	if in := f.introspect(t, token); !in.Active {
		t.Fatalf("Introspect(fresh token) = %+v, want active", in)
	}
	before := f.count.reads()
	in := f.introspect(t, token)
	if !in.Active {
		t.Fatalf("Introspect(fresh token, again) = %+v, want active", in)
	}
	if n := f.count.reads() - before; n != 0 {
		t.Fatalf("the second introspection read the store %d times, want 0 (a cached answer)", n)
	}
	return in
}

func (f *cachedFixture) aliceID(t *testing.T) string {
	t.Helper()
	u, err := f.db.Stores().Users.UserByUsername(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// Every change that ends a token, made after its answer was cached, ends
// the cached answer at once: revoked session, logout everywhere, disabled
// or deleted user, password change, revoke-all, a revoked jti, a revoked
// key, a deleted client; and a change another process announces on the
// feed (RevocationsAppended).
func TestIntrospectionCacheEndsAtOnce(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// client: the token is a service client's (client_credentials)
		client bool
		change func(t *testing.T, f *cachedFixture, tok *Tokens, in *Introspection)
	}{
		{"session revoked (logout)", false, func(t *testing.T, f *cachedFixture, tok *Tokens, _ *Introspection) {
			p, err := f.svc.Authenticate(ctx, tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.svc.Logout(ctx, p, Agent{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"logout everywhere", false, func(t *testing.T, f *cachedFixture, tok *Tokens, _ *Introspection) {
			p, err := f.svc.Authenticate(ctx, tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.svc.LogoutAll(ctx, p, Agent{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"an admin revokes the session", false, func(t *testing.T, f *cachedFixture, tok *Tokens, _ *Introspection) {
			if err := f.svc.RevokeUserSession(ctx, Operator(), f.aliceID(t), tok.SessionID); err != nil {
				t.Fatal(err)
			}
		}},
		{"user disabled", false, func(t *testing.T, f *cachedFixture, _ *Tokens, _ *Introspection) {
			if _, err := f.svc.SetUserDisabled(ctx, Operator(), f.aliceID(t), true); err != nil {
				t.Fatal(err)
			}
		}},
		{"user deleted", false, func(t *testing.T, f *cachedFixture, _ *Tokens, _ *Introspection) {
			if err := f.svc.DeleteUser(ctx, Operator(), f.aliceID(t)); err != nil {
				t.Fatal(err)
			}
		}},
		{"password changed", false, func(t *testing.T, f *cachedFixture, _ *Tokens, _ *Introspection) {
			// From another session: that one is kept, this one ends.
			other := f.login(t)
			p, err := f.svc.Authenticate(ctx, other.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.svc.ChangePassword(ctx, p, "correct horse battery", "another horse battery", Agent{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"revoke-all", false, func(t *testing.T, f *cachedFixture, _ *Tokens, _ *Introspection) {
			if _, err := f.svc.RevokeAll(ctx, Operator()); err != nil {
				t.Fatal(err)
			}
		}},
		{"token revoked (RFC 7009)", false, func(t *testing.T, f *cachedFixture, tok *Tokens, _ *Introspection) {
			if err := f.svc.RevokeToken(ctx, f.client, tok.AccessToken, Agent{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"key revoked", false, func(t *testing.T, f *cachedFixture, tok *Tokens, _ *Introspection) {
			if _, err := f.svc.RevokeKey(ctx, Operator(), tokenKID(t, tok.AccessToken)); err != nil {
				t.Fatal(err)
			}
		}},
		{"client token revoked", true, func(t *testing.T, f *cachedFixture, tok *Tokens, _ *Introspection) {
			if err := f.svc.RevokeToken(ctx, f.client, tok.AccessToken, Agent{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"client deleted", true, func(t *testing.T, f *cachedFixture, _ *Tokens, _ *Introspection) {
			if err := f.svc.DeleteClient(ctx, Operator(), f.client.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{"client's key revoked", true, func(t *testing.T, f *cachedFixture, tok *Tokens, _ *Introspection) {
			if _, err := f.svc.RevokeKey(ctx, Operator(), tokenKID(t, tok.AccessToken)); err != nil {
				t.Fatal(err)
			}
		}},
		// Another process (the CLI, another instance) revokes the
		// session in the shared database; its feed entry reaches this
		// Service as RevocationsAppended (LISTEN/NOTIFY, the SQLite
		// watch).
		{"session revoked by another process, announced", false, func(t *testing.T, f *cachedFixture, tok *Tokens, _ *Introspection) {
			if _, err := f.db.Stores().Sessions.RevokeSession(ctx, tok.SessionID, f.clock.Now(), keycard.RevokeLogout); err != nil {
				t.Fatal(err)
			}
			f.svc.RevocationsAppended()
		}},
		{"user disabled by another process, announced", false, func(t *testing.T, f *cachedFixture, _ *Tokens, _ *Introspection) {
			disabled := true
			if _, err := f.db.Stores().Users.UpdateUser(ctx, f.aliceID(t), keycard.UserUpdate{Disabled: &disabled}, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			f.svc.RevocationsAppended()
		}},
		{"key revoked by another process, announced", false, func(t *testing.T, f *cachedFixture, tok *Tokens, _ *Introspection) {
			kid := tokenKID(t, tok.AccessToken)
			// The other process makes a fresh key active first, as
			// RevokeKey does.
			if _, err := f.svc.Keys().Rotate(ctx, true); err != nil {
				t.Fatal(err)
			}
			if err := f.db.Stores().Keys.RevokeKey(ctx, kid, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			f.svc.RevocationsAppended()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newCachedFixture(t, 100)
			var tok *Tokens
			if tc.client {
				ct, err := f.svc.ClientCredentials(ctx, f.client, "")
				if err != nil {
					t.Fatal(err)
				}
				tok = ct
			} else {
				tok = f.login(t)
			}
			in := f.cachedHit(t, tok.AccessToken)
			tc.change(t, f, tok, in)
			if got := f.introspect(t, tok.AccessToken); got.Active {
				t.Errorf("Introspect after %s = %+v, want inactive", tc.name, got)
			}
		})
	}
}

// A cached answer ends with the token (exact expiry, no leeway, as
// without the cache), and is used no longer than IntrospectionCacheFor:
// a change another process makes without this Service hearing of it
// (here a user disabled in the shared database, with no
// RevocationsAppended) shows after that at the latest.
func TestIntrospectionCacheExpiry(t *testing.T) {
	ctx := context.Background()
	f := newCachedFixture(t, 100)
	tok := f.login(t)
	f.cachedHit(t, tok.AccessToken)
	f.clock.Advance(DefaultAccessTTL - time.Second)
	f.cachedHit(t, tok.AccessToken)
	f.clock.Advance(time.Second)
	if got := f.introspect(t, tok.AccessToken); got.Active {
		t.Errorf("Introspect at exp = %+v, want inactive", got)
	}

	tok = f.login(t)
	f.cachedHit(t, tok.AccessToken)
	disabled := true
	if _, err := f.db.Stores().Users.UpdateUser(ctx, f.aliceID(t), keycard.UserUpdate{Disabled: &disabled}, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(DefaultIntrospectionCacheFor)
	if got := f.introspect(t, tok.AccessToken); got.Active {
		t.Errorf("Introspect a cache lifetime after another process disabled the user = %+v, want inactive", got)
	}
}

// The cache holds no more entries than it was given, and keeps nothing
// for inactive tokens.
func TestIntrospectionCacheIsBounded(t *testing.T) {
	f := newCachedFixture(t, 32)
	for range 80 {
		tok := f.login(t)
		f.introspect(t, tok.AccessToken)
	}
	if n := f.svc.introCache.len(); n > 32 {
		t.Errorf("cache holds %d entries, want at most 32", n)
	}
	f2 := newCachedFixture(t, 32)
	tok := f2.login(t)
	p, _ := f2.svc.Authenticate(context.Background(), tok.AccessToken)
	if err := f2.svc.Logout(context.Background(), p, Agent{}); err != nil {
		t.Fatal(err)
	}
	f2.introspect(t, tok.AccessToken)
	f2.introspect(t, tok.AccessToken+"x")
	if n := f2.svc.introCache.len(); n != 0 {
		t.Errorf("cache holds %d entries after introspecting inactive tokens, want 0", n)
	}
}

// The cache never holds more answers than its size, an operator
// setting, even below one per shard; at its size it still takes new
// answers, evicting old ones.
func TestIntrospectionCacheSizeIsExact(t *testing.T) {
	var e epochs
	now := time.Unix(1000, 0)
	in := &Introspection{Active: true}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{1, 5, 16, 37} {
		c := newIntroCache(size, time.Minute, &e)
		var last string
		for range 40 * size {
			// A token's shard is its signature's next-to-last character.
			var sig [16]byte
			for i := range sig {
				sig[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[rng.IntN(64)]
			}
			last = "header.payload." + string(sig[:])
			c.put(last, in, jose.Header{}, now.Add(time.Hour), now, e.now())
			if n := c.len(); n > size {
				t.Fatalf("size %d: cache holds %d entries", size, n)
			}
		}
		if n := c.len(); n < size/2 {
			t.Errorf("size %d: cache holds %d entries after %d answers, want about %d", size, n, 40*size, size)
		}
		if size >= introShards {
			if _, _, ok := c.get(last, now); !ok {
				t.Errorf("size %d: the last answer put in is not cached", size)
			}
		}
	}
}

// Without a cache (IntrospectionCache 0, --introspection-cache 0) every
// introspection verifies the token and reads the store, and answers as
// with one: active, then inactive at once after a logout.
func TestIntrospectionWithoutCache(t *testing.T) {
	f := newCachedFixture(t, 0)
	if f.svc.introCache != nil || f.svc.clientCache != nil {
		t.Fatal("IntrospectionCache 0 made a cache")
	}
	tok := f.login(t)
	for i := range 3 {
		before := f.count.reads()
		if in := f.introspect(t, tok.AccessToken); !in.Active || in.Username != "Alice" {
			t.Fatalf("Introspect %d = %+v, want alice's active token", i, in)
		}
		if f.count.reads() == before {
			t.Fatalf("Introspect %d read nothing from the store without a cache", i)
		}
	}
	p, err := f.svc.Authenticate(context.Background(), tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Logout(context.Background(), p, Agent{}); err != nil {
		t.Fatal(err)
	}
	if in := f.introspect(t, tok.AccessToken); in.Active {
		t.Errorf("Introspect after logout = %+v, want inactive", in)
	}
}

// An answer whose lookup a change overtook is not kept: the epoch taken
// before the reads no longer matches when it would be put in.
func TestIntrospectionCacheSkipsOvertakenAnswers(t *testing.T) {
	var e epochs
	c := newIntroCache(16, time.Minute, &e)
	now := time.Unix(1000, 0)
	in := &Introspection{Active: true}
	epoch := e.now()
	e.bump() // a revocation committed while the lookup ran
	c.put("token-a", in, jose.Header{}, now.Add(time.Hour), now, epoch)
	if _, _, ok := c.get("token-a", now); ok {
		t.Errorf("an answer overtaken by a change was cached")
	}
	c.put("token-b", in, jose.Header{}, now.Add(time.Hour), now, e.now())
	if _, _, ok := c.get("token-b", now); !ok {
		t.Fatalf("an answer was not cached")
	}
	e.bump()
	if _, _, ok := c.get("token-b", now); ok {
		t.Errorf("an answer cached before a change was used after it")
	}
	// Stale entries go first when a full shard takes a new one.
	for i := range 64 {
		c.put("token-c"+strconv.Itoa(i), in, jose.Header{}, now.Add(time.Hour), now, e.now())
	}
	if n := c.len(); n > 16 {
		t.Errorf("cache holds %d entries, want at most 16", n)
	}
}

// The client's authentication at the introspection endpoint is cached:
// the secret is still checked on every call, a wrong one fails as
// before, and an unknown id fails the same way; rotating the secret or
// deleting the client takes effect at once here, and within
// IntrospectionCacheFor when another process does it.
func TestAuthenticateClientCached(t *testing.T) {
	ctx := context.Background()
	f := newCachedFixture(t, 100)
	if _, err := f.svc.AuthenticateClientCached(ctx, f.client.ID, f.secret); err != nil {
		t.Fatal(err)
	}
	before := f.count.clients.Load()
	c, err := f.svc.AuthenticateClientCached(ctx, f.client.ID, f.secret)
	if err != nil || c.ID != f.client.ID {
		t.Fatalf("AuthenticateClientCached = %v, %v", c, err)
	}
	if n := f.count.clients.Load() - before; n != 0 {
		t.Errorf("a cached authentication read the store %d times, want 0", n)
	}
	for _, bad := range []struct{ id, secret string }{
		{f.client.ID, f.secret + "x"}, {f.client.ID, ""}, {"unknown", f.secret}, {"", f.secret},
	} {
		for range 2 { // the second one from the cache
			if _, err := f.svc.AuthenticateClientCached(ctx, bad.id, bad.secret); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
				t.Errorf("AuthenticateClientCached(%q, …) = %v, want EUNAUTHORIZED", bad.id, err)
			}
		}
	}

	// Rotated here: the old secret fails at once, the new one works.
	next, err := f.svc.RotateClientSecret(ctx, Operator(), f.client.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuthenticateClientCached(ctx, f.client.ID, f.secret); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("old secret after rotation: %v, want EUNAUTHORIZED", err)
	}
	if _, err := f.svc.AuthenticateClientCached(ctx, f.client.ID, next); err != nil {
		t.Errorf("new secret after rotation: %v", err)
	}

	// Rotated by another process: within IntrospectionCacheFor.
	other := keycard.HashClientSecret("another secret of enough length")
	if err := f.db.Stores().Clients.SetClientSecret(ctx, f.client.ID, other, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(DefaultIntrospectionCacheFor)
	if _, err := f.svc.AuthenticateClientCached(ctx, f.client.ID, next); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("secret rotated by another process, a cache lifetime later: %v, want EUNAUTHORIZED", err)
	}
	if _, err := f.svc.AuthenticateClientCached(ctx, f.client.ID, "another secret of enough length"); err != nil {
		t.Errorf("the other process's new secret: %v", err)
	}

	// Deleted here: at once.
	if err := f.svc.DeleteClient(ctx, Operator(), f.client.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuthenticateClientCached(ctx, f.client.ID, "another secret of enough length"); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("deleted client: %v, want EUNAUTHORIZED", err)
	}
}
