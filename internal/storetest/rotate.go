package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

const grace = 10 * time.Second

// rotate presents tok at the given time with a new successor sealed as
// "sealed:<successor id>".
func rotate(s keycard.Stores, t *testing.T, tok *keycard.RefreshToken, at time.Time) (*keycard.RotateResult, *keycard.RefreshToken, error) {
	t.Helper()
	succ := newToken(t)
	res, err := s.Sessions.RotateRefreshToken(context.Background(), keycard.RotateRequest{
		TokenID:         tok.ID,
		SecretHash:      tok.SecretHash,
		Now:             at,
		Grace:           grace,
		Successor:       *succ,
		SuccessorSealed: []byte("sealed:" + succ.ID),
	})
	return res, succ, err
}

func testRotate(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "oscar")
	sess, t1 := createSession(t, s, u.ID, t0)

	// Live → rotated.
	at := t0.Add(time.Hour)
	res, t2, err := rotate(s, t, t1, at)
	if err != nil {
		t.Fatalf("rotate live token: %v", err)
	}
	wantSess := *sess
	wantSess.LastUsedAt = at
	wantT1 := *t1
	wantT1.SessionID, wantT1.RotatedAt, wantT1.SuccessorID, wantT1.SuccessorSealed = sess.ID, at, t2.ID, []byte("sealed:"+t2.ID)
	wantT2 := *t2
	wantT2.SessionID, wantT2.CreatedAt = sess.ID, at
	check(t, "rotate live", res, &keycard.RotateResult{Outcome: keycard.Rotated, Session: &wantSess, Presented: &wantT1, Successor: &wantT2})
	stored, err := s.Sessions.RefreshToken(ctx, t1.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "stored rotated token", stored, &wantT1)
	stored, err = s.Sessions.RefreshToken(ctx, t2.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "stored successor", stored, &wantT2)
	storedSess, err := s.Sessions.Session(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "session after rotation", storedSess, &wantSess)

	// Reuse within the grace window: the same successor, nothing changes.
	for _, d := range []time.Duration{0, time.Second, grace - time.Microsecond} {
		res, unused, err := rotate(s, t, t1, at.Add(d))
		if err != nil {
			t.Fatalf("reuse after %v: %v", d, err)
		}
		check(t, "reuse within grace", res, &keycard.RotateResult{Outcome: keycard.Replayed, Session: &wantSess, Presented: &wantT1, Successor: &wantT2})
		_, err = s.Sessions.RefreshToken(ctx, unused.ID)
		wantCode(t, "RefreshToken(successor offered to a replay)", err, keycard.ENOTFOUND)
	}

	// Wrong secrets and unknown ids are refused without side effects.
	wrong := *t2
	wrong.SecretHash = append([]byte{}, t2.SecretHash...)
	wrong.SecretHash[0] ^= 1
	short := *t2
	short.SecretHash = t2.SecretHash[:16]
	unknown := newToken(t)
	for _, tt := range []struct {
		name string
		tok  *keycard.RefreshToken
	}{{"wrong secret", &wrong}, {"truncated hash", &short}, {"unknown id", unknown}} {
		_, _, err := rotate(s, t, tt.tok, at.Add(time.Minute))
		wantCode(t, "rotate "+tt.name, err, keycard.EUNAUTHORIZED)
	}
	if tok, _ := s.Sessions.RefreshToken(ctx, t2.ID); tok == nil || !tok.Live() {
		t.Errorf("successor after refused rotations: got %+v, want live", tok)
	}

	// The chain goes on: t2 → t3.
	at3 := at.Add(15 * time.Minute)
	res, t3, err := rotate(s, t, t2, at3)
	if err != nil || res.Outcome != keycard.Rotated || res.Successor.ID != t3.ID {
		t.Fatalf("rotate t2 = %+v, %v; want Rotated to %s", res, err, t3.ID)
	}

	// Reuse of t1 after the grace window is theft: the session is revoked.
	theftAt := at3.Add(time.Minute)
	res, _, err = rotate(s, t, t1, theftAt)
	if err != nil {
		t.Fatalf("reuse after grace: %v", err)
	}
	if res.Outcome != keycard.TheftDetected || res.Successor != nil {
		t.Errorf("reuse after grace: outcome %v, successor %v; want %v, nil", res.Outcome, res.Successor, keycard.TheftDetected)
	}
	if !res.Session.RevokedAt.Equal(theftAt) || res.Session.RevokeReason != keycard.RevokeTokenReuse {
		t.Errorf("reuse after grace: session revoked at %v for %q, want %v for %q", res.Session.RevokedAt, res.Session.RevokeReason, theftAt, keycard.RevokeTokenReuse)
	}
	storedSess, err = s.Sessions.Session(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "session after theft", storedSess, res.Session)
	revs, err := s.Revocations.Revocations(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "feed after theft", revs, []*keycard.Revocation{{Seq: revs[0].Seq, Kind: keycard.RevokeSession, Value: sess.ID, At: theftAt, ExpiresAt: theftAt.Add(revTTL)}})
	for _, tid := range []string{t1.ID, t2.ID} {
		if tok, err := s.Sessions.RefreshToken(ctx, tid); err != nil || tok.SuccessorSealed != nil {
			t.Errorf("token %s after theft: %+v, %v; want its sealed successor cleared", tid, tok, err)
		}
	}

	// After theft, every token of the session is refused, the live one
	// included; a later reuse of a rotated one is still reported as theft
	// but revokes nothing new.
	_, _, err = rotate(s, t, t3, theftAt.Add(time.Second))
	wantCode(t, "rotate live token of revoked session", err, keycard.EUNAUTHORIZED)
	res, _, err = rotate(s, t, t2, theftAt.Add(time.Second))
	if err != nil || res.Outcome != keycard.TheftDetected || !res.Session.RevokedAt.Equal(theftAt) {
		t.Errorf("reuse of t2 after theft = %+v, %v; want TheftDetected with the first revocation kept", res, err)
	}
	if revs, _ := s.Revocations.Revocations(ctx, revs[0].Seq, 0); len(revs) != 0 {
		t.Errorf("feed after second reuse: %v, want nothing new", revs)
	}
}

func testRotateEnded(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "peggy")
	tests := []struct {
		name string
		// prepare returns the token to present and the time to present it.
		prepare func(t *testing.T) (*keycard.RefreshToken, time.Time)
	}{
		{"idle", func(t *testing.T) (*keycard.RefreshToken, time.Time) {
			_, tok := createSession(t, s, u.ID, t0)
			return tok, t0.Add(keycard.DefaultIdleTimeout)
		}},
		{"absolute", func(t *testing.T) (*keycard.RefreshToken, time.Time) {
			sess, tok := createSession(t, s, u.ID, t0)
			at := t0
			for i := 1; !at.After(sess.ExpiresAt); i++ { // keep it from going idle
				at = t0.Add(time.Duration(i) * 6 * 24 * time.Hour)
				if at.Before(sess.ExpiresAt) {
					res, next, err := rotate(s, t, tok, at)
					if err != nil || res.Outcome != keycard.Rotated {
						t.Fatalf("rotate at %v = %+v, %v", at, res, err)
					}
					tok = next
				}
			}
			return tok, sess.ExpiresAt
		}},
		{"revoked", func(t *testing.T) (*keycard.RefreshToken, time.Time) {
			sess, tok := createSession(t, s, u.ID, t0)
			if _, err := s.Sessions.RevokeSession(ctx, sess.ID, t0.Add(time.Minute), keycard.RevokeLogout); err != nil {
				t.Fatal(err)
			}
			return tok, t0.Add(2 * time.Minute)
		}},
		{"revoked within grace", func(t *testing.T) (*keycard.RefreshToken, time.Time) {
			sess, tok := createSession(t, s, u.ID, t0)
			if _, _, err := rotate(s, t, tok, t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Sessions.RevokeSession(ctx, sess.ID, t0.Add(time.Minute+time.Second), keycard.RevokeLogout); err != nil {
				t.Fatal(err)
			}
			return tok, t0.Add(time.Minute + 2*time.Second)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, at := tt.prepare(t)
			_, succ, err := rotate(s, t, tok, at)
			wantCode(t, "rotate", err, keycard.EUNAUTHORIZED)
			_, err = s.Sessions.RefreshToken(ctx, succ.ID)
			wantCode(t, "RefreshToken(refused successor)", err, keycard.ENOTFOUND)
		})
	}
}

// testRotateConcurrent fires 50 rotations of one token at once, as browser
// tabs do: exactly one rotates, all others get the same successor, and the
// session ends with that single live token.
func testRotateConcurrent(t *testing.T, open OpenFunc) {
	const n = 50
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "trent")
	sess, tok := createSession(t, s, u.ID, t0)
	at := t0.Add(time.Hour)

	type result struct {
		res  *keycard.RotateResult
		succ *keycard.RefreshToken
		err  error
	}
	results := make([]result, n)
	offered := make([]*keycard.RefreshToken, n)
	for i := range offered {
		offered[i] = newToken(t)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			// Each request arrives up to a little under a second apart.
			res, err := s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
				TokenID:         tok.ID,
				SecretHash:      tok.SecretHash,
				Now:             at.Add(time.Duration(i) * 10 * time.Millisecond),
				Grace:           grace,
				Successor:       *offered[i],
				SuccessorSealed: []byte("sealed:" + offered[i].ID),
			})
			results[i] = result{res, offered[i], err}
		})
	}
	close(start)
	wg.Wait()

	var winner string
	rotated := 0
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("request %d: %v", i, r.err)
		}
		if r.res.Outcome == keycard.Rotated {
			rotated++
			winner = r.succ.ID
		}
	}
	if rotated != 1 {
		t.Fatalf("%d of %d concurrent rotations rotated, want exactly 1", rotated, n)
	}
	for i, r := range results {
		if r.res.Successor == nil || r.res.Successor.ID != winner {
			t.Errorf("request %d (%v): got successor %v, want %s", i, r.res.Outcome, r.res.Successor, winner)
		}
		if got, want := string(r.res.Presented.SuccessorSealed), "sealed:"+winner; got != want {
			t.Errorf("request %d: sealed successor %q, want %q", i, got, want)
		}
		if r.res.Session.ID != sess.ID || r.res.Session.Revoked() {
			t.Errorf("request %d: session %+v, want %s live", i, r.res.Session, sess.ID)
		}
	}
	for _, o := range offered {
		tok, err := s.Sessions.RefreshToken(ctx, o.ID)
		switch {
		case o.ID == winner && (err != nil || !tok.Live()):
			t.Errorf("winning successor: %+v, %v; want live", tok, err)
		case o.ID != winner && keycard.ErrorCode(err) != keycard.ENOTFOUND:
			t.Errorf("losing successor %s: got %v, want ENOTFOUND (a second live token)", o.ID, err)
		}
	}
	presented, err := s.Sessions.RefreshToken(ctx, tok.ID)
	if err != nil || presented.Live() || presented.SuccessorID != winner {
		t.Errorf("presented token: %+v, %v; want rotated to %s", presented, err, winner)
	}
	if got, _ := s.Sessions.Session(ctx, sess.ID); got == nil || got.Revoked() {
		t.Errorf("session after concurrent rotation: %+v, want live", got)
	}
}
