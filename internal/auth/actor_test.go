package auth

import (
	"context"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
)

// TestActorsInTheAuditLog: every kind of actor is recorded as the actor of
// the state changes it asks for, with where it asked from, and only an
// admin acting on their own account is held back by the self-protection
// checks.
func TestActorsInTheAuditLog(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	admin := f.admin(t, "root")
	f.user(t, "alice")
	alice, err := f.svc.UserByName(ctx, "ALICE")
	if err != nil {
		t.Fatal(err)
	}
	from := Agent{UserAgent: strings.Repeat("u", maxUserAgent+10), Addr: "192.0.2.1"}
	svcClient, _, err := f.svc.CreateClient(ctx, System(), ClientSpec{Name: "svc", Scopes: nil, Audiences: nil})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		by        Actor
		wantActor string
		wantAddr  string
	}{
		{"admin", AdminActor(admin, from), admin.User.ID, "192.0.2.1"},
		{"operator", Operator(), "cli", ""},
		{"system", System(), "system", ""},
		{"client", ClientActor(svcClient, from), svcClient.ID, "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.svc.SetUserDisabled(ctx, tc.by, alice.ID, true); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.SetUserDisabled(ctx, tc.by, alice.ID, false); err != nil {
				t.Fatal(err)
			}
			events, err := f.svc.AuditEvents(ctx, keycard.AuditFilter{Type: AuditUserDisabled, Limit: 1})
			if err != nil || len(events) != 1 {
				t.Fatalf("audit: %v, %v", events, err)
			}
			e := events[0]
			if e.Actor != tc.wantActor || e.Subject != alice.ID || e.ClientAddr != tc.wantAddr {
				t.Errorf("got actor %q subject %q address %q, want %q %q %q", e.Actor, e.Subject, e.ClientAddr, tc.wantActor, alice.ID, tc.wantAddr)
			}
			if len(e.UserAgent) > maxUserAgent {
				t.Errorf("user agent of %d bytes recorded, want at most %d", len(e.UserAgent), maxUserAgent)
			}
		})
	}
	// A user's own sign-in is theirs, with where it came from.
	if _, err := f.svc.Login(ctx, "alice", "correct horse battery", from); err != nil {
		t.Fatal(err)
	}
	if events, err := f.svc.AuditEvents(ctx, keycard.AuditFilter{Type: keycard.AuditLoginSucceeded, Limit: 1}); err != nil || len(events) != 1 ||
		events[0].Actor != alice.ID || events[0].ClientAddr != "192.0.2.1" {
		t.Errorf("login audit: %+v, %v; want alice from 192.0.2.1", events, err)
	}
	// An admin may not disable their own account; the command line may.
	if _, err := f.svc.SetUserDisabled(ctx, AdminActor(admin, Agent{}), admin.User.ID, true); keycard.ErrorCode(err) != keycard.ECONFLICT {
		t.Errorf("admin disabling themselves: got %v, want ECONFLICT", err)
	}
	if _, err := f.svc.SetUserDisabled(ctx, Operator(), admin.User.ID, true); err != nil {
		t.Errorf("the operator disabling an admin: %v", err)
	}
}
