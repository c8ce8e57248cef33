package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// sealedRequest returns a request to redeem the sealed code id, which
// expires a minute after t0, for a new grant session under parent.
func sealedRequest(t *testing.T, codeID string, parent *keycard.Session, clientID string, at time.Time) keycard.RedeemRequest {
	t.Helper()
	r := redeemRequest(t, keycard.GrantKindSealedCode, codeID, parent, clientID, at, false)
	r.ExpiresAt = t0.Add(keycard.AuthCodeLifetime)
	return r
}

func testRedeemSealed(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "selma")
	c := createClient(t, s, "app")
	parent, _ := createSession(t, s, u.ID, t0)
	at := t0.Add(10 * time.Second)
	code := id(t)

	// A refused request (nil session) of an unused code finds no use.
	probe := sealedRequest(t, code, parent, c.ID, at)
	probe.Session, probe.First = nil, nil
	out, err := s.Grants.Redeem(ctx, probe)
	wantCode(t, "Redeem(unused, no session)", err, keycard.ENOTFOUND)
	if out != 0 {
		t.Errorf("Redeem(unused, no session) outcome = %v, want 0", out)
	}

	r := sealedRequest(t, code, parent, c.ID, at)
	r.Audit = &keycard.AuditEvent{Time: at, Type: "grant.issued", Actor: u.ID, Subject: u.ID, Detail: []byte(`{"client":"app"}`)}
	if out, err := s.Grants.Redeem(ctx, r); err != nil || out != keycard.Redeemed {
		t.Fatalf("Redeem = %v, %v; want Redeemed", out, err)
	}
	got, err := s.Sessions.Session(ctx, r.Session.ID)
	if err != nil {
		t.Fatalf("grant session after Redeem: %v", err)
	}
	check(t, "grant session after Redeem", got, r.Session)
	if _, err := s.Sessions.RefreshToken(ctx, r.First.ID); err != nil {
		t.Errorf("first refresh token after Redeem: %v", err)
	}
	events, err := s.Audit.ListAudit(ctx, keycard.AuditFilter{Type: "grant.issued"})
	if err != nil || len(events) != 1 {
		t.Errorf("audit after Redeem: %d events, %v; want the one of the request", len(events), err)
	}

	// A second use, after expiry and with a refused request alike, finds
	// the first and revokes its grant session.
	for i, again := range []keycard.RedeemRequest{
		sealedRequest(t, code, parent, c.ID, at.Add(time.Second)),
		sealedRequest(t, code, parent, c.ID, t0.Add(2*time.Minute)),
		probe,
	} {
		out, err := s.Grants.Redeem(ctx, again)
		if err != nil || out != keycard.Reused {
			t.Errorf("Redeem again (%d) = %v, %v; want Reused", i, out, err)
		}
		if again.Session != nil {
			wantNoSession(t, s, fmt.Sprintf("Redeem again (%d)", i), again)
		}
	}
	wantRevoked(t, s, "grant of a reused sealed code", at.Add(time.Second), map[string]string{r.Session.ID: keycard.RevokeCodeReuse})
	if p, _ := s.Sessions.Session(ctx, parent.ID); p == nil || p.Revoked() {
		t.Errorf("parent after reuse: %+v, want live", p)
	}

	// Refusals leave the code unused: it can be redeemed afterwards.
	other := id(t)
	expired := sealedRequest(t, other, parent, c.ID, t0.Add(keycard.AuthCodeLifetime))
	_, err = s.Grants.Redeem(ctx, expired)
	wantCode(t, "Redeem(expired, unused)", err, keycard.EUNAUTHORIZED)
	wantNoSession(t, s, "Redeem(expired, unused)", expired)

	consentCode := id(t)
	needs := sealedRequest(t, consentCode, parent, c.ID, at)
	needs.NeedsConsent = true
	_, err = s.Grants.Redeem(ctx, needs)
	wantCode(t, "Redeem(no consent)", err, keycard.EUNAUTHORIZED)
	wantNoSession(t, s, "Redeem(no consent)", needs)
	saveConsent(t, s, u.ID, c.ID)
	needs = sealedRequest(t, consentCode, parent, c.ID, at)
	needs.NeedsConsent = true
	if out, err := s.Grants.Redeem(ctx, needs); err != nil || out != keycard.Redeemed {
		t.Errorf("Redeem(consent given) = %v, %v; want Redeemed", out, err)
	}
	// A code issued before the consent was given (under an earlier one
	// since revoked, perhaps to more scopes) is not brought back by it.
	older := sealedRequest(t, id(t), parent, c.ID, at)
	older.ExpiresAt = t0.Add(-time.Second).Add(keycard.AuthCodeLifetime)
	older.NeedsConsent = true
	_, err = s.Grants.Redeem(ctx, older)
	wantCode(t, "Redeem(code issued before the consent)", err, keycard.EUNAUTHORIZED)
	wantNoSession(t, s, "Redeem(code issued before the consent)", older)

	stranger := createUser(t, s, "stella")
	theirs, _ := createSession(t, s, stranger.ID, t0)
	wrongParent := sealedRequest(t, id(t), parent, c.ID, at)
	wrongParent.Session.ParentID = theirs.ID
	_, err = s.Grants.Redeem(ctx, wrongParent)
	wantCode(t, "Redeem(parent of another user)", err, keycard.EINVALID)
	noParent := sealedRequest(t, id(t), parent, c.ID, at)
	noParent.Session.ParentID = "no-such-session"
	_, err = s.Grants.Redeem(ctx, noParent)
	wantCode(t, "Redeem(unknown parent)", err, keycard.ENOTFOUND)

	ended := sealedRequest(t, id(t), parent, c.ID, at)
	if _, err := s.Sessions.RevokeSession(ctx, parent.ID, at, keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	_, err = s.Grants.Redeem(ctx, ended)
	wantCode(t, "Redeem(parent signed out)", err, keycard.EUNAUTHORIZED)
	wantNoSession(t, s, "Redeem(parent signed out)", ended)
	// Refused, the code was not used: a probe finds nothing.
	ended.Session, ended.First = nil, nil
	_, err = s.Grants.Redeem(ctx, ended)
	wantCode(t, "Redeem(refused code, no session)", err, keycard.ENOTFOUND)

	for _, tt := range []struct {
		name string
		edit func(r *keycard.RedeemRequest)
	}{
		{"empty id", func(r *keycard.RedeemRequest) { r.ID = "" }},
		{"id too long", func(r *keycard.RedeemRequest) { r.ID = string(make([]byte, keycard.MaxSealedCodeIDLen+1)) }},
		{"no expiry", func(r *keycard.RedeemRequest) { r.ExpiresAt = time.Time{} }},
		{"no parent", func(r *keycard.RedeemRequest) { r.Session.ParentID = "" }},
		{"no client", func(r *keycard.RedeemRequest) { r.Session.ClientID = "" }},
	} {
		r := sealedRequest(t, id(t), parent, c.ID, at)
		tt.edit(&r)
		_, err := s.Grants.Redeem(ctx, r)
		wantCode(t, "Redeem("+tt.name+")", err, keycard.EINVALID)
	}
}

func testRedeemSealedConcurrent(t *testing.T, open OpenFunc) {
	const n, rounds = 8, 5
	s := open(t)
	u := createUser(t, s, "sam")
	c := createClient(t, s, "app")
	parent, _ := createSession(t, s, u.ID, t0)
	at := t0.Add(time.Second)
	for round := range rounds {
		code := id(t)
		reqs := make([]keycard.RedeemRequest, n)
		for i := range reqs {
			reqs[i] = sealedRequest(t, code, parent, c.ID, at)
		}
		winner := raceRedeems(t, s, round, reqs)
		wantRevoked(t, s, fmt.Sprintf("round %d: the redeemed session", round), at, map[string]string{reqs[winner].Session.ID: keycard.RevokeCodeReuse})
	}
}

func testPruneSealedCodes(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "sue")
	c := createClient(t, s, "app")
	parent, _ := createSession(t, s, u.ID, t0)
	old := sealedRequest(t, id(t), parent, c.ID, t0.Add(time.Second)) // expires t0+60s
	young := sealedRequest(t, id(t), parent, c.ID, t0.Add(time.Minute))
	young.ExpiresAt = t0.Add(2 * time.Minute)
	for _, r := range []keycard.RedeemRequest{old, young} {
		if out, err := s.Grants.Redeem(ctx, r); err != nil || out != keycard.Redeemed {
			t.Fatalf("Redeem = %v, %v", out, err)
		}
	}
	if n, err := s.Grants.PruneGrants(ctx, young.ExpiresAt); err != nil || n != 1 {
		t.Errorf("PruneGrants(+2m) = %d, %v; want 1 (the old code's use), nil", n, err)
	}
	// The young code's use is kept: a reuse is still caught. The old
	// one's is gone: a probe finds nothing, and its grant stays.
	probe := young
	probe.Session, probe.First, probe.At = nil, nil, t0.Add(3*time.Minute)
	if out, err := s.Grants.Redeem(ctx, probe); err != nil || out != keycard.Reused {
		t.Errorf("Redeem(young, after prune) = %v, %v; want Reused", out, err)
	}
	probe = old
	probe.Session, probe.First, probe.At = nil, nil, t0.Add(3*time.Minute)
	_, err := s.Grants.Redeem(ctx, probe)
	wantCode(t, "Redeem(pruned use)", err, keycard.ENOTFOUND)
	if got, err := s.Sessions.Session(ctx, old.Session.ID); err != nil || got.Revoked() {
		t.Errorf("grant of a pruned use: %+v, %v; want live", got, err)
	}
}
