package auth

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
)

// admin registers an admin and returns them as a principal of a login.
func (f *fixture) admin(t *testing.T, name string) *Principal {
	t.Helper()
	ctx := context.Background()
	if _, err := f.svc.Register(ctx, name, "correct horse battery", []string{RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	tok, err := f.svc.Login(ctx, name, "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lastAudit returns the newest audit event of the type.
func (f *fixture) lastAudit(t *testing.T, typ string) *keycard.AuditEvent {
	t.Helper()
	events, err := f.svc.AuditEvents(context.Background(), keycard.AuditFilter{Type: typ, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("no %s audit event", typ)
	}
	return events[0]
}

func TestAdminUsers(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	admin := f.admin(t, "root")
	from := Agent{Addr: "192.0.2.9", UserAgent: "admin-test"}
	f.user(t, "Alice")
	f.user(t, "alfred")
	f.user(t, "bob")

	users, err := f.svc.ListUsers(ctx, "AL", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Username)
	}
	if want := []string{"alfred", "Alice"}; !slices.Equal(names, want) {
		t.Errorf("ListUsers(prefix AL): got %v, want %v", names, want)
	}
	if _, err := f.svc.ListUsers(ctx, "a b", "", 0); keycard.ErrorCode(err) != keycard.EINVALID {
		t.Errorf("ListUsers(prefix with a space): got %v, want EINVALID", err)
	}

	alice, err := f.svc.stores.Users.UserByUsername(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}

	// Disabling revokes the sessions; the event names the admin.
	u, err := f.svc.SetUserDisabled(ctx, AdminActor(admin, from), alice.ID, true)
	if err != nil || !u.Disabled {
		t.Fatalf("SetUserDisabled(true) = %v, %v; want a disabled user", u, err)
	}
	if _, err := f.svc.Refresh(ctx, tok.RefreshToken, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("Refresh after disable: got %v, want EUNAUTHORIZED", err)
	}
	e := f.lastAudit(t, AuditUserDisabled)
	if e.Actor != admin.User.ID || e.Subject != alice.ID || e.ClientAddr != from.Addr || e.UserAgent != from.UserAgent {
		t.Errorf("disable audit event %+v, want actor %s, subject %s, from %v", e, admin.User.ID, alice.ID, from)
	}
	if u, err = f.svc.SetUserDisabled(ctx, AdminActor(admin, from), alice.ID, false); err != nil || u.Disabled {
		t.Errorf("SetUserDisabled(false) = %v, %v; want an enabled user", u, err)
	}

	// Self-protection.
	for name, err := range map[string]error{
		"disable self": func() error {
			_, err := f.svc.SetUserDisabled(ctx, AdminActor(admin, from), admin.User.ID, true)
			return err
		}(),
		"delete self": f.svc.DeleteUser(ctx, AdminActor(admin, from), admin.User.ID),
		"drop own admin": func() error {
			_, err := f.svc.SetUserRoles(ctx, AdminActor(admin, from), admin.User.ID, []string{"user"})
			return err
		}(),
		"unknown user": func() error {
			_, err := f.svc.SetUserDisabled(ctx, AdminActor(admin, from), "nobody", true)
			return err
		}(),
		"bad role": func() error {
			_, err := f.svc.SetUserRoles(ctx, AdminActor(admin, from), alice.ID, []string{"has space"})
			return err
		}(),
		"delete unknown": f.svc.DeleteUser(ctx, AdminActor(admin, from), "nobody"),
		"roles of unknown": func() error {
			_, err := f.svc.SetUserRoles(ctx, AdminActor(admin, from), "nobody", []string{"x"})
			return err
		}(),
	} {
		want := map[string]string{
			"disable self": keycard.ECONFLICT, "delete self": keycard.ECONFLICT, "drop own admin": keycard.ECONFLICT,
			"unknown user": keycard.ENOTFOUND, "bad role": keycard.EINVALID, "delete unknown": keycard.ENOTFOUND,
			"roles of unknown": keycard.ENOTFOUND,
		}[name]
		if got := keycard.ErrorCode(err); got != want {
			t.Errorf("%s: got %q (%v), want %q", name, got, err, want)
		}
	}

	// Roles: deduplicated, audited with old and new.
	if u, err = f.svc.SetUserRoles(ctx, AdminActor(admin, from), alice.ID, []string{"editor", "viewer", "editor"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"editor", "viewer"}; !slices.Equal(u.Roles, want) {
		t.Errorf("SetUserRoles: got roles %v, want %v", u.Roles, want)
	}
	if e := f.lastAudit(t, AuditUserRolesChanged); string(e.Detail) != `{"old_roles":["user"],"roles":["editor","viewer"]}` {
		t.Errorf("roles audit detail %s", e.Detail)
	}

	// Delete revokes, then deletes.
	tok, err = f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteUser(ctx, AdminActor(admin, from), alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.User(ctx, alice.ID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("User(deleted): got %v, want ENOTFOUND", err)
	}
	if _, err := f.svc.Refresh(ctx, tok.RefreshToken, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("Refresh after delete: got %v, want EUNAUTHORIZED", err)
	}
	if e := f.lastAudit(t, AuditUserDeleted); e.Actor != admin.User.ID || e.Subject != alice.ID {
		t.Errorf("delete audit event %+v", e)
	}
	// A user cut-off is in the feed, for tokens of sessions that had
	// ended already (and so were not revoked again).
	if ok, err := f.db.Stores().Revocations.HasRevocation(ctx, keycard.RevokeUser, alice.ID); err != nil || !ok {
		t.Errorf("no user cut-off in the feed after delete: %v %v", ok, err)
	}
}

func TestAdminSessions(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	admin := f.admin(t, "root")
	f.user(t, "alice")
	f.user(t, "bob")
	alice, _ := f.svc.stores.Users.UserByUsername(ctx, "alice")
	bob, _ := f.svc.stores.Users.UserByUsername(ctx, "bob")
	var toks []*Tokens
	for range 3 {
		tok, err := f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	bobTok, err := f.svc.Login(ctx, "bob", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}

	list, err := f.svc.UserSessions(ctx, alice.ID, "", 0)
	if err != nil || len(list) != 3 {
		t.Fatalf("UserSessions = %d sessions, %v; want 3", len(list), err)
	}
	if _, err := f.svc.UserSessions(ctx, "nobody", "", 0); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("UserSessions(unknown user): got %v, want ENOTFOUND", err)
	}
	// Bob's session is not Alice's.
	if err := f.svc.RevokeUserSession(ctx, AdminActor(admin, Agent{}), alice.ID, bobTok.SessionID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("RevokeUserSession(other user's session): got %v, want ENOTFOUND", err)
	}
	if err := f.svc.RevokeUserSession(ctx, AdminActor(admin, Agent{}), alice.ID, toks[0].SessionID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Refresh(ctx, toks[0].RefreshToken, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("Refresh of a revoked session: got %v, want EUNAUTHORIZED", err)
	}
	n, err := f.svc.RevokeUserSessions(ctx, AdminActor(admin, Agent{}), alice.ID)
	if err != nil || n != 2 {
		t.Errorf("RevokeUserSessions = %d, %v; want 2", n, err)
	}
	if list, _ := f.svc.UserSessions(ctx, alice.ID, "", 0); len(list) != 0 {
		t.Errorf("UserSessions after revoking all: got %d, want 0", len(list))
	}
	if list, _ := f.svc.UserSessions(ctx, bob.ID, "", 0); len(list) != 1 {
		t.Errorf("Bob's sessions after revoking Alice's: got %d, want 1", len(list))
	}
	if e := f.lastAudit(t, keycard.AuditLogout); e.Actor != admin.User.ID || e.Subject != alice.ID {
		t.Errorf("revoke audit event %+v", e)
	}
}

func TestAdminKeysAndClients(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	admin := f.admin(t, "root")

	k, err := f.svc.RotateKey(ctx, AdminActor(admin, Agent{}), true)
	if err != nil || k.State != keycard.KeyActive {
		t.Fatalf("RotateKey(immediate) = %v, %v; want an active key", k, err)
	}
	if e := f.lastAudit(t, keycard.AuditKeyRotated); e.Actor != admin.User.ID || e.Subject != k.KID {
		t.Errorf("rotate audit event %+v", e)
	}

	c, secret, err := f.svc.CreateClient(ctx, AdminActor(admin, Agent{}), ClientSpec{Name: "billing", Scopes: []string{"read"}, Audiences: nil})
	if err != nil {
		t.Fatal(err)
	}
	if e := f.lastAudit(t, AuditClientCreated); e.Actor != admin.User.ID || e.Subject != c.ID {
		t.Errorf("client audit event %+v", e)
	}
	next, err := f.svc.RotateClientSecret(ctx, AdminActor(admin, Agent{}), c.ID)
	if err != nil || next == secret {
		t.Fatalf("AdminRotateClientSecret = %q, %v; want a new secret", next, err)
	}
	if _, err := f.svc.AuthenticateClient(ctx, c.ID, secret); err == nil {
		t.Error("old secret still accepted")
	}
	if err := f.svc.DeleteClient(ctx, AdminActor(admin, Agent{}), c.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteClient(ctx, AdminActor(admin, Agent{}), c.ID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("DeleteClient(again): got %v, want ENOTFOUND", err)
	}
	if e := f.lastAudit(t, AuditClientDeleted); e.Actor != admin.User.ID || e.Subject != c.ID {
		t.Errorf("client delete audit event %+v", e)
	}
}

// TestDeleteUserNeedsStepUp: deleting a user needs an admin sign-in
// within the step-up window (5 minutes by default, ReauthWithin when
// shorter), whatever ReauthWithin says; signing in again meets it. The
// command line's operator is not asked.
func TestDeleteUserNeedsStepUp(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	admin := f.admin(t, "root")
	f.user(t, "alice")
	f.user(t, "bob")
	alice, _ := f.svc.UserByName(ctx, "alice")
	bob, _ := f.svc.UserByName(ctx, "bob")

	f.clock.Advance(DefaultStepUpWithin + time.Second)
	err := f.svc.DeleteUser(ctx, AdminActor(admin, Agent{}), alice.ID)
	if re, ok := errors.AsType[*ReauthRequiredError](err); !ok || re.MaxAge != DefaultStepUpWithin || keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Fatalf("delete with a sign-in older than the window: got %v, want a ReauthRequiredError of %v", err, DefaultStepUpWithin)
	}
	if _, err := f.svc.User(ctx, alice.ID); err != nil {
		t.Fatalf("the user is gone after a refused delete: %v", err)
	}
	if events, err := f.svc.AuditEvents(ctx, keycard.AuditFilter{Type: AuditUserDeleted}); err != nil || len(events) != 0 {
		t.Fatalf("audit after a refused delete: %v, %v; want no user.deleted", events, err)
	}

	// Signing in again (step-up) meets it.
	tok, err := f.svc.Reauthenticate(ctx, admin.Claims.SessionID, "root", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := f.svc.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteUser(ctx, AdminActor(fresh, Agent{}), alice.ID); err != nil {
		t.Fatalf("delete after signing in again: %v", err)
	}

	// A shorter ReauthWithin shortens the window.
	f.svc.cfg.ReauthWithin = time.Minute
	f.clock.Advance(2 * time.Minute)
	err = f.svc.DeleteUser(ctx, AdminActor(fresh, Agent{}), bob.ID)
	if re, ok := errors.AsType[*ReauthRequiredError](err); !ok || re.MaxAge != time.Minute {
		t.Fatalf("with ReauthWithin 1m: got %v, want a ReauthRequiredError of 1m", err)
	}
	// The operator holds the data: no step-up.
	if err := f.svc.DeleteUser(ctx, Operator(), bob.ID); err != nil {
		t.Errorf("operator delete: %v", err)
	}
}

// TestStepUpNeedsAdminsSecondFactor: an admin who has a second factor
// steps up with it (acr mfa) for deleting a user and removing a user's
// second factors or passkeys; a recent password sign-in is not enough,
// nor an old second-factor one. An admin without a factor still steps up
// with the password; the operator is not asked.
func TestStepUpNeedsAdminsSecondFactor(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	f.user(t, "bob")
	alice, _ := f.svc.UserByName(ctx, "alice")
	bob, _ := f.svc.UserByName(ctx, "bob")
	enrolTOTP(t, f.svc, f.clock, "bob")

	// Without a factor of their own, a recent password sign-in does.
	plain := f.admin(t, "plain")
	if err := f.svc.RemoveSecondFactors(ctx, AdminActor(plain, Agent{}), bob.ID); err != nil {
		t.Fatalf("an admin without a factor, signed in just now: %v", err)
	}
	enrolTOTP(t, f.svc, f.clock, "bob")

	// An admin who has one: the password sign-in they act with (made
	// before they set it up) is recent, but not of acr mfa.
	admin := f.admin(t, "root")
	secret, _ := enrolTOTP(t, f.svc, f.clock, "root")
	if admin.Claims.ACR != ACRPassword {
		t.Fatalf("admin acr %q", admin.Claims.ACR)
	}
	wantMFAStepUp := func(what string, err error) {
		t.Helper()
		re, ok := errors.AsType[*ReauthRequiredError](err)
		if !ok || re.ACR != ACRMFA || re.MaxAge != DefaultStepUpWithin || keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
			t.Errorf("%s: got %v, want a ReauthRequiredError of acr mfa", what, err)
		}
	}
	by := AdminActor(admin, Agent{})
	wantMFAStepUp("delete with acr pwd", f.svc.DeleteUser(ctx, by, alice.ID))
	wantMFAStepUp("remove second factors with acr pwd", f.svc.RemoveSecondFactors(ctx, by, bob.ID))
	wantMFAStepUp("remove a passkey with acr pwd", f.svc.RemovePasskey(ctx, by, bob.ID, "any"))
	if _, err := f.svc.User(ctx, alice.ID); err != nil {
		t.Fatalf("alice is gone after a refused delete: %v", err)
	}
	if st, err := f.svc.MFAStatus(ctx, bob); err != nil || !st.TOTP {
		t.Fatalf("bob's factor after a refused removal: %v %v", st, err)
	}

	// Signing in again with the password alone stops at the MFA step;
	// with the code, the session's acr is mfa and the actions pass.
	_, err := f.svc.Reauthenticate(ctx, admin.Claims.SessionID, "root", "correct horse battery", Agent{})
	var step *MFARequiredError
	if !errors.As(err, &step) {
		t.Fatalf("Reauthenticate: %v, want the MFA step", err)
	}
	f.clock.Advance(30 * time.Second) // the enrolment used this step's code
	res, err := f.svc.CompleteMFA(ctx, step.Token, MFAProof{Code: otpCode(t, secret, f.clock.Now())}, Agent{})
	if err != nil {
		t.Fatalf("CompleteMFA: %v", err)
	}
	fresh, err := f.svc.Authenticate(ctx, res.Tokens.AccessToken)
	if err != nil || fresh.Claims.ACR != ACRMFA {
		t.Fatalf("after the step-up: %v, acr %q", err, fresh.Claims.ACR)
	}
	if err := f.svc.RemoveSecondFactors(ctx, AdminActor(fresh, Agent{}), bob.ID); err != nil {
		t.Errorf("remove second factors with acr mfa: %v", err)
	}
	if err := f.svc.DeleteUser(ctx, AdminActor(fresh, Agent{}), alice.ID); err != nil {
		t.Errorf("delete with acr mfa: %v", err)
	}

	// An mfa sign-in older than the window: the step-up again, with the
	// factor.
	f.clock.Advance(DefaultStepUpWithin + time.Second)
	wantMFAStepUp("delete with an old mfa sign-in", f.svc.DeleteUser(ctx, AdminActor(fresh, Agent{}), bob.ID))
	// The operator is not asked.
	if err := f.svc.DeleteUser(ctx, Operator(), bob.ID); err != nil {
		t.Errorf("operator delete: %v", err)
	}
}
