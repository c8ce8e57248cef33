package storetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// codeHashes returns n distinct recovery-code hashes labelled by tag.
func codeHashes(tag string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		h := sha256.Sum256(fmt.Appendf(nil, "%s-%d", tag, i))
		out[i] = h[:]
	}
	return out
}

func testMFA(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	alice := createUser(t, s, "alice")
	bob := createUser(t, s, "bob")

	_, err := s.MFA.TOTP(ctx, alice.ID)
	wantCode(t, "TOTP before enrolment", err, keycard.ENOTFOUND)
	wantCode(t, "UseTOTPStep without a credential", s.MFA.UseTOTPStep(ctx, alice.ID, 5), keycard.ENOTFOUND)
	wantCode(t, "DeleteTOTP without a credential", s.MFA.DeleteTOTP(ctx, alice.ID), keycard.ENOTFOUND)
	wantCode(t, "ConfirmTOTP without a credential", s.MFA.ConfirmTOTP(ctx, alice.ID, 5, codeHashes("a", 10), t0), keycard.ENOTFOUND)

	// Bad input.
	wantCode(t, "PutPendingTOTP without a user", s.MFA.PutPendingTOTP(ctx, &keycard.TOTPCredential{SecretSealed: []byte("s"), CreatedAt: t0}), keycard.EINVALID)
	wantCode(t, "PutPendingTOTP without a secret", s.MFA.PutPendingTOTP(ctx, &keycard.TOTPCredential{UserID: alice.ID, CreatedAt: t0}), keycard.EINVALID)
	wantCode(t, "PutPendingTOTP for an unknown user", s.MFA.PutPendingTOTP(ctx, &keycard.TOTPCredential{UserID: id(t), SecretSealed: []byte("s"), CreatedAt: t0}), keycard.ENOTFOUND)

	// Pending, replaced by a second enrolment, then confirmed.
	if err := s.MFA.PutPendingTOTP(ctx, &keycard.TOTPCredential{UserID: alice.ID, SecretSealed: []byte("first"), CreatedAt: t0}); err != nil {
		t.Fatalf("PutPendingTOTP: %v", err)
	}
	at := t0.Add(time.Minute)
	if err := s.MFA.PutPendingTOTP(ctx, &keycard.TOTPCredential{UserID: alice.ID, SecretSealed: []byte("second"), CreatedAt: at}); err != nil {
		t.Fatalf("PutPendingTOTP again: %v", err)
	}
	c, err := s.MFA.TOTP(ctx, alice.ID)
	if err != nil {
		t.Fatalf("TOTP: %v", err)
	}
	check(t, "pending secret", string(c.SecretSealed), "second")
	check(t, "pending CreatedAt", c.CreatedAt, at)
	check(t, "pending confirmed", c.Confirmed(), false)
	wantCode(t, "UseTOTPStep on a pending credential", s.MFA.UseTOTPStep(ctx, alice.ID, 5), keycard.ENOTFOUND)

	wantCode(t, "ConfirmTOTP with an empty code hash", s.MFA.ConfirmTOTP(ctx, alice.ID, 100, [][]byte{{1}, {}}, at), keycard.EINVALID)
	wantCode(t, "ConfirmTOTP with a repeated code hash", s.MFA.ConfirmTOTP(ctx, alice.ID, 100, [][]byte{{1}, {1}}, at), keycard.EINVALID)
	if err := s.MFA.ConfirmTOTP(ctx, alice.ID, 100, codeHashes("alice", keycard.RecoveryCodeCount), at); err != nil {
		t.Fatalf("ConfirmTOTP: %v", err)
	}
	c, err = s.MFA.TOTP(ctx, alice.ID)
	if err != nil {
		t.Fatalf("TOTP: %v", err)
	}
	check(t, "confirmed", c.Confirmed(), true)
	check(t, "ConfirmedAt", c.ConfirmedAt, at)
	check(t, "LastStep", c.LastStep, int64(100))
	wantCode(t, "ConfirmTOTP twice", s.MFA.ConfirmTOTP(ctx, alice.ID, 101, codeHashes("x", 1), at), keycard.ENOTFOUND)
	wantCode(t, "PutPendingTOTP over a confirmed credential", s.MFA.PutPendingTOTP(ctx, &keycard.TOTPCredential{UserID: alice.ID, SecretSealed: []byte("third"), CreatedAt: at}), keycard.ECONFLICT)
	if n, err := s.MFA.RecoveryCodesLeft(ctx, alice.ID); err != nil || n != keycard.RecoveryCodeCount {
		t.Errorf("RecoveryCodesLeft = %d, %v; want %d", n, err, keycard.RecoveryCodeCount)
	}

	// A step is accepted once, and only after the last.
	wantCode(t, "UseTOTPStep of the confirming step", s.MFA.UseTOTPStep(ctx, alice.ID, 100), keycard.EUNAUTHORIZED)
	wantCode(t, "UseTOTPStep of an earlier step", s.MFA.UseTOTPStep(ctx, alice.ID, 99), keycard.EUNAUTHORIZED)
	if err := s.MFA.UseTOTPStep(ctx, alice.ID, 101); err != nil {
		t.Fatalf("UseTOTPStep(101): %v", err)
	}
	wantCode(t, "UseTOTPStep replayed", s.MFA.UseTOTPStep(ctx, alice.ID, 101), keycard.EUNAUTHORIZED)
	if c, _ := s.MFA.TOTP(ctx, alice.ID); c == nil || c.LastStep != 101 {
		t.Errorf("LastStep after use: %+v", c)
	}

	// Concurrent uses of one step: exactly one succeeds.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.MFA.UseTOTPStep(ctx, alice.ID, 200) == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	check(t, "concurrent UseTOTPStep successes", wins, 1)

	// Recovery codes: each once; bob cannot use alice's.
	codes := codeHashes("alice", keycard.RecoveryCodeCount)
	wantCode(t, "UseRecoveryCode of another user's code", s.MFA.UseRecoveryCode(ctx, bob.ID, codes[0], at), keycard.EUNAUTHORIZED)
	if err := s.MFA.UseRecoveryCode(ctx, alice.ID, codes[0], at); err != nil {
		t.Fatalf("UseRecoveryCode: %v", err)
	}
	wantCode(t, "UseRecoveryCode twice", s.MFA.UseRecoveryCode(ctx, alice.ID, codes[0], at), keycard.EUNAUTHORIZED)
	wantCode(t, "UseRecoveryCode of an unknown code", s.MFA.UseRecoveryCode(ctx, alice.ID, codeHashes("other", 1)[0], at), keycard.EUNAUTHORIZED)
	if n, _ := s.MFA.RecoveryCodesLeft(ctx, alice.ID); n != keycard.RecoveryCodeCount-1 {
		t.Errorf("RecoveryCodesLeft after a use = %d", n)
	}
	wins = 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.MFA.UseRecoveryCode(ctx, alice.ID, codes[1], at) == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	check(t, "concurrent UseRecoveryCode successes", wins, 1)

	// Regenerating invalidates the old set, used or not.
	fresh := codeHashes("alice-2", keycard.RecoveryCodeCount)
	if err := s.MFA.ReplaceRecoveryCodes(ctx, alice.ID, fresh, at); err != nil {
		t.Fatalf("ReplaceRecoveryCodes: %v", err)
	}
	wantCode(t, "UseRecoveryCode of a replaced code", s.MFA.UseRecoveryCode(ctx, alice.ID, codes[5], at), keycard.EUNAUTHORIZED)
	if n, _ := s.MFA.RecoveryCodesLeft(ctx, alice.ID); n != keycard.RecoveryCodeCount {
		t.Errorf("RecoveryCodesLeft after regenerating = %d", n)
	}
	if err := s.MFA.UseRecoveryCode(ctx, alice.ID, fresh[3], at); err != nil {
		t.Errorf("UseRecoveryCode of a new code: %v", err)
	}
	wantCode(t, "ReplaceRecoveryCodes for an unknown user", s.MFA.ReplaceRecoveryCodes(ctx, id(t), fresh, at), keycard.ENOTFOUND)
	wantCode(t, "ReplaceRecoveryCodes with a repeated hash", s.MFA.ReplaceRecoveryCodes(ctx, alice.ID, [][]byte{{2}, {2}}, at), keycard.EINVALID)

	// Removal takes the recovery codes with it.
	if err := s.MFA.DeleteTOTP(ctx, alice.ID); err != nil {
		t.Fatalf("DeleteTOTP: %v", err)
	}
	_, err = s.MFA.TOTP(ctx, alice.ID)
	wantCode(t, "TOTP after DeleteTOTP", err, keycard.ENOTFOUND)
	if n, _ := s.MFA.RecoveryCodesLeft(ctx, alice.ID); n != 0 {
		t.Errorf("RecoveryCodesLeft after DeleteTOTP = %d", n)
	}
	wantCode(t, "UseRecoveryCode after DeleteTOTP", s.MFA.UseRecoveryCode(ctx, alice.ID, fresh[4], at), keycard.EUNAUTHORIZED)

	// Deleting the user deletes its second factors.
	if err := s.MFA.PutPendingTOTP(ctx, &keycard.TOTPCredential{UserID: bob.ID, SecretSealed: []byte("bob"), CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.MFA.ConfirmTOTP(ctx, bob.ID, 7, codeHashes("bob", 2), at); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Users.DeleteUser(ctx, bob.ID, at); err != nil {
		t.Fatal(err)
	}
	_, err = s.MFA.TOTP(ctx, bob.ID)
	wantCode(t, "TOTP of a deleted user", err, keycard.ENOTFOUND)
	if n, _ := s.MFA.RecoveryCodesLeft(ctx, bob.ID); n != 0 {
		t.Errorf("RecoveryCodesLeft of a deleted user = %d", n)
	}
}
