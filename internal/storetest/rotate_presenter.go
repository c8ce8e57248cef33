package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// rotateAs presents tok at the given time as p (RotateRequest.Presenter).
func rotateAs(s keycard.Stores, t *testing.T, tok *keycard.RefreshToken, at time.Time, p *keycard.Presenter) (*keycard.RotateResult, *keycard.RefreshToken, error) {
	t.Helper()
	succ := newToken(t)
	res, err := s.Sessions.RotateRefreshToken(context.Background(), keycard.RotateRequest{
		TokenID: tok.ID, SecretHash: tok.SecretHash, Now: at, Grace: grace,
		Successor: *succ, SuccessorSealed: []byte("sealed:" + succ.ID),
		Presenter: p,
	})
	return res, succ, err
}

// testRotatePresenter: a grant session's token presented by someone the
// session is not bound to (without its DPoP key, or by another client) is
// refused before anything changes, whether the token is live or rotated
// past its grace window; so that someone holding the token alone can
// neither spend it (the legitimate client's next refresh would then be
// taken for theft) nor have the session revoked.
func testRotatePresenter(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "piet")
	c := createClient(t, s, "bound")
	p, p1 := createSession(t, s, u.ID, t0)
	g, g1 := createGrantSession(t, s, p, c.ID, t0.Add(time.Minute))
	owner := &keycard.Presenter{ClientID: c.ID, DPoPKey: g.DPoPJKT}
	strangers := []struct {
		name string
		p    *keycard.Presenter
		key  bool
	}{
		{"no client, no key", &keycard.Presenter{}, true},
		{"its client, no key", &keycard.Presenter{ClientID: c.ID}, true},
		{"its client, another key", &keycard.Presenter{ClientID: c.ID, DPoPKey: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"}, true},
		{"its client, a prefix of its key", &keycard.Presenter{ClientID: c.ID, DPoPKey: g.DPoPJKT[:10]}, true},
		{"its key, another client", &keycard.Presenter{ClientID: "other", DPoPKey: g.DPoPJKT}, false},
		{"its key, no client", &keycard.Presenter{DPoPKey: g.DPoPJKT}, false},
	}
	// refused presents tok as every stranger and checks that each is
	// refused and that neither the token nor the session changed.
	refused := func(what string, tok *keycard.RefreshToken, at time.Time) {
		t.Helper()
		wantTok, err := s.Sessions.RefreshToken(ctx, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantSess, err := s.Sessions.Session(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range strangers {
			res, _, err := rotateAs(s, t, tok, at, st.p)
			var perr *keycard.PresenterError
			if !errors.As(err, &perr) || perr.Key != st.key || perr.SessionID != g.ID || keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
				t.Errorf("%s, %s: got %+v, %v; want a PresenterError (key %v, session %s), EUNAUTHORIZED", what, st.name, res, err, st.key, g.ID)
			}
		}
		gotTok, err := s.Sessions.RefreshToken(ctx, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		check(t, what+": token after the refusals", gotTok, wantTok)
		gotSess, err := s.Sessions.Session(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		check(t, what+": session after the refusals", gotSess, wantSess)
	}

	// A live token: refused, still live.
	at := t0.Add(time.Hour)
	refused("live token", g1, at)
	// Its owner, after the grace window, rotates it: not theft.
	at = at.Add(2 * grace)
	res, g2, err := rotateAs(s, t, g1, at, owner)
	if err != nil || res.Outcome != keycard.Rotated {
		t.Fatalf("owner after strangers: got %+v, %v; want Rotated", res, err)
	}
	// The rotated token, in its grace window and after it: refused,
	// the session not revoked.
	refused("rotated token in its grace window", g1, at.Add(grace/2))
	refused("rotated token past its grace window", g1, at.Add(2*grace))
	wantRevoked(t, s, "after strangers presented an old token", time.Time{}, map[string]string{g.ID: ""})
	at = at.Add(3 * grace)
	if res, _, err := rotateAs(s, t, g2, at, owner); err != nil || res.Outcome != keycard.Rotated {
		t.Fatalf("owner's successor: got %+v, %v; want Rotated", res, err)
	}
	// The owner presenting the old token past its grace window is still
	// theft: whoever holds the key and the token reused it.
	at = at.Add(grace)
	if res, _, err := rotateAs(s, t, g1, at, owner); err != nil || res.Outcome != keycard.TheftDetected {
		t.Fatalf("old token with its key past the grace window: got %+v, %v; want TheftDetected", res, err)
	}
	wantRevoked(t, s, "theft", at, map[string]string{g.ID: keycard.RevokeTokenReuse})

	// A sign-in session is bound to no client or key: any presenter.
	if res, _, err := rotateAs(s, t, p1, at, &keycard.Presenter{ClientID: c.ID, DPoPKey: g.DPoPJKT}); err != nil || res.Outcome != keycard.Rotated {
		t.Fatalf("sign-in session: got %+v, %v; want Rotated", res, err)
	}
}
