package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// testRotateWithUser checks RotateRequest.WithUser: Rotated and Replayed
// carry the session's user as it is at the rotation, not as it was when
// the session began; without WithUser, and for TheftDetected, User is nil.
func testRotateWithUser(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "ursula")
	createUser(t, s, "victor") // another user, who must not be returned
	_, t1 := createSession(t, s, u.ID, t0)

	rotateWith := func(tok *keycard.RefreshToken, at time.Time, withUser bool) (*keycard.RotateResult, *keycard.RefreshToken) {
		t.Helper()
		succ := newToken(t)
		res, err := s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
			TokenID: tok.ID, SecretHash: tok.SecretHash, Now: at, Grace: grace,
			Successor: *succ, SuccessorSealed: []byte("sealed:" + succ.ID), WithUser: withUser,
		})
		if err != nil {
			t.Fatalf("rotate at %v (WithUser %v): %v", at, withUser, err)
		}
		return res, succ
	}

	at := t0.Add(time.Hour)
	res, t2 := rotateWith(t1, at, false)
	if res.Outcome != keycard.Rotated || res.User != nil {
		t.Errorf("rotate without WithUser: outcome %v, user %+v; want %v, nil", res.Outcome, res.User, keycard.Rotated)
	}

	// The user changes between rotations: the next one sees the change.
	roles := []string{"admin", "user"}
	updated, err := s.Users.UpdateUser(ctx, u.ID, keycard.UserUpdate{Roles: &roles}, at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	at3 := at.Add(2 * time.Minute)
	res, t3 := rotateWith(t2, at3, true)
	if res.Outcome != keycard.Rotated {
		t.Fatalf("rotate with WithUser: outcome %v, want %v", res.Outcome, keycard.Rotated)
	}
	check(t, "user of Rotated", res.User, updated)

	// A replay within the grace window carries the user too.
	res, _ = rotateWith(t2, at3.Add(time.Second), true)
	if res.Outcome != keycard.Replayed {
		t.Fatalf("replay with WithUser: outcome %v, want %v", res.Outcome, keycard.Replayed)
	}
	check(t, "user of Replayed", res.User, updated)

	// Theft: the session is revoked and no user is handed out.
	res, _ = rotateWith(t1, at3.Add(time.Hour), true)
	if res.Outcome != keycard.TheftDetected || res.User != nil {
		t.Errorf("theft with WithUser: outcome %v, user %+v; want %v, nil", res.Outcome, res.User, keycard.TheftDetected)
	}

	// The live token of the revoked session is refused, whatever
	// WithUser says.
	_, err = s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
		TokenID: t3.ID, SecretHash: t3.SecretHash, Now: at3.Add(2 * time.Hour), Grace: grace,
		Successor: *newToken(t), SuccessorSealed: []byte("sealed"), WithUser: true,
	})
	wantCode(t, "rotate in a revoked session with WithUser", err, keycard.EUNAUTHORIZED)
}
