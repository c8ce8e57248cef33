package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

func testRevocations(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	if seq, err := s.Revocations.LastRevocationSeq(ctx); err != nil || seq != 0 {
		t.Errorf("LastRevocationSeq(empty) = %d, %v; want 0, nil", seq, err)
	}
	if seq, err := s.Revocations.FirstRevocationSeq(ctx); err != nil || seq != 0 {
		t.Errorf("FirstRevocationSeq(empty) = %d, %v; want 0, nil", seq, err)
	}
	var all []*keycard.Revocation
	kinds := []keycard.RevocationKind{keycard.RevokeSession, keycard.RevokeToken, keycard.RevokeUser, keycard.RevokeAllUsers, keycard.RevokeKey}
	for i := range 10 {
		at := t0.Add(time.Duration(i) * time.Minute)
		r := &keycard.Revocation{Kind: kinds[i%len(kinds)], Value: fmt.Sprintf("v%d", i), At: at, ExpiresAt: at.Add(time.Hour)}
		if err := s.Revocations.AddRevocation(ctx, r); err != nil {
			t.Fatalf("AddRevocation: %v", err)
		}
		if len(all) > 0 && r.Seq <= all[len(all)-1].Seq {
			t.Errorf("AddRevocation: Seq %d after %d, want increasing", r.Seq, all[len(all)-1].Seq)
		}
		all = append(all, r)
	}
	if seq, err := s.Revocations.FirstRevocationSeq(ctx); err != nil || seq != all[0].Seq {
		t.Errorf("FirstRevocationSeq = %d, %v; want %d", seq, err, all[0].Seq)
	}
	wantCode(t, "AddRevocation(bad kind)", s.Revocations.AddRevocation(ctx, &keycard.Revocation{Kind: "bogus", At: t0}), keycard.EINVALID)

	tests := []struct {
		name  string
		after int64
		limit int
		want  []*keycard.Revocation
	}{
		{"all", 0, 0, all},
		{"first page", 0, 3, all[:3]},
		{"after", all[2].Seq, 3, all[3:6]},
		{"to the end", all[6].Seq, 0, all[7:]},
		{"nothing new", all[9].Seq, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Revocations.Revocations(ctx, tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "Revocations", got, tt.want)
		})
	}

	// Pruning goes by ExpiresAt: the first four have expired, the fifth
	// expires exactly now and is kept.
	n, err := s.Revocations.PruneRevocations(ctx, all[4].ExpiresAt)
	if err != nil || n != 4 {
		t.Errorf("PruneRevocations = %d, %v; want 4, nil", n, err)
	}
	got, err := s.Revocations.Revocations(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Revocations after prune", got, all[4:])
	if seq, err := s.Revocations.FirstRevocationSeq(ctx); err != nil || seq != all[4].Seq {
		t.Errorf("FirstRevocationSeq after prune = %d, %v; want %d", seq, err, all[4].Seq)
	}
	// Pruning never lowers the sequence: followers must not see a number twice.
	if _, err := s.Revocations.PruneRevocations(ctx, t0.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if seq, err := s.Revocations.LastRevocationSeq(ctx); err != nil || seq != all[9].Seq {
		t.Errorf("LastRevocationSeq after pruning all = %d, %v; want %d", seq, err, all[9].Seq)
	}
	if seq, err := s.Revocations.FirstRevocationSeq(ctx); err != nil || seq != 0 {
		t.Errorf("FirstRevocationSeq after pruning all = %d, %v; want 0", seq, err)
	}
	r := &keycard.Revocation{Kind: keycard.RevokeToken, Value: "after-prune", At: t0}
	if err := s.Revocations.AddRevocation(ctx, r); err != nil || r.Seq <= all[9].Seq {
		t.Errorf("AddRevocation after prune: Seq %d, %v; want more than %d", r.Seq, err, all[9].Seq)
	}
	// Without an ExpiresAt, an entry gets the store's lifetime.
	if want := r.At.Add(revTTL); !r.ExpiresAt.Equal(want) {
		t.Errorf("AddRevocation(no ExpiresAt): ExpiresAt = %v, want %v", r.ExpiresAt, want)
	}
	got, err = s.Revocations.Revocations(ctx, all[9].Seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Revocations after the last prune", got, []*keycard.Revocation{r})
}

func testAudit(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	var all []*keycard.AuditEvent // oldest first
	for i := range 9 {
		e := &keycard.AuditEvent{
			Time:       t0.Add(time.Duration(i) * time.Second),
			Type:       []string{keycard.AuditLoginSucceeded, keycard.AuditLoginFailed, keycard.AuditLogout}[i%3],
			Actor:      fmt.Sprintf("actor%d", i%2),
			Subject:    fmt.Sprintf("user%d", i%2),
			ClientAddr: "198.51.100.7",
			UserAgent:  "curl/8",
			Detail:     json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
		}
		if i == 0 {
			e.Detail = nil // stored as {}
		}
		if err := s.Audit.AppendAudit(ctx, e); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		if len(all) > 0 && e.ID <= all[len(all)-1].ID {
			t.Errorf("AppendAudit: ID %d after %d, want increasing", e.ID, all[len(all)-1].ID)
		}
		all = append(all, e)
	}
	first := *all[0]
	first.Detail = json.RawMessage(`{}`)
	newest := func(idx ...int) []*keycard.AuditEvent {
		var out []*keycard.AuditEvent
		for _, i := range idx {
			if i == 0 {
				out = append(out, &first)
			} else {
				out = append(out, all[i])
			}
		}
		return out
	}

	tests := []struct {
		name   string
		filter keycard.AuditFilter
		want   []*keycard.AuditEvent
	}{
		{"all", keycard.AuditFilter{}, newest(8, 7, 6, 5, 4, 3, 2, 1, 0)},
		{"page", keycard.AuditFilter{Limit: 4}, newest(8, 7, 6, 5)},
		{"next page", keycard.AuditFilter{Before: all[5].ID, Limit: 4}, newest(4, 3, 2, 1)},
		{"by type", keycard.AuditFilter{Type: keycard.AuditLoginFailed}, newest(7, 4, 1)},
		{"by subject", keycard.AuditFilter{Subject: "user1"}, newest(7, 5, 3, 1)},
		{"by both, paged", keycard.AuditFilter{Subject: "user0", Type: keycard.AuditLoginSucceeded, Before: all[6].ID}, newest(0)},
		{"no match", keycard.AuditFilter{Subject: "nobody"}, nil},
		{"by user as actor", keycard.AuditFilter{User: "actor1"}, newest(7, 5, 3, 1)},
		{"by user as subject", keycard.AuditFilter{User: "user0"}, newest(8, 6, 4, 2, 0)},
		{"by user, no match", keycard.AuditFilter{User: "user9"}, nil},
		{"since, inclusive", keycard.AuditFilter{Since: all[6].Time}, newest(8, 7, 6)},
		{"until, exclusive", keycard.AuditFilter{Until: all[2].Time}, newest(1, 0)},
		{"time range, type, paged", keycard.AuditFilter{Since: all[1].Time, Until: all[8].Time, Type: keycard.AuditLoginSucceeded, Limit: 1}, newest(6)},
		{"time range, next page", keycard.AuditFilter{Since: all[1].Time, Until: all[8].Time, Type: keycard.AuditLoginSucceeded, Before: all[6].ID}, newest(3)},
		{"empty time range", keycard.AuditFilter{Since: all[4].Time, Until: all[4].Time}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Audit.ListAudit(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "ListAudit", got, tt.want)
		})
	}

	bad := []struct {
		name string
		e    keycard.AuditEvent
	}{
		{"no type", keycard.AuditEvent{Time: t0}},
		{"array detail", keycard.AuditEvent{Time: t0, Type: "x", Detail: json.RawMessage(`[1]`)}},
		{"null detail", keycard.AuditEvent{Time: t0, Type: "x", Detail: json.RawMessage(`null`)}},
		{"invalid json", keycard.AuditEvent{Time: t0, Type: "x", Detail: json.RawMessage(`{"a":`)}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "AppendAudit", s.Audit.AppendAudit(ctx, &tt.e), keycard.EINVALID)
		})
	}
}

// testCanceledContext checks that every method honours its context.
func testCanceledContext(t *testing.T, open OpenFunc) {
	s := open(t)
	u := createUser(t, s, "victor")
	sess, tok := createSession(t, s, u.ID, t0)
	client := createClient(t, s, "canceled-app")
	grant, _ := createGrantSession(t, s, sess, client.ID, t0)
	code := createAuthCode(t, s, sess, client.ID, t0)
	device := createDeviceCode(t, s, client.ID, "DEVICE01", t0)
	consent := saveConsent(t, s, u.ID, client.ID)
	par := createPushedRequest(t, s, client.ID, t0)
	mailed := createUserWithEmail(t, s, "wendy", "wendy@example.com")
	verifyLink := createEmailToken(t, s, mailed, keycard.PurposeVerifyEmail, t0)
	resetLink := createEmailToken(t, s, mailed, keycard.PurposeResetPassword, t0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateUser", func() error { return s.Users.CreateUser(ctx, newUser(t, "walter")) }},
		{"UserByID", func() error { _, err := s.Users.UserByID(ctx, u.ID); return err }},
		{"UserByUsername", func() error { _, err := s.Users.UserByUsername(ctx, u.NormalizedUsername); return err }},
		{"ListUsers", func() error { _, err := s.Users.ListUsers(ctx, keycard.UserFilter{}); return err }},
		{"UpdateUser", func() error { _, err := s.Users.UpdateUser(ctx, u.ID, keycard.UserUpdate{}, t0); return err }},
		{"ChangePassword", func() error { _, err := s.Users.ChangePassword(ctx, u.ID, "h", "", t0); return err }},
		{"RehashPassword", func() error { _, err := s.Users.RehashPassword(ctx, u.ID, u.PasswordHash, "h", t0); return err }},
		{"CreateSession", func() error { return s.Sessions.CreateSession(ctx, newSession(t, u.ID, t0), newToken(t), nil) }},
		{"Session", func() error { _, err := s.Sessions.Session(ctx, sess.ID); return err }},
		{"ListSessions", func() error { _, err := s.Sessions.ListSessions(ctx, keycard.SessionFilter{UserID: u.ID}); return err }},
		{"RevokeSession", func() error { _, err := s.Sessions.RevokeSession(ctx, sess.ID, t0, "x"); return err }},
		{"RevokeUserSessions", func() error { _, err := s.Sessions.RevokeUserSessions(ctx, u.ID, "", t0, "x"); return err }},
		{"RevokeAllSessions", func() error { _, err := s.Sessions.RevokeAllSessions(ctx, t0, "x"); return err }},
		{"RefreshToken", func() error { _, err := s.Sessions.RefreshToken(ctx, tok.ID); return err }},
		{"RotateRefreshToken", func() error {
			_, err := s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{TokenID: tok.ID, SecretHash: tok.SecretHash, Now: t0, Successor: *newToken(t)})
			return err
		}},
		{"RotateRefreshToken with the key generation", func() error {
			_, err := s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{TokenID: tok.ID, SecretHash: tok.SecretHash, Now: t0, Successor: *newToken(t), WithUser: true, WithKeyGeneration: true})
			return err
		}},
		{"PruneSessions", func() error { _, err := s.Sessions.PruneSessions(ctx, t0, t0); return err }},
		{"CreateKey", func() error { return s.Keys.CreateKey(ctx, newKey(t, keycard.KeyNext, t0)) }},
		{"Key", func() error { _, err := s.Keys.Key(ctx, "k"); return err }},
		{"ListKeys", func() error { _, err := s.Keys.ListKeys(ctx); return err }},
		{"ActivateKey", func() error { return s.Keys.ActivateKey(ctx, "k", t0, t0) }},
		{"RevokeKey", func() error { return s.Keys.RevokeKey(ctx, "k", t0) }},
		{"DeleteRemovedKeys", func() error { _, err := s.Keys.DeleteRemovedKeys(ctx, t0); return err }},
		{"KeyGeneration", func() error { _, err := s.Keys.KeyGeneration(ctx); return err }},
		{"AddRevocation", func() error {
			return s.Revocations.AddRevocation(ctx, &keycard.Revocation{Kind: keycard.RevokeToken, Value: "j", At: t0})
		}},
		{"Revocations", func() error { _, err := s.Revocations.Revocations(ctx, 0, 0); return err }},
		{"LastRevocationSeq", func() error { _, err := s.Revocations.LastRevocationSeq(ctx); return err }},
		{"FirstRevocationSeq", func() error { _, err := s.Revocations.FirstRevocationSeq(ctx); return err }},
		{"PruneRevocations", func() error { _, err := s.Revocations.PruneRevocations(ctx, t0); return err }},
		{"HasRevocation", func() error { _, err := s.Revocations.HasRevocation(ctx, keycard.RevokeToken, "j"); return err }},
		{"CreateClient", func() error { return s.Clients.CreateClient(ctx, newClient(t, "canceled")) }},
		{"Client", func() error { _, err := s.Clients.Client(ctx, "c"); return err }},
		{"ClientWithKeyGeneration", func() error { _, _, err := s.Clients.ClientWithKeyGeneration(ctx, "c"); return err }},
		{"ListClients", func() error { _, err := s.Clients.ListClients(ctx, keycard.ClientFilter{}); return err }},
		{"DeleteClient", func() error { return s.Clients.DeleteClient(ctx, "c", t0) }},
		{"SetClientSecret", func() error { return s.Clients.SetClientSecret(ctx, "c", []byte("h"), t0) }},
		{"UpdateClient", func() error { _, err := s.Clients.UpdateClient(ctx, client); return err }},
		{"RevokeClientSessions", func() error { _, err := s.Sessions.RevokeClientSessions(ctx, u.ID, client.ID, t0, "x"); return err }},
		{"CreateAuthCode", func() error { return s.Grants.CreateAuthCode(ctx, newAuthCode(t, sess, client.ID, t0)) }},
		{"AuthCode", func() error { _, err := s.Grants.AuthCode(ctx, code.ID); return err }},
		{"CreateDeviceCode", func() error { return s.Grants.CreateDeviceCode(ctx, newDeviceCode(t, client.ID, "CANCELED", t0)) }},
		{"DeviceCode", func() error { _, err := s.Grants.DeviceCode(ctx, device.ID); return err }},
		{"DeviceCodeByUserCode", func() error { _, err := s.Grants.DeviceCodeByUserCode(ctx, device.UserCode, t0); return err }},
		{"DecideDeviceCode", func() error {
			d := *device
			d.UserID, d.SessionID = u.ID, sess.ID
			return s.Grants.DecideDeviceCode(ctx, &d, keycard.DeviceApproved, t0)
		}},
		{"PollDeviceCode", func() error { _, err := s.Grants.PollDeviceCode(ctx, device.ID, t0); return err }},
		{"Redeem", func() error {
			_, err := s.Grants.Redeem(ctx, redeemRequest(t, keycard.GrantKindAuthCode, code.ID, sess, client.ID, t0, false))
			return err
		}},
		{"Consent", func() error { _, err := s.Grants.Consent(ctx, u.ID, client.ID); return err }},
		{"SaveConsent", func() error {
			return s.Grants.SaveConsent(ctx, &keycard.Consent{UserID: u.ID, ClientID: client.ID, CreatedAt: t0, UpdatedAt: t0})
		}},
		{"ListConsents", func() error { _, err := s.Grants.ListConsents(ctx, u.ID); return err }},
		{"RevokeConsent", func() error { _, err := s.Grants.RevokeConsent(ctx, u.ID, client.ID, t0); return err }},
		{"CreatePushedRequest", func() error {
			return s.Grants.CreatePushedRequest(ctx, &keycard.PushedRequest{ID: "p", ClientID: client.ID, Params: []byte(`{}`), CreatedAt: t0, ExpiresAt: t0})
		}},
		{"PushedRequest", func() error { _, err := s.Grants.PushedRequest(ctx, par.ID, t0); return err }},
		{"DeletePushedRequest", func() error { return s.Grants.DeletePushedRequest(ctx, par.ID) }},
		{"PruneGrants", func() error { _, err := s.Grants.PruneGrants(ctx, t0.Add(time.Hour)); return err }},
		{"ClaimLogouts", func() error { _, err := s.Logouts.ClaimLogouts(ctx, t0, time.Minute, 10); return err }},
		{"LogoutDelivered", func() error { return s.Logouts.LogoutDelivered(ctx, grant.ID, 1, t0) }},
		{"RetryLogout", func() error { return s.Logouts.RetryLogout(ctx, grant.ID, 1, t0, t0, "x") }},
		{"GiveUpLogout", func() error { return s.Logouts.GiveUpLogout(ctx, grant.ID, 1, t0, "x") }},
		{"ListLogouts", func() error { _, err := s.Logouts.ListLogouts(ctx, keycard.LogoutFilter{}); return err }},
		{"PruneLogouts", func() error { _, err := s.Logouts.PruneLogouts(ctx, t0); return err }},
		{"CreateWebhook", func() error {
			return s.Webhooks.CreateWebhook(ctx, &keycard.WebhookEndpoint{ID: "w", URL: "https://w.example", Secret: "whsec_w", CreatedAt: t0})
		}},
		{"ListWebhooks", func() error { _, err := s.Webhooks.ListWebhooks(ctx); return err }},
		{"ClaimWebhookDeliveries", func() error { _, err := s.Webhooks.ClaimWebhookDeliveries(ctx, t0, time.Minute, 10); return err }},
		{"ListWebhookDeliveries", func() error { _, err := s.Webhooks.ListWebhookDeliveries(ctx, keycard.WebhookFilter{}); return err }},
		{"ReplayWebhook", func() error { _, err := s.Webhooks.ReplayWebhook(ctx, 1, t0); return err }},
		{"PruneWebhookDeliveries", func() error { _, err := s.Webhooks.PruneWebhookDeliveries(ctx, t0); return err }},
		{"UseOnce", func() error { _, err := s.Grants.UseOnce(ctx, "canceled", t0, t0.Add(time.Minute)); return err }},
		{"UserByEmail", func() error { _, err := s.Emails.UserByEmail(ctx, mailed.Email); return err }},
		{"SetEmail", func() error { _, err := s.Emails.SetEmail(ctx, u.ID, "victor@example.com", false, t0); return err }},
		{"CreateEmailToken", func() error {
			return s.Emails.CreateEmailToken(ctx, newEmailToken(t, mailed, keycard.PurposeVerifyEmail, t0))
		}},
		{"EmailToken", func() error { _, err := s.Emails.EmailToken(ctx, verifyLink.ID); return err }},
		{"VerifyEmail", func() error { _, err := s.Emails.VerifyEmail(ctx, verifyLink.ID, t0); return err }},
		{"ResetPassword", func() error { _, _, err := s.Emails.ResetPassword(ctx, resetLink.ID, "h", t0); return err }},
		{"PruneEmailTokens", func() error { _, err := s.Emails.PruneEmailTokens(ctx, t0.Add(48*time.Hour)); return err }},
		{"AppendAudit", func() error { return s.Audit.AppendAudit(ctx, &keycard.AuditEvent{Time: t0, Type: "x"}) }},
		{"ListAudit", func() error { _, err := s.Audit.ListAudit(ctx, keycard.AuditFilter{}); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); err == nil {
				t.Errorf("%s with a canceled context: got nil error, want one", c.name)
			}
		})
	}
	// Nothing was changed.
	got, err := s.Users.UserByID(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "user after canceled calls", got, u)
	if got, err := s.Users.UserByID(context.Background(), mailed.ID); err != nil {
		t.Fatal(err)
	} else {
		check(t, "user with an address after canceled calls", got, mailed)
	}
	for _, link := range []*keycard.EmailToken{verifyLink, resetLink} {
		if got, err := s.Emails.EmailToken(context.Background(), link.ID); err != nil {
			t.Errorf("email link after canceled calls: %v", err)
		} else {
			check(t, "email link after canceled calls (unused)", got, link)
		}
	}
	if got, _ := s.Sessions.Session(context.Background(), sess.ID); got == nil || got.Revoked() {
		t.Errorf("session after canceled calls: %+v, want live", got)
	}
	if got, _ := s.Sessions.Session(context.Background(), grant.ID); got == nil || got.Revoked() {
		t.Errorf("grant session after canceled calls: %+v, want live", got)
	}
	if got, err := s.Clients.Client(context.Background(), client.ID); err != nil {
		t.Errorf("client after canceled calls: %v", err)
	} else {
		check(t, "client after canceled calls", got, client)
	}
	if got, err := s.Grants.AuthCode(context.Background(), code.ID); err != nil {
		t.Errorf("auth code after canceled calls: %v", err)
	} else {
		check(t, "auth code after canceled calls (not redeemed)", got, code)
	}
	if got, err := s.Grants.DeviceCode(context.Background(), device.ID); err != nil {
		t.Errorf("device code after canceled calls: %v", err)
	} else {
		check(t, "device code after canceled calls (pending, never polled)", got, device)
	}
	if got, err := s.Grants.Consent(context.Background(), u.ID, client.ID); err != nil {
		t.Errorf("consent after canceled calls: %v", err)
	} else {
		check(t, "consent after canceled calls", got, consent)
	}
	if got, err := s.Grants.PushedRequest(context.Background(), par.ID, t0); err != nil {
		t.Errorf("pushed request after canceled calls: %v", err)
	} else {
		check(t, "pushed request after canceled calls", got, par)
	}
}
