package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/username"
)

func testUsers(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	alice := newUser(t, "Alice")
	alice.Roles = []string{"admin", "user"}
	if err := s.Users.CreateUser(ctx, alice); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}

	got, err := s.Users.UserByID(ctx, alice.ID)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	check(t, "UserByID", got, alice)
	got, err = s.Users.UserByUsername(ctx, "alice")
	if err != nil {
		t.Fatalf("UserByUsername: %v", err)
	}
	check(t, "UserByUsername", got, alice)

	noRoles := newUser(t, "norole")
	noRoles.Roles = nil
	noRoles.Disabled = true
	if err := s.Users.CreateUser(ctx, noRoles); err != nil {
		t.Fatalf("CreateUser(no roles): %v", err)
	}
	got, err = s.Users.UserByID(ctx, noRoles.ID)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	check(t, "UserByID(no roles, disabled)", got, noRoles)

	sameID := newUser(t, "bob")
	sameID.ID = alice.ID
	tests := []struct {
		name string
		u    *keycard.User
		want string
	}{
		{"same normalized username", newUser(t, "ALICE"), keycard.ECONFLICT},
		{"same id", sameID, keycard.ECONFLICT},
		{"no id", &keycard.User{NormalizedUsername: "x", PasswordHash: "h"}, keycard.EINVALID},
		{"no username", &keycard.User{ID: id(t), PasswordHash: "h"}, keycard.EINVALID},
		{"no password hash", &keycard.User{ID: id(t), NormalizedUsername: "y"}, keycard.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "CreateUser", s.Users.CreateUser(ctx, tt.u), tt.want)
		})
	}
	if _, err := s.Users.UserByUsername(ctx, "bob"); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("UserByUsername(bob) after failed create: got %v, want ENOTFOUND: nothing half-written", err)
	}

	_, err = s.Users.UserByID(ctx, "missing")
	wantCode(t, "UserByID(missing)", err, keycard.ENOTFOUND)
	_, err = s.Users.UserByUsername(ctx, "missing")
	wantCode(t, "UserByUsername(missing)", err, keycard.ENOTFOUND)
	_, err = s.Users.UserByUsername(ctx, "Alice")
	wantCode(t, "UserByUsername(not normalized)", err, keycard.ENOTFOUND)
}

// testUsernameNormalization checks that usernames differing only in case,
// width or Unicode composition are one account, through username.Normalize.
func testUsernameNormalization(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	createUser(t, s, "J\u00f6rg")
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"upper case", "J\u00d6RG", keycard.ECONFLICT},
		{"decomposed", "Jo\u0308rg", keycard.ECONFLICT},
		{"full width", "\uff2a\u00f6rg", keycard.ECONFLICT},
		{"different", "Jorg", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUser(t, tt.input)
			wantCode(t, fmt.Sprintf("CreateUser(%q)", tt.input), s.Users.CreateUser(ctx, u), tt.want)
			_, normalized, _ := username.Normalize(tt.input)
			if _, err := s.Users.UserByUsername(ctx, normalized); err != nil {
				t.Errorf("UserByUsername(Normalize(%q)): %v", tt.input, err)
			}
		})
	}
}

func testListUsers(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	got, err := s.Users.ListUsers(ctx, keycard.UserFilter{})
	if err != nil || len(got) != 0 {
		t.Fatalf("ListUsers(empty store) = %v, %v; want none", got, err)
	}
	var want []string
	for i := range 25 {
		u := createUser(t, s, fmt.Sprintf("user%02d", 24-i))
		want = append([]string{u.NormalizedUsername}, want...)
	}
	tests := []struct {
		name   string
		filter keycard.UserFilter
		want   []string
	}{
		{"all", keycard.UserFilter{}, want},
		{"first page", keycard.UserFilter{Limit: 10}, want[:10]},
		{"second page", keycard.UserFilter{After: want[9], Limit: 10}, want[10:20]},
		{"last page", keycard.UserFilter{After: want[19], Limit: 10}, want[20:]},
		{"past the end", keycard.UserFilter{After: want[24], Limit: 10}, nil},
		{"after a name not stored", keycard.UserFilter{After: "user10a", Limit: 2}, want[11:13]},
		{"prefix", keycard.UserFilter{Prefix: "user1"}, want[10:20]},
		{"prefix, paged", keycard.UserFilter{Prefix: "user1", After: want[14], Limit: 3}, want[15:18]},
		{"prefix of one", keycard.UserFilter{Prefix: "user07"}, want[7:8]},
		{"prefix matching none", keycard.UserFilter{Prefix: "user3"}, nil},
		{"prefix with a LIKE wildcard", keycard.UserFilter{Prefix: "user_"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, err := s.Users.ListUsers(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, u := range users {
				names = append(names, u.NormalizedUsername)
			}
			check(t, "ListUsers", names, tt.want)
		})
	}
}

func testUpdateUser(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "carol")
	sess, _ := createSession(t, s, u.ID, t0)
	at := t0.Add(time.Hour)

	roles := []string{"admin"}
	got, err := s.Users.UpdateUser(ctx, u.ID, keycard.UserUpdate{Roles: &roles}, at)
	if err != nil {
		t.Fatalf("UpdateUser(roles): %v", err)
	}
	want := *u
	want.Roles, want.UpdatedAt = roles, at
	check(t, "UpdateUser(roles) result", got, &want)
	stored, err := s.Users.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "UpdateUser(roles) stored", stored, &want)
	if sess2, _ := s.Sessions.Session(ctx, sess.ID); sess2 == nil || sess2.Revoked() {
		t.Errorf("session after changing roles: got revoked %v, want live", sess2)
	}

	disabled := true
	at2 := at.Add(time.Hour)
	got, err = s.Users.UpdateUser(ctx, u.ID, keycard.UserUpdate{Disabled: &disabled}, at2)
	if err != nil {
		t.Fatalf("UpdateUser(disable): %v", err)
	}
	want.Disabled, want.UpdatedAt = true, at2
	check(t, "UpdateUser(disable)", got, &want)
	s2, err := s.Sessions.Session(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.RevokedAt.Equal(at2) || s2.RevokeReason != keycard.RevokeUserDisabled {
		t.Errorf("session after disabling user: got revoked at %v for %q, want %v for %q", s2.RevokedAt, s2.RevokeReason, at2, keycard.RevokeUserDisabled)
	}
	revs, err := s.Revocations.Revocations(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 2 {
		t.Fatalf("revocation feed after disabling user: got %d entries, want 2", len(revs))
	}
	check(t, "revocation feed after disabling user", revs, []*keycard.Revocation{
		{Seq: revs[0].Seq, Kind: keycard.RevokeSession, Value: sess.ID, At: at2, ExpiresAt: at2.Add(revTTL)},
		{Seq: revs[1].Seq, Kind: keycard.RevokeUser, Value: u.ID, At: at2, ExpiresAt: at2.Add(revTTL)},
	})

	enabled := false
	if got, err = s.Users.UpdateUser(ctx, u.ID, keycard.UserUpdate{Disabled: &enabled}, at2); err != nil || got.Disabled {
		t.Errorf("UpdateUser(enable) = %v, %v; want enabled user", got, err)
	}
	_, err = s.Users.UpdateUser(ctx, "missing", keycard.UserUpdate{Disabled: &disabled}, at2)
	wantCode(t, "UpdateUser(missing)", err, keycard.ENOTFOUND)
}

func testChangePassword(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "dave")
	other := createUser(t, s, "erin")
	current, _ := createSession(t, s, u.ID, t0)
	old1, _ := createSession(t, s, u.ID, t0.Add(time.Minute))
	old2, _ := createSession(t, s, u.ID, t0.Add(2*time.Minute))
	othersSession, _ := createSession(t, s, other.ID, t0)
	at := t0.Add(time.Hour)

	revoked, err := s.Users.ChangePassword(ctx, u.ID, "new-hash", current.ID, at)
	if err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if len(revoked) != 2 || !(revoked[0] == old1.ID && revoked[1] == old2.ID || revoked[0] == old2.ID && revoked[1] == old1.ID) {
		t.Errorf("ChangePassword revoked %v, want %v and %v", revoked, old1.ID, old2.ID)
	}
	got, err := s.Users.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := *u
	want.PasswordHash, want.PasswordChangedAt, want.UpdatedAt = "new-hash", at, at
	check(t, "user after ChangePassword", got, &want)

	tests := []struct {
		id         string
		wantReason string
	}{
		{current.ID, ""},
		{old1.ID, keycard.RevokePasswordChanged},
		{old2.ID, keycard.RevokePasswordChanged},
		{othersSession.ID, ""},
	}
	for _, tt := range tests {
		sess, err := s.Sessions.Session(ctx, tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if sess.RevokeReason != tt.wantReason || sess.Revoked() != (tt.wantReason != "") {
			t.Errorf("session %s: got revoked %v for %q, want reason %q", tt.id, sess.Revoked(), sess.RevokeReason, tt.wantReason)
		}
	}

	// The feed has the revoked sessions and, in the same transaction, the
	// user's cut-off: tokens issued before the change are dead everywhere.
	revs, err := s.Revocations.Revocations(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cutoffs []*keycard.Revocation
	sessions := map[string]bool{}
	for _, r := range revs {
		switch r.Kind {
		case keycard.RevokeUser:
			cutoffs = append(cutoffs, r)
		case keycard.RevokeSession:
			sessions[r.Value] = true
		}
	}
	check(t, "cut-offs after ChangePassword", cutoffs, []*keycard.Revocation{{Seq: revs[len(revs)-1].Seq, Kind: keycard.RevokeUser, Value: u.ID, At: at, ExpiresAt: at.Add(revTTL)}})
	check(t, "sessions in the feed after ChangePassword", sessions, map[string]bool{old1.ID: true, old2.ID: true})
	last := revs[len(revs)-1].Seq

	// A failed change leaves nothing in the feed.
	_, err = s.Users.ChangePassword(ctx, "missing", "h", "", at)
	wantCode(t, "ChangePassword(missing user)", err, keycard.ENOTFOUND)
	if revs, err := s.Revocations.Revocations(ctx, last, 0); err != nil || len(revs) != 0 {
		t.Errorf("feed after failed ChangePassword: %d new entries, %v; want none", len(revs), err)
	}

	revoked, err = s.Users.ChangePassword(ctx, u.ID, "newer-hash", "", at.Add(time.Hour))
	if err != nil || len(revoked) != 1 || revoked[0] != current.ID {
		t.Errorf("ChangePassword(no session kept) = %v, %v; want [%s]", revoked, err, current.ID)
	}
	_, err = s.Users.ChangePassword(ctx, "missing", "h", "", at)
	wantCode(t, "ChangePassword(missing user)", err, keycard.ENOTFOUND)
	_, err = s.Users.ChangePassword(ctx, u.ID, "", "", at)
	wantCode(t, "ChangePassword(empty hash)", err, keycard.EINVALID)
}

func testRehashPassword(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "frank")
	sess, _ := createSession(t, s, u.ID, t0)
	at := t0.Add(time.Hour)
	tests := []struct {
		name     string
		id       string
		old, new string
		want     bool
		wantHash string
	}{
		{"stale old hash", u.ID, "not-the-hash", "x", false, u.PasswordHash},
		{"missing user", "missing", u.PasswordHash, "x", false, u.PasswordHash},
		{"upgrade", u.ID, u.PasswordHash, "upgraded", true, "upgraded"},
		{"second upgrade with the first old hash", u.ID, u.PasswordHash, "again", false, "upgraded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Users.RehashPassword(ctx, tt.id, tt.old, tt.new, at)
			if err != nil || got != tt.want {
				t.Errorf("RehashPassword() = %v, %v; want %v, nil", got, err, tt.want)
			}
			stored, err := s.Users.UserByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.PasswordHash != tt.wantHash {
				t.Errorf("stored hash = %q, want %q", stored.PasswordHash, tt.wantHash)
			}
			if !stored.PasswordChangedAt.Equal(t0) {
				t.Errorf("PasswordChangedAt = %v, want unchanged %v", stored.PasswordChangedAt, t0)
			}
		})
	}
	if got, _ := s.Sessions.Session(ctx, sess.ID); got == nil || got.Revoked() {
		t.Errorf("session after rehash: got %v, want live", got)
	}
	_, err := s.Users.RehashPassword(ctx, u.ID, "upgraded", "", at)
	wantCode(t, "RehashPassword(empty)", err, keycard.EINVALID)
}

func testDeleteUser(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "dave")
	other := createUser(t, s, "erin")
	live, liveTok := createSession(t, s, u.ID, t0)
	ended, _ := createSession(t, s, u.ID, t0)
	if _, err := s.Sessions.RevokeSession(ctx, ended.ID, t0, keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	kept, _ := createSession(t, s, other.ID, t0)
	before, err := s.Revocations.LastRevocationSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Hour)

	revoked, err := s.Users.DeleteUser(ctx, u.ID, at)
	if err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	check(t, "DeleteUser revoked", revoked, []string{live.ID})
	_, err = s.Users.UserByID(ctx, u.ID)
	wantCode(t, "UserByID(deleted)", err, keycard.ENOTFOUND)
	_, err = s.Users.UserByUsername(ctx, u.NormalizedUsername)
	wantCode(t, "UserByUsername(deleted)", err, keycard.ENOTFOUND)
	_, err = s.Sessions.Session(ctx, live.ID)
	wantCode(t, "Session(of deleted user)", err, keycard.ENOTFOUND)
	_, err = s.Sessions.RefreshToken(ctx, liveTok.ID)
	wantCode(t, "RefreshToken(of deleted user)", err, keycard.ENOTFOUND)
	revs, err := s.Revocations.Revocations(ctx, before, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 1 {
		t.Fatalf("revocation feed after DeleteUser: got %d entries, want 1", len(revs))
	}
	check(t, "revocation feed after DeleteUser", revs, []*keycard.Revocation{{Seq: revs[0].Seq, Kind: keycard.RevokeSession, Value: live.ID, At: at, ExpiresAt: at.Add(revTTL)}})
	if sess, err := s.Sessions.Session(ctx, kept.ID); err != nil || sess.Revoked() {
		t.Errorf("other user's session after DeleteUser = %v, %v; want live", sess, err)
	}

	_, err = s.Users.DeleteUser(ctx, u.ID, at)
	wantCode(t, "DeleteUser(again)", err, keycard.ENOTFOUND)
	// The name is free again.
	createUser(t, s, "dave")
}
