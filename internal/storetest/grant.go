package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// newAuthCode returns an authorization code issued in the browser session
// at the given time for the client, not yet stored.
func newAuthCode(t *testing.T, sess *keycard.Session, clientID string, at time.Time) *keycard.AuthCode {
	t.Helper()
	_, cid, hash, err := keycard.NewOpaqueToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &keycard.AuthCode{
		ID: cid, SecretHash: hash, ClientID: clientID, UserID: sess.UserID, SessionID: sess.ID,
		RedirectURI:   "https://app.example/callback?tenant=1",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Scope:         "openid profile offline_access",
		Nonce:         "n-0S6_WzA2Mj",
		DPoPJKT:       "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		AuthTime:      sess.AuthenticatedAt(),
		AMR:           []string{"pwd"},
		CreatedAt:     at,
		ExpiresAt:     at.Add(keycard.AuthCodeLifetime),
	}
}

// createAuthCode stores a new authorization code.
func createAuthCode(t *testing.T, s keycard.Stores, sess *keycard.Session, clientID string, at time.Time) *keycard.AuthCode {
	t.Helper()
	c := newAuthCode(t, sess, clientID, at)
	if err := s.Grants.CreateAuthCode(context.Background(), c); err != nil {
		t.Fatalf("CreateAuthCode: %v", err)
	}
	return c
}

// newDeviceCode returns a pending device code, not yet stored.
func newDeviceCode(t *testing.T, clientID, userCode string, at time.Time) *keycard.DeviceCode {
	t.Helper()
	_, did, hash, err := keycard.NewOpaqueToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &keycard.DeviceCode{
		ID: did, SecretHash: hash, UserCode: userCode, ClientID: clientID,
		Scope: "openid offline_access", State: keycard.DevicePending, Interval: 5 * time.Second,
		CreatedAt: at, ExpiresAt: at.Add(keycard.DeviceCodeLifetime),
	}
}

// createDeviceCode stores a new pending device code.
func createDeviceCode(t *testing.T, s keycard.Stores, clientID, userCode string, at time.Time) *keycard.DeviceCode {
	t.Helper()
	d := newDeviceCode(t, clientID, userCode, at)
	if err := s.Grants.CreateDeviceCode(context.Background(), d); err != nil {
		t.Fatalf("CreateDeviceCode: %v", err)
	}
	return d
}

// approve approves the device code d in the browser session sess and
// returns d as the store should now have it.
func approve(t *testing.T, s keycard.Stores, d *keycard.DeviceCode, sess *keycard.Session, at time.Time) *keycard.DeviceCode {
	t.Helper()
	decided := *d
	decided.UserID, decided.SessionID, decided.AuthTime, decided.AMR = sess.UserID, sess.ID, sess.AuthenticatedAt(), []string{"pwd", "hwk"}
	if err := s.Grants.DecideDeviceCode(context.Background(), &decided, keycard.DeviceApproved, at); err != nil {
		t.Fatalf("DecideDeviceCode(approve): %v", err)
	}
	decided.State = keycard.DeviceApproved
	return &decided
}

// createPushedRequest stores a new pushed request of the client.
func createPushedRequest(t *testing.T, s keycard.Stores, clientID string, at time.Time) *keycard.PushedRequest {
	t.Helper()
	p := &keycard.PushedRequest{
		ID: id(t), ClientID: clientID,
		Params:    []byte(`{"response_type":"code","redirect_uri":"https://app.example/cb","scope":"openid","state":"x\u00e9"}`),
		CreatedAt: at, ExpiresAt: at.Add(keycard.PushedRequestLifetime),
	}
	if err := s.Grants.CreatePushedRequest(context.Background(), p); err != nil {
		t.Fatalf("CreatePushedRequest: %v", err)
	}
	return p
}

// saveConsent stores the user's consent to the client.
func saveConsent(t *testing.T, s keycard.Stores, userID, clientID string) *keycard.Consent {
	t.Helper()
	c := &keycard.Consent{UserID: userID, ClientID: clientID, Scopes: []string{"openid", "profile"}, CreatedAt: t0, UpdatedAt: t0}
	if err := s.Grants.SaveConsent(context.Background(), c); err != nil {
		t.Fatalf("SaveConsent: %v", err)
	}
	return c
}

// redeemRequest returns a request to redeem a code of the kind for a new
// grant session under parent for the client, with a first refresh token
// unless noToken.
func redeemRequest(t *testing.T, kind keycard.GrantKind, codeID string, parent *keycard.Session, clientID string, at time.Time, noToken bool) keycard.RedeemRequest {
	t.Helper()
	r := keycard.RedeemRequest{Kind: kind, ID: codeID, Session: newGrantSession(t, parent, clientID, at), At: at}
	if !noToken {
		r.First = newToken(t)
		r.First.CreatedAt = at
	}
	return r
}

// wantNoSession fails the test if the session of a refused redemption, or
// its token, exists.
func wantNoSession(t *testing.T, s keycard.Stores, what string, r keycard.RedeemRequest) {
	t.Helper()
	_, err := s.Sessions.Session(context.Background(), r.Session.ID)
	wantCode(t, what+": Session (nothing created)", err, keycard.ENOTFOUND)
	if r.First != nil {
		_, err = s.Sessions.RefreshToken(context.Background(), r.First.ID)
		wantCode(t, what+": RefreshToken (nothing created)", err, keycard.ENOTFOUND)
	}
}

func testAuthCodes(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "walt")
	other := createUser(t, s, "xena")
	c := createClient(t, s, "app")
	sess, _ := createSession(t, s, u.ID, t0)
	othersSession, _ := createSession(t, s, other.ID, t0)

	code := newAuthCode(t, sess, c.ID, t0)
	if err := s.Grants.CreateAuthCode(ctx, code); err != nil {
		t.Fatalf("CreateAuthCode: %v", err)
	}
	got, err := s.Grants.AuthCode(ctx, code.ID)
	if err != nil {
		t.Fatalf("AuthCode: %v", err)
	}
	check(t, "AuthCode", got, code)
	bare := newAuthCode(t, sess, c.ID, t0)
	bare.AMR, bare.AuthTime, bare.Nonce = nil, time.Time{}, ""
	if err := s.Grants.CreateAuthCode(ctx, bare); err != nil {
		t.Fatalf("CreateAuthCode(no amr, auth time, nonce): %v", err)
	}
	if got, err := s.Grants.AuthCode(ctx, bare.ID); err != nil {
		t.Fatal(err)
	} else {
		check(t, "AuthCode(no amr, auth time, nonce)", got, bare)
	}

	with := func(f func(c *keycard.AuthCode)) *keycard.AuthCode {
		c := newAuthCode(t, sess, c.ID, t0)
		f(c)
		return c
	}
	tests := []struct {
		name string
		code *keycard.AuthCode
		want string
	}{
		{"same id", with(func(x *keycard.AuthCode) { x.ID = code.ID }), keycard.ECONFLICT},
		{"unknown session", with(func(x *keycard.AuthCode) { x.SessionID = "missing" }), keycard.ENOTFOUND},
		{"session of another user", with(func(x *keycard.AuthCode) { x.SessionID = othersSession.ID }), keycard.ENOTFOUND},
		{"unknown client", with(func(x *keycard.AuthCode) { x.ClientID = "missing" }), keycard.ENOTFOUND},
		{"no id", with(func(x *keycard.AuthCode) { x.ID = "" }), keycard.EINVALID},
		{"no secret hash", with(func(x *keycard.AuthCode) { x.SecretHash = nil }), keycard.EINVALID},
		{"no client", with(func(x *keycard.AuthCode) { x.ClientID = "" }), keycard.EINVALID},
		{"no user", with(func(x *keycard.AuthCode) { x.UserID = "" }), keycard.EINVALID},
		{"no session", with(func(x *keycard.AuthCode) { x.SessionID = "" }), keycard.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "CreateAuthCode", s.Grants.CreateAuthCode(ctx, tt.code), tt.want)
			if tt.code.ID != code.ID && tt.code.ID != "" {
				_, err := s.Grants.AuthCode(ctx, tt.code.ID)
				wantCode(t, "AuthCode after a failed CreateAuthCode", err, keycard.ENOTFOUND)
			}
		})
	}
	if got, err := s.Grants.AuthCode(ctx, code.ID); err != nil {
		t.Fatal(err)
	} else {
		check(t, "AuthCode after failed creates", got, code)
	}
	_, err = s.Grants.AuthCode(ctx, "missing")
	wantCode(t, "AuthCode(missing)", err, keycard.ENOTFOUND)
}

// testRedeem checks Redeem of authorization codes: Redeemed, Reused (which
// revokes the first redemption's session), and the refusals, none of which
// leaves anything behind.
func testRedeem(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "yara")
	c := createClient(t, s, "app")
	parent, _ := createSession(t, s, u.ID, t0)
	code := createAuthCode(t, s, parent, c.ID, t0)
	at := t0.Add(10 * time.Second)

	r := redeemRequest(t, keycard.GrantKindAuthCode, code.ID, parent, c.ID, at, false)
	r.Audit = &keycard.AuditEvent{Time: at, Type: "grant.issued", Actor: u.ID, Subject: u.ID, Detail: []byte(`{"client":"app"}`)}
	out, err := s.Grants.Redeem(ctx, r)
	if err != nil || out != keycard.Redeemed {
		t.Fatalf("Redeem = %v, %v; want Redeemed", out, err)
	}
	// The audit event is appended in the redemption's transaction.
	grants := func() []*keycard.AuditEvent {
		t.Helper()
		got, err := s.Audit.ListAudit(ctx, keycard.AuditFilter{Type: "grant.issued"})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := grants(); len(got) != 1 || got[0].Subject != u.ID || got[0].Actor != u.ID || !got[0].Time.Equal(at) || string(got[0].Detail) != `{"client":"app"}` {
		t.Errorf("audit after Redeem: %+v, want the one event of the request", got)
	}
	got, err := s.Sessions.Session(ctx, r.Session.ID)
	if err != nil {
		t.Fatalf("grant session after Redeem: %v", err)
	}
	check(t, "grant session after Redeem", got, r.Session)
	tok, err := s.Sessions.RefreshToken(ctx, r.First.ID)
	if err != nil {
		t.Fatalf("first refresh token after Redeem: %v", err)
	}
	wantTok := *r.First
	wantTok.SessionID = r.Session.ID
	check(t, "first refresh token after Redeem", tok, &wantTok)
	redeemed := *code
	redeemed.RedeemedAt, redeemed.GrantSessionID = at, r.Session.ID
	if got, err := s.Grants.AuthCode(ctx, code.ID); err != nil {
		t.Fatal(err)
	} else {
		check(t, "code after Redeem", got, &redeemed)
	}

	// The grant session's token works.
	res, _, err := rotate(s, t, r.First, at.Add(time.Minute))
	if err != nil || res.Outcome != keycard.Rotated {
		t.Fatalf("rotate the redeemed grant session's token = %+v, %v", res, err)
	}

	// Presented again: Reused. Nothing is created, and the first
	// redemption's session is revoked, with a feed entry.
	reuseAt := at.Add(2 * time.Minute) // after the code's expiry: still reuse
	seq := lastSeq(t, s)
	again := redeemRequest(t, keycard.GrantKindAuthCode, code.ID, parent, c.ID, reuseAt, false)
	again.Audit = &keycard.AuditEvent{Time: reuseAt, Type: "grant.issued", Actor: u.ID, Subject: u.ID}
	out, err = s.Grants.Redeem(ctx, again)
	if err != nil || out != keycard.Reused {
		t.Fatalf("Redeem(again) = %v, %v; want Reused", out, err)
	}
	if got := grants(); len(got) != 1 {
		t.Errorf("audit after a reused code: %d grant events, want only the first redemption's", len(got))
	}
	wantNoSession(t, s, "Redeem(again)", again)
	wantRevoked(t, s, "after reuse", reuseAt, map[string]string{r.Session.ID: keycard.RevokeCodeReuse, parent.ID: ""})
	check(t, "feed after reuse", feedSince(t, s, seq, reuseAt), []string{r.Session.ID})
	if got, err := s.Grants.AuthCode(ctx, code.ID); err != nil {
		t.Fatal(err)
	} else {
		check(t, "code after reuse", got, &redeemed)
	}
	// A third time: still Reused, nothing new in the feed.
	seq = lastSeq(t, s)
	out, err = s.Grants.Redeem(ctx, redeemRequest(t, keycard.GrantKindAuthCode, code.ID, parent, c.ID, reuseAt.Add(time.Second), false))
	if err != nil || out != keycard.Reused {
		t.Errorf("Redeem(a third time) = %v, %v; want Reused", out, err)
	}
	if got := feedSince(t, s, seq, reuseAt); len(got) != 0 {
		t.Errorf("feed after the third redemption: %v, want nothing new", got)
	}

	// A grant without refresh tokens.
	noTok := createAuthCode(t, s, parent, c.ID, t0)
	rn := redeemRequest(t, keycard.GrantKindAuthCode, noTok.ID, parent, c.ID, at, true)
	if out, err := s.Grants.Redeem(ctx, rn); err != nil || out != keycard.Redeemed {
		t.Errorf("Redeem(no refresh token) = %v, %v; want Redeemed", out, err)
	} else if got, err := s.Sessions.Session(ctx, rn.Session.ID); err != nil {
		t.Errorf("grant session without a refresh token: %v", err)
	} else {
		check(t, "grant session without a refresh token", got, rn.Session)
	}

	// Refusals.
	idle := newSession(t, u.ID, t0)
	idle.IdleTimeout = 5 * time.Second
	if err := s.Sessions.CreateSession(ctx, idle, newToken(t), nil); err != nil {
		t.Fatal(err)
	}
	revoked, _ := createSession(t, s, u.ID, t0)
	revokedCode := createAuthCode(t, s, revoked, c.ID, t0)
	if _, err := s.Sessions.RevokeSession(ctx, revoked.ID, t0.Add(time.Second), keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	otherClient := createClient(t, s, "other")
	tests := []struct {
		name string
		code *keycard.AuthCode // nil: an unknown code
		// req changes the request made for the code.
		req  func(r *keycard.RedeemRequest)
		want string
	}{
		{"unknown code", nil, nil, keycard.ENOTFOUND},
		{"expired", createAuthCode(t, s, parent, c.ID, t0), func(r *keycard.RedeemRequest) { r.At = t0.Add(keycard.AuthCodeLifetime) }, keycard.EUNAUTHORIZED},
		{"parent revoked", revokedCode, nil, keycard.EUNAUTHORIZED},
		{"parent idle", createAuthCode(t, s, idle, c.ID, t0), nil, keycard.EUNAUTHORIZED},
		{"another parent", createAuthCode(t, s, parent, c.ID, t0), func(r *keycard.RedeemRequest) { r.Session.ParentID = idle.ID }, keycard.EINVALID},
		{"another client", createAuthCode(t, s, parent, c.ID, t0), func(r *keycard.RedeemRequest) { r.Session.ClientID = otherClient.ID }, keycard.EINVALID},
		{"another user", createAuthCode(t, s, parent, c.ID, t0), func(r *keycard.RedeemRequest) { r.Session.UserID = "someone" }, keycard.EINVALID},
		{"a device code's kind", createAuthCode(t, s, parent, c.ID, t0), func(r *keycard.RedeemRequest) { r.Kind = keycard.GrantKindDeviceCode }, keycard.ENOTFOUND},
		{"unknown kind", createAuthCode(t, s, parent, c.ID, t0), func(r *keycard.RedeemRequest) { r.Kind = 0 }, keycard.EINVALID},
		{"grant session id taken", createAuthCode(t, s, parent, c.ID, t0), func(r *keycard.RedeemRequest) { r.Session.ID = parent.ID }, keycard.ECONFLICT},
		{"refresh token id taken", createAuthCode(t, s, parent, c.ID, t0), func(r *keycard.RedeemRequest) { r.First.ID = tok.ID }, keycard.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			codeID := "missing"
			if tt.code != nil {
				codeID = tt.code.ID
			}
			parentOf := parent
			if tt.code != nil && tt.code.SessionID != parent.ID {
				parentOf, _ = s.Sessions.Session(ctx, tt.code.SessionID)
			}
			r := redeemRequest(t, keycard.GrantKindAuthCode, codeID, parentOf, c.ID, at, false)
			if tt.req != nil {
				tt.req(&r)
			}
			seq := lastSeq(t, s)
			out, err := s.Grants.Redeem(ctx, r)
			wantCode(t, "Redeem", err, tt.want)
			if out != 0 {
				t.Errorf("Redeem outcome %v with an error, want 0", out)
			}
			if r.Session.ID != parent.ID {
				if r.First.ID == tok.ID {
					r.First = nil // the other session's, which stays
				}
				wantNoSession(t, s, "refused Redeem", r)
			}
			if tt.code != nil {
				got, err := s.Grants.AuthCode(ctx, tt.code.ID)
				if err != nil {
					t.Fatal(err)
				}
				check(t, "code after a refused Redeem (not redeemed)", got, tt.code)
			}
			if got := feedSince(t, s, seq, at); len(got) != 0 {
				t.Errorf("feed after a refused Redeem: %v, want nothing", got)
			}
		})
	}
}

// testRedeemDeviceCode checks Redeem of device codes: only an approved,
// unexpired code is redeemed, once.
func testRedeemDeviceCode(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "zoe")
	c := createClient(t, s, "tv")
	parent, _ := createSession(t, s, u.ID, t0)
	at := t0.Add(time.Minute)

	pending := createDeviceCode(t, s, c.ID, "PENDING1", t0)
	denied := createDeviceCode(t, s, c.ID, "DENIED01", t0)
	if err := s.Grants.DecideDeviceCode(ctx, denied, keycard.DeviceDenied, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	expired := approve(t, s, createDeviceCode(t, s, c.ID, "EXPIRED1", t0), parent, t0.Add(time.Second))
	for _, tt := range []struct {
		name string
		d    *keycard.DeviceCode
		at   time.Time
		want string
	}{
		{"pending", pending, at, keycard.EINVALID},
		{"denied", denied, at, keycard.EINVALID},
		{"approved, expired", expired, expired.ExpiresAt, keycard.EUNAUTHORIZED},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := redeemRequest(t, keycard.GrantKindDeviceCode, tt.d.ID, parent, c.ID, tt.at, false)
			out, err := s.Grants.Redeem(ctx, r)
			wantCode(t, "Redeem", err, tt.want)
			if out != 0 {
				t.Errorf("Redeem outcome %v with an error, want 0", out)
			}
			wantNoSession(t, s, "refused Redeem", r)
		})
	}

	d := approve(t, s, createDeviceCode(t, s, c.ID, "APPROVED", t0), parent, t0.Add(time.Second))
	r := redeemRequest(t, keycard.GrantKindDeviceCode, d.ID, parent, c.ID, at, false)
	out, err := s.Grants.Redeem(ctx, r)
	if err != nil || out != keycard.Redeemed {
		t.Fatalf("Redeem(approved device code) = %v, %v; want Redeemed", out, err)
	}
	if got, err := s.Sessions.Session(ctx, r.Session.ID); err != nil {
		t.Errorf("grant session of a device code: %v", err)
	} else {
		check(t, "grant session of a device code", got, r.Session)
	}
	want := *d
	want.RedeemedAt, want.GrantSessionID = at, r.Session.ID
	if got, err := s.Grants.DeviceCode(ctx, d.ID); err != nil {
		t.Fatal(err)
	} else {
		check(t, "device code after Redeem", got, &want)
	}
	// As an authorization code, it is unknown.
	_, err = s.Grants.Redeem(ctx, redeemRequest(t, keycard.GrantKindAuthCode, d.ID, parent, c.ID, at, false))
	wantCode(t, "Redeem(device code as an authorization code)", err, keycard.ENOTFOUND)

	again := redeemRequest(t, keycard.GrantKindDeviceCode, d.ID, parent, c.ID, at.Add(time.Second), false)
	out, err = s.Grants.Redeem(ctx, again)
	if err != nil || out != keycard.Reused {
		t.Fatalf("Redeem(device code again) = %v, %v; want Reused", out, err)
	}
	wantNoSession(t, s, "Redeem(device code again)", again)
	wantRevoked(t, s, "after device code reuse", at.Add(time.Second), map[string]string{r.Session.ID: keycard.RevokeCodeReuse, parent.ID: ""})

	// A code approved in a session that has since ended.
	ended, _ := createSession(t, s, u.ID, t0)
	late := approve(t, s, createDeviceCode(t, s, c.ID, "LATE0001", t0), ended, t0.Add(time.Second))
	if _, err := s.Sessions.RevokeSession(ctx, ended.ID, t0.Add(2*time.Second), keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	rl := redeemRequest(t, keycard.GrantKindDeviceCode, late.ID, ended, c.ID, at, false)
	_, err = s.Grants.Redeem(ctx, rl)
	wantCode(t, "Redeem(device code of an ended session)", err, keycard.EUNAUTHORIZED)
	wantNoSession(t, s, "Redeem(device code of an ended session)", rl)
}

// testRedeemConcurrent presents one code several times at once, in
// several rounds: exactly one presentation is Redeemed, the others Reused
// and create nothing, and the redeemed session ends revoked for reuse.
func testRedeemConcurrent(t *testing.T, open OpenFunc) {
	const n, rounds = 8, 5
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "abby")
	c := createClient(t, s, "app")
	parent, _ := createSession(t, s, u.ID, t0)
	at := t0.Add(time.Second)
	for round := range rounds {
		code := createAuthCode(t, s, parent, c.ID, t0)
		reqs := make([]keycard.RedeemRequest, n)
		for i := range reqs {
			reqs[i] = redeemRequest(t, keycard.GrantKindAuthCode, code.ID, parent, c.ID, at, false)
		}
		winner := raceRedeems(t, s, round, reqs)
		// Every Reused came after the Redeemed one, and revoked its session.
		wantRevoked(t, s, fmt.Sprintf("round %d: the redeemed session", round), at, map[string]string{reqs[winner].Session.ID: keycard.RevokeCodeReuse})
		got, err := s.Grants.AuthCode(ctx, code.ID)
		if err != nil || got.GrantSessionID != reqs[winner].Session.ID {
			t.Errorf("round %d: code after concurrent Redeems: %+v, %v; want redeemed to %s", round, got, err, reqs[winner].Session.ID)
		}
	}
	if got, _ := s.Sessions.Session(ctx, parent.ID); got == nil || got.Revoked() {
		t.Errorf("parent after concurrent Redeems: %+v, want live", got)
	}
}

// raceRedeems runs the Redeems of reqs (of one code) at once and returns
// the index of the one that got Redeemed, failing the test unless exactly
// one did, the others got Reused and created nothing.
func raceRedeems(t *testing.T, s keycard.Stores, round int, reqs []keycard.RedeemRequest) int {
	t.Helper()
	n := len(reqs)
	outs := make([]keycard.RedeemOutcome, n)
	errs := make([]error, n)
	calls := make([]func(), n)
	for i := range calls {
		calls[i] = func() { outs[i], errs[i] = s.Grants.Redeem(context.Background(), reqs[i]) }
	}
	race(calls...)
	winner := -1
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Fatalf("round %d: Redeem %d: %v", round, i, errs[i])
		case outs[i] == keycard.Redeemed && winner >= 0:
			t.Fatalf("round %d: Redeem %d and %d both Redeemed", round, winner, i)
		case outs[i] == keycard.Redeemed:
			winner = i
		case outs[i] != keycard.Reused:
			t.Fatalf("round %d: Redeem %d: outcome %v, want Redeemed or Reused", round, i, outs[i])
		}
	}
	if winner < 0 {
		t.Fatalf("round %d: no Redeem of %d got Redeemed", round, n)
	}
	for i, r := range reqs {
		if i != winner {
			wantNoSession(t, s, fmt.Sprintf("round %d: Reused %d", round, i), r)
		}
	}
	return winner
}

func testDeviceCodes(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "bert")
	other := createUser(t, s, "cleo")
	c := createClient(t, s, "tv")
	sess, _ := createSession(t, s, u.ID, t0)
	othersSession, _ := createSession(t, s, other.ID, t0)

	d := newDeviceCode(t, c.ID, "WDJBMJHT", t0)
	if err := s.Grants.CreateDeviceCode(ctx, d); err != nil {
		t.Fatalf("CreateDeviceCode: %v", err)
	}
	got, err := s.Grants.DeviceCode(ctx, d.ID)
	if err != nil {
		t.Fatalf("DeviceCode: %v", err)
	}
	check(t, "DeviceCode", got, d)

	// User codes: a live one is taken; an expired one makes way.
	expiring := createDeviceCode(t, s, c.ID, "EXPIRING", t0)
	tests := []struct {
		name string
		d    *keycard.DeviceCode
		want string
	}{
		{"live user code", newDeviceCode(t, c.ID, d.UserCode, d.ExpiresAt.Add(-time.Microsecond)), keycard.ECONFLICT},
		{"same id", func() *keycard.DeviceCode {
			x := newDeviceCode(t, c.ID, "SAMEID01", t0)
			x.ID = d.ID
			return x
		}(), keycard.ECONFLICT},
		{"unknown client", newDeviceCode(t, "missing", "NOCLIENT", t0), keycard.ENOTFOUND},
		{"not pending", func() *keycard.DeviceCode {
			x := newDeviceCode(t, c.ID, "APPROVED", t0)
			x.State = keycard.DeviceApproved
			return x
		}(), keycard.EINVALID},
		{"no user code", newDeviceCode(t, c.ID, "", t0), keycard.EINVALID},
		{"no client", newDeviceCode(t, "", "NOCLIEN2", t0), keycard.EINVALID},
		{"no secret hash", func() *keycard.DeviceCode {
			x := newDeviceCode(t, c.ID, "NOSECRET", t0)
			x.SecretHash = nil
			return x
		}(), keycard.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "CreateDeviceCode", s.Grants.CreateDeviceCode(ctx, tt.d), tt.want)
			if tt.d.ID != d.ID {
				_, err := s.Grants.DeviceCode(ctx, tt.d.ID)
				wantCode(t, "DeviceCode after a failed CreateDeviceCode", err, keycard.ENOTFOUND)
			}
		})
	}
	if got, err := s.Grants.DeviceCode(ctx, d.ID); err != nil {
		t.Fatal(err)
	} else {
		check(t, "DeviceCode after failed creates", got, d)
	}
	// At its expiry, a code's user code is free again.
	reuse := newDeviceCode(t, c.ID, expiring.UserCode, expiring.ExpiresAt)
	if err := s.Grants.CreateDeviceCode(ctx, reuse); err != nil {
		t.Fatalf("CreateDeviceCode(user code of an expired code): %v", err)
	}
	if got, err := s.Grants.DeviceCodeByUserCode(ctx, expiring.UserCode, expiring.ExpiresAt); err != nil || got.ID != reuse.ID {
		t.Errorf("DeviceCodeByUserCode(reused user code) = %+v, %v; want %s", got, err, reuse.ID)
	}

	// DeviceCodeByUserCode ignores expired codes.
	for _, tt := range []struct {
		name     string
		userCode string
		at       time.Time
		want     *keycard.DeviceCode
	}{
		{"live", d.UserCode, t0, d},
		{"just before expiry", d.UserCode, d.ExpiresAt.Add(-time.Microsecond), d},
		{"at expiry", d.UserCode, d.ExpiresAt, nil},
		{"unknown", "UNKNOWN1", t0, nil},
		{"another case", "wdjbmjht", t0, nil},
	} {
		t.Run("DeviceCodeByUserCode "+tt.name, func(t *testing.T) {
			got, err := s.Grants.DeviceCodeByUserCode(ctx, tt.userCode, tt.at)
			if tt.want == nil {
				wantCode(t, "DeviceCodeByUserCode", err, keycard.ENOTFOUND)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			check(t, "DeviceCodeByUserCode", got, tt.want)
		})
	}

	// Polls: each returns the code as it was before, with the previous
	// poll's time.
	for i, at := range []time.Time{t0.Add(5 * time.Second), t0.Add(7 * time.Second), t0.Add(20 * time.Second)} {
		got, err := s.Grants.PollDeviceCode(ctx, d.ID, at)
		if err != nil {
			t.Fatalf("PollDeviceCode %d: %v", i, err)
		}
		check(t, fmt.Sprintf("PollDeviceCode %d", i), got, d)
		d.LastPolledAt = at
	}
	_, err = s.Grants.PollDeviceCode(ctx, "missing", t0)
	wantCode(t, "PollDeviceCode(missing)", err, keycard.ENOTFOUND)

	// Decisions: only a pending, unexpired code, once.
	approvedAt := t0.Add(time.Minute)
	approved := approve(t, s, d, sess, approvedAt)
	if got, err := s.Grants.DeviceCode(ctx, d.ID); err != nil {
		t.Fatal(err)
	} else {
		check(t, "DeviceCode after approval", got, approved)
	}
	denied := createDeviceCode(t, s, c.ID, "TODENY01", t0)
	if err := s.Grants.DecideDeviceCode(ctx, denied, keycard.DeviceDenied, approvedAt); err != nil {
		t.Fatalf("DecideDeviceCode(deny): %v", err)
	}
	wantDenied := *denied
	wantDenied.State = keycard.DeviceDenied
	if got, err := s.Grants.DeviceCode(ctx, denied.ID); err != nil {
		t.Fatal(err)
	} else {
		check(t, "DeviceCode after denial", got, &wantDenied)
	}

	fresh := createDeviceCode(t, s, c.ID, "FRESH001", t0)
	decision := func(d *keycard.DeviceCode, sess *keycard.Session) *keycard.DeviceCode {
		x := *d
		x.UserID, x.SessionID, x.AuthTime = sess.UserID, sess.ID, sess.CreatedAt
		return &x
	}
	noUser := decision(fresh, sess)
	noUser.UserID = ""
	noSession := decision(fresh, sess)
	noSession.SessionID = ""
	othersSessionDecision := decision(fresh, othersSession)
	othersSessionDecision.UserID = u.ID
	for _, tt := range []struct {
		name  string
		d     *keycard.DeviceCode
		state keycard.DeviceCodeState
		at    time.Time
		want  string
	}{
		{"approve again", decision(d, sess), keycard.DeviceApproved, approvedAt, keycard.ENOTFOUND},
		{"deny an approved code", decision(d, sess), keycard.DeviceDenied, approvedAt, keycard.ENOTFOUND},
		{"approve a denied code", decision(denied, sess), keycard.DeviceApproved, approvedAt, keycard.ENOTFOUND},
		{"approve at expiry", decision(fresh, sess), keycard.DeviceApproved, fresh.ExpiresAt, keycard.ENOTFOUND},
		{"deny at expiry", decision(fresh, sess), keycard.DeviceDenied, fresh.ExpiresAt, keycard.ENOTFOUND},
		{"unknown code", decision(newDeviceCode(t, c.ID, "X", t0), sess), keycard.DeviceApproved, approvedAt, keycard.ENOTFOUND},
		{"session of another user", othersSessionDecision, keycard.DeviceApproved, approvedAt, keycard.ENOTFOUND},
		{"unknown session", func() *keycard.DeviceCode { x := decision(fresh, sess); x.SessionID = "missing"; return x }(), keycard.DeviceApproved, approvedAt, keycard.ENOTFOUND},
		{"approve without a user", noUser, keycard.DeviceApproved, approvedAt, keycard.EINVALID},
		{"approve without a session", noSession, keycard.DeviceApproved, approvedAt, keycard.EINVALID},
		{"back to pending", decision(fresh, sess), keycard.DevicePending, approvedAt, keycard.EINVALID},
		{"unknown state", decision(fresh, sess), "maybe", approvedAt, keycard.EINVALID},
	} {
		t.Run("DecideDeviceCode "+tt.name, func(t *testing.T) {
			wantCode(t, "DecideDeviceCode", s.Grants.DecideDeviceCode(ctx, tt.d, tt.state, tt.at), tt.want)
		})
	}
	for _, want := range []*keycard.DeviceCode{approved, &wantDenied, fresh} {
		if got, err := s.Grants.DeviceCode(ctx, want.ID); err != nil {
			t.Fatal(err)
		} else {
			check(t, "DeviceCode after refused decisions", got, want)
		}
	}
	_, err = s.Grants.DeviceCode(ctx, "missing")
	wantCode(t, "DeviceCode(missing)", err, keycard.ENOTFOUND)
}

func testConsents(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "dora")
	other := createUser(t, s, "emil")
	var clients []*keycard.Client
	for _, name := range []string{"c2", "c0", "c1"} {
		c := newClient(t, name)
		c.ID = name
		if err := s.Clients.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	got, err := s.Grants.ListConsents(ctx, u.ID)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("ListConsents(none) = %v, %v; want an empty, non-nil list", got, err)
	}
	var saved []*keycard.Consent
	for _, c := range clients {
		saved = append(saved, saveConsent(t, s, u.ID, c.ID))
	}
	saveConsent(t, s, other.ID, "c1")
	for _, c := range saved {
		got, err := s.Grants.Consent(ctx, c.UserID, c.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "Consent", got, c)
	}
	list, err := s.Grants.ListConsents(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "ListConsents (by client id)", list, []*keycard.Consent{saved[1], saved[2], saved[0]})

	// Saving again replaces scopes and UpdatedAt, and keeps CreatedAt.
	later := t0.Add(time.Hour)
	upd := &keycard.Consent{UserID: u.ID, ClientID: "c0", Scopes: []string{"openid", "orders:write"}, CreatedAt: later, UpdatedAt: later}
	if err := s.Grants.SaveConsent(ctx, upd); err != nil {
		t.Fatalf("SaveConsent(again): %v", err)
	}
	want := *upd
	want.CreatedAt = t0
	if got, err := s.Grants.Consent(ctx, u.ID, "c0"); err != nil {
		t.Fatal(err)
	} else {
		check(t, "Consent after saving again", got, &want)
	}
	none := &keycard.Consent{UserID: u.ID, ClientID: "c2", CreatedAt: later, UpdatedAt: later}
	if err := s.Grants.SaveConsent(ctx, none); err != nil {
		t.Fatalf("SaveConsent(no scopes): %v", err)
	}
	if got, err := s.Grants.Consent(ctx, u.ID, "c2"); err != nil || len(got.Scopes) != 0 {
		t.Errorf("Consent(no scopes) = %+v, %v; want no scopes", got, err)
	}

	for _, tt := range []struct {
		name string
		c    *keycard.Consent
		want string
	}{
		{"unknown user", &keycard.Consent{UserID: "missing", ClientID: "c0", CreatedAt: t0, UpdatedAt: t0}, keycard.ENOTFOUND},
		{"unknown client", &keycard.Consent{UserID: u.ID, ClientID: "missing", CreatedAt: t0, UpdatedAt: t0}, keycard.ENOTFOUND},
		{"no user", &keycard.Consent{ClientID: "c0"}, keycard.EINVALID},
		{"no client", &keycard.Consent{UserID: u.ID}, keycard.EINVALID},
	} {
		t.Run("SaveConsent "+tt.name, func(t *testing.T) {
			wantCode(t, "SaveConsent", s.Grants.SaveConsent(ctx, tt.c), tt.want)
		})
	}
	_, err = s.Grants.Consent(ctx, u.ID, "missing")
	wantCode(t, "Consent(missing)", err, keycard.ENOTFOUND)
}

// testRevokeConsent checks RevokeConsent: the consent, the codes issued
// under it and the user's grant sessions for the client go, with feed
// entries, and nothing else.
func testRevokeConsent(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "finn")
	other := createUser(t, s, "gwen")
	c := createClient(t, s, "third-party")
	keep := createClient(t, s, "kept")
	p1, _ := createSession(t, s, u.ID, t0)
	p2, _ := createSession(t, s, u.ID, t0)
	op, _ := createSession(t, s, other.ID, t0)
	saveConsent(t, s, u.ID, c.ID)
	saveConsent(t, s, u.ID, keep.ID)
	saveConsent(t, s, other.ID, c.ID)
	g1, _ := createGrantSession(t, s, p1, c.ID, t0.Add(time.Minute))
	g2, _ := createGrantSession(t, s, p2, c.ID, t0.Add(2*time.Minute))
	gKeep, _ := createGrantSession(t, s, p1, keep.ID, t0.Add(time.Minute))
	gOther, _ := createGrantSession(t, s, op, c.ID, t0.Add(time.Minute))
	unredeemed := createAuthCode(t, s, p1, c.ID, t0)
	redeemedCode := createAuthCode(t, s, p1, c.ID, t0)
	rr := redeemRequest(t, keycard.GrantKindAuthCode, redeemedCode.ID, p1, c.ID, t0.Add(time.Second), false)
	if out, err := s.Grants.Redeem(ctx, rr); err != nil || out != keycard.Redeemed {
		t.Fatalf("Redeem = %v, %v", out, err)
	}
	keptCode := createAuthCode(t, s, p1, keep.ID, t0)
	othersCode := createAuthCode(t, s, op, c.ID, t0)
	approved := approve(t, s, createDeviceCode(t, s, c.ID, "APPROVE1", t0), p1, t0.Add(time.Second))
	pending := createDeviceCode(t, s, c.ID, "PENDING1", t0)

	at := t0.Add(time.Hour)
	seq := lastSeq(t, s)
	ids, err := s.Grants.RevokeConsent(ctx, u.ID, c.ID, at)
	if err != nil {
		t.Fatalf("RevokeConsent: %v", err)
	}
	revoked := []string{rr.Session.ID, g1.ID, g2.ID} // by creation time
	check(t, "RevokeConsent", ids, revoked)
	check(t, "feed after RevokeConsent", feedSince(t, s, seq, at), revoked)
	wantRevoked(t, s, "RevokeConsent", at, map[string]string{
		g1.ID: keycard.RevokeConsentRevoked, g2.ID: keycard.RevokeConsentRevoked, rr.Session.ID: keycard.RevokeConsentRevoked,
		p1.ID: "", p2.ID: "", gKeep.ID: "", gOther.ID: "",
	})
	_, err = s.Grants.Consent(ctx, u.ID, c.ID)
	wantCode(t, "Consent(revoked)", err, keycard.ENOTFOUND)
	for _, tt := range []struct{ userID, clientID string }{{u.ID, keep.ID}, {other.ID, c.ID}} {
		if _, err := s.Grants.Consent(ctx, tt.userID, tt.clientID); err != nil {
			t.Errorf("Consent(%s, %s) after revoking another: %v", tt.userID, tt.clientID, err)
		}
	}
	_, err = s.Grants.AuthCode(ctx, unredeemed.ID)
	wantCode(t, "AuthCode(unredeemed, issued under the revoked consent)", err, keycard.ENOTFOUND)
	_, err = s.Grants.DeviceCode(ctx, approved.ID)
	wantCode(t, "DeviceCode(approved, under the revoked consent)", err, keycard.ENOTFOUND)
	for _, code := range []*keycard.AuthCode{redeemedCode, keptCode, othersCode} {
		if _, err := s.Grants.AuthCode(ctx, code.ID); err != nil {
			t.Errorf("AuthCode(%s) after RevokeConsent: %v; want kept (redeemed, another client's, another user's)", code.ID, err)
		}
	}
	if _, err := s.Grants.DeviceCode(ctx, pending.ID); err != nil {
		t.Errorf("DeviceCode(pending, nobody's yet) after RevokeConsent: %v", err)
	}

	seq = lastSeq(t, s)
	_, err = s.Grants.RevokeConsent(ctx, u.ID, c.ID, at)
	wantCode(t, "RevokeConsent(again)", err, keycard.ENOTFOUND)
	if got := feedSince(t, s, seq, at); len(got) != 0 {
		t.Errorf("feed after a failed RevokeConsent: %v, want nothing", got)
	}
	// A consent whose grant sessions have all ended.
	if _, err := s.Sessions.RevokeSession(ctx, gOther.ID, at, keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	ids, err = s.Grants.RevokeConsent(ctx, other.ID, c.ID, at)
	if err != nil || ids == nil || len(ids) != 0 {
		t.Errorf("RevokeConsent(no live grant session) = %v, %v; want an empty, non-nil list", ids, err)
	}
}

func testPushedRequests(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	c := createClient(t, s, "app")
	p := createPushedRequest(t, s, c.ID, t0)
	got, err := s.Grants.PushedRequest(ctx, p.ID, t0.Add(time.Second))
	if err != nil {
		t.Fatalf("PushedRequest: %v", err)
	}
	check(t, "PushedRequest", got, p)
	_, err = s.Grants.PushedRequest(ctx, p.ID, p.ExpiresAt)
	wantCode(t, "PushedRequest(at expiry)", err, keycard.ENOTFOUND)

	with := func(f func(p *keycard.PushedRequest)) *keycard.PushedRequest {
		x := &keycard.PushedRequest{ID: id(t), ClientID: c.ID, Params: []byte(`{}`), CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
		f(x)
		return x
	}
	for _, tt := range []struct {
		name string
		p    *keycard.PushedRequest
		want string
	}{
		{"same id", with(func(x *keycard.PushedRequest) { x.ID = p.ID }), keycard.ECONFLICT},
		{"unknown client", with(func(x *keycard.PushedRequest) { x.ClientID = "missing" }), keycard.ENOTFOUND},
		{"no id", with(func(x *keycard.PushedRequest) { x.ID = "" }), keycard.EINVALID},
		{"no client", with(func(x *keycard.PushedRequest) { x.ClientID = "" }), keycard.EINVALID},
		{"no params", with(func(x *keycard.PushedRequest) { x.Params = nil }), keycard.EINVALID},
		{"params not an object", with(func(x *keycard.PushedRequest) { x.Params = []byte(`["a"]`) }), keycard.EINVALID},
		{"params null", with(func(x *keycard.PushedRequest) { x.Params = []byte(`null`) }), keycard.EINVALID},
		{"params not JSON", with(func(x *keycard.PushedRequest) { x.Params = []byte(`{"a":`) }), keycard.EINVALID},
	} {
		t.Run("CreatePushedRequest "+tt.name, func(t *testing.T) {
			wantCode(t, "CreatePushedRequest", s.Grants.CreatePushedRequest(ctx, tt.p), tt.want)
		})
	}
	if got, err := s.Grants.PushedRequest(ctx, p.ID, t0); err != nil {
		t.Fatal(err)
	} else {
		check(t, "PushedRequest after failed creates", got, p)
	}

	if err := s.Grants.DeletePushedRequest(ctx, p.ID); err != nil {
		t.Fatalf("DeletePushedRequest: %v", err)
	}
	_, err = s.Grants.PushedRequest(ctx, p.ID, t0)
	wantCode(t, "PushedRequest(deleted)", err, keycard.ENOTFOUND)
	if err := s.Grants.DeletePushedRequest(ctx, p.ID); err != nil {
		t.Errorf("DeletePushedRequest(again) = %v, want nil", err)
	}
}

// testPruneGrants checks that PruneGrants deletes the codes, pushed
// requests and single-use markers that expired before its time, redeemed
// or not, and nothing else.
func testPruneGrants(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "hugo")
	c := createClient(t, s, "app")
	sess, _ := createSession(t, s, u.ID, t0)
	old := createAuthCode(t, s, sess, c.ID, t0)                    // expires t0+60s
	oldRedeemed := createAuthCode(t, s, sess, c.ID, t0)            // redeemed, expires t0+60s
	young := createAuthCode(t, s, sess, c.ID, t0.Add(time.Minute)) // expires t0+2m
	oldDevice := createDeviceCode(t, s, c.ID, "OLDDEVIC", t0)      // expires t0+10m
	youngDevice := createDeviceCode(t, s, c.ID, "YOUNGDEV", t0.Add(time.Hour))
	oldPar := createPushedRequest(t, s, c.ID, t0)                    // expires t0+60s
	youngPar := createPushedRequest(t, s, c.ID, t0.Add(time.Minute)) // expires t0+2m
	saveConsent(t, s, u.ID, c.ID)
	for key, exp := range map[string]time.Time{"old-jti": t0.Add(time.Minute), "young-jti": t0.Add(2 * time.Hour)} {
		if first, err := s.Grants.UseOnce(ctx, key, t0, exp); err != nil || !first {
			t.Fatalf("UseOnce(%s) = %v, %v", key, first, err)
		}
	}
	r := redeemRequest(t, keycard.GrantKindAuthCode, oldRedeemed.ID, sess, c.ID, t0.Add(time.Second), false)
	if out, err := s.Grants.Redeem(ctx, r); err != nil || out != keycard.Redeemed {
		t.Fatalf("Redeem = %v, %v", out, err)
	}

	// Exactly at young's expiry: young is kept.
	n, err := s.Grants.PruneGrants(ctx, young.ExpiresAt)
	if err != nil || n != 4 {
		t.Errorf("PruneGrants(+2m) = %d, %v; want 4 (two codes, a pushed request, a single-use marker), nil", n, err)
	}
	// A pruned marker can be used again; the young one cannot.
	if first, err := s.Grants.UseOnce(ctx, "young-jti", t0.Add(time.Hour), t0.Add(90*time.Minute)); err != nil || first {
		t.Errorf("UseOnce(young-jti) after PruneGrants = %v, %v; want false (kept), nil", first, err)
	}
	for _, cid := range []string{old.ID, oldRedeemed.ID} {
		_, err := s.Grants.AuthCode(ctx, cid)
		wantCode(t, "AuthCode(pruned)", err, keycard.ENOTFOUND)
	}
	if _, err := s.Grants.AuthCode(ctx, young.ID); err != nil {
		t.Errorf("AuthCode(unexpired) after PruneGrants: %v", err)
	}
	if _, err := s.Grants.PushedRequest(ctx, youngPar.ID, t0); err != nil {
		t.Errorf("PushedRequest(unexpired) after PruneGrants: %v", err)
	}
	if _, err := s.Grants.PushedRequest(ctx, oldPar.ID, t0); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("PushedRequest(pruned) = %v, want ENOTFOUND", err)
	}
	// The grant session of a pruned code stays.
	if got, err := s.Sessions.Session(ctx, r.Session.ID); err != nil || got.Revoked() {
		t.Errorf("grant session of a pruned code: %+v, %v; want live", got, err)
	}

	n, err = s.Grants.PruneGrants(ctx, t0.Add(time.Hour))
	if err != nil || n != 3 {
		t.Errorf("PruneGrants(+1h) = %d, %v; want 3 (a code, a device code, a pushed request), nil", n, err)
	}
	if first, err := s.Grants.UseOnce(ctx, "old-jti", t0.Add(time.Hour), t0.Add(90*time.Minute)); err != nil || !first {
		t.Errorf("UseOnce(old-jti) after PruneGrants = %v, %v; want true (its marker was pruned), nil", first, err)
	}
	_, err = s.Grants.DeviceCode(ctx, oldDevice.ID)
	wantCode(t, "DeviceCode(pruned)", err, keycard.ENOTFOUND)
	if _, err := s.Grants.DeviceCode(ctx, youngDevice.ID); err != nil {
		t.Errorf("DeviceCode(unexpired) after PruneGrants: %v", err)
	}
	if _, err := s.Grants.Consent(ctx, u.ID, c.ID); err != nil {
		t.Errorf("Consent after PruneGrants: %v; want kept", err)
	}
	if n, err := s.Grants.PruneGrants(ctx, t0.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("PruneGrants(again) = %d, %v; want 0, nil", n, err)
	}
}
