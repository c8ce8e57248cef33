package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// testMFAFactors checks MFAStore.Factors, and UserStore.SignInUser's
// factors, against each step of a user's second factors: none, a pending
// app, a confirmed one with its recovery codes, a code used, passkeys,
// the app removed; and that another user's factors are not counted.
func testMFAFactors(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	alice, bob := createUser(t, s, "alice"), createUser(t, s, "bob")
	users := map[string]*keycard.User{alice.ID: alice, bob.ID: bob}
	want := func(step string, userID string, w keycard.MFAFactors) {
		t.Helper()
		got, err := s.MFA.Factors(ctx, userID)
		if err != nil || got != w {
			t.Errorf("Factors %s = %+v, %v; want %+v", step, got, err, w)
		}
		u := users[userID]
		if u == nil {
			return
		}
		su, got, err := s.Users.SignInUser(ctx, u.NormalizedUsername)
		if err != nil || got != w {
			t.Errorf("SignInUser %s: factors %+v, %v; want %+v", step, got, err, w)
		} else {
			check(t, "SignInUser's user "+step, su, u)
		}
	}
	want("of a new user", alice.ID, keycard.MFAFactors{})
	want("of an unknown user", id(t), keycard.MFAFactors{})
	want("of a user id that is not text", "\xff\x00", keycard.MFAFactors{})
	for _, name := range []string{"nobody", "", "\xff\x00"} {
		u, f, err := s.Users.SignInUser(ctx, name)
		wantCode(t, "SignInUser("+name+")", err, keycard.ENOTFOUND)
		if u != nil || f != (keycard.MFAFactors{}) {
			t.Errorf("SignInUser(%q) = %v, %+v; want nothing", name, u, f)
		}
	}

	at := t0.Add(time.Minute)
	if err := s.MFA.PutPendingTOTP(ctx, &keycard.TOTPCredential{UserID: alice.ID, SecretSealed: []byte("s"), CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	want("with a pending app", alice.ID, keycard.MFAFactors{})
	codes := codeHashes("factors", keycard.RecoveryCodeCount)
	if err := s.MFA.ConfirmTOTP(ctx, alice.ID, 5, codes, at); err != nil {
		t.Fatal(err)
	}
	want("with a confirmed app", alice.ID, keycard.MFAFactors{TOTP: true, RecoveryCodesLeft: keycard.RecoveryCodeCount})
	if err := s.MFA.UseRecoveryCode(ctx, alice.ID, codes[0], at); err != nil {
		t.Fatal(err)
	}
	want("after a recovery code", alice.ID, keycard.MFAFactors{TOTP: true, RecoveryCodesLeft: keycard.RecoveryCodeCount - 1})
	createPasskey(t, s, alice.ID, "laptop", at)
	createPasskey(t, s, alice.ID, "phone", at)
	createPasskey(t, s, bob.ID, "bob's", at)
	want("with passkeys", alice.ID, keycard.MFAFactors{TOTP: true, RecoveryCodesLeft: keycard.RecoveryCodeCount - 1, Passkeys: 2})
	if err := s.MFA.DeleteTOTP(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	want("after the app is removed", alice.ID, keycard.MFAFactors{Passkeys: 2})
	want("of the other user", bob.ID, keycard.MFAFactors{Passkeys: 1})
}
