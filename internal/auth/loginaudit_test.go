package auth

import (
	"context"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
)

// TestSignInAuditWithSession checks that a sign-in's login.succeeded event,
// written in its session's transaction, names that session and how the
// user signed in, once: with the password, and with the password and a
// second factor.
func TestSignInAuditWithSession(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, jose.ES256)
	f.user(t, "alice")
	f.user(t, "bob")
	events := func() []*keycard.AuditEvent {
		t.Helper()
		evs, err := f.svc.AuditEvents(ctx, keycard.AuditFilter{Type: keycard.AuditLoginSucceeded})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	before := len(events())
	tok, err := f.svc.Login(ctx, "bob", "correct horse battery", Agent{Addr: "192.0.2.4"})
	if err != nil {
		t.Fatal(err)
	}
	evs := events()
	if len(evs) != before+1 || evs[0].Actor == "" || evs[0].Subject != evs[0].Actor || evs[0].ClientAddr != "192.0.2.4" ||
		string(evs[0].Detail) != `{"session":"`+tok.SessionID+`"}` {
		t.Fatalf("after a password login: %d events, newest %+v; want one more, of session %s", len(evs), evs[0], tok.SessionID)
	}

	secret, _ := enrolTOTP(t, f.svc, f.clock, "alice") // signs alice in once
	before = len(events())
	mfa := mfaToken(t, f.svc, "alice")
	if got := len(events()); got != before {
		t.Fatalf("%d login.succeeded events after the password step alone, want %d", got, before)
	}
	f.clock.Advance(30 * time.Second)
	res, err := f.svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: otpCode(t, secret, f.clock.Now())}, Agent{})
	if err != nil {
		t.Fatalf("CompleteMFA: %v", err)
	}
	evs = events()
	if len(evs) != before+1 || string(evs[0].Detail) != `{"method":"totp","session":"`+res.Tokens.SessionID+`"}` {
		t.Errorf("after the second factor: %d events, newest %s; want one more, of session %s by totp", len(evs), evs[0].Detail, res.Tokens.SessionID)
	}
}
