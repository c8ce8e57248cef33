package storetest

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// newPasskey makes a passkey of the user, not yet stored, with a random
// credential id.
func newPasskey(t *testing.T, userID, name string, at time.Time) *keycard.Passkey {
	t.Helper()
	cred := make([]byte, 32)
	rand.Read(cred)
	return &keycard.Passkey{
		ID: id(t), UserID: userID, CredentialID: cred, PublicKey: []byte{0xa5, 0x01, 0x02, 0x03, 0x26},
		AAGUID: make([]byte, 16), SignCount: 7, Transports: []string{"internal", "hybrid"}, AttestationFormat: "none",
		BackupEligible: true, BackupState: false, UserVerified: true, Name: name, CreatedAt: at,
	}
}

func createPasskey(t *testing.T, s keycard.Stores, userID, name string, at time.Time) *keycard.Passkey {
	t.Helper()
	p := newPasskey(t, userID, name, at)
	if err := s.Passkeys.CreatePasskey(context.Background(), p); err != nil {
		t.Fatalf("CreatePasskey: %v", err)
	}
	return p
}

func testPasskeys(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	alice, bob := createUser(t, s, "alice"), createUser(t, s, "bob")

	p1 := createPasskey(t, s, alice.ID, "Laptop", t0)
	p2 := createPasskey(t, s, alice.ID, "Phone", t0.Add(time.Second))
	pb := createPasskey(t, s, bob.ID, "Key", t0)

	got, err := s.Passkeys.Passkey(ctx, alice.ID, p1.ID)
	if err != nil {
		t.Fatalf("Passkey: %v", err)
	}
	check(t, "Passkey", got, p1)
	got, err = s.Passkeys.PasskeyByCredentialID(ctx, p2.CredentialID)
	if err != nil {
		t.Fatalf("PasskeyByCredentialID: %v", err)
	}
	check(t, "PasskeyByCredentialID", got, p2)
	// Another user's passkey is not found by id under this user.
	_, err = s.Passkeys.Passkey(ctx, alice.ID, pb.ID)
	wantCode(t, "Passkey(other user's)", err, keycard.ENOTFOUND)
	_, err = s.Passkeys.PasskeyByCredentialID(ctx, []byte("nope"))
	wantCode(t, "PasskeyByCredentialID(unknown)", err, keycard.ENOTFOUND)
	_, err = s.Passkeys.PasskeyByCredentialID(ctx, nil)
	wantCode(t, "PasskeyByCredentialID(empty)", err, keycard.ENOTFOUND)

	list, err := s.Passkeys.ListPasskeys(ctx, alice.ID)
	if err != nil {
		t.Fatalf("ListPasskeys: %v", err)
	}
	check(t, "ListPasskeys", list, []*keycard.Passkey{p1, p2})
	if list, _ := s.Passkeys.ListPasskeys(ctx, id(t)); len(list) != 0 {
		t.Errorf("ListPasskeys(unknown user) = %d passkeys, want none", len(list))
	}

	// The same credential id again, for any user, is a conflict; so is
	// the same id.
	dup := newPasskey(t, bob.ID, "Copy", t0)
	dup.CredentialID = p1.CredentialID
	wantCode(t, "CreatePasskey(same credential id)", s.Passkeys.CreatePasskey(ctx, dup), keycard.ECONFLICT)
	dup = newPasskey(t, bob.ID, "Copy", t0)
	dup.ID = p1.ID
	wantCode(t, "CreatePasskey(same id)", s.Passkeys.CreatePasskey(ctx, dup), keycard.ECONFLICT)
	wantCode(t, "CreatePasskey(unknown user)", s.Passkeys.CreatePasskey(ctx, newPasskey(t, id(t), "x", t0)), keycard.ENOTFOUND)
	empty := newPasskey(t, alice.ID, "x", t0)
	empty.PublicKey = nil
	wantCode(t, "CreatePasskey(no public key)", s.Passkeys.CreatePasskey(ctx, empty), keycard.EINVALID)
	empty = newPasskey(t, alice.ID, "x", t0)
	empty.CredentialID = nil
	wantCode(t, "CreatePasskey(no credential id)", s.Passkeys.CreatePasskey(ctx, empty), keycard.EINVALID)

	// Rename: only the owner's.
	if err := s.Passkeys.RenamePasskey(ctx, alice.ID, p1.ID, "Work laptop"); err != nil {
		t.Fatalf("RenamePasskey: %v", err)
	}
	wantCode(t, "RenamePasskey(other user's)", s.Passkeys.RenamePasskey(ctx, bob.ID, p1.ID, "mine"), keycard.ENOTFOUND)
	wantCode(t, "RenamePasskey(unknown)", s.Passkeys.RenamePasskey(ctx, alice.ID, id(t), "x"), keycard.ENOTFOUND)
	if got, _ := s.Passkeys.Passkey(ctx, alice.ID, p1.ID); got == nil || got.Name != "Work laptop" {
		t.Errorf("after RenamePasskey: %+v, want the name Work laptop", got)
	}

	// Use: counter, backup state and last use, only from the counter
	// the caller read.
	at := t0.Add(time.Minute)
	if err := s.Passkeys.UsePasskey(ctx, p1.ID, 7, 8, true, at); err != nil {
		t.Fatalf("UsePasskey: %v", err)
	}
	got, _ = s.Passkeys.Passkey(ctx, alice.ID, p1.ID)
	if got.SignCount != 8 || !got.BackupState || !got.LastUsedAt.Equal(at) || !got.BackupEligible {
		t.Errorf("after UsePasskey: count %d, BS %v, BE %v, last used %v; want 8, true, true, %v", got.SignCount, got.BackupState, got.BackupEligible, got.LastUsedAt, at)
	}
	wantCode(t, "UsePasskey(stale counter)", s.Passkeys.UsePasskey(ctx, p1.ID, 7, 9, true, at), keycard.ECONFLICT)
	wantCode(t, "UsePasskey(unknown)", s.Passkeys.UsePasskey(ctx, id(t), 0, 1, false, at), keycard.ENOTFOUND)
	// The largest counter a uint32 holds survives the round trip.
	if err := s.Passkeys.UsePasskey(ctx, p1.ID, 8, 1<<32-1, false, at); err != nil {
		t.Fatalf("UsePasskey(max counter): %v", err)
	}
	if got, _ := s.Passkeys.Passkey(ctx, alice.ID, p1.ID); got.SignCount != 1<<32-1 {
		t.Errorf("SignCount = %d, want %d", got.SignCount, uint32(1<<32-1))
	}

	// Delete: only the owner's, once.
	_, err = s.Passkeys.DeletePasskey(ctx, bob.ID, p2.ID)
	wantCode(t, "DeletePasskey(other user's)", err, keycard.ENOTFOUND)
	del, err := s.Passkeys.DeletePasskey(ctx, alice.ID, p2.ID)
	if err != nil {
		t.Fatalf("DeletePasskey: %v", err)
	}
	check(t, "DeletePasskey", del, p2)
	_, err = s.Passkeys.DeletePasskey(ctx, alice.ID, p2.ID)
	wantCode(t, "DeletePasskey(again)", err, keycard.ENOTFOUND)
	_, err = s.Passkeys.PasskeyByCredentialID(ctx, p2.CredentialID)
	wantCode(t, "PasskeyByCredentialID(deleted)", err, keycard.ENOTFOUND)

	// A passkey goes with its user.
	if _, err := s.Users.DeleteUser(ctx, bob.ID, t0); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err = s.Passkeys.PasskeyByCredentialID(ctx, pb.CredentialID)
	wantCode(t, "PasskeyByCredentialID(deleted user's)", err, keycard.ENOTFOUND)
}

// testUsePasskeyConcurrent: of many sign-ins that read the same counter,
// exactly one records its use.
func testUsePasskeyConcurrent(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "alice")
	p := createPasskey(t, s, u.ID, "Key", t0)
	var ok, conflict atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Passkeys.UsePasskey(ctx, p.ID, p.SignCount, p.SignCount+1+uint32(i), false, t0)
			switch keycard.ErrorCode(err) {
			case "":
				ok.Add(1)
			case keycard.ECONFLICT:
				conflict.Add(1)
			default:
				t.Errorf("UsePasskey: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || conflict.Load() != 7 {
		t.Errorf("%d uses succeeded and %d conflicted, want 1 and 7", ok.Load(), conflict.Load())
	}
}

func newChallenge(t *testing.T, purpose keycard.PasskeyPurpose, userID string, at time.Time) *keycard.PasskeyChallenge {
	return &keycard.PasskeyChallenge{ID: id(t), Purpose: purpose, UserID: userID, Binding: "session-1",
		State: []byte(`{"challenge":"abc"}`), CreatedAt: at, ExpiresAt: at.Add(keycard.PasskeyChallengeLifetime)}
}

func testPasskeyChallenges(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "alice")
	c := newChallenge(t, keycard.PasskeyRegister, u.ID, t0)
	if err := s.Passkeys.CreatePasskeyChallenge(ctx, c); err != nil {
		t.Fatalf("CreatePasskeyChallenge: %v", err)
	}
	wantCode(t, "CreatePasskeyChallenge(same id)", s.Passkeys.CreatePasskeyChallenge(ctx, c), keycard.ECONFLICT)
	bad := newChallenge(t, "other", "", t0)
	wantCode(t, "CreatePasskeyChallenge(unknown purpose)", s.Passkeys.CreatePasskeyChallenge(ctx, bad), keycard.EINVALID)
	bad = newChallenge(t, keycard.PasskeyLogin, "", t0)
	bad.State = nil
	wantCode(t, "CreatePasskeyChallenge(no state)", s.Passkeys.CreatePasskeyChallenge(ctx, bad), keycard.EINVALID)

	got, err := s.Passkeys.TakePasskeyChallenge(ctx, c.ID, t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("TakePasskeyChallenge: %v", err)
	}
	check(t, "TakePasskeyChallenge", got, c)
	// Taken once: a second take finds nothing.
	_, err = s.Passkeys.TakePasskeyChallenge(ctx, c.ID, t0.Add(time.Minute))
	wantCode(t, "TakePasskeyChallenge(again)", err, keycard.ENOTFOUND)

	// A login challenge has no user; an expired one is not given out
	// (and is gone).
	l := newChallenge(t, keycard.PasskeyLogin, "", t0)
	l.Binding = ""
	if err := s.Passkeys.CreatePasskeyChallenge(ctx, l); err != nil {
		t.Fatalf("CreatePasskeyChallenge(login): %v", err)
	}
	_, err = s.Passkeys.TakePasskeyChallenge(ctx, l.ID, l.ExpiresAt)
	wantCode(t, "TakePasskeyChallenge(expired)", err, keycard.ENOTFOUND)
	_, err = s.Passkeys.TakePasskeyChallenge(ctx, l.ID, t0)
	wantCode(t, "TakePasskeyChallenge(expired, again)", err, keycard.ENOTFOUND)
	l2 := newChallenge(t, keycard.PasskeyLogin, "", t0)
	l2.Binding = ""
	if err := s.Passkeys.CreatePasskeyChallenge(ctx, l2); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Passkeys.TakePasskeyChallenge(ctx, l2.ID, t0); err != nil {
		t.Fatalf("TakePasskeyChallenge(login): %v", err)
	} else {
		check(t, "TakePasskeyChallenge(login)", got, l2)
	}

	// Prune deletes those expired before the given time only.
	old, fresh := newChallenge(t, keycard.PasskeyLogin, "", t0), newChallenge(t, keycard.PasskeyLogin, "", t0.Add(time.Hour))
	for _, c := range []*keycard.PasskeyChallenge{old, fresh} {
		if err := s.Passkeys.CreatePasskeyChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Passkeys.PrunePasskeyChallenges(ctx, t0.Add(30*time.Minute))
	if err != nil || n != 1 {
		t.Errorf("PrunePasskeyChallenges = %d, %v; want 1, nil", n, err)
	}
	_, err = s.Passkeys.TakePasskeyChallenge(ctx, old.ID, t0)
	wantCode(t, "TakePasskeyChallenge(pruned)", err, keycard.ENOTFOUND)
	if _, err := s.Passkeys.TakePasskeyChallenge(ctx, fresh.ID, t0.Add(time.Hour)); err != nil {
		t.Errorf("TakePasskeyChallenge(kept): %v", err)
	}
}

// testTakePasskeyChallengeConcurrent: a challenge answered many times at
// once is taken by exactly one.
func testTakePasskeyChallengeConcurrent(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	c := newChallenge(t, keycard.PasskeyLogin, "", t0)
	if err := s.Passkeys.CreatePasskeyChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Passkeys.TakePasskeyChallenge(ctx, c.ID, t0)
			switch keycard.ErrorCode(err) {
			case "":
				ok.Add(1)
			case keycard.ENOTFOUND:
			default:
				t.Errorf("TakePasskeyChallenge: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d takes succeeded, want 1", ok.Load())
	}
}
