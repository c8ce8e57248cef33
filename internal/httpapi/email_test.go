package httpapi

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/mail"
	"github.com/keycard-auth/keycard/internal/mailpittest"
	"github.com/keycard-auth/keycard/internal/throttle"
)

// mailFixture is a fixture whose server mails through a real Mailpit.
func mailFixture(t *testing.T, opt fixtureOptions) (*fixture, *mailpittest.Server) {
	t.Helper()
	mp := mailpittest.Start(t)
	m, err := mail.New(mail.Config{URL: "smtp://" + mp.SMTPAddr, From: "keycard@auth.test"})
	if err != nil {
		t.Fatal(err)
	}
	opt.mailer = m
	return newFixture(t, opt), mp
}

var linkToken = regexp.MustCompile(`(/verify-email|/reset-password)\?token=([A-Za-z0-9_.-]+)`)

// tokenIn returns the token of the link to path in a mail's text, and
// checks that the HTML part has the same link.
func tokenIn(t *testing.T, m *mailpittest.Message, path string) string {
	t.Helper()
	got := linkToken.FindStringSubmatch(m.Text)
	if got == nil || got[1] != path {
		t.Fatalf("mail %q has no %s link:\n%s", m.Subject, path, m.Text)
	}
	if !strings.Contains(m.Text, testIssuer+path+"?token=") || !strings.Contains(m.HTML, testIssuer+path+"?token="+got[2]) {
		t.Errorf("mail %q: the link is not the issuer's, or not in both parts", m.Subject)
	}
	return got[2]
}

func (f *fixture) auditTypes(t *testing.T) map[string]int {
	t.Helper()
	events, err := f.stores.Audit.ListAudit(context.Background(), keycard.AuditFilter{Limit: keycard.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range events {
		n[e.Type]++
	}
	return n
}

func TestEmailVerification(t *testing.T) {
	f, mp := mailFixture(t, fixtureOptions{})
	res := f.postJSON(t, "/v1/users", "", `{"username":"alice","password":"`+testPassword+`","email":"  Alice@Example.COM "}`)
	if res.status != http.StatusCreated {
		t.Fatalf("register: %d %s", res.status, res.body)
	}
	var u userResponse
	res.decode(t, &u)
	if u.Email != "alice@example.com" || u.EmailVerified {
		t.Fatalf("registered %+v, want the normalized address, unverified", u)
	}
	// The address is unique, in any case.
	f.postJSON(t, "/v1/users", "", `{"username":"alice2","password":"`+testPassword+`","email":"ALICE@example.com"}`).
		wantError(t, http.StatusConflict, codeConflict)
	for _, bad := range []string{"no-at", "a@b@c", "a b@example.com", "a@exa mple.com", "a@", "@example.com", "a\r\nBcc: x@example.com", strings.Repeat("a", 250) + "@example.com", "a@-example.com"} {
		f.postJSON(t, "/v1/users", "", `{"username":"bob","password":"`+testPassword+`","email":`+jsonString(bad)+`}`).
			wantError(t, http.StatusBadRequest, codeInvalidRequest)
	}

	token := tokenIn(t, mp.WaitFor(t, "alice@example.com", 1), "/verify-email")
	tok := f.login(t, "alice", testPassword)
	var me meResponse
	f.send(t, http.MethodGet, "/v1/me", tok.AccessToken).decode(t, &me)
	if me.Email != "alice@example.com" || me.EmailVerified {
		t.Errorf("/v1/me before verification: %+v", me)
	}

	// A wrong secret with the right id is refused like an unknown link.
	id, _, _ := strings.Cut(token, ".")
	forged := id + "." + strings.Repeat("A", 43)
	for _, bad := range []string{forged, "", "x", strings.Repeat("A", 5000), id} {
		f.postJSON(t, "/v1/email/verify", "", `{"token":`+jsonString(bad)+`}`).wantError(t, http.StatusUnauthorized, codeUnauthorized)
	}
	res = f.postJSON(t, "/v1/email/verify", "", `{"token":`+jsonString(token)+`}`)
	if res.status != http.StatusOK {
		t.Fatalf("verify: %d %s", res.status, res.body)
	}
	f.send(t, http.MethodGet, "/v1/me", tok.AccessToken).decode(t, &me)
	if !me.EmailVerified {
		t.Errorf("/v1/me after verification: %+v", me)
	}
	// Single use.
	f.postJSON(t, "/v1/email/verify", "", `{"token":`+jsonString(token)+`}`).wantError(t, http.StatusUnauthorized, codeUnauthorized)

	// A change of address makes it unverified and mails the new one.
	r := f.do(t, request{method: http.MethodPut, path: "/v1/me/email", body: `{"email":"alice@example.org"}`,
		header: http.Header{"Authorization": {"Bearer " + tok.AccessToken}, "Content-Type": {"application/json"}}})
	var er emailResponse
	r.decode(t, &er)
	if r.status != http.StatusOK || er.Email != "alice@example.org" || er.EmailVerified {
		t.Fatalf("PUT /v1/me/email: %d %+v", r.status, er)
	}
	second := tokenIn(t, mp.WaitFor(t, "alice@example.org", 1), "/verify-email")
	// The link expires after 24 hours (the service's clock).
	f.clock.Advance(keycard.EmailVerifyLifetime)
	f.postJSON(t, "/v1/email/verify", "", `{"token":`+jsonString(second)+`}`).wantError(t, http.StatusUnauthorized, codeUnauthorized)

	if n := f.auditTypes(t); n[auth.AuditEmailVerified] != 1 || n[auth.AuditEmailChanged] != 1 {
		t.Errorf("audit: %v", n)
	}
	if strings.Contains(f.logs.String(), strings.SplitN(token, ".", 2)[1]) {
		t.Error("the log holds a link's secret")
	}
}

func TestPasswordReset(t *testing.T) {
	f, mp := mailFixture(t, fixtureOptions{})
	res := f.postJSON(t, "/v1/users", "", `{"username":"carol","password":"`+testPassword+`","email":"carol@example.com"}`)
	if res.status != http.StatusCreated {
		t.Fatalf("register: %d %s", res.status, res.body)
	}
	mp.WaitFor(t, "carol@example.com", 1) // the verification mail
	before := f.login(t, "carol", testPassword)

	// Enumeration: the same status and body for a known and an unknown
	// address.
	known := f.postJSON(t, "/v1/password/reset-request", "", `{"email":"Carol@example.com"}`)
	unknown := f.postJSON(t, "/v1/password/reset-request", "", `{"email":"nobody@example.com"}`)
	if known.status != http.StatusAccepted || unknown.status != known.status || string(unknown.body) != string(known.body) {
		t.Errorf("reset-request: known %d %s, unknown %d %s; want the same 202", known.status, known.body, unknown.status, unknown.body)
	}
	resetMail := mp.WaitFor(t, "carol@example.com", 2)
	token := tokenIn(t, resetMail, "/reset-password")

	// A malformed request is refused for its form only.
	f.postJSON(t, "/v1/password/reset-request", "", `{"email":"not an address"}`).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	f.postJSON(t, "/v1/password/reset-request", "", `{}`).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	f.postJSON(t, "/v1/password/reset", "", `{"token":`+jsonString(token)+`}`).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	// A too-short password with a good link: the link is not used up.
	f.postJSON(t, "/v1/password/reset", "", `{"token":`+jsonString(token)+`,"new_password":"short"}`).wantError(t, http.StatusBadRequest, codeInvalidRequest)

	const newPassword = "a brand new passphrase"
	res = f.postJSON(t, "/v1/password/reset", "", `{"token":`+jsonString(token)+`,"new_password":"`+newPassword+`"}`)
	if res.status != http.StatusNoContent {
		t.Fatalf("reset: %d %s", res.status, res.body)
	}
	// Every session ended: the old refresh token and access token are
	// refused; the old password too; the new one works.
	f.refresh(t, before.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	if r := f.send(t, http.MethodGet, "/v1/me", before.AccessToken); r.status != http.StatusUnauthorized {
		t.Errorf("/v1/me with an access token of before the reset: %d", r.status)
	}
	f.postJSON(t, "/v1/login", "", credentialsJSON("carol", testPassword)).wantError(t, http.StatusUnauthorized, codeInvalidGrant)
	after := f.login(t, "carol", newPassword)
	// The feed carries the user's cut-off.
	revs, err := f.stores.Revocations.Revocations(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	cut := false
	for _, r := range revs {
		cut = cut || r.Kind == keycard.RevokeUser
	}
	if !cut {
		t.Error("no user cut-off in the revocation feed after a reset")
	}
	// The user is told.
	if n := mp.WaitFor(t, "carol@example.com", 3); !strings.Contains(n.Subject, "password was changed") {
		t.Errorf("third mail %q, want the notification", n.Subject)
	}

	// Reused: refused.
	f.postJSON(t, "/v1/password/reset", "", `{"token":`+jsonString(token)+`,"new_password":"yet another passphrase"}`).
		wantError(t, http.StatusUnauthorized, codeUnauthorized)

	// Expired (the service's clock): refused.
	f.postJSON(t, "/v1/password/reset-request", "", `{"email":"carol@example.com"}`)
	expiring := tokenIn(t, mp.WaitFor(t, "carol@example.com", 4), "/reset-password")
	f.clock.Advance(keycard.PasswordResetLifetime + time.Second)
	f.postJSON(t, "/v1/password/reset", "", `{"token":`+jsonString(expiring)+`,"new_password":"yet another passphrase"}`).
		wantError(t, http.StatusUnauthorized, codeUnauthorized)

	// Made before a password change: refused.
	f.postJSON(t, "/v1/password/reset-request", "", `{"email":"carol@example.com"}`)
	outdated := tokenIn(t, mp.WaitFor(t, "carol@example.com", 5), "/reset-password")
	after = f.login(t, "carol", newPassword)
	f.clock.Advance(time.Second)
	if r := f.postJSON(t, "/v1/password", after.AccessToken, `{"current_password":"`+newPassword+`","new_password":"changed by the user"}`); r.status != http.StatusNoContent {
		t.Fatalf("change password: %d %s", r.status, r.body)
	}
	f.postJSON(t, "/v1/password/reset", "", `{"token":`+jsonString(outdated)+`,"new_password":"yet another passphrase"}`).
		wantError(t, http.StatusUnauthorized, codeUnauthorized)
	f.login(t, "carol", "changed by the user")

	if n := mp.Count(t, "nobody@example.com"); n != 0 {
		t.Errorf("%d mails to an unknown address", n)
	}
	n := f.auditTypes(t)
	if n[auth.AuditPasswordResetRequest] != 4 || n[auth.AuditPasswordReset] != 1 || n[auth.AuditPasswordResetRefused] != 3 {
		t.Errorf("audit: %v", n)
	}
	if strings.Contains(f.logs.String(), strings.SplitN(token, ".", 2)[1]) {
		t.Error("the log holds a link's secret")
	}
}

func TestPasswordResetThrottled(t *testing.T) {
	f, mp := mailFixture(t, fixtureOptions{limits: limits(
		throttle.Policy{Burst: 2, BaseDelay: time.Minute},
		throttle.Policy{Burst: 1000},
	)})
	f.postJSON(t, "/v1/users", "", `{"username":"dan","password":"`+testPassword+`","email":"dan@example.com"}`)
	var bodies []string
	for _, addr := range []string{"dan@example.com", "nobody@example.com"} {
		for range 2 {
			if r := f.postJSON(t, "/v1/password/reset-request", "", `{"email":"`+addr+`"}`); r.status != http.StatusAccepted {
				t.Fatalf("reset-request %s: %d %s", addr, r.status, r.body)
			}
		}
		r := f.postJSON(t, "/v1/password/reset-request", "", `{"email":"`+addr+`"}`)
		r.wantError(t, http.StatusTooManyRequests, codeTooManyRequests)
		bodies = append(bodies, string(r.body))
	}
	if bodies[0] != bodies[1] {
		t.Errorf("throttled answers differ: %q vs %q", bodies[0], bodies[1])
	}
	mp.WaitFor(t, "dan@example.com", 3) // verification + two links, no more
	// Sign-in is not locked by reset requests.
	f.login(t, "dan", testPassword)
	if n := f.auditTypes(t)[auth.AuditPasswordResetThrottle]; n != 2 {
		t.Errorf("%d throttled reset audit events, want 2", n)
	}
}

func TestPasswordResetWithoutMailer(t *testing.T) {
	f := newFixture(t)
	f.postJSON(t, "/v1/password/reset-request", "", `{"email":"x@example.com"}`).wantError(t, http.StatusForbidden, codeAccessDenied)
}

// TestPasswordResetDisabledUser: a disabled user gets no link, and the
// answer is the same as for anyone.
func TestPasswordResetDisabledUser(t *testing.T) {
	f, mp := mailFixture(t, fixtureOptions{})
	id := f.register(t, "erin", testPassword)
	if _, err := f.svc.SetEmail(context.Background(), auth.Operator(), id, "erin@example.com", true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetUserDisabled(context.Background(), auth.Operator(), id, true); err != nil {
		t.Fatal(err)
	}
	res := f.postJSON(t, "/v1/password/reset-request", "", `{"email":"erin@example.com"}`)
	if res.status != http.StatusAccepted {
		t.Fatalf("reset-request: %d %s", res.status, res.body)
	}
	// The job has run once its audit event is written.
	deadline := time.Now().Add(mailpittest.Wait)
	for f.auditTypes(t)[auth.AuditPasswordResetRequest] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the reset request was never handled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := mp.Count(t, "erin@example.com"); n != 0 {
		t.Errorf("%d mails to a disabled user", n)
	}
}

// TestAdminSendReset: an admin has a reset link mailed to a user (202),
// which works like one the user asked for and is audited with the admin
// as actor; a user without an address is 400, an unknown one 404, a
// caller without the admin role 403, a server without mail 403.
func TestAdminSendReset(t *testing.T) {
	f, mp := mailFixture(t, fixtureOptions{})
	ctx := context.Background()
	root, err := f.svc.Register(ctx, "root", testPassword, []string{auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	admin := f.login(t, "root", testPassword).AccessToken
	id := f.register(t, "dave", testPassword)
	if _, err := f.svc.SetEmail(ctx, auth.Operator(), id, "dave@example.com", true); err != nil {
		t.Fatal(err)
	}
	nomail := f.register(t, "erin", testPassword)
	before := f.login(t, "dave", testPassword)

	if res := f.postJSON(t, "/admin/v1/users/"+id+"/password-reset", admin, ""); res.status != http.StatusAccepted {
		t.Fatalf("send reset: %d %s", res.status, res.body)
	}
	token := tokenIn(t, mp.WaitFor(t, "dave@example.com", 1), "/reset-password")
	if res := f.postJSON(t, "/v1/password/reset", "", `{"token":`+jsonString(token)+`,"new_password":"reset by the admin's link"}`); res.status != http.StatusNoContent {
		t.Fatalf("reset with the admin's link: %d %s", res.status, res.body)
	}
	f.refresh(t, before.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	f.login(t, "dave", "reset by the admin's link")
	events, err := f.svc.AuditEvents(ctx, keycard.AuditFilter{Type: auth.AuditPasswordResetRequest})
	if err != nil || len(events) != 1 || events[0].Actor != root.ID || events[0].Subject != id {
		t.Errorf("password.reset_requested events %+v, %v; want one by the admin about dave", events, err)
	}

	f.postJSON(t, "/admin/v1/users/"+nomail+"/password-reset", admin, "").wantError(t, http.StatusBadRequest, codeInvalidRequest)
	f.postJSON(t, "/admin/v1/users/nobody/password-reset", admin, "").wantError(t, http.StatusNotFound, codeNotFound)
	user := f.login(t, "erin", testPassword).AccessToken
	f.postJSON(t, "/admin/v1/users/"+id+"/password-reset", user, "").wantError(t, http.StatusForbidden, codeInsufficientRole)

	plain := newFixture(t)
	if _, err := plain.svc.Register(ctx, "root", testPassword, []string{auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	other := plain.register(t, "dave", testPassword)
	plain.postJSON(t, "/admin/v1/users/"+other+"/password-reset", plain.login(t, "root", testPassword).AccessToken, "").wantError(t, http.StatusForbidden, codeAccessDenied)
}
