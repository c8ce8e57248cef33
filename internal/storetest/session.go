package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

func testSessions(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "grace")
	sess := newSession(t, u.ID, t0)
	sess.IdleTimeout = 90 * time.Minute
	tok := newToken(t)
	if err := s.Sessions.CreateSession(ctx, sess, tok, nil); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if tok.SessionID != sess.ID {
		t.Errorf("first token's SessionID = %q, want %q", tok.SessionID, sess.ID)
	}
	got, err := s.Sessions.Session(ctx, sess.ID)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	check(t, "Session", got, sess)
	gotTok, err := s.Sessions.RefreshToken(ctx, tok.ID)
	if err != nil {
		t.Fatalf("RefreshToken: %v", err)
	}
	check(t, "RefreshToken", gotTok, tok)
	if !gotTok.Live() {
		t.Errorf("first token Live() = false, want true")
	}

	tests := []struct {
		name string
		sess *keycard.Session
		tok  *keycard.RefreshToken
		want string
	}{
		{"unknown user", newSession(t, "missing", t0), newToken(t), keycard.ENOTFOUND},
		{"same session id", &keycard.Session{ID: sess.ID, UserID: u.ID, ExpiresAt: t0}, newToken(t), keycard.ECONFLICT},
		{"same token id", newSession(t, u.ID, t0), &keycard.RefreshToken{ID: tok.ID, SecretHash: []byte("h")}, keycard.ECONFLICT},
		{"no session id", &keycard.Session{UserID: u.ID}, newToken(t), keycard.EINVALID},
		{"no token id", newSession(t, u.ID, t0), &keycard.RefreshToken{SecretHash: []byte("h")}, keycard.EINVALID},
		{"no secret hash", newSession(t, u.ID, t0), &keycard.RefreshToken{ID: id(t)}, keycard.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "CreateSession", s.Sessions.CreateSession(ctx, tt.sess, tt.tok, nil), tt.want)
			if tt.sess.ID != sess.ID && tt.sess.ID != "" {
				_, err := s.Sessions.Session(ctx, tt.sess.ID)
				wantCode(t, "Session after failed CreateSession (nothing half-written)", err, keycard.ENOTFOUND)
			}
		})
	}
	_, err = s.Sessions.Session(ctx, "missing")
	wantCode(t, "Session(missing)", err, keycard.ENOTFOUND)
	_, err = s.Sessions.RefreshToken(ctx, "missing")
	wantCode(t, "RefreshToken(missing)", err, keycard.ENOTFOUND)
}

func testListSessions(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "heidi")
	other := createUser(t, s, "ivan")
	createSession(t, s, other.ID, t0)
	var all []string // newest first
	for i := range 12 {
		sess, _ := createSession(t, s, u.ID, t0.Add(time.Duration(i)*time.Minute))
		all = append([]string{sess.ID}, all...)
	}
	// all[0] is the newest; all[1] is revoked.
	if _, err := s.Sessions.RevokeSession(ctx, all[1], t0.Add(time.Hour), keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	idle := t0.Add(9*time.Minute + keycard.DefaultIdleTimeout) // all[2] was created at t0+9m
	active := slices.Concat(all[:1], all[3:])

	tests := []struct {
		name   string
		filter keycard.SessionFilter
		want   []string
	}{
		{"all", keycard.SessionFilter{UserID: u.ID}, all},
		{"page 1", keycard.SessionFilter{UserID: u.ID, Limit: 5}, all[:5]},
		{"page 2", keycard.SessionFilter{UserID: u.ID, Before: all[4], Limit: 5}, all[5:10]},
		{"page 3", keycard.SessionFilter{UserID: u.ID, Before: all[9], Limit: 5}, all[10:]},
		{"active", keycard.SessionFilter{UserID: u.ID, ActiveAt: t0.Add(2 * time.Hour)}, slices.Concat(all[:1], all[2:])},
		{"active after idle", keycard.SessionFilter{UserID: u.ID, ActiveAt: idle}, active[:1]},
		{"active page", keycard.SessionFilter{UserID: u.ID, ActiveAt: t0.Add(2 * time.Hour), Before: all[0], Limit: 2}, all[2:4]},
		{"after absolute expiry", keycard.SessionFilter{UserID: u.ID, ActiveAt: t0.Add(keycard.DefaultSessionLifetime + time.Hour)}, nil},
		{"unknown user", keycard.SessionFilter{UserID: "missing"}, nil},
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

func testRevokeSessions(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "judy")
	other := createUser(t, s, "mallory")
	s1, _ := createSession(t, s, u.ID, t0)
	s2, _ := createSession(t, s, u.ID, t0)
	s3, _ := createSession(t, s, u.ID, t0)
	o1, _ := createSession(t, s, other.ID, t0)
	at := t0.Add(time.Minute)

	got, err := s.Sessions.RevokeSession(ctx, s1.ID, at, keycard.RevokeLogout)
	if err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	want := *s1
	want.RevokedAt, want.RevokeReason = at, keycard.RevokeLogout
	check(t, "RevokeSession", got, &want)
	// Revoking again changes nothing, and adds nothing to the feed.
	got, err = s.Sessions.RevokeSession(ctx, s1.ID, at.Add(time.Hour), keycard.RevokeAdmin)
	if err != nil {
		t.Fatalf("RevokeSession(again): %v", err)
	}
	check(t, "RevokeSession(again)", got, &want)
	_, err = s.Sessions.RevokeSession(ctx, "missing", at, keycard.RevokeLogout)
	wantCode(t, "RevokeSession(missing)", err, keycard.ENOTFOUND)

	ids, err := s.Sessions.RevokeUserSessions(ctx, u.ID, s3.ID, at, keycard.RevokeLogoutAll)
	if err != nil {
		t.Fatalf("RevokeUserSessions: %v", err)
	}
	check(t, "RevokeUserSessions", ids, []string{s2.ID})
	ids, err = s.Sessions.RevokeUserSessions(ctx, u.ID, "", at, keycard.RevokeLogoutAll)
	if err != nil {
		t.Fatalf("RevokeUserSessions: %v", err)
	}
	check(t, "RevokeUserSessions(no exception)", ids, []string{s3.ID})
	if live, _ := s.Sessions.Session(ctx, o1.ID); live == nil || live.Revoked() {
		t.Errorf("other user's session: got %v, want live", live)
	}

	revs, err := s.Revocations.Revocations(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var feed []string
	for _, r := range revs {
		if r.Kind != keycard.RevokeSession || !r.At.Equal(at) || !r.ExpiresAt.Equal(at.Add(revTTL)) {
			t.Errorf("feed entry %+v: want kind session at %v, expiring %v later", r, at, revTTL)
		}
		feed = append(feed, r.Value)
	}
	check(t, "revocation feed", feed, []string{s1.ID, s2.ID, s3.ID})

	// Revoke everything.
	o2, _ := createSession(t, s, other.ID, t0)
	n, err := s.Sessions.RevokeAllSessions(ctx, at.Add(time.Hour), keycard.RevokeAll)
	if err != nil || n != 2 {
		t.Errorf("RevokeAllSessions = %d, %v; want 2, nil", n, err)
	}
	for _, sid := range []string{o1.ID, o2.ID} {
		sess, err := s.Sessions.Session(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		if sess.RevokeReason != keycard.RevokeAll {
			t.Errorf("session %s after RevokeAllSessions: reason %q, want %q", sid, sess.RevokeReason, keycard.RevokeAll)
		}
	}
	revs, err = s.Revocations.Revocations(ctx, revs[len(revs)-1].Seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "feed after RevokeAllSessions", revs, []*keycard.Revocation{{Seq: revs[0].Seq, Kind: keycard.RevokeAllUsers, At: at.Add(time.Hour), ExpiresAt: at.Add(time.Hour + revTTL)}})
}

func testPruneSessions(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "niaj")
	revoked, revokedTok := createSession(t, s, u.ID, t0)
	if _, err := s.Sessions.RevokeSession(ctx, revoked.ID, t0.Add(time.Hour), keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	createSession(t, s, u.ID, t0) // idle from t0 + 7 days
	live, liveTok := createSession(t, s, u.ID, t0)
	succ := newToken(t)
	rotateAt := t0.Add(24 * time.Hour)
	res, err := s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
		TokenID: liveTok.ID, SecretHash: liveTok.SecretHash, Now: rotateAt,
		Grace: 10 * time.Second, Successor: *succ, SuccessorSealed: []byte("sealed"),
	})
	if err != nil || res.Outcome != keycard.Rotated {
		t.Fatalf("RotateRefreshToken = %v, %v; want Rotated", res, err)
	}

	// At t0+2d: only the revoked session (revoked at t0+1h) ended before.
	n, err := s.Sessions.PruneSessions(ctx, t0.Add(48*time.Hour), rotateAt)
	if err != nil || n != 1 {
		t.Errorf("PruneSessions(+2d) = %d, %v; want 1, nil", n, err)
	}
	_, err = s.Sessions.Session(ctx, revoked.ID)
	wantCode(t, "Session(pruned)", err, keycard.ENOTFOUND)
	_, err = s.Sessions.RefreshToken(ctx, revokedTok.ID)
	wantCode(t, "RefreshToken(of pruned session)", err, keycard.ENOTFOUND)
	tok, err := s.Sessions.RefreshToken(ctx, liveTok.ID)
	if err != nil || string(tok.SuccessorSealed) != "sealed" {
		t.Errorf("rotated token before its sealed successor expires: %v, %v; want sealed kept", tok, err)
	}

	// At t0+7d+1h: the idle session has ended; the rotated one was used at
	// t0+1d, so it lives; the sealed successor is cleared.
	n, err = s.Sessions.PruneSessions(ctx, t0.Add(keycard.DefaultIdleTimeout+time.Hour), rotateAt.Add(time.Second))
	if err != nil || n != 1 {
		t.Errorf("PruneSessions(+7d) = %d, %v; want 1, nil", n, err)
	}
	if _, err := s.Sessions.Session(ctx, live.ID); err != nil {
		t.Errorf("Session(recently used): %v", err)
	}
	tok, err = s.Sessions.RefreshToken(ctx, liveTok.ID)
	if err != nil || tok.SuccessorSealed != nil || tok.SuccessorID != succ.ID {
		t.Errorf("rotated token after its grace window: %+v, %v; want SuccessorSealed cleared, SuccessorID kept", tok, err)
	}

	// After the absolute lifetime everything goes.
	n, err = s.Sessions.PruneSessions(ctx, t0.Add(keycard.DefaultSessionLifetime+time.Hour), t0)
	if err != nil || n != 1 {
		t.Errorf("PruneSessions(+30d) = %d, %v; want 1, nil", n, err)
	}
}

func testReauthenticated(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "rita")
	sess, _ := createSession(t, s, u.ID, t0)
	later := t0.Add(10 * time.Minute)
	if err := s.Sessions.Reauthenticated(ctx, sess.ID, later, []string{"pwd", "otp"}); err != nil {
		t.Fatalf("Reauthenticated: %v", err)
	}
	got, err := s.Sessions.Session(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.AuthTime.Equal(later) || !got.LastUsedAt.Equal(later) || !slices.Equal(got.AMR, []string{"pwd", "otp"}) || !got.CreatedAt.Equal(sess.CreatedAt) {
		t.Errorf("after Reauthenticated: auth time %v, last used %v, amr %v, created %v; want %v, %v, [pwd otp], %v",
			got.AuthTime, got.LastUsedAt, got.AMR, got.CreatedAt, later, later, sess.CreatedAt)
	}
	wantCode(t, "Reauthenticated(missing)", s.Sessions.Reauthenticated(ctx, "missing", later, nil), keycard.ENOTFOUND)
	if _, err := s.Sessions.RevokeSession(ctx, sess.ID, later, keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Reauthenticated(revoked)", s.Sessions.Reauthenticated(ctx, sess.ID, later.Add(time.Minute), nil), keycard.EUNAUTHORIZED)
}
