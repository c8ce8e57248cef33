package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/throttle"
	"github.com/keycard-auth/keycard/jose"
)

// otpCode computes the code of a base32 secret at t with
// github.com/pquerna/otp, an implementation independent of ours.
func otpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := pqtotp.GenerateCodeCustom(secret, at, pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// enrolTOTP signs name in and sets up an authenticator app; it returns
// the base32 secret and the recovery codes.
func enrolTOTP(t *testing.T, svc *Service, clk *clock, name string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	tok, err := svc.Login(ctx, name, "correct horse battery", Agent{})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	p, err := svc.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	e, err := svc.BeginTOTP(ctx, p)
	if err != nil {
		t.Fatalf("BeginTOTP: %v", err)
	}
	again, err := svc.BeginTOTP(ctx, p)
	if err != nil || again.Secret != e.Secret {
		t.Fatalf("BeginTOTP again: %v, same secret %v", err, err == nil && again.Secret == e.Secret)
	}
	if _, err := svc.ConfirmTOTP(ctx, p, "000000", Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED && otpCode(t, e.Secret, clk.Now()) != "000000" {
		t.Fatalf("ConfirmTOTP with a wrong code: %v", err)
	}
	codes, err := svc.ConfirmTOTP(ctx, p, otpCode(t, e.Secret, clk.Now()), Agent{})
	if err != nil {
		t.Fatalf("ConfirmTOTP: %v", err)
	}
	if len(codes) != keycard.RecoveryCodeCount {
		t.Fatalf("got %d recovery codes", len(codes))
	}
	if _, err := svc.BeginTOTP(ctx, p); keycard.ErrorCode(err) != keycard.ECONFLICT {
		t.Fatalf("BeginTOTP after confirming: %v, want ECONFLICT", err)
	}
	return e.Secret, codes
}

// mfaToken signs in with the password and returns the MFA step's error.
func mfaToken(t *testing.T, svc *Service, name string) *MFARequiredError {
	t.Helper()
	_, err := svc.Login(context.Background(), name, "correct horse battery", Agent{})
	var mfa *MFARequiredError
	if !errors.As(err, &mfa) {
		t.Fatalf("Login: %v, want an MFARequiredError", err)
	}
	if keycard.ErrorCode(err) != keycard.EFORBIDDEN {
		t.Errorf("MFARequiredError code %q, want EFORBIDDEN for callers that know no MFA step", keycard.ErrorCode(err))
	}
	return mfa
}

func sessionAMR(t *testing.T, svc *Service, sid string) []string {
	t.Helper()
	sess, err := svc.stores.Sessions.Session(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	return sess.AMR
}

// refused checks that err is the refusal of a wrong proof and returns
// the next token.
func refused(t *testing.T, err error, what string) string {
	t.Helper()
	var e *InvalidMFAProofError
	if !errors.As(err, &e) || keycard.ErrorCode(err) != keycard.EUNAUTHORIZED || e.Token == "" {
		t.Fatalf("%s: %v, want an InvalidMFAProofError", what, err)
	}
	return e.Token
}

func TestMFASignInWithTOTP(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	secret, _ := enrolTOTP(t, f.svc, f.clock, "alice")

	mfa := mfaToken(t, f.svc, "alice")
	if !slices.Equal(mfa.Factors, []string{FactorTOTP, FactorRecoveryCode}) || mfa.Enroll || mfa.ExpiresIn != MFATokenLifetime {
		t.Errorf("MFARequiredError %+v", mfa)
	}
	// The code that confirmed the app was of this step: it is used.
	f.clock.Advance(30 * time.Second)
	_, err := f.svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: "12345"}, Agent{})
	next := refused(t, err, "a 5-digit code")
	code := otpCode(t, secret, f.clock.Now())
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	// The refused token is used up; the new one works.
	if _, err := f.svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: code}, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED || errors.As(err, new(*InvalidMFAProofError)) {
		t.Errorf("the token of a refused attempt: %v", err)
	}
	_, err = f.svc.CompleteMFA(ctx, next, MFAProof{Code: wrong}, Agent{})
	next = refused(t, err, "a wrong code")
	res, err := f.svc.CompleteMFA(ctx, next, MFAProof{Code: code}, Agent{})
	if err != nil {
		t.Fatalf("CompleteMFA: %v", err)
	}
	if res.Factor != FactorTOTP || res.Reauthenticated || res.Tokens.RefreshToken == "" {
		t.Errorf("result %+v", res)
	}
	if got := sessionAMR(t, f.svc, res.Tokens.SessionID); !slices.Equal(got, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("session AMR %v, want [pwd otp mfa]", got)
	}
	// The token is used up; the code is used up (replay), even with a
	// new token.
	if _, err := f.svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: otpCode(t, secret, f.clock.Now().Add(30*time.Second))}, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("reused MFA token: %v", err)
	}
	mfa2 := mfaToken(t, f.svc, "alice")
	_, err = f.svc.CompleteMFA(ctx, mfa2.Token, MFAProof{Code: code}, Agent{})
	next = refused(t, err, "a replayed code")
	// The next step's code works (clock skew ±1 step).
	if _, err := f.svc.CompleteMFA(ctx, next, MFAProof{Factor: FactorTOTP, Code: otpCode(t, secret, f.clock.Now().Add(30*time.Second))}, Agent{}); err != nil {
		t.Errorf("the next step's code: %v", err)
	}
}

func TestMFATokenRefused(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	secret, _ := enrolTOTP(t, f.svc, f.clock, "alice")
	mfa := mfaToken(t, f.svc, "alice")
	tampered := []byte(mfa.Token)
	tampered[len(tampered)-3] ^= 1
	for name, tok := range map[string]string{
		"empty": "", "garbage": "mfa1.!!!", "no prefix": mfa.Token[len(mfaTokenPrefix):], "tampered": string(tampered),
		"too long": mfa.Token + string(make([]byte, maxMFATokenLen)),
	} {
		if _, err := f.svc.CompleteMFA(ctx, tok, MFAProof{Code: "123456"}, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
			t.Errorf("%s token: %v, want EUNAUTHORIZED", name, err)
		}
	}
	// Expired.
	f.clock.Advance(MFATokenLifetime)
	if _, err := f.svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: otpCode(t, secret, f.clock.Now())}, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("expired token: %v", err)
	}
	// The password changed since.
	mfa = mfaToken(t, f.svc, "alice")
	u, _ := f.svc.UserByName(ctx, "alice")
	f.clock.Advance(time.Second)
	if err := f.svc.SetPassword(ctx, Operator(), u.ID, "another good password", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: otpCode(t, secret, f.clock.Now())}, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("token of a changed password: %v", err)
	}
}

func TestMFARecoveryCodes(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	_, codes := enrolTOTP(t, f.svc, f.clock, "alice")
	mfa := mfaToken(t, f.svc, "alice")
	// Typed in capitals, without hyphens: the same code.
	typed := ""
	for _, r := range codes[0] {
		if r != '-' {
			typed += string(r - 'a' + 'A')
			if r >= '2' && r <= '7' {
				typed = typed[:len(typed)-1] + string(r)
			}
		}
	}
	res, err := f.svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: typed}, Agent{})
	if err != nil {
		t.Fatalf("CompleteMFA with a recovery code %q: %v", typed, err)
	}
	if res.Factor != FactorRecoveryCode || res.RecoveryCodesLeft != keycard.RecoveryCodeCount-1 {
		t.Errorf("result %+v", res)
	}
	if got := sessionAMR(t, f.svc, res.Tokens.SessionID); !slices.Equal(got, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("session AMR %v", got)
	}
	mfa = mfaToken(t, f.svc, "alice")
	_, err = f.svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: codes[0]}, Agent{})
	next := refused(t, err, "a used recovery code")
	// Regenerating invalidates the old set.
	tok, err := f.svc.CompleteMFA(ctx, next, MFAProof{Factor: FactorRecoveryCode, Code: codes[1]}, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Authenticate(ctx, tok.Tokens.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := f.svc.RegenerateRecoveryCodes(ctx, p, Agent{})
	if err != nil || len(fresh) != keycard.RecoveryCodeCount {
		t.Fatalf("RegenerateRecoveryCodes: %d, %v", len(fresh), err)
	}
	mfa = mfaToken(t, f.svc, "alice")
	_, err = f.svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: codes[2]}, Agent{})
	next = refused(t, err, "an old recovery code after regenerating")
	if _, err := f.svc.CompleteMFA(ctx, next, MFAProof{Code: fresh[2]}, Agent{}); err != nil {
		t.Errorf("a new recovery code: %v", err)
	}
	// Audit: enrolment, each use, the regeneration.
	events, err := f.svc.AuditEvents(ctx, keycard.AuditFilter{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range events {
		count[e.Type]++
	}
	if count[AuditMFAEnrolled] != 1 || count[AuditRecoveryCodeUsed] != 3 || count[AuditRecoveryCodesRegenerated] != 1 {
		t.Errorf("audit counts %v", count)
	}
}

func TestMFAThrottled(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	svc, _ := throttledService(t, f, throttle.Policy{Burst: 3, BaseDelay: time.Minute}, throttle.Policy{Burst: 100})
	secret, _ := enrolTOTP(t, svc, f.clock, "alice")
	mfa := mfaToken(t, svc, "alice")
	code := otpCode(t, secret, f.clock.Now().Add(30*time.Second))
	// The wrong code at enrolment counted once: two more are allowed.
	tok := mfa.Token
	for i := range 2 {
		_, err := svc.CompleteMFA(ctx, tok, MFAProof{Code: "abcdefghijklmnop"}, Agent{})
		tok = refused(t, err, fmt.Sprint("attempt ", i))
	}
	_, err := svc.CompleteMFA(ctx, tok, MFAProof{Code: code}, Agent{})
	var te *ThrottledError
	if !errors.As(err, &te) || te.RetryAfter < time.Second || keycard.ErrorCode(err) != keycard.ETHROTTLED {
		t.Fatalf("fourth attempt: %v, want throttled", err)
	}
	// A new password sign-in does not reset the second factor's count.
	mfa = mfaToken(t, svc, "alice")
	if _, err := svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: code}, Agent{}); !errors.As(err, &te) {
		t.Fatalf("after a new password sign-in: %v, want throttled", err)
	}
	f.clock.Advance(te.RetryAfter)
	if _, err := svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: otpCode(t, secret, f.clock.Now())}, Agent{}); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
}

func TestMFAPolicyEnrollment(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	cfg := f.svc.cfg
	cfg.RequireMFAForRoles = []string{"admin"}
	svc, err := NewService(Deps{Stores: f.db.Stores(), Keys: f.svc.keys, Sealer: f.svc.sealer, Hasher: fastHasher, Now: f.clock.Now}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Register(ctx, "root", "correct horse battery", []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Register(ctx, "bob", "correct horse battery", []string{"user"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(ctx, "bob", "correct horse battery", Agent{}); err != nil {
		t.Errorf("a user outside the policy: %v", err)
	}
	mfa := mfaToken(t, svc, "root")
	if !mfa.Enroll || !slices.Equal(mfa.Factors, []string{FactorTOTP}) {
		t.Fatalf("MFARequiredError %+v, want enrolment", mfa)
	}
	_, err = svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: "123456"}, Agent{})
	var ie *InvalidMFAProofError
	if !errors.As(err, &ie) || keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Fatalf("CompleteMFA before beginning the enrolment: %v", err)
	}
	if _, err := svc.BeginTOTPWithMFAToken(ctx, mfa.Token); err != nil {
		t.Errorf("BeginTOTPWithMFAToken with a used token (it only shows the secret): %v", err)
	}
	e, err := svc.BeginTOTPWithMFAToken(ctx, ie.Token)
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.CompleteMFA(ctx, ie.Token, MFAProof{Code: otpCode(t, e.Secret, f.clock.Now())}, Agent{})
	if err != nil {
		t.Fatalf("CompleteMFA of the enrolment: %v", err)
	}
	if len(res.RecoveryCodes) != keycard.RecoveryCodeCount || res.Tokens.AccessToken == "" {
		t.Errorf("result %+v", res)
	}
	if got := sessionAMR(t, svc, res.Tokens.SessionID); !slices.Equal(got, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("AMR %v", got)
	}
	// The policy forbids removing it oneself; an admin can.
	p, _ := svc.Authenticate(ctx, res.Tokens.AccessToken)
	if err := svc.RemoveTOTP(ctx, p, Agent{}); keycard.ErrorCode(err) != keycard.EFORBIDDEN {
		t.Errorf("RemoveTOTP under the policy: %v", err)
	}
	if err := svc.RemoveSecondFactors(ctx, AdminActor(p, Agent{}), p.User.ID); err != nil {
		t.Fatalf("RemoveSecondFactors: %v", err)
	}
	if err := svc.RemoveSecondFactors(ctx, AdminActor(p, Agent{}), p.User.ID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("RemoveSecondFactors again: %v", err)
	}
	if mfa := mfaToken(t, svc, "root"); !mfa.Enroll {
		t.Errorf("after removal: %+v, want enrolment again", mfa)
	}
	if _, err := svc.BeginTOTPWithMFAToken(ctx, "mfa1.forged"); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("BeginTOTPWithMFAToken with a forged token: %v", err)
	}
}

func TestMFAReauthenticate(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	secret, _ := enrolTOTP(t, f.svc, f.clock, "alice")
	mfa := mfaToken(t, f.svc, "alice")
	f.clock.Advance(30 * time.Second)
	first, err := f.svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: otpCode(t, secret, f.clock.Now())}, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	_, err = f.svc.Reauthenticate(ctx, first.Tokens.SessionID, "alice", "correct horse battery", Agent{})
	var again *MFARequiredError
	if !errors.As(err, &again) {
		t.Fatalf("Reauthenticate: %v, want the MFA step", err)
	}
	res, err := f.svc.CompleteMFA(ctx, again.Token, MFAProof{Code: otpCode(t, secret, f.clock.Now())}, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reauthenticated || res.Tokens.SessionID != first.Tokens.SessionID || res.Tokens.RefreshToken != "" {
		t.Errorf("result %+v, want the same session renewed", res)
	}
	sess, _ := f.svc.stores.Sessions.Session(ctx, first.Tokens.SessionID)
	if !sess.AuthTime.Equal(f.clock.Now()) || !slices.Equal(sess.AMR, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("session auth time %v amr %v", sess.AuthTime, sess.AMR)
	}
}

// TestMFAEnrolledWebhook: an enrolment's audit event is delivered as the
// mfa.enrolled webhook with its method; nothing secret in the body.
func TestMFAEnrolledWebhook(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	if _, err := f.svc.CreateWebhook(ctx, Operator(), WebhookSpec{URL: "http://127.0.0.1:9/hook", Events: []string{keycard.WebhookMFAEnrolled}}); err != nil {
		t.Fatal(err)
	}
	f.user(t, "alice")
	secret, codes := enrolTOTP(t, f.svc, f.clock, "alice")
	ds, err := f.svc.WebhookDeliveries(ctx, keycard.WebhookFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].EventType != keycard.WebhookMFAEnrolled {
		t.Fatalf("deliveries %+v, want one mfa.enrolled", ds)
	}
	body, err := f.svc.WebhookBody(ds[0])
	if err != nil {
		t.Fatal(err)
	}
	u, _ := f.svc.UserByName(ctx, "alice")
	if want := `"data":{"method":"totp","user_id":"` + u.ID + `"}`; !strings.Contains(string(body), want) {
		t.Errorf("body %s, want %s", body, want)
	}
	if strings.Contains(string(body), secret) || strings.Contains(string(body), codes[0]) {
		t.Error("the webhook body holds a secret")
	}
}
