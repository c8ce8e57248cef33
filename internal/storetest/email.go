package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// newEmailToken makes a token of the purpose for u's address, made at the
// given time, not yet stored.
func newEmailToken(t *testing.T, u *keycard.User, purpose keycard.EmailTokenPurpose, at time.Time) *keycard.EmailToken {
	t.Helper()
	_, tid, hash, err := keycard.NewOpaqueToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := &keycard.EmailToken{ID: tid, SecretHash: hash, Purpose: purpose, UserID: u.ID, Email: u.Email,
		CreatedAt: at, ExpiresAt: at.Add(keycard.EmailVerifyLifetime)}
	if purpose == keycard.PurposeResetPassword {
		e.PasswordChangedAt = u.PasswordChangedAt
		e.ExpiresAt = at.Add(keycard.PasswordResetLifetime)
	}
	return e
}

func createEmailToken(t *testing.T, s keycard.Stores, u *keycard.User, purpose keycard.EmailTokenPurpose, at time.Time) *keycard.EmailToken {
	t.Helper()
	e := newEmailToken(t, u, purpose, at)
	if err := s.Emails.CreateEmailToken(context.Background(), e); err != nil {
		t.Fatalf("CreateEmailToken: %v", err)
	}
	return e
}

// createUserWithEmail stores a new user named name with the address.
func createUserWithEmail(t *testing.T, s keycard.Stores, name, email string) *keycard.User {
	t.Helper()
	u := newUser(t, name)
	u.Email = email
	if err := s.Users.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser(%q, %q): %v", name, email, err)
	}
	return u
}

func testEmails(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	alice := newUser(t, "alice")
	alice.Email, alice.EmailVerified = "alice@example.com", true
	if err := s.Users.CreateUser(ctx, alice); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	got, err := s.Emails.UserByEmail(ctx, "alice@example.com")
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	check(t, "UserByEmail", got, alice)
	got, err = s.Users.UserByID(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "UserByID with email", got, alice)

	// Users without an address do not collide with each other.
	bob := createUser(t, s, "bob")
	carol := createUser(t, s, "carol")
	if got, err := s.Users.UserByID(ctx, bob.ID); err != nil || got.Email != "" || got.EmailVerified {
		t.Errorf("user without email: got %+v, %v", got, err)
	}
	_, err = s.Emails.UserByEmail(ctx, "")
	wantCode(t, "UserByEmail(empty)", err, keycard.ENOTFOUND)
	_, err = s.Emails.UserByEmail(ctx, "nobody@example.com")
	wantCode(t, "UserByEmail(unknown)", err, keycard.ENOTFOUND)
	_, err = s.Emails.UserByEmail(ctx, "ALICE@example.com")
	wantCode(t, "UserByEmail(other case: the caller normalizes)", err, keycard.ENOTFOUND)

	// An address is unique: at creation and when set.
	dup := newUser(t, "dup")
	dup.Email = "alice@example.com"
	wantCode(t, "CreateUser(taken email)", s.Users.CreateUser(ctx, dup), keycard.ECONFLICT)
	_, err = s.Emails.SetEmail(ctx, bob.ID, "alice@example.com", false, t0)
	wantCode(t, "SetEmail(taken)", err, keycard.ECONFLICT)
	_, err = s.Emails.SetEmail(ctx, id(t), "x@example.com", false, t0)
	wantCode(t, "SetEmail(unknown user)", err, keycard.ENOTFOUND)

	at := t0.Add(time.Minute)
	u, err := s.Emails.SetEmail(ctx, bob.ID, "bob@example.com", false, at)
	if err != nil {
		t.Fatalf("SetEmail: %v", err)
	}
	want := *bob
	want.Email, want.UpdatedAt = "bob@example.com", at
	check(t, "SetEmail", u, &want)
	got, err = s.Emails.UserByEmail(ctx, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	check(t, "UserByEmail after SetEmail", got, &want)
	// Setting one's own address again is no conflict; a verified flag
	// without an address is not kept.
	if _, err := s.Emails.SetEmail(ctx, bob.ID, "bob@example.com", true, at); err != nil {
		t.Errorf("SetEmail(same address): %v", err)
	}
	if u, err := s.Emails.SetEmail(ctx, carol.ID, "", true, at); err != nil || u.Email != "" || u.EmailVerified {
		t.Errorf("SetEmail(carol, empty, verified): got %+v, %v; want no address, unverified", u, err)
	}
	// Removing an address frees it.
	if _, err := s.Emails.SetEmail(ctx, bob.ID, "", false, at); err != nil {
		t.Fatalf("SetEmail(remove): %v", err)
	}
	_, err = s.Emails.UserByEmail(ctx, "bob@example.com")
	wantCode(t, "UserByEmail(removed)", err, keycard.ENOTFOUND)
	if _, err := s.Emails.SetEmail(ctx, carol.ID, "bob@example.com", false, at); err != nil {
		t.Errorf("SetEmail(a freed address): %v", err)
	}
}

func testEmailTokens(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUserWithEmail(t, s, "dora", "dora@example.com")
	v := createEmailToken(t, s, u, keycard.PurposeVerifyEmail, t0)
	got, err := s.Emails.EmailToken(ctx, v.ID)
	if err != nil {
		t.Fatalf("EmailToken: %v", err)
	}
	check(t, "EmailToken", got, v)
	r := createEmailToken(t, s, u, keycard.PurposeResetPassword, t0)
	got, err = s.Emails.EmailToken(ctx, r.ID)
	if err != nil {
		t.Fatalf("EmailToken: %v", err)
	}
	check(t, "EmailToken(reset)", got, r)
	_, err = s.Emails.EmailToken(ctx, id(t))
	wantCode(t, "EmailToken(unknown)", err, keycard.ENOTFOUND)

	sameID := newEmailToken(t, u, keycard.PurposeVerifyEmail, t0)
	sameID.ID = v.ID
	unknownUser := newEmailToken(t, u, keycard.PurposeVerifyEmail, t0)
	unknownUser.UserID = id(t)
	badPurpose := newEmailToken(t, u, keycard.PurposeVerifyEmail, t0)
	badPurpose.Purpose = "login"
	noEmail := newEmailToken(t, u, keycard.PurposeVerifyEmail, t0)
	noEmail.Email = ""
	noHash := newEmailToken(t, u, keycard.PurposeVerifyEmail, t0)
	noHash.SecretHash = nil
	tests := []struct {
		name string
		tok  *keycard.EmailToken
		want string
	}{
		{"same id", sameID, keycard.ECONFLICT},
		{"unknown user", unknownUser, keycard.ENOTFOUND},
		{"unknown purpose", badPurpose, keycard.EINVALID},
		{"no email", noEmail, keycard.EINVALID},
		{"no secret hash", noHash, keycard.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "CreateEmailToken", s.Emails.CreateEmailToken(ctx, tt.tok), tt.want)
		})
	}

	// Deleting the user deletes its tokens.
	if _, err := s.Users.DeleteUser(ctx, u.ID, t0); err != nil {
		t.Fatal(err)
	}
	_, err = s.Emails.EmailToken(ctx, v.ID)
	wantCode(t, "EmailToken(user deleted)", err, keycard.ENOTFOUND)
}

func testVerifyEmail(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUserWithEmail(t, s, "emma", "emma@example.com")
	tok := createEmailToken(t, s, u, keycard.PurposeVerifyEmail, t0)
	reset := createEmailToken(t, s, u, keycard.PurposeResetPassword, t0)

	_, err := s.Emails.VerifyEmail(ctx, reset.ID, t0)
	wantCode(t, "VerifyEmail(a reset token)", err, keycard.ENOTFOUND)
	_, err = s.Emails.VerifyEmail(ctx, id(t), t0)
	wantCode(t, "VerifyEmail(unknown)", err, keycard.ENOTFOUND)
	_, err = s.Emails.VerifyEmail(ctx, tok.ID, tok.ExpiresAt)
	wantCode(t, "VerifyEmail(at expiry)", err, keycard.EUNAUTHORIZED)

	at := t0.Add(time.Hour)
	got, err := s.Emails.VerifyEmail(ctx, tok.ID, at)
	if err != nil {
		t.Fatalf("VerifyEmail: %v", err)
	}
	want := *u
	want.EmailVerified, want.UpdatedAt = true, at
	check(t, "VerifyEmail", got, &want)
	stored, err := s.Users.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "user after VerifyEmail", stored, &want)
	used, err := s.Emails.EmailToken(ctx, tok.ID)
	if err != nil || !used.UsedAt.Equal(at) {
		t.Errorf("token after use: got %+v, %v; want used at %v", used, err, at)
	}
	_, err = s.Emails.VerifyEmail(ctx, tok.ID, at)
	wantCode(t, "VerifyEmail(used)", err, keycard.EUNAUTHORIZED)

	// A change of address clears the flag and deletes the unused links
	// of the old address.
	old := createEmailToken(t, s, stored, keycard.PurposeVerifyEmail, at)
	changed, err := s.Emails.SetEmail(ctx, u.ID, "emma@example.org", false, at)
	if err != nil {
		t.Fatal(err)
	}
	if changed.EmailVerified {
		t.Error("SetEmail(new address, false) kept the verified flag")
	}
	_, err = s.Emails.VerifyEmail(ctx, old.ID, at)
	wantCode(t, "VerifyEmail(a link to the previous address)", err, keycard.ENOTFOUND)

	// A link made for an address the user no longer has proves nothing,
	// even if it survived (made after the change, for the old address).
	stale := newEmailToken(t, u, keycard.PurposeVerifyEmail, at)
	stale.Email = "emma@example.com"
	if err := s.Emails.CreateEmailToken(ctx, stale); err != nil {
		t.Fatal(err)
	}
	_, err = s.Emails.VerifyEmail(ctx, stale.ID, at)
	wantCode(t, "VerifyEmail(address no longer the user's)", err, keycard.EUNAUTHORIZED)
	if got, _ := s.Users.UserByID(ctx, u.ID); got.EmailVerified {
		t.Error("a stale link verified the new address")
	}

	// Of concurrent uses of one link, one succeeds.
	fresh := createEmailToken(t, s, changed, keycard.PurposeVerifyEmail, at)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Go(func() {
			if _, err := s.Emails.VerifyEmail(ctx, fresh.ID, at); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
				t.Errorf("concurrent VerifyEmail: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Errorf("concurrent VerifyEmail: %d succeeded, want 1", ok)
	}
}

func testResetPassword(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUserWithEmail(t, s, "fred", "fred@example.com")
	other := createUser(t, s, "gina")
	s1, _ := createSession(t, s, u.ID, t0)
	s2, _ := createSession(t, s, u.ID, t0)
	othersSession, _ := createSession(t, s, other.ID, t0)
	tok := createEmailToken(t, s, u, keycard.PurposeResetPassword, t0)
	second := createEmailToken(t, s, u, keycard.PurposeResetPassword, t0)
	verify := createEmailToken(t, s, u, keycard.PurposeVerifyEmail, t0)

	_, _, err := s.Emails.ResetPassword(ctx, verify.ID, "h", t0)
	wantCode(t, "ResetPassword(a verification token)", err, keycard.ENOTFOUND)
	_, _, err = s.Emails.ResetPassword(ctx, id(t), "h", t0)
	wantCode(t, "ResetPassword(unknown)", err, keycard.ENOTFOUND)
	_, _, err = s.Emails.ResetPassword(ctx, tok.ID, "", t0)
	wantCode(t, "ResetPassword(no hash)", err, keycard.EINVALID)
	_, _, err = s.Emails.ResetPassword(ctx, tok.ID, "h", tok.ExpiresAt)
	wantCode(t, "ResetPassword(at expiry)", err, keycard.EUNAUTHORIZED)

	at := t0.Add(10 * time.Minute)
	got, revoked, err := s.Emails.ResetPassword(ctx, tok.ID, "reset-hash", at)
	if err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	want := *u
	want.PasswordHash, want.PasswordChangedAt, want.UpdatedAt = "reset-hash", at, at
	check(t, "ResetPassword", got, &want)
	stored, err := s.Users.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "user after ResetPassword", stored, &want)
	if len(revoked) != 2 || !(revoked[0] == s1.ID && revoked[1] == s2.ID || revoked[0] == s2.ID && revoked[1] == s1.ID) {
		t.Errorf("ResetPassword revoked %v, want %v and %v", revoked, s1.ID, s2.ID)
	}
	for _, tt := range []struct {
		id     string
		reason string
	}{{s1.ID, keycard.RevokePasswordChanged}, {s2.ID, keycard.RevokePasswordChanged}, {othersSession.ID, ""}} {
		sess, err := s.Sessions.Session(ctx, tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if sess.RevokeReason != tt.reason {
			t.Errorf("session %s: revoke reason %q, want %q", tt.id, sess.RevokeReason, tt.reason)
		}
	}
	revs, err := s.Revocations.Revocations(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	feed := map[string]bool{}
	for _, r := range revs {
		feed[string(r.Kind)+":"+r.Value] = true
	}
	for _, k := range []string{"session:" + s1.ID, "session:" + s2.ID, "user:" + u.ID} {
		if !feed[k] {
			t.Errorf("feed lacks %s after ResetPassword: %v", k, feed)
		}
	}

	// Single use, and a reset uses every other reset link of the user.
	_, _, err = s.Emails.ResetPassword(ctx, tok.ID, "again", at)
	wantCode(t, "ResetPassword(used)", err, keycard.EUNAUTHORIZED)
	_, _, err = s.Emails.ResetPassword(ctx, second.ID, "again", at)
	wantCode(t, "ResetPassword(another link of the same user)", err, keycard.EUNAUTHORIZED)

	// A link is bound to the password it was made under: a change of
	// password since refuses it.
	later := createEmailToken(t, s, stored, keycard.PurposeResetPassword, at)
	if _, err := s.Users.ChangePassword(ctx, u.ID, "changed", "", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Emails.ResetPassword(ctx, later.ID, "h", at.Add(2*time.Minute))
	wantCode(t, "ResetPassword(after a password change)", err, keycard.EUNAUTHORIZED)
	if got, _ := s.Users.UserByID(ctx, u.ID); got.PasswordHash != "changed" {
		t.Errorf("password hash %q after a refused reset, want the changed one", got.PasswordHash)
	}

	// Of concurrent uses of one link, one succeeds.
	current, err := s.Users.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	race := createEmailToken(t, s, current, keycard.PurposeResetPassword, at)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Go(func() {
			if _, _, err := s.Emails.ResetPassword(ctx, race.ID, "raced", at.Add(3*time.Minute)); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
				t.Errorf("concurrent ResetPassword: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Errorf("concurrent ResetPassword: %d succeeded, want 1", ok)
	}
}

func testPruneEmailTokens(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUserWithEmail(t, s, "hank", "hank@example.com")
	reset := createEmailToken(t, s, u, keycard.PurposeResetPassword, t0) // expires t0+30m
	verify := createEmailToken(t, s, u, keycard.PurposeVerifyEmail, t0)  // expires t0+24h
	n, err := s.Emails.PruneEmailTokens(ctx, t0.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("PruneEmailTokens: %d, %v; want 1", n, err)
	}
	_, err = s.Emails.EmailToken(ctx, reset.ID)
	wantCode(t, "EmailToken(pruned)", err, keycard.ENOTFOUND)
	if _, err := s.Emails.EmailToken(ctx, verify.ID); err != nil {
		t.Errorf("EmailToken(unexpired, after prune): %v", err)
	}
}

// testEmailUniqueConcurrent: of concurrent claims of one address, by new
// users and by existing ones, exactly one succeeds; the others are
// ECONFLICT.
func testEmailUniqueConcurrent(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	var existing []*keycard.User
	for i := range 4 {
		existing = append(existing, createUser(t, s, fmt.Sprintf("existing%d", i)))
	}
	var fresh []*keycard.User
	for i := range 4 {
		u := newUser(t, fmt.Sprintf("fresh%d", i))
		u.Email = "shared@example.com"
		fresh = append(fresh, u)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	record := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		switch keycard.ErrorCode(err) {
		case "":
			ok++
		case keycard.ECONFLICT:
		default:
			t.Errorf("claiming a shared address: %v", err)
		}
	}
	for i := range 4 {
		wg.Go(func() { record(s.Users.CreateUser(ctx, fresh[i])) })
		wg.Go(func() {
			_, err := s.Emails.SetEmail(ctx, existing[i].ID, "shared@example.com", false, t0)
			record(err)
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Errorf("%d claims of one address succeeded, want 1", ok)
	}
	if _, err := s.Emails.UserByEmail(ctx, "shared@example.com"); err != nil {
		t.Errorf("UserByEmail after the race: %v", err)
	}
}
