package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// newGrantSession returns a grant session of the parent's user for the
// client, created at the given time, not yet stored.
func newGrantSession(t *testing.T, parent *keycard.Session, clientID string, at time.Time) *keycard.Session {
	t.Helper()
	sess := newSession(t, parent.UserID, at)
	sess.ParentID, sess.ClientID, sess.Scope = parent.ID, clientID, "openid profile weather:read"
	sess.AuthTime, sess.AMR = parent.AuthenticatedAt(), []string{"pwd", "otp"}
	// Bound to a DPoP key (RFC 9449): the thumbprint reads back as is.
	sess.DPoPJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	return sess
}

// createGrantSession stores a new grant session under parent for the
// client, with a first refresh token, and returns both.
func createGrantSession(t *testing.T, s keycard.Stores, parent *keycard.Session, clientID string, at time.Time) (*keycard.Session, *keycard.RefreshToken) {
	t.Helper()
	sess := newGrantSession(t, parent, clientID, at)
	tok := newToken(t)
	tok.CreatedAt = at
	if err := s.Sessions.CreateSession(context.Background(), sess, tok, nil); err != nil {
		t.Fatalf("CreateSession(grant): %v", err)
	}
	return sess, tok
}

// wantRevoked fails the test unless each session is revoked at the given
// time for the given reason ("" for live).
func wantRevoked(t *testing.T, s keycard.Stores, what string, at time.Time, want map[string]string) {
	t.Helper()
	for sid, reason := range want {
		sess, err := s.Sessions.Session(context.Background(), sid)
		if err != nil {
			t.Errorf("%s: Session(%s): %v", what, sid, err)
			continue
		}
		switch {
		case reason == "" && sess.Revoked():
			t.Errorf("%s: session %s revoked at %v for %q, want live", what, sid, sess.RevokedAt, sess.RevokeReason)
		case reason != "" && (!sess.RevokedAt.Equal(at) || sess.RevokeReason != reason):
			t.Errorf("%s: session %s revoked at %v for %q, want %v for %q", what, sid, sess.RevokedAt, sess.RevokeReason, at, reason)
		}
	}
}

// feedSince returns the session ids of the RevokeSession feed entries after
// seq, in feed order, checking that each is at the given time.
func feedSince(t *testing.T, s keycard.Stores, seq int64, at time.Time) []string {
	t.Helper()
	revs, err := s.Revocations.Revocations(context.Background(), seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range revs {
		if r.Kind != keycard.RevokeSession {
			continue
		}
		if !r.At.Equal(at) || !r.ExpiresAt.Equal(at.Add(revTTL)) {
			t.Errorf("feed entry %+v: want at %v, expiring %v later", r, at, revTTL)
		}
		ids = append(ids, r.Value)
	}
	return ids
}

// lastSeq returns the feed's last sequence number.
func lastSeq(t *testing.T, s keycard.Stores) int64 {
	t.Helper()
	seq, err := s.Revocations.LastRevocationSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// testGrantSessionCreate checks CreateSession for grant sessions: every
// field round-trips, a grant session may come without a refresh token, and
// the parent must exist, be live, be a sign-in and be the same user's.
func testGrantSessionCreate(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "gina")
	other := createUser(t, s, "hank")
	parent, _ := createSession(t, s, u.ID, t0)

	grant := newGrantSession(t, parent, "app", t0.Add(time.Minute))
	tok := newToken(t)
	if err := s.Sessions.CreateSession(ctx, grant, tok, nil); err != nil {
		t.Fatalf("CreateSession(grant): %v", err)
	}
	got, err := s.Sessions.Session(ctx, grant.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "grant session", got, grant)
	if tok.SessionID != grant.ID {
		t.Errorf("grant session's first token: SessionID %q, want %q", tok.SessionID, grant.ID)
	}
	// A sign-in reads back with the new fields empty.
	got, err = s.Sessions.Session(ctx, parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "sign-in", got, parent)
	if got.ParentID != "" || got.ClientID != "" || got.Scope != "" || !got.AuthTime.IsZero() || got.AMR != nil || got.DPoPJKT != "" {
		t.Errorf("sign-in: got grant fields %q %q %q %v %v %q, want none", got.ParentID, got.ClientID, got.Scope, got.AuthTime, got.AMR, got.DPoPJKT)
	}
	if !got.AuthenticatedAt().Equal(parent.CreatedAt) {
		t.Errorf("sign-in AuthenticatedAt = %v, want its CreatedAt %v", got.AuthenticatedAt(), parent.CreatedAt)
	}

	// A grant session without refresh tokens.
	bare := newGrantSession(t, parent, "app", t0.Add(2*time.Minute))
	if err := s.Sessions.CreateSession(ctx, bare, nil, nil); err != nil {
		t.Fatalf("CreateSession(grant, no token): %v", err)
	}
	if got, err := s.Sessions.Session(ctx, bare.ID); err != nil {
		t.Errorf("Session(grant without a token): %v", err)
	} else {
		check(t, "grant session without a token", got, bare)
	}

	revokedParent, _ := createSession(t, s, u.ID, t0)
	if _, err := s.Sessions.RevokeSession(ctx, revokedParent.ID, t0.Add(time.Minute), keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	othersParent, _ := createSession(t, s, other.ID, t0)
	missingParent := newSession(t, u.ID, t0)
	tests := []struct {
		name string
		sess *keycard.Session
		tok  *keycard.RefreshToken
		want string
	}{
		{"unknown parent", newGrantSession(t, missingParent, "app", t0), newToken(t), keycard.ENOTFOUND},
		{"revoked parent", newGrantSession(t, revokedParent, "app", t0.Add(2*time.Minute)), newToken(t), keycard.EUNAUTHORIZED},
		{"revoked parent, no token", newGrantSession(t, revokedParent, "app", t0.Add(2*time.Minute)), nil, keycard.EUNAUTHORIZED},
		{"parent of another user", func() *keycard.Session {
			g := newGrantSession(t, othersParent, "app", t0)
			g.UserID = u.ID
			return g
		}(), newToken(t), keycard.EINVALID},
		{"parent is a grant session", newGrantSession(t, grant, "app", t0), newToken(t), keycard.EINVALID},
		{"sign-in without a token", newSession(t, u.ID, t0), nil, keycard.EINVALID},
		{"id of another session", func() *keycard.Session {
			g := newGrantSession(t, parent, "app", t0)
			g.ID = grant.ID
			return g
		}(), newToken(t), keycard.ECONFLICT},
		{"same token id", newGrantSession(t, parent, "app", t0), &keycard.RefreshToken{ID: tok.ID, SecretHash: []byte("h")}, keycard.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "CreateSession", s.Sessions.CreateSession(ctx, tt.sess, tt.tok, nil), tt.want)
			if tt.sess.ID != grant.ID {
				_, err := s.Sessions.Session(ctx, tt.sess.ID)
				wantCode(t, "Session after failed CreateSession (nothing half-written)", err, keycard.ENOTFOUND)
			}
		})
	}
}

// testListGrantSessions checks SessionFilter.SignInsOnly, which the
// session cap counts with: grant sessions are listed with the user's
// sessions but never counted as sign-ins.
func testListGrantSessions(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "iris")
	p1, _ := createSession(t, s, u.ID, t0)
	g1, _ := createGrantSession(t, s, p1, "app", t0.Add(time.Minute))
	p2, _ := createSession(t, s, u.ID, t0.Add(2*time.Minute))
	g2, _ := createGrantSession(t, s, p2, "other-app", t0.Add(3*time.Minute))
	p3, _ := createSession(t, s, u.ID, t0.Add(4*time.Minute))
	if _, err := s.Sessions.RevokeSession(ctx, p3.ID, t0.Add(5*time.Minute), keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	tests := []struct {
		name   string
		filter keycard.SessionFilter
		want   []string
	}{
		{"all", keycard.SessionFilter{UserID: u.ID}, []string{p3.ID, g2.ID, p2.ID, g1.ID, p1.ID}},
		{"sign-ins", keycard.SessionFilter{UserID: u.ID, SignInsOnly: true}, []string{p3.ID, p2.ID, p1.ID}},
		{"active", keycard.SessionFilter{UserID: u.ID, ActiveAt: now}, []string{g2.ID, p2.ID, g1.ID, p1.ID}},
		{"active sign-ins (the session cap's count)", keycard.SessionFilter{UserID: u.ID, SignInsOnly: true, ActiveAt: now}, []string{p2.ID, p1.ID}},
		{"sign-ins, paged", keycard.SessionFilter{UserID: u.ID, SignInsOnly: true, Before: p3.ID, Limit: 1}, []string{p2.ID}},
		{"sign-ins, page after a grant session", keycard.SessionFilter{UserID: u.ID, SignInsOnly: true, Before: g2.ID}, []string{p2.ID, p1.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Sessions.ListSessions(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, sess := range got {
				ids = append(ids, sess.ID)
			}
			check(t, "ListSessions", ids, tt.want)
		})
	}
}

// testRevokeCascade checks that revoking a session revokes its live grant
// sessions (RevokeParentEnded, each with a feed entry) and nothing else,
// and that revoking a grant session leaves its parent alone.
func testRevokeCascade(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "jack")
	parent, _ := createSession(t, s, u.ID, t0)
	sibling, _ := createSession(t, s, u.ID, t0)
	g1, _ := createGrantSession(t, s, parent, "app", t0.Add(time.Minute))
	g2, _ := createGrantSession(t, s, parent, "other-app", t0.Add(2*time.Minute))
	g3, _ := createGrantSession(t, s, parent, "app", t0.Add(3*time.Minute))
	gs, _ := createGrantSession(t, s, sibling, "app", t0.Add(time.Minute))

	// A grant session alone: its parent and siblings stay.
	at1 := t0.Add(time.Hour)
	seq := lastSeq(t, s)
	got, err := s.Sessions.RevokeSession(ctx, g3.ID, at1, keycard.RevokeAdmin)
	if err != nil || !got.RevokedAt.Equal(at1) {
		t.Fatalf("RevokeSession(grant) = %+v, %v", got, err)
	}
	wantRevoked(t, s, "after revoking a grant session", at1, map[string]string{g3.ID: keycard.RevokeAdmin, parent.ID: "", g1.ID: "", g2.ID: ""})
	check(t, "feed after revoking a grant session", feedSince(t, s, seq, at1), []string{g3.ID})

	// The parent: its live grant sessions end with it, the one revoked
	// before keeps its reason, the sibling's stay.
	at2 := t0.Add(2 * time.Hour)
	seq = lastSeq(t, s)
	got, err = s.Sessions.RevokeSession(ctx, parent.ID, at2, keycard.RevokeLogout)
	if err != nil {
		t.Fatalf("RevokeSession(parent): %v", err)
	}
	want := *parent
	want.RevokedAt, want.RevokeReason = at2, keycard.RevokeLogout
	check(t, "RevokeSession(parent) result", got, &want)
	wantRevoked(t, s, "after revoking the parent", at2, map[string]string{
		parent.ID: keycard.RevokeLogout, g1.ID: keycard.RevokeParentEnded, g2.ID: keycard.RevokeParentEnded,
		sibling.ID: "", gs.ID: "",
	})
	wantRevoked(t, s, "after revoking the parent", at1, map[string]string{g3.ID: keycard.RevokeAdmin})
	check(t, "feed after revoking the parent", feedSince(t, s, seq, at2), []string{parent.ID, g1.ID, g2.ID})

	// Again: nothing changes, nothing is appended.
	seq = lastSeq(t, s)
	if _, err := s.Sessions.RevokeSession(ctx, parent.ID, at2.Add(time.Hour), keycard.RevokeAdmin); err != nil {
		t.Fatal(err)
	}
	if got := feedSince(t, s, seq, at2); len(got) != 0 {
		t.Errorf("feed after revoking the parent again: %v, want nothing", got)
	}
	wantRevoked(t, s, "after revoking the parent again", at2, map[string]string{g1.ID: keycard.RevokeParentEnded})

	// No grant session can be made under the revoked parent.
	wantCode(t, "CreateSession(under the revoked parent)",
		s.Sessions.CreateSession(ctx, newGrantSession(t, parent, "app", at2), newToken(t), nil), keycard.EUNAUTHORIZED)
}

// testRevokeCascadeTheft checks that theft detected on a browser
// session's refresh token ends the grant sessions under it, and that a
// grant session's tokens rotate like any other (with the user).
func testRevokeCascadeTheft(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "kate")
	parent, pt1 := createSession(t, s, u.ID, t0)
	grant, gt1 := createGrantSession(t, s, parent, "app", t0.Add(time.Minute))

	// A grant session rotates, and the user comes with it.
	at := t0.Add(time.Hour)
	succ := newToken(t)
	res, err := s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
		TokenID: gt1.ID, SecretHash: gt1.SecretHash, Now: at, Grace: grace,
		Successor: *succ, SuccessorSealed: []byte("sealed"), WithUser: true,
	})
	if err != nil || res.Outcome != keycard.Rotated {
		t.Fatalf("rotate a grant session's token = %+v, %v; want Rotated", res, err)
	}
	wantGrant := *grant
	wantGrant.LastUsedAt = at
	check(t, "session of a grant session's rotation", res.Session, &wantGrant)
	check(t, "user of a grant session's rotation", res.User, u)

	// Theft on the parent's token ends the parent and the grant session.
	if _, _, err := rotate(s, t, pt1, at); err != nil {
		t.Fatal(err)
	}
	theftAt := at.Add(time.Hour)
	seq := lastSeq(t, s)
	res, _, err = rotate(s, t, pt1, theftAt)
	if err != nil || res.Outcome != keycard.TheftDetected {
		t.Fatalf("reuse of the parent's token = %+v, %v; want TheftDetected", res, err)
	}
	wantRevoked(t, s, "after theft on the parent", theftAt, map[string]string{parent.ID: keycard.RevokeTokenReuse, grant.ID: keycard.RevokeParentEnded})
	check(t, "feed after theft on the parent", feedSince(t, s, seq, theftAt), []string{parent.ID, grant.ID})
	_, _, err = rotate(s, t, succ, theftAt.Add(time.Second))
	wantCode(t, "rotate the grant session's token after its parent's theft", err, keycard.EUNAUTHORIZED)
}

// testRevokeUserGrantSessions checks that the methods that revoke a
// user's sessions revoke their grant sessions for the same reason, and
// keep the excepted session's.
func testRevokeUserGrantSessions(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	at := t0.Add(time.Hour)

	t.Run("RevokeUserSessions", func(t *testing.T) {
		s := open(t)
		u := createUser(t, s, "liam")
		keep, _ := createSession(t, s, u.ID, t0)
		keptGrant, _ := createGrantSession(t, s, keep, "app", t0.Add(time.Minute))
		p, _ := createSession(t, s, u.ID, t0.Add(2*time.Minute))
		g, _ := createGrantSession(t, s, p, "app", t0.Add(3*time.Minute))
		seq := lastSeq(t, s)
		ids, err := s.Sessions.RevokeUserSessions(ctx, u.ID, keep.ID, at, keycard.RevokeLogoutAll)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "RevokeUserSessions", ids, []string{p.ID, g.ID})
		wantRevoked(t, s, "RevokeUserSessions", at, map[string]string{
			keep.ID: "", keptGrant.ID: "", p.ID: keycard.RevokeLogoutAll, g.ID: keycard.RevokeLogoutAll,
		})
		check(t, "feed after RevokeUserSessions", feedSince(t, s, seq, at), []string{p.ID, g.ID})

		ids, err = s.Sessions.RevokeUserSessions(ctx, u.ID, "", at, keycard.RevokeLogoutAll)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "RevokeUserSessions(no exception)", ids, []string{keep.ID, keptGrant.ID})
	})

	t.Run("ChangePassword", func(t *testing.T) {
		s := open(t)
		u := createUser(t, s, "mona")
		keep, _ := createSession(t, s, u.ID, t0)
		keptGrant, _ := createGrantSession(t, s, keep, "app", t0.Add(time.Minute))
		p, _ := createSession(t, s, u.ID, t0.Add(2*time.Minute))
		g, _ := createGrantSession(t, s, p, "app", t0.Add(3*time.Minute))
		seq := lastSeq(t, s)
		ids, err := s.Users.ChangePassword(ctx, u.ID, "new-hash", keep.ID, at)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "ChangePassword revoked", ids, []string{p.ID, g.ID})
		wantRevoked(t, s, "ChangePassword", at, map[string]string{
			keep.ID: "", keptGrant.ID: "", p.ID: keycard.RevokePasswordChanged, g.ID: keycard.RevokePasswordChanged,
		})
		check(t, "feed after ChangePassword", feedSince(t, s, seq, at), []string{p.ID, g.ID})
	})

	t.Run("UpdateUser disabling", func(t *testing.T) {
		s := open(t)
		u := createUser(t, s, "nina")
		p, _ := createSession(t, s, u.ID, t0)
		g, _ := createGrantSession(t, s, p, "app", t0.Add(time.Minute))
		seq := lastSeq(t, s)
		disabled := true
		if _, err := s.Users.UpdateUser(ctx, u.ID, keycard.UserUpdate{Disabled: &disabled}, at); err != nil {
			t.Fatal(err)
		}
		wantRevoked(t, s, "UpdateUser(disable)", at, map[string]string{p.ID: keycard.RevokeUserDisabled, g.ID: keycard.RevokeUserDisabled})
		check(t, "feed after UpdateUser(disable)", feedSince(t, s, seq, at), []string{p.ID, g.ID})
	})

	t.Run("DeleteUser", func(t *testing.T) {
		s := open(t)
		u := createUser(t, s, "otto")
		other := createUser(t, s, "pia")
		c := createClient(t, s, "app")
		p, _ := createSession(t, s, u.ID, t0)
		g, gt := createGrantSession(t, s, p, c.ID, t0.Add(time.Minute))
		code := createAuthCode(t, s, p, c.ID, t0.Add(time.Minute))
		saveConsent(t, s, u.ID, c.ID)
		saveConsent(t, s, other.ID, c.ID)
		seq := lastSeq(t, s)
		ids, err := s.Users.DeleteUser(ctx, u.ID, at)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "DeleteUser revoked", ids, []string{p.ID, g.ID})
		check(t, "feed after DeleteUser", feedSince(t, s, seq, at), []string{p.ID, g.ID})
		_, err = s.Sessions.Session(ctx, g.ID)
		wantCode(t, "Session(grant session of a deleted user)", err, keycard.ENOTFOUND)
		_, err = s.Sessions.RefreshToken(ctx, gt.ID)
		wantCode(t, "RefreshToken(of a grant session of a deleted user)", err, keycard.ENOTFOUND)
		_, err = s.Grants.AuthCode(ctx, code.ID)
		wantCode(t, "AuthCode(of a deleted user)", err, keycard.ENOTFOUND)
		_, err = s.Grants.Consent(ctx, u.ID, c.ID)
		wantCode(t, "Consent(of a deleted user)", err, keycard.ENOTFOUND)
		if _, err := s.Grants.Consent(ctx, other.ID, c.ID); err != nil {
			t.Errorf("Consent(of another user) after DeleteUser: %v", err)
		}
	})

	t.Run("RevokeAllSessions", func(t *testing.T) {
		s := open(t)
		u := createUser(t, s, "quinn")
		p, _ := createSession(t, s, u.ID, t0)
		g, _ := createGrantSession(t, s, p, "app", t0.Add(time.Minute))
		n, err := s.Sessions.RevokeAllSessions(ctx, at, keycard.RevokeAll)
		if err != nil || n != 2 {
			t.Errorf("RevokeAllSessions = %d, %v; want 2, nil", n, err)
		}
		wantRevoked(t, s, "RevokeAllSessions", at, map[string]string{p.ID: keycard.RevokeAll, g.ID: keycard.RevokeAll})
	})
}

// testRevokeClientSessions checks RevokeClientSessions: the user's live
// grant sessions for the client, nobody else's, each with a feed entry.
func testRevokeClientSessions(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "rosa")
	other := createUser(t, s, "sam")
	p1, _ := createSession(t, s, u.ID, t0)
	p2, _ := createSession(t, s, u.ID, t0)
	op, _ := createSession(t, s, other.ID, t0)
	g1, _ := createGrantSession(t, s, p1, "app", t0.Add(time.Minute))
	g2, _ := createGrantSession(t, s, p2, "app", t0.Add(2*time.Minute))
	gOther, _ := createGrantSession(t, s, p1, "other-app", t0.Add(time.Minute))
	gUser, _ := createGrantSession(t, s, op, "app", t0.Add(time.Minute))
	at := t0.Add(time.Hour)
	seq := lastSeq(t, s)

	ids, err := s.Sessions.RevokeClientSessions(ctx, u.ID, "app", at, keycard.RevokeAdmin)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "RevokeClientSessions", ids, []string{g1.ID, g2.ID})
	wantRevoked(t, s, "RevokeClientSessions", at, map[string]string{
		g1.ID: keycard.RevokeAdmin, g2.ID: keycard.RevokeAdmin,
		p1.ID: "", p2.ID: "", gOther.ID: "", gUser.ID: "", op.ID: "",
	})
	check(t, "feed after RevokeClientSessions", feedSince(t, s, seq, at), []string{g1.ID, g2.ID})

	tests := []struct {
		name             string
		userID, clientID string
	}{
		{"again", u.ID, "app"},
		{"unknown client", u.ID, "nobody"},
		{"unknown user", "missing", "app"},
		{"no client: sign-ins are not grant sessions", u.ID, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, err := s.Sessions.RevokeClientSessions(ctx, tt.userID, tt.clientID, at, keycard.RevokeAdmin)
			if err != nil || ids == nil || len(ids) != 0 {
				t.Errorf("RevokeClientSessions = %v, %v; want an empty, non-nil list", ids, err)
			}
		})
	}
	wantRevoked(t, s, "after revoking nothing more", at, map[string]string{p1.ID: "", p2.ID: "", gOther.ID: "", gUser.ID: ""})
}

// testPruneGrantSessions checks that PruneSessions prunes ended grant
// sessions like sign-ins, and keeps an active grant session whose parent
// it prunes.
func testPruneGrantSessions(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "tina")
	c := createClient(t, s, "app")
	// A browser session that goes idle after an hour, with a grant session
	// that keeps the default idle timeout (offline access).
	parent := newSession(t, u.ID, t0)
	parent.IdleTimeout = time.Hour
	if err := s.Sessions.CreateSession(ctx, parent, newToken(t), nil); err != nil {
		t.Fatal(err)
	}
	offline, _ := createGrantSession(t, s, parent, c.ID, t0)
	code := createAuthCode(t, s, parent, c.ID, t0)
	// Another, revoked with its grant session.
	revoked, _ := createSession(t, s, u.ID, t0)
	revokedGrant, _ := createGrantSession(t, s, revoked, c.ID, t0)
	if _, err := s.Sessions.RevokeSession(ctx, revoked.ID, t0.Add(time.Minute), keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}

	n, err := s.Sessions.PruneSessions(ctx, t0.Add(2*time.Hour), t0)
	if err != nil || n != 3 {
		t.Errorf("PruneSessions = %d, %v; want 3 (the idle parent, the revoked one and its grant session), nil", n, err)
	}
	for _, sid := range []string{parent.ID, revoked.ID, revokedGrant.ID} {
		_, err := s.Sessions.Session(ctx, sid)
		wantCode(t, "Session(pruned)", err, keycard.ENOTFOUND)
	}
	got, err := s.Sessions.Session(ctx, offline.ID)
	if err != nil {
		t.Fatalf("Session(active grant session of a pruned parent): %v", err)
	}
	check(t, "active grant session of a pruned parent", got, offline)
	_, err = s.Grants.AuthCode(ctx, code.ID)
	wantCode(t, "AuthCode(of a pruned session)", err, keycard.ENOTFOUND)
	// It can still be revoked.
	if _, err := s.Sessions.RevokeSession(ctx, offline.ID, t0.Add(3*time.Hour), keycard.RevokeLogout); err != nil {
		t.Errorf("RevokeSession(grant session of a pruned parent): %v", err)
	}
	n, err = s.Sessions.PruneSessions(ctx, t0.Add(4*time.Hour), t0)
	if err != nil || n != 1 {
		t.Errorf("PruneSessions(after revoking it) = %d, %v; want 1, nil", n, err)
	}
}

// testRevokeCascadeConcurrent races the creation of grant sessions (by
// Redeem and by CreateSession) against the revocation of their parent (by
// RevokeSession and by RevokeUserSessions): whichever wins, no grant
// session is left live under a revoked parent.
func testRevokeCascadeConcurrent(t *testing.T, open OpenFunc) {
	const rounds = 20
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "xavi")
	c := createClient(t, s, "app")
	at := t0.Add(time.Second)
	revokers := []struct {
		name   string
		revoke func(parent *keycard.Session) error
	}{
		{"RevokeSession", func(p *keycard.Session) error {
			_, err := s.Sessions.RevokeSession(ctx, p.ID, at, keycard.RevokeLogout)
			return err
		}},
		{"RevokeUserSessions", func(p *keycard.Session) error {
			_, err := s.Sessions.RevokeUserSessions(ctx, u.ID, "", at, keycard.RevokeLogoutAll)
			return err
		}},
	}
	// Each creator prepares, and returns the grant session and the call
	// that creates it.
	creators := []struct {
		name    string
		prepare func(t *testing.T, parent *keycard.Session) (*keycard.Session, func() error)
	}{
		{"Redeem", func(t *testing.T, p *keycard.Session) (*keycard.Session, func() error) {
			code := createAuthCode(t, s, p, c.ID, t0)
			r := redeemRequest(t, keycard.GrantKindAuthCode, code.ID, p, c.ID, at, false)
			return r.Session, func() error { _, err := s.Grants.Redeem(ctx, r); return err }
		}},
		{"CreateSession", func(t *testing.T, p *keycard.Session) (*keycard.Session, func() error) {
			g, tok := newGrantSession(t, p, c.ID, at), newToken(t)
			return g, func() error { return s.Sessions.CreateSession(ctx, g, tok, nil) }
		}},
	}
	for _, rv := range revokers {
		for _, cr := range creators {
			t.Run(cr.name+" against "+rv.name, func(t *testing.T) {
				for round := range rounds {
					parent, _ := createSession(t, s, u.ID, t0)
					grant, create := cr.prepare(t, parent)
					var cerr, rerr error
					race(func() { cerr = create() }, func() { rerr = rv.revoke(parent) })
					if rerr != nil {
						t.Fatalf("round %d: %s: %v", round, rv.name, rerr)
					}
					if cerr != nil {
						// Lost the race: the parent had ended.
						wantCode(t, fmt.Sprintf("round %d: %s after the parent's revocation", round, cr.name), cerr, keycard.EUNAUTHORIZED)
						continue
					}
					got, err := s.Sessions.Session(ctx, grant.ID)
					if err != nil {
						t.Fatalf("round %d: grant session: %v", round, err)
					}
					if !got.Revoked() {
						t.Errorf("round %d: grant session live under a revoked parent", round)
					}
				}
			})
		}
	}
}

// testRedeemAgainstRevocation races Redeem against DeleteClient and
// RevokeConsent: whichever wins, the code is not redeemed into a live grant
// session of a deleted client or a revoked consent.
func testRedeemAgainstRevocation(t *testing.T, open OpenFunc) {
	const rounds = 20
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "yves")
	parent, _ := createSession(t, s, u.ID, t0)
	at := t0.Add(time.Second)
	revokers := []struct {
		name   string
		revoke func(c *keycard.Client) error
	}{
		{"DeleteClient", func(c *keycard.Client) error { return s.Clients.DeleteClient(ctx, c.ID, at) }},
		{"RevokeConsent", func(c *keycard.Client) error { _, err := s.Grants.RevokeConsent(ctx, u.ID, c.ID, at); return err }},
	}
	for _, rv := range revokers {
		t.Run(rv.name, func(t *testing.T) {
			for round := range rounds {
				c := createClient(t, s, fmt.Sprintf("%s-%d", rv.name, round))
				saveConsent(t, s, u.ID, c.ID)
				code := createAuthCode(t, s, parent, c.ID, t0)
				r := redeemRequest(t, keycard.GrantKindAuthCode, code.ID, parent, c.ID, at, false)
				var (
					out        keycard.RedeemOutcome
					cerr, rerr error
				)
				race(func() { out, cerr = s.Grants.Redeem(ctx, r) }, func() { rerr = rv.revoke(c) })
				if rerr != nil {
					t.Fatalf("round %d: %s: %v", round, rv.name, rerr)
				}
				if cerr != nil {
					// Lost the race: the code had gone.
					wantCode(t, fmt.Sprintf("round %d: Redeem after %s", round, rv.name), cerr, keycard.ENOTFOUND)
					continue
				}
				if out != keycard.Redeemed {
					t.Fatalf("round %d: Redeem = %v, want Redeemed", round, out)
				}
				got, err := s.Sessions.Session(ctx, r.Session.ID)
				if err != nil {
					t.Fatalf("round %d: grant session: %v", round, err)
				}
				if !got.Revoked() {
					t.Errorf("round %d: grant session live after %s", round, rv.name)
				}
			}
		})
	}
}

// race runs the functions at once and returns when all have returned.
func race(fs ...func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, f := range fs {
		wg.Go(func() {
			<-start
			f()
		})
	}
	close(start)
	wg.Wait()
}
