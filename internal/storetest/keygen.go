package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// testKeyGeneration checks KeyStore.KeyGeneration: every change to the
// keys increases it and nothing else moves it; and the reads that carry it
// (RotateRequest.WithKeyGeneration, ClientStore.ClientWithKeyGeneration)
// return the current one.
func testKeyGeneration(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	gen := func() int64 {
		t.Helper()
		g, err := s.Keys.KeyGeneration(ctx)
		if err != nil {
			t.Fatalf("KeyGeneration: %v", err)
		}
		return g
	}
	last := gen()
	if last < 1 {
		t.Fatalf("KeyGeneration of an empty store = %d, want at least 1", last)
	}
	// changed fails unless the generation went up since the last call,
	// unchanged unless it stayed.
	changed := func(what string) {
		t.Helper()
		if g := gen(); g <= last {
			t.Errorf("after %s: KeyGeneration %d, want more than %d", what, g, last)
		} else {
			last = g
		}
	}
	unchanged := func(what string) {
		t.Helper()
		if g := gen(); g != last {
			t.Errorf("after %s: KeyGeneration %d, want %d unchanged", what, g, last)
			last = g
		}
	}

	// Nothing but a change to the keys moves it.
	u := createUser(t, s, "yvonne")
	_, tok := createSession(t, s, u.ID, t0)
	c := newClient(t, "keygen")
	if err := s.Clients.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.Revocations.AddRevocation(ctx, &keycard.Revocation{Kind: keycard.RevokeToken, Value: "jti", At: t0}); err != nil {
		t.Fatal(err)
	}
	unchanged("writes to users, sessions, clients and the feed")

	k1 := newKey(t, keycard.KeyNext, t0)
	k2 := newKey(t, keycard.KeyNext, t0.Add(time.Minute))
	if err := s.Keys.CreateKey(ctx, k1); err != nil {
		t.Fatal(err)
	}
	changed("CreateKey")
	if err := s.Keys.CreateKey(ctx, k2); err != nil {
		t.Fatal(err)
	}
	changed("a second CreateKey")
	wantCode(t, "CreateKey(duplicate)", s.Keys.CreateKey(ctx, k1), keycard.ECONFLICT)
	unchanged("a refused CreateKey")
	if err := s.Keys.ActivateKey(ctx, k1.KID, t0.Add(time.Hour), t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	changed("ActivateKey")

	// The reads that carry the generation carry the current one.
	rotate := func(tok *keycard.RefreshToken, at time.Time, withUser, withGen bool) (*keycard.RotateResult, *keycard.RefreshToken) {
		t.Helper()
		succ := newToken(t)
		res, err := s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
			TokenID: tok.ID, SecretHash: tok.SecretHash, Now: at, Grace: grace,
			Successor: *succ, SuccessorSealed: []byte("sealed:" + succ.ID),
			WithUser: withUser, WithKeyGeneration: withGen,
		})
		if err != nil {
			t.Fatalf("rotate at %v: %v", at, err)
		}
		return res, succ
	}
	at := t0.Add(time.Hour)
	res, tok2 := rotate(tok, at, false, false)
	if res.Outcome != keycard.Rotated || res.KeyGeneration != 0 {
		t.Errorf("rotate without WithKeyGeneration: outcome %v, generation %d; want %v, 0", res.Outcome, res.KeyGeneration, keycard.Rotated)
	}
	unchanged("a rotation")
	for _, withUser := range []bool{false, true} {
		at = at.Add(time.Hour)
		res, next := rotate(tok2, at, withUser, true)
		if res.Outcome != keycard.Rotated || res.KeyGeneration != last {
			t.Errorf("rotate (WithUser %v): outcome %v, generation %d; want %v, %d", withUser, res.Outcome, res.KeyGeneration, keycard.Rotated, last)
		}
		if withUser && (res.User == nil || res.User.ID != u.ID) {
			t.Errorf("rotate with both: user %+v, want %s", res.User, u.ID)
		}
		// A key change between the rotation and its replay: the replay
		// carries the new generation.
		if err := s.Keys.CreateKey(ctx, newKey(t, keycard.KeyNext, at)); err != nil {
			t.Fatal(err)
		}
		changed("CreateKey between a rotation and its replay")
		res, _ = rotate(tok2, at.Add(time.Second), withUser, true)
		if res.Outcome != keycard.Replayed || res.KeyGeneration != last {
			t.Errorf("replay (WithUser %v): outcome %v, generation %d; want %v, %d", withUser, res.Outcome, res.KeyGeneration, keycard.Replayed, last)
		}
		tok2 = next
	}

	got, g, err := s.Clients.ClientWithKeyGeneration(ctx, c.ID)
	if err != nil {
		t.Fatalf("ClientWithKeyGeneration: %v", err)
	}
	check(t, "ClientWithKeyGeneration", got, c)
	if g != last {
		t.Errorf("ClientWithKeyGeneration: generation %d, want %d", g, last)
	}
	_, _, err = s.Clients.ClientWithKeyGeneration(ctx, "nosuchclient")
	wantCode(t, "ClientWithKeyGeneration(unknown)", err, keycard.ENOTFOUND)

	// A sign-in's write carries it when asked, and only then.
	for _, withGen := range []bool{false, true} {
		opt := &keycard.CreateSessionOptions{WithKeyGeneration: withGen}
		if err := s.Sessions.CreateSession(ctx, newSession(t, u.ID, at), newToken(t), opt); err != nil {
			t.Fatalf("CreateSession (WithKeyGeneration %v): %v", withGen, err)
		}
		if want := map[bool]int64{false: 0, true: last}[withGen]; opt.KeyGeneration != want {
			t.Errorf("CreateSession (WithKeyGeneration %v): generation %d, want %d", withGen, opt.KeyGeneration, want)
		}
	}
	unchanged("a CreateSession")

	// Retiring, deleting and revoking are changes too.
	removeAfter := t0.Add(3 * time.Hour)
	if err := s.Keys.ActivateKey(ctx, k2.KID, t0.Add(2*time.Hour), removeAfter); err != nil {
		t.Fatal(err)
	}
	changed("ActivateKey retiring the active key")
	wantCode(t, "ActivateKey(active)", s.Keys.ActivateKey(ctx, k2.KID, t0, t0), keycard.ECONFLICT)
	unchanged("a refused ActivateKey")
	if n, err := s.Keys.DeleteRemovedKeys(ctx, removeAfter.Add(-time.Microsecond)); err != nil || n != 0 {
		t.Fatalf("DeleteRemovedKeys(none due) = %d, %v", n, err)
	}
	unchanged("DeleteRemovedKeys deleting nothing")
	if n, err := s.Keys.DeleteRemovedKeys(ctx, removeAfter); err != nil || n != 1 {
		t.Fatalf("DeleteRemovedKeys = %d, %v; want 1", n, err)
	}
	changed("DeleteRemovedKeys")
	wantCode(t, "RevokeKey(unknown)", s.Keys.RevokeKey(ctx, "missing", t0), keycard.ENOTFOUND)
	unchanged("a refused RevokeKey")
	if err := s.Keys.RevokeKey(ctx, k2.KID, t0.Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	changed("RevokeKey")
	if _, g, err := s.Clients.ClientWithKeyGeneration(ctx, c.ID); err != nil || g != last {
		t.Errorf("ClientWithKeyGeneration after RevokeKey: generation %d, %v; want %d", g, err, last)
	}
}
