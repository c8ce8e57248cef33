package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// testRotateAudit checks that RotateRequest.Audit is appended with a real
// rotation, in its transaction, and not for a replay, a theft or a failure.
func testRotateAudit(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "rotor")
	_, tok := createSession(t, s, u.ID, t0)
	event := func() *keycard.AuditEvent {
		return &keycard.AuditEvent{Time: t0.Add(time.Minute), Type: keycard.AuditRefresh, ClientAddr: "192.0.2.7", UserAgent: "ua"}
	}
	rotate := func(tok *keycard.RefreshToken, at time.Time) (*keycard.RotateResult, error) {
		return s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
			TokenID: tok.ID, SecretHash: tok.SecretHash, Now: at, Grace: 10 * time.Second,
			Successor: *newToken(t), SuccessorSealed: []byte("sealed"), Audit: event(),
		})
	}
	count := func() []*keycard.AuditEvent {
		t.Helper()
		evs, err := s.Audit.ListAudit(ctx, keycard.AuditFilter{Type: keycard.AuditRefresh})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}

	if res, err := rotate(tok, t0.Add(time.Minute)); err != nil || res.Outcome != keycard.Rotated {
		t.Fatalf("rotate: %v, %v; want Rotated", res, err)
	}
	evs := count()
	if len(evs) != 1 {
		t.Fatalf("audit events after a rotation: got %d, want 1", len(evs))
	}
	if e := evs[0]; e.Actor != u.ID || e.Subject != u.ID || e.ClientAddr != "192.0.2.7" || e.UserAgent != "ua" || !e.Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("audit event: got %+v, want actor and subject %s and the request's client", e, u.ID)
	}

	// A replay within the grace window and a theft after it record no
	// rotation; an unknown token records nothing either.
	if res, err := rotate(tok, t0.Add(time.Minute+time.Second)); err != nil || res.Outcome != keycard.Replayed {
		t.Fatalf("replay: %v, %v; want Replayed", res, err)
	}
	if res, err := rotate(tok, t0.Add(time.Hour)); err != nil || res.Outcome != keycard.TheftDetected {
		t.Fatalf("reuse: %v, %v; want TheftDetected", res, err)
	}
	if _, err := rotate(newToken(t), t0.Add(time.Hour)); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Fatalf("unknown token: %v; want EUNAUTHORIZED", err)
	}
	if n := len(count()); n != 1 {
		t.Errorf("audit events after replay, theft and an unknown token: got %d, want still 1", n)
	}
}
