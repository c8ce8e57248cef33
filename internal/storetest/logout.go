package storetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// createLogoutClient stores a new client named name with a back-channel
// logout URI.
func createLogoutClient(t *testing.T, s keycard.Stores, name string) *keycard.Client {
	t.Helper()
	c := newClient(t, name)
	c.OAuth = keycard.OAuthSettings{
		RedirectURIs:         []string{"https://" + name + ".example/callback"},
		GrantTypes:           []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken},
		BackchannelLogoutURI: "https://" + name + ".example/backchannel",
	}
	if err := s.Clients.CreateClient(context.Background(), c); err != nil {
		t.Fatalf("CreateClient(%q): %v", name, err)
	}
	return c
}

// logoutsOwed returns the session ids of every delivery, sorted.
func logoutsOwed(t *testing.T, s keycard.Stores) []string {
	t.Helper()
	ds, err := s.Logouts.ListLogouts(context.Background(), keycard.LogoutFilter{Limit: keycard.MaxPageSize})
	if err != nil {
		t.Fatalf("ListLogouts: %v", err)
	}
	ids := []string{}
	for _, d := range ds {
		ids = append(ids, d.SessionID)
	}
	slices.Sort(ids)
	return ids
}

// sorted returns ids sorted, and an empty slice for none.
func sorted(ids ...string) []string {
	out := append([]string{}, ids...)
	slices.Sort(out)
	return out
}

// testLogoutOwed: revoking a grant session of a client with a back-channel
// logout URI owes the client one delivery, with what the logout token
// needs; sign-ins and clients without the URI are owed none; revoking
// again owes nothing more.
func testLogoutOwed(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "yara")
	app := createLogoutClient(t, s, "notified")
	silent := createClient(t, s, "silent")
	parent, _ := createSession(t, s, u.ID, t0)
	g1, _ := createGrantSession(t, s, parent, app.ID, t0)
	g2, _ := createGrantSession(t, s, parent, app.ID, t0.Add(time.Second))
	createGrantSession(t, s, parent, silent.ID, t0)
	other, _ := createSession(t, s, u.ID, t0)

	if got := logoutsOwed(t, s); len(got) != 0 {
		t.Fatalf("before any revocation: got deliveries %v, want none", got)
	}
	at := t0.Add(time.Hour)
	if _, err := s.Sessions.RevokeSession(ctx, parent.ID, at, keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sessions.RevokeSession(ctx, other.ID, at, keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	check(t, "deliveries after the browser session ended", logoutsOwed(t, s), sorted(g1.ID, g2.ID))
	ds, err := s.Logouts.ListLogouts(ctx, keycard.LogoutFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		check(t, "delivery", d, &keycard.LogoutDelivery{
			SessionID: d.SessionID, ClientID: app.ID, UserID: u.ID, BrowserSessionID: parent.ID, Reason: keycard.RevokeParentEnded,
			EndedAt: at, State: keycard.LogoutPending, NextAttemptAt: at, UpdatedAt: at, URI: app.OAuth.BackchannelLogoutURI,
		})
	}
	// Revoking again, or the grant session itself, owes nothing more.
	for _, id := range []string{parent.ID, g1.ID} {
		if _, err := s.Sessions.RevokeSession(ctx, id, at.Add(time.Minute), keycard.RevokeAdmin); err != nil {
			t.Fatal(err)
		}
	}
	check(t, "deliveries after revoking again", logoutsOwed(t, s), sorted(g1.ID, g2.ID))
	// A delivery outlives its session's pruning.
	if _, err := s.Sessions.PruneSessions(ctx, at.Add(time.Hour), at); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sessions.Session(ctx, g1.ID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Fatalf("Session after pruning: got %v, want ENOTFOUND", err)
	}
	check(t, "deliveries after pruning the sessions", logoutsOwed(t, s), sorted(g1.ID, g2.ID))
}

// testLogoutOwedEveryPath: every way a grant session ends owes a delivery
// with its reason, except deleting the client, which is not told.
func testLogoutOwedEveryPath(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	at := t0.Add(time.Hour)
	for _, tc := range []struct {
		name   string
		reason string
		// end ends the grant session g (of client c, under parent p, of
		// user u).
		end func(t *testing.T, s keycard.Stores, u *keycard.User, c *keycard.Client, p, g *keycard.Session, tok *keycard.RefreshToken) error
	}{
		{"revoke the grant session", keycard.RevokeTokenRevocation, func(t *testing.T, s keycard.Stores, u *keycard.User, c *keycard.Client, p, g *keycard.Session, tok *keycard.RefreshToken) error {
			_, err := s.Sessions.RevokeSession(ctx, g.ID, at, keycard.RevokeTokenRevocation)
			return err
		}},
		{"revoke the user's sessions", keycard.RevokeLogoutAll, func(t *testing.T, s keycard.Stores, u *keycard.User, c *keycard.Client, p, g *keycard.Session, tok *keycard.RefreshToken) error {
			_, err := s.Sessions.RevokeUserSessions(ctx, u.ID, "", at, keycard.RevokeLogoutAll)
			return err
		}},
		{"revoke the client's sessions", keycard.RevokeAdmin, func(t *testing.T, s keycard.Stores, u *keycard.User, c *keycard.Client, p, g *keycard.Session, tok *keycard.RefreshToken) error {
			_, err := s.Sessions.RevokeClientSessions(ctx, u.ID, c.ID, at, keycard.RevokeAdmin)
			return err
		}},
		{"revoke every session", keycard.RevokeAll, func(t *testing.T, s keycard.Stores, u *keycard.User, c *keycard.Client, p, g *keycard.Session, tok *keycard.RefreshToken) error {
			_, err := s.Sessions.RevokeAllSessions(ctx, at, keycard.RevokeAll)
			return err
		}},
		{"refresh token reused", keycard.RevokeTokenReuse, func(t *testing.T, s keycard.Stores, u *keycard.User, c *keycard.Client, p, g *keycard.Session, tok *keycard.RefreshToken) error {
			if _, _, err := rotate(s, t, tok, at.Add(-time.Minute)); err != nil {
				return err
			}
			res, _, err := rotate(s, t, tok, at)
			if err == nil && res.Outcome != keycard.TheftDetected {
				t.Errorf("reuse: got outcome %v, want theft_detected", res.Outcome)
			}
			return err
		}},
		{"password changed", keycard.RevokePasswordChanged, func(t *testing.T, s keycard.Stores, u *keycard.User, c *keycard.Client, p, g *keycard.Session, tok *keycard.RefreshToken) error {
			_, err := s.Users.ChangePassword(ctx, u.ID, "$argon2id$new", "", at)
			return err
		}},
		{"user disabled", keycard.RevokeUserDisabled, func(t *testing.T, s keycard.Stores, u *keycard.User, c *keycard.Client, p, g *keycard.Session, tok *keycard.RefreshToken) error {
			disabled := true
			_, err := s.Users.UpdateUser(ctx, u.ID, keycard.UserUpdate{Disabled: &disabled}, at)
			return err
		}},
		{"user deleted", keycard.RevokeUserDeleted, func(t *testing.T, s keycard.Stores, u *keycard.User, c *keycard.Client, p, g *keycard.Session, tok *keycard.RefreshToken) error {
			_, err := s.Users.DeleteUser(ctx, u.ID, at)
			return err
		}},
		{"consent revoked", keycard.RevokeConsentRevoked, func(t *testing.T, s keycard.Stores, u *keycard.User, c *keycard.Client, p, g *keycard.Session, tok *keycard.RefreshToken) error {
			saveConsent(t, s, u.ID, c.ID)
			_, err := s.Grants.RevokeConsent(ctx, u.ID, c.ID, at)
			return err
		}},
		{"client deleted", "", func(t *testing.T, s keycard.Stores, u *keycard.User, c *keycard.Client, p, g *keycard.Session, tok *keycard.RefreshToken) error {
			return s.Clients.DeleteClient(ctx, c.ID, at)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			u := createUser(t, s, "zoe")
			c := createLogoutClient(t, s, "app")
			p, _ := createSession(t, s, u.ID, t0)
			g, tok := createGrantSession(t, s, p, c.ID, t0)
			if err := tc.end(t, s, u, c, p, g, tok); err != nil {
				t.Fatal(err)
			}
			ds, err := s.Logouts.ListLogouts(ctx, keycard.LogoutFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.reason == "" {
				if len(ds) != 0 {
					t.Errorf("got %d deliveries, want none", len(ds))
				}
				return
			}
			if len(ds) != 1 {
				t.Fatalf("got %d deliveries, want 1", len(ds))
			}
			if d := ds[0]; d.SessionID != g.ID || d.Reason != tc.reason || d.UserID != u.ID || d.BrowserSessionID != p.ID || !d.EndedAt.Equal(at) {
				t.Errorf("got delivery %+v, want session %s, reason %q, user %s, sid %s, ended at %v", d, g.ID, tc.reason, u.ID, p.ID, at)
			}
		})
	}
}

// testLogoutOwedCodeReuse: a code presented twice ends the grant session
// of its first redemption, which owes a delivery.
func testLogoutOwedCodeReuse(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "abel")
	c := createLogoutClient(t, s, "app")
	p, _ := createSession(t, s, u.ID, t0)
	code := createAuthCode(t, s, p, c.ID, t0)
	first := redeemRequest(t, keycard.GrantKindAuthCode, code.ID, p, c.ID, t0.Add(time.Second), false)
	if out, err := s.Grants.Redeem(ctx, first); err != nil || out != keycard.Redeemed {
		t.Fatalf("Redeem: got %v, %v, want redeemed", out, err)
	}
	again := redeemRequest(t, keycard.GrantKindAuthCode, code.ID, p, c.ID, t0.Add(2*time.Second), false)
	if out, err := s.Grants.Redeem(ctx, again); err != nil || out != keycard.Reused {
		t.Fatalf("Redeem again: got %v, %v, want reused", out, err)
	}
	check(t, "deliveries after code reuse", logoutsOwed(t, s), []string{first.Session.ID})
}

// owe ends n grant sessions of a new client with a back-channel logout
// URI at the given time and returns their ids, sorted.
func owe(t *testing.T, s keycard.Stores, n int, at time.Time) []string {
	t.Helper()
	u := createUser(t, s, "owed"+id(t)[:6])
	c := createLogoutClient(t, s, "app"+id(t)[:6])
	p, _ := createSession(t, s, u.ID, t0)
	var ids []string
	for range n {
		g, _ := createGrantSession(t, s, p, c.ID, t0)
		ids = append(ids, g.ID)
	}
	if _, err := s.Sessions.RevokeSession(context.Background(), p.ID, at, keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// claimed returns the session ids of the deliveries claimed at the given
// time, sorted.
func claimed(t *testing.T, s keycard.Stores, at time.Time, lease time.Duration, limit int) ([]string, []*keycard.LogoutDelivery) {
	t.Helper()
	ds, err := s.Logouts.ClaimLogouts(context.Background(), at, lease, limit)
	if err != nil {
		t.Fatalf("ClaimLogouts: %v", err)
	}
	ids := []string{}
	for _, d := range ds {
		ids = append(ids, d.SessionID)
	}
	slices.Sort(ids)
	return ids, ds
}

// testLogoutClaim: a due delivery is claimed once per lease; a lease that
// runs out lets it be claimed again, and the outcome of the lapsed
// attempt is refused; retries wait for their time; outcomes are final.
func testLogoutClaim(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	at := t0.Add(time.Hour)
	owed := owe(t, s, 3, at)
	const lease = 30 * time.Second

	if got, _ := claimed(t, s, at.Add(-time.Microsecond), lease, 10); len(got) != 0 {
		t.Errorf("claim before due: got %v, want none", got)
	}
	got, ds := claimed(t, s, at, lease, 2)
	if len(got) != 2 {
		t.Fatalf("claim with limit 2: got %v, want 2 deliveries", got)
	}
	for _, d := range ds {
		if d.Attempts != 1 || !d.NextAttemptAt.Equal(at.Add(lease)) || d.URI == "" || d.State != keycard.LogoutPending {
			t.Errorf("claimed %+v: want attempt 1, leased until %v, with a URI", d, at.Add(lease))
		}
	}
	rest, _ := claimed(t, s, at, lease, 10)
	check(t, "second claim: the third alone", append(got, rest...), owed)
	if again, _ := claimed(t, s, at.Add(lease-time.Microsecond), lease, 10); len(again) != 0 {
		t.Errorf("claim within the lease: got %v, want none", again)
	}

	// ds[0] succeeds; ds[1] fails and is due again later.
	ok, retry := ds[0], ds[1]
	if err := s.Logouts.LogoutDelivered(ctx, ok.SessionID, 1, at.Add(time.Second)); err != nil {
		t.Fatalf("LogoutDelivered: %v", err)
	}
	next := at.Add(5 * time.Second)
	if err := s.Logouts.RetryLogout(ctx, retry.SessionID, 1, at.Add(time.Second), next, "HTTP 503"); err != nil {
		t.Fatalf("RetryLogout: %v", err)
	}
	wantCode(t, "LogoutDelivered twice", s.Logouts.LogoutDelivered(ctx, ok.SessionID, 1, at), keycard.ECONFLICT)
	wantCode(t, "RetryLogout of a delivered one", s.Logouts.RetryLogout(ctx, ok.SessionID, 1, at, at, "x"), keycard.ECONFLICT)
	wantCode(t, "LogoutDelivered of an unknown session", s.Logouts.LogoutDelivered(ctx, id(t), 1, at), keycard.ENOTFOUND)

	if got, _ := claimed(t, s, next.Add(-time.Microsecond), lease, 10); len(got) != 0 {
		t.Errorf("claim before the retry is due: got %v, want none", got)
	}
	got, ds = claimed(t, s, next, lease, 10)
	check(t, "claim when the retry is due", got, []string{retry.SessionID})
	if d := ds[0]; d.Attempts != 2 || d.LastError != "HTTP 503" {
		t.Errorf("retried %+v: want attempt 2, last error %q", d, "HTTP 503")
	}
	wantCode(t, "outcome of the earlier attempt", s.Logouts.LogoutDelivered(ctx, retry.SessionID, 1, next), keycard.ECONFLICT)

	// The third one's lease runs out: it is claimed again, and the
	// lapsed attempt's outcome is refused.
	third := rest[0]
	got, ds = claimed(t, s, at.Add(lease), lease, 10)
	check(t, "claim after the lease ran out", got, []string{third})
	if ds[0].Attempts != 2 {
		t.Errorf("reclaimed: got attempt %d, want 2", ds[0].Attempts)
	}
	wantCode(t, "outcome of the lapsed attempt", s.Logouts.GiveUpLogout(ctx, third, 1, at.Add(lease), "late"), keycard.ECONFLICT)
	if err := s.Logouts.GiveUpLogout(ctx, third, 2, at.Add(lease), "HTTP 400"); err != nil {
		t.Fatalf("GiveUpLogout: %v", err)
	}
	if err := s.Logouts.LogoutDelivered(ctx, retry.SessionID, 2, next); err != nil {
		t.Fatalf("LogoutDelivered on the retry: %v", err)
	}
	if got, _ := claimed(t, s, at.Add(24*time.Hour), lease, 10); len(got) != 0 {
		t.Errorf("claim after every outcome: got %v, want none", got)
	}

	// The list, by state.
	for _, tc := range []struct {
		state keycard.LogoutState
		want  []string
	}{
		{keycard.LogoutDelivered, sorted(ok.SessionID, retry.SessionID)},
		{keycard.LogoutFailed, []string{third}},
		{keycard.LogoutPending, []string{}},
	} {
		ds, err := s.Logouts.ListLogouts(ctx, keycard.LogoutFilter{State: tc.state})
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, d := range ds {
			ids = append(ids, d.SessionID)
			if d.State != tc.state {
				t.Errorf("listed %s: got state %q", tc.state, d.State)
			}
		}
		slices.Sort(ids)
		check(t, "ListLogouts "+string(tc.state), ids, tc.want)
	}
	failed, err := s.Logouts.ListLogouts(ctx, keycard.LogoutFilter{State: keycard.LogoutFailed})
	if err != nil {
		t.Fatal(err)
	}
	if d := failed[0]; d.LastError != "HTTP 400" || !d.UpdatedAt.Equal(at.Add(lease)) || d.Attempts != 2 {
		t.Errorf("failed delivery %+v: want last error HTTP 400, updated at %v, 2 attempts", d, at.Add(lease))
	}
	_, err = s.Logouts.ListLogouts(ctx, keycard.LogoutFilter{State: "lost"})
	wantCode(t, "ListLogouts with an unknown state", err, keycard.EINVALID)
}

// testLogoutClaimConcurrent: of concurrent claimers, each due delivery
// goes to exactly one.
func testLogoutClaimConcurrent(t *testing.T, open OpenFunc) {
	s := open(t)
	at := t0.Add(time.Hour)
	owed := owe(t, s, 20, at)
	const claimers = 8
	var (
		mu  sync.Mutex
		got []string
		wg  sync.WaitGroup
	)
	errs := make(chan error, claimers)
	for range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ds, err := s.Logouts.ClaimLogouts(context.Background(), at, time.Minute, 3)
				if err != nil {
					errs <- err
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					got = append(got, d.SessionID)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("ClaimLogouts: %v", err)
	}
	slices.Sort(got)
	check(t, "deliveries claimed by all claimers together", got, owed)
}

// testLogoutClientGone: a delivery of a client deleted, or whose URI was
// removed, after the session ended is claimed without a URI; a changed URI
// is used at once.
func testLogoutClientGone(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "bela")
	gone := createLogoutClient(t, s, "gone")
	moved := createLogoutClient(t, s, "moved")
	p, _ := createSession(t, s, u.ID, t0)
	g1, _ := createGrantSession(t, s, p, gone.ID, t0)
	g2, _ := createGrantSession(t, s, p, moved.ID, t0)
	at := t0.Add(time.Hour)
	if _, err := s.Sessions.RevokeSession(ctx, p.ID, at, keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	if err := s.Clients.DeleteClient(ctx, gone.ID, at); err != nil {
		t.Fatal(err)
	}
	moved.OAuth.BackchannelLogoutURI = "https://moved.example/new"
	if _, err := s.Clients.UpdateClient(ctx, moved); err != nil {
		t.Fatal(err)
	}
	_, ds := claimed(t, s, at, time.Minute, 10)
	uris := map[string]string{}
	for _, d := range ds {
		uris[d.SessionID] = d.URI
	}
	check(t, "URIs claimed", uris, map[string]string{g1.ID: "", g2.ID: "https://moved.example/new"})
}

// testPruneLogouts: delivered and failed deliveries go once last updated
// before the cut-off; pending ones stay.
func testPruneLogouts(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	at := t0.Add(time.Hour)
	owed := owe(t, s, 3, at)
	_, ds := claimed(t, s, at, time.Minute, 2)
	done, failed := ds[0].SessionID, ds[1].SessionID
	if err := s.Logouts.LogoutDelivered(ctx, done, 1, at); err != nil {
		t.Fatal(err)
	}
	if err := s.Logouts.GiveUpLogout(ctx, failed, 1, at.Add(time.Hour), "HTTP 410"); err != nil {
		t.Fatal(err)
	}
	n, err := s.Logouts.PruneLogouts(ctx, at.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("PruneLogouts: got %d, %v, want 1", n, err)
	}
	var pending []string
	for _, id := range owed {
		if id != done && id != failed {
			pending = append(pending, id)
		}
	}
	check(t, "after the first prune", logoutsOwed(t, s), sorted(failed, pending[0]))
	if n, err := s.Logouts.PruneLogouts(ctx, at.Add(48*time.Hour)); err != nil || n != 1 {
		t.Fatalf("PruneLogouts: got %d, %v, want 1", n, err)
	}
	check(t, "after the second prune: the pending one", logoutsOwed(t, s), pending)
}
