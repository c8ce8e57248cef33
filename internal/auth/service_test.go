package auth

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/password"
	"github.com/keycard-auth/keycard/internal/sqlite"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// clock is a settable test clock.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.t.Add(int64(d)) }

// fastHasher keeps tests quick; the parameters are still argon2id.
var fastHasher = &password.Hasher{Params: password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}}

type fixture struct {
	svc   *Service
	clock *clock
	db    *sqlite.DB
}

func newFixture(t testing.TB, alg jose.Algorithm) *fixture {
	t.Helper()
	ctx := context.Background()
	clk := newClock()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keycard.db"), sqlite.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	master, _ := GenerateMasterKey(nil)
	mk, _ := ParseMasterKey([]byte(master))
	sealer, err := NewSealer(mk)
	if err != nil {
		t.Fatal(err)
	}
	stores := db.Stores()
	km, err := NewKeyManager(stores.Keys, sealer, KeyOptions{Algorithm: alg, RetainFor: DefaultAccessTTL + DefaultLeeway}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(Deps{Stores: stores, Keys: km, Sealer: sealer, Hasher: fastHasher, Now: clk.Now}, Config{Issuer: "https://auth.test", Registration: true})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, clock: clk, db: db}
}

func (f *fixture) user(t *testing.T, name string) {
	t.Helper()
	if _, err := f.svc.Register(context.Background(), name, "correct horse battery", []string{"user"}); err != nil {
		t.Fatal(err)
	}
}

func TestLoginAndAuthenticate(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "Alice")
	tok, err := f.svc.Login(ctx, "alice", "correct horse battery", Agent{UserAgent: "test", Addr: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if p.User.Username != "Alice" || p.Claims.SessionID != tok.SessionID || p.Claims.AuthTime.IsZero() {
		t.Errorf("got principal %+v, want Alice in session %s", p, tok.SessionID)
	}
	// The access token verifies against the published JWKS alone.
	jwks, _ := f.svc.Keys().JWKS(ctx)
	set, err := jose.ParseKeySet(jwks)
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.AccessClaims
	hdr, err := jwt.NewParser(set, jwt.WithType("at+jwt"), jwt.WithIssuer("https://auth.test"), jwt.WithAudience("api"), jwt.WithNow(f.clock.Now)).ParseWithHeader(tok.AccessToken, &c)
	if err != nil {
		t.Fatalf("verify against JWKS: %v", err)
	}
	if hdr.Algorithm != jose.ES256 || hdr.KeyID == "" {
		t.Errorf("header %+v, want ES256 with a kid", hdr)
	}
}

func TestLoginFailuresLookTheSame(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "bob")
	_, errWrong := f.svc.Login(ctx, "bob", "wrong password!", Agent{})
	_, errUnknown := f.svc.Login(ctx, "nobody", "wrong password!", Agent{})
	_, errShort := f.svc.Login(ctx, "bob", "short", Agent{})
	for _, err := range []error{errWrong, errUnknown, errShort} {
		if keycard.ErrorCode(err) != keycard.EUNAUTHORIZED || keycard.ErrorMessage(err) != keycard.ErrorMessage(errWrong) {
			t.Errorf("got %v, want the same EUNAUTHORIZED answer as a wrong password (%v)", err, errWrong)
		}
	}
}

func TestRefreshRotationGraceAndTheft(t *testing.T) {
	f := newFixture(t, jose.EdDSA)
	ctx := context.Background()
	f.user(t, "carol")
	t0, err := f.svc.Login(ctx, "carol", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	t1, err := f.svc.Refresh(ctx, t0.RefreshToken, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if t1.RefreshToken == t0.RefreshToken || t1.SessionID != t0.SessionID {
		t.Fatalf("rotation: got %+v, want a new token in session %s", t1, t0.SessionID)
	}
	if evs, err := f.svc.AuditEvents(ctx, keycard.AuditFilter{Type: keycard.AuditRefresh}); err != nil || len(evs) != 1 {
		t.Errorf("refresh audit events: got %d (%v), want 1", len(evs), err)
	}
	// Within the grace window the old token gets the same successor.
	f.clock.Advance(5 * time.Second)
	again, err := f.svc.Refresh(ctx, t0.RefreshToken, Agent{})
	if err != nil {
		t.Fatalf("replay within grace: %v", err)
	}
	if again.RefreshToken != t1.RefreshToken {
		t.Errorf("replay within grace: got a different successor")
	}
	// After the window: theft, the whole session dies.
	f.clock.Advance(10 * time.Second)
	if _, err := f.svc.Refresh(ctx, t0.RefreshToken, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Fatalf("reuse after grace: got %v, want EUNAUTHORIZED", err)
	}
	if _, err := f.svc.Refresh(ctx, t1.RefreshToken, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("successor after theft: got %v, want EUNAUTHORIZED (session revoked)", err)
	}
	if _, err := f.svc.Authenticate(ctx, t1.AccessToken); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("access token of a revoked session: got %v, want EUNAUTHORIZED", err)
	}
	if _, err := f.svc.Refresh(ctx, "garbage", Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("garbage refresh token: got %v", err)
	}
}

func TestConcurrentRefreshKeepsOneSession(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "dave")
	t0, err := f.svc.Login(ctx, "dave", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var wg sync.WaitGroup
	results := make([]*Tokens, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = f.svc.Refresh(ctx, t0.RefreshToken, Agent{})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("refresh %d: %v", i, errs[i])
		}
		if results[i].RefreshToken != results[0].RefreshToken || results[i].SessionID != t0.SessionID {
			t.Fatalf("refresh %d got a different successor or session", i)
		}
	}
	// The single successor works and the session is alive.
	if _, err := f.svc.Refresh(ctx, results[0].RefreshToken, Agent{}); err != nil {
		t.Errorf("successor: %v", err)
	}
}

func TestLogoutAndPasswordChange(t *testing.T) {
	f := newFixture(t, jose.HS256)
	ctx := context.Background()
	f.user(t, "erin")
	a, _ := f.svc.Login(ctx, "erin", "correct horse battery", Agent{})
	b, _ := f.svc.Login(ctx, "erin", "correct horse battery", Agent{})
	c, _ := f.svc.Login(ctx, "erin", "correct horse battery", Agent{})
	pa, err := f.svc.Authenticate(ctx, a.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := f.svc.Sessions(ctx, pa)
	if err != nil || len(sessions) != 3 {
		t.Fatalf("sessions: got %d (%v), want 3", len(sessions), err)
	}
	if err := f.svc.Logout(ctx, pa, Agent{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, a.AccessToken); err == nil {
		t.Error("access token still accepted after logout")
	}
	pb, err := f.svc.Authenticate(ctx, b.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ChangePassword(ctx, pb, "wrong", "new password 123", Agent{}); keycard.ErrorCode(err) != keycard.EFORBIDDEN {
		t.Errorf("wrong current password: got %v, want EFORBIDDEN", err)
	}
	if err := f.svc.ChangePassword(ctx, pb, "correct horse battery", "new password 123", Agent{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, b.AccessToken); err != nil {
		t.Errorf("the session that changed the password must survive: %v", err)
	}
	if _, err := f.svc.Refresh(ctx, c.RefreshToken, Agent{}); err == nil {
		t.Error("another session survived a password change")
	}
	if _, err := f.svc.Login(ctx, "erin", "new password 123", Agent{}); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
	if err := f.svc.LogoutAll(ctx, pb, Agent{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, b.AccessToken); err == nil {
		t.Error("access token accepted after logout all")
	}
}

func TestKeyRotationSchedule(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	km := f.svc.Keys()
	f.user(t, "frank")
	_, kid0, _ := km.Signer(ctx)
	// Just before the publication point nothing changes.
	f.clock.Advance(DefaultRotateEvery - DefaultPublishAhead - time.Minute)
	if err := km.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if keys, _ := km.Keys(ctx); len(keys) != 1 {
		t.Fatalf("got %d keys, want 1 before the next key is due", len(keys))
	}
	// Then the next key is published but does not sign yet.
	f.clock.Advance(2 * time.Minute)
	if err := km.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	keys, _ := km.Keys(ctx)
	if len(keys) != 2 || keys[1].State != keycard.KeyNext {
		t.Fatalf("got %+v, want the active key and a next key", keys)
	}
	if _, kid, _ := km.Signer(ctx); kid != kid0 {
		t.Errorf("next key signs before its time")
	}
	jwks, _ := km.JWKS(ctx)
	if set, _ := jose.ParseKeySet(jwks); set == nil || len(set.Keys()) != 2 {
		t.Errorf("JWKS should publish both keys: %s", jwks)
	}
	// A token signed by the old key just before the switch.
	f.clock.Advance(DefaultPublishAhead - time.Second)
	before, err := f.svc.Login(ctx, "frank", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	// At its time it signs, on every instance, even one whose Maintain
	// has not marked it active yet (a second manager on the same store
	// stands for another instance); the old key is retired but still
	// published.
	other, err := NewKeyManager(f.db.Stores().Keys, km.sealer, km.opt, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, kid, _ := other.Signer(ctx); kid != kid0 {
		t.Fatalf("other instance signs with %s before the switch, want %s", kid, kid0)
	}
	f.clock.Advance(time.Second)
	if _, kid, _ := other.Signer(ctx); kid != keys[1].KID {
		t.Errorf("other instance signs with %s at the switch, want the next key %s", kid, keys[1].KID)
	}
	if err := km.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	_, kid1, _ := km.Signer(ctx)
	if kid1 == kid0 {
		t.Fatal("next key did not become active")
	}
	after, err := f.svc.Login(ctx, "frank", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	set, _ := km.VerificationKeys(ctx)
	p := jwt.NewParser(set, jwt.WithNow(f.clock.Now), jwt.WithoutExpiration())
	for name, tok := range map[string]string{"before": before.AccessToken, "after": after.AccessToken} {
		if err := p.Parse(tok, nil); err != nil {
			t.Errorf("%s rotation: %v", name, err)
		}
	}
	if set.Lookup(kid0) == nil {
		t.Error("retired key left the JWKS before its tokens expired")
	}
	// After the retention the old key is gone.
	f.clock.Advance(DefaultAccessTTL + DefaultLeeway + time.Second)
	if err := km.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	set, _ = km.VerificationKeys(ctx)
	if set.Lookup(kid0) != nil {
		t.Error("retired key still published after its retention")
	}
}

func TestSealer(t *testing.T) {
	mk := make([]byte, MasterKeySize)
	s, _ := NewSealer(mk)
	b, err := s.Seal([]byte("secret"), "label-a")
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := s.Open(b, "label-a"); err != nil || string(pt) != "secret" {
		t.Errorf("open: got %q %v", pt, err)
	}
	if _, err := s.Open(b, "label-b"); err == nil {
		t.Error("a blob opened under another label")
	}
	other, _ := NewSealer(append([]byte{1}, mk[1:]...))
	if _, err := other.Open(b, "label-a"); err == nil {
		t.Error("a blob opened under another master key")
	}
	if _, err := ParseMasterKey([]byte("too short")); err == nil {
		t.Error("short master key accepted")
	}
}

func TestRoleScopes(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.svc.cfg.RoleScopes = map[string][]string{"*": {"profile", "weather:read"}, "user": {"orders:write", "profile"}, "admin": {"keys:manage"}}
	f.user(t, "Alice")
	tok, err := f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "profile weather:read orders:write"; tok.Scope != want {
		t.Errorf("login scope %q, want %q", tok.Scope, want)
	}
	p, err := f.svc.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if p.Claims.Scope != tok.Scope {
		t.Errorf("token scope %q, want %q", p.Claims.Scope, tok.Scope)
	}
	next, err := f.svc.Refresh(ctx, tok.RefreshToken, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if next.Scope != tok.Scope {
		t.Errorf("refresh scope %q, want %q", next.Scope, tok.Scope)
	}
	if _, err := NewService(Deps{Stores: f.db.Stores()}, Config{RoleScopes: map[string][]string{"user": {"bad scope"}}}); err == nil {
		t.Error("a scope with a space: want an error")
	}
}

func TestSessionLimit(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.svc.cfg.MaxSessionsPerUser = 2
	f.user(t, "Sam")
	var toks []*Tokens
	for i := range 3 {
		tok, err := f.svc.Login(ctx, "sam", "correct horse battery", Agent{UserAgent: fmt.Sprint("device ", i)})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
		f.clock.Advance(time.Minute)
	}
	if _, err := f.svc.Authenticate(ctx, toks[0].AccessToken); err == nil {
		t.Error("the least recently used session survived a login past the cap")
	}
	for _, tok := range toks[1:] {
		if _, err := f.svc.Authenticate(ctx, tok.AccessToken); err != nil {
			t.Errorf("session %s: %v", tok.SessionID, err)
		}
	}
	// The revocation is in the feed, for verifiers.
	if ok, err := f.db.Stores().Revocations.HasRevocation(ctx, keycard.RevokeSession, toks[0].SessionID); err != nil || !ok {
		t.Errorf("no feed entry for the ended session: %v %v", ok, err)
	}
	// Least recently *used*: refresh the older of the two, log in again,
	// and the newer (unused) one ends.
	if _, err := f.svc.Refresh(ctx, toks[1].RefreshToken, Agent{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.svc.Login(ctx, "sam", "correct horse battery", Agent{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, toks[2].AccessToken); err == nil {
		t.Error("the unused session survived; the refreshed one should have been kept")
	}
}

func TestRolePolicies(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.svc.cfg.RolePolicies = map[string]SessionPolicy{"admin": {AccessTTL: 5 * time.Minute, SessionLifetime: 8 * time.Hour}, "user": {IdleTimeout: time.Hour}}
	if _, err := f.svc.Register(ctx, "root", "correct horse battery", []string{"admin", "user"}); err != nil {
		t.Fatal(err)
	}
	f.user(t, "plain")
	admin, err := f.svc.Login(ctx, "root", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := f.svc.Login(ctx, "plain", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if admin.ExpiresIn != 300 || plain.ExpiresIn != int64(DefaultAccessTTL/time.Second) {
		t.Errorf("expires_in: admin %d, plain %d", admin.ExpiresIn, plain.ExpiresIn)
	}
	p, err := f.svc.Authenticate(ctx, admin.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Claims.ExpiresAt.Sub(p.Claims.IssuedAt.Time); got != 5*time.Minute {
		t.Errorf("admin token lifetime %v, want 5m", got)
	}
	sess, err := f.db.Stores().Sessions.Session(ctx, admin.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if sess.IdleTimeout != time.Hour || sess.ExpiresAt.Sub(sess.CreatedAt) != 8*time.Hour {
		t.Errorf("admin session: idle %v, lifetime %v; want 1h and 8h (shortest of both roles)", sess.IdleTimeout, sess.ExpiresAt.Sub(sess.CreatedAt))
	}
	// A refresh keeps the shorter lifetime.
	next, err := f.svc.Refresh(ctx, admin.RefreshToken, Agent{})
	if err != nil || next.ExpiresIn != 300 {
		t.Errorf("refresh: %v, expires_in %d", err, next.ExpiresIn)
	}
	if _, err := NewService(Deps{Stores: f.db.Stores()}, Config{RolePolicies: map[string]SessionPolicy{"x": {AccessTTL: time.Hour}}}); err == nil {
		t.Error("a role access-token lifetime beyond the default: want an error")
	}
}

func TestReauthWithin(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.svc.cfg.ReauthWithin = 10 * time.Minute
	f.user(t, "Rita")
	tok, err := f.svc.Login(ctx, "rita", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(11 * time.Minute)
	tok, err = f.svc.Refresh(ctx, tok.RefreshToken, Agent{}) // a fresh token, an old login
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	err = f.svc.ChangePassword(ctx, p, "correct horse battery", "a new long passphrase", Agent{})
	if re, ok := errors.AsType[*ReauthRequiredError](err); !ok || re.MaxAge != 10*time.Minute || keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Fatalf("password change with an old login: %v, want ReauthRequiredError", err)
	}
	// Signing in again satisfies it.
	tok, err = f.svc.Login(ctx, "rita", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if p, err = f.svc.Authenticate(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ChangePassword(ctx, p, "correct horse battery", "a new long passphrase", Agent{}); err != nil {
		t.Errorf("password change after signing in again: %v", err)
	}
}
