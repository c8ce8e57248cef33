package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// testSessionWithUser checks SessionStore.SessionWithUser, the
// authorization endpoint's one read of the browser's session and its
// user: in every state a session can be in — federated, a grant
// session, reauthenticated, revoked, its user disabled, of another user —
// it answers exactly what Session and then UserByID answer, and
// ENOTFOUND where Session does (unknown or malformed ids, a deleted
// user's session). It judges nothing: a revoked session and a disabled
// user come back as they are, for the caller to refuse.
func testSessionWithUser(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := newUser(t, "sonja")
	u.Email, u.EmailVerified, u.Roles = "sonja@example.com", true, []string{"user", "admin"}
	if err := s.Users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	other := createUser(t, s, "tomas")

	plain, _ := createSession(t, s, u.ID, t0)
	federated := newSession(t, u.ID, t0.Add(time.Minute))
	federated.AuthTime, federated.AMR = t0.Add(time.Minute), []string{"fed", "mfa"}
	federated.IdP, federated.IdPSubject, federated.IdPSessionID = "corp", "corp-subject-1", "corp-sid-1"
	federated.IdleTimeout = 17 * time.Minute
	if err := s.Sessions.CreateSession(ctx, federated, newToken(t), nil); err != nil {
		t.Fatal(err)
	}
	grant, _ := createGrantSession(t, s, plain, "app", t0.Add(2*time.Minute))
	reauth, _ := createSession(t, s, u.ID, t0)
	if err := s.Sessions.Reauthenticated(ctx, reauth.ID, t0.Add(3*time.Minute), []string{"pwd", "otp"}); err != nil {
		t.Fatal(err)
	}
	revoked, _ := createSession(t, s, u.ID, t0)
	if _, err := s.Sessions.RevokeSession(ctx, revoked.ID, t0.Add(4*time.Minute), keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	others, _ := createSession(t, s, other.ID, t0)

	// same checks that SessionWithUser(id) answers what Session(id) and
	// UserByID of its user answer.
	same := func(t *testing.T, id string) {
		t.Helper()
		wantSess, err := s.Sessions.Session(ctx, id)
		if err != nil {
			t.Fatalf("Session: %v", err)
		}
		wantUser, err := s.Users.UserByID(ctx, wantSess.UserID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		gotSess, gotUser, err := s.Sessions.SessionWithUser(ctx, id)
		if err != nil {
			t.Fatalf("SessionWithUser: %v", err)
		}
		check(t, "SessionWithUser's session", gotSess, wantSess)
		check(t, "SessionWithUser's user", gotUser, wantUser)
	}
	for _, tt := range []struct {
		name string
		sess *keycard.Session
	}{
		{"sign-in", plain}, {"federated sign-in", federated}, {"grant session", grant},
		{"reauthenticated", reauth}, {"revoked", revoked}, {"another user's", others},
	} {
		t.Run(tt.name, func(t *testing.T) {
			same(t, tt.sess.ID)
			got, gotUser, err := s.Sessions.SessionWithUser(ctx, tt.sess.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.sess.ID || gotUser.ID != tt.sess.UserID {
				t.Errorf("SessionWithUser(%s) = session %s of user %s, want user %s", tt.sess.ID, got.ID, gotUser.ID, tt.sess.UserID)
			}
		})
	}
	got, gotUser, err := s.Sessions.SessionWithUser(ctx, plain.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "SessionWithUser(sign-in)", got, plain)
	check(t, "SessionWithUser(sign-in)'s user", gotUser, u)
	if got, _, _ := s.Sessions.SessionWithUser(ctx, revoked.ID); got == nil || !got.Revoked() || got.Active(t0.Add(5*time.Minute)) {
		t.Errorf("SessionWithUser(revoked) = %+v, want the session, revoked", got)
	}

	t.Run("disabled user", func(t *testing.T) {
		disabled := true
		if _, err := s.Users.UpdateUser(ctx, other.ID, keycard.UserUpdate{Disabled: &disabled}, t0.Add(5*time.Minute)); err != nil {
			t.Fatal(err)
		}
		same(t, others.ID)
		got, gotUser, err := s.Sessions.SessionWithUser(ctx, others.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !gotUser.Disabled || !got.Revoked() {
			t.Errorf("SessionWithUser after disabling its user: user disabled %v, session revoked %v; want both", gotUser.Disabled, got.Revoked())
		}
	})

	for _, missing := range []string{"", "missing", id(t), "nul\x00byte", "\xff\xfe"} {
		_, _, err := s.Sessions.SessionWithUser(ctx, missing)
		wantCode(t, "SessionWithUser("+missing+")", err, keycard.ENOTFOUND)
	}
	t.Run("deleted user", func(t *testing.T) {
		if _, err := s.Users.DeleteUser(ctx, u.ID, t0.Add(6*time.Minute)); err != nil {
			t.Fatal(err)
		}
		for _, sess := range []*keycard.Session{plain, federated, grant} {
			_, _, err := s.Sessions.SessionWithUser(ctx, sess.ID)
			wantCode(t, "SessionWithUser(a deleted user's session)", err, keycard.ENOTFOUND)
		}
	})
}
