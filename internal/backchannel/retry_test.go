package backchannel_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/backchannel"
	"github.com/keycard-auth/keycard/internal/outbox"
)

// logout signs name in, signs app in through the browser, and signs the
// browser out; it returns the browser session.
func (e *env) logout(t *testing.T, app *keycard.Client, name string) *auth.BrowserSession {
	t.Helper()
	_, b := e.signIn(t, name)
	e.grant(t, app, b)
	if err := e.svc.EndBrowserSession(context.Background(), b, auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRetries: a client that fails gets the logout again with back-off
// until it answers 2xx, once; one that never does is given up after the
// last attempt, which is audited; a redirect is a failure, not followed.
func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fail     int // requests answered with status first
		status   int
		redirect bool // the failing answers redirect to a receiver that would accept
		want     keycard.LogoutState
		reqs     int // requests the client gets
		tokens   int // tokens it accepts
	}{
		{name: "fails 3 times, then succeeds", fail: 3, want: keycard.LogoutDelivered, reqs: 4, tokens: 1},
		{name: "never succeeds", fail: 1000, want: keycard.LogoutFailed, reqs: 5},
		{name: "answers 400", fail: 1000, status: http.StatusBadRequest, want: keycard.LogoutFailed, reqs: 5},
		{name: "redirects", fail: 1000, status: http.StatusTemporaryRedirect, redirect: true, want: keycard.LogoutFailed, reqs: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, auth.Config{}, fastRetries()) // 5 attempts
			r := newReceiver(t)
			r.fail, r.status = tc.fail, tc.status
			elsewhere := newReceiver(t)
			if tc.redirect {
				r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					r.mu.Lock()
					r.reqs++
					r.mu.Unlock()
					http.Redirect(w, req, elsewhere.uri(), tc.status)
				})
			}
			app := e.app(t, r.uri(), true)
			b := e.logout(t, app, "carol")
			ds := e.settled(t, 1)
			d := ds[0]
			if d.State != tc.want || d.Attempts != tc.reqs {
				t.Errorf("delivery %+v: want %s after %d attempts", d, tc.want, tc.reqs)
			}
			tokens, reqs := r.got()
			if reqs != tc.reqs || len(tokens) != tc.tokens {
				t.Errorf("the client got %d requests, accepted %d tokens; want %d and %d", reqs, len(tokens), tc.reqs, tc.tokens)
			}
			for _, tok := range tokens {
				e.wantLogout(t, tok, app.ID, b.User.ID, b.Session.ID)
			}
			if _, n := elsewhere.got(); n != 0 {
				t.Errorf("the redirect was followed: %d requests elsewhere", n)
			}
			// The audit follows the outcome: wait for it.
			wantEvents := map[bool]int{true: 1, false: 0}[tc.want == keycard.LogoutFailed]
			var events []*keycard.AuditEvent
			for end := time.Now().Add(deadline); ; time.Sleep(10 * time.Millisecond) {
				var err error
				if events, err = e.svc.AuditEvents(context.Background(), keycard.AuditFilter{Type: auth.AuditBackchannelLogoutFailed}); err != nil {
					t.Fatal(err)
				}
				if len(events) >= wantEvents || time.Now().After(end) {
					break
				}
			}
			if len(events) != wantEvents {
				t.Errorf("got %d %s audit events, want %d", len(events), auth.AuditBackchannelLogoutFailed, wantEvents)
			} else if wantEvents == 1 && (events[0].Subject != d.SessionID || d.LastError == "") {
				t.Errorf("audit event %+v for delivery %+v: want the session as subject and the last error kept", events[0], d)
			}
		})
	}
}

// TestSlowClient: a client that does not answer delays nobody: the
// logout returns, and other clients are told, while it still holds its
// request; it is told once it answers.
func TestSlowClient(t *testing.T) {
	e := newEnv(t, auth.Config{}, fastRetries())
	slow, quick := newReceiver(t), newReceiver(t)
	release := make(chan struct{})
	slow.block = release
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	slowApp, quickApp := e.app(t, slow.uri(), true), e.app(t, quick.uri(), true)
	_, b := e.signIn(t, "dave")
	e.grant(t, slowApp, b)
	e.grant(t, quickApp, b)
	if err := e.svc.EndBrowserSession(context.Background(), b, auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	// The logout has returned; the slow client has its request and
	// holds it.
	select {
	case <-slow.entered:
	case <-time.After(deadline):
		t.Fatal("the slow client never got its request")
	}
	end := time.Now().Add(deadline)
	for tokens, _ := quick.got(); len(tokens) != 1; tokens, _ = quick.got() {
		if time.Now().After(end) {
			t.Fatal("the quick client was not told while the slow one held its request")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if tokens, _ := slow.got(); len(tokens) != 0 {
		t.Fatalf("the slow client answered before it was released")
	}
	close(release)
	e.settled(t, 2)
	if tokens, reqs := slow.got(); len(tokens) != 1 || reqs != 1 {
		t.Errorf("the slow client got %d requests, %d tokens; want 1 and 1", reqs, len(tokens))
	}
}

// TestTimeout: a client that answers after the request timeout has
// failed that attempt; the logout is tried again.
func TestTimeout(t *testing.T) {
	o := fastRetries()
	o.Timeout, o.Lease = 500*time.Millisecond, deadline
	e := newEnv(t, auth.Config{}, o)
	r := newReceiver(t)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	first := true
	r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		hold := first
		first = false
		r.mu.Unlock()
		if hold {
			select { // past the client's timeout: it gives up first
			case <-hang:
			case <-req.Context().Done():
			}
			return
		}
		r.serve(w, req)
	})
	app := e.app(t, r.uri(), true)
	e.logout(t, app, "erin")
	d := e.settled(t, 1)[0]
	// The first attempt timed out; a later one (the second, unless the
	// machine is slower than the timeout) succeeded.
	if d.State != keycard.LogoutDelivered || d.Attempts < 2 {
		t.Errorf("delivery %+v: want delivered after the first attempt timed out", d)
	}
}

// TestLeaseExpiry: a delivery claimed by a worker that never recorded an
// outcome (it crashed) is sent by another once the claim's lease runs
// out, once.
func TestLeaseExpiry(t *testing.T) {
	ctx := context.Background()
	e := newStoppedEnv(t, auth.Config{})
	r := newReceiver(t)
	app := e.app(t, r.uri(), true)
	e.logout(t, app, "fay")
	crashed, err := e.store.ClaimLogouts(ctx, e.clock.Now(), 100*time.Millisecond, 10)
	if err != nil || len(crashed) != 1 {
		t.Fatalf("the crashed worker's claim: got %d deliveries, %v; want 1", len(crashed), err)
	}
	e.run(t, fastRetries())
	d := e.settled(t, 1)[0]
	if d.State != keycard.LogoutDelivered || d.Attempts != 2 {
		t.Errorf("delivery %+v: want delivered at the second attempt", d)
	}
	if tokens, reqs := r.got(); len(tokens) != 1 || reqs != 1 {
		t.Errorf("the client got %d requests, %d tokens; want 1 and 1", reqs, len(tokens))
	}
}

// TestOptions: options that cannot work are refused.
func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    backchannel.Options
		ok   bool
	}{
		{name: "defaults", ok: true},
		{name: "negative attempts", o: backchannel.Options{Settings: outbox.Settings{MaxAttempts: -1}}},
		{name: "negative back-off", o: backchannel.Options{Settings: outbox.Settings{Backoff: -time.Second}}},
		{name: "lease within the timeout", o: backchannel.Options{Settings: outbox.Settings{Timeout: time.Minute, Lease: 30 * time.Second}}},
		{name: "a long timeout", o: backchannel.Options{Settings: outbox.Settings{Timeout: time.Minute}}, ok: true},
	} {
		if err := tc.o.Check(); (err == nil) != tc.ok {
			t.Errorf("%s: Check() = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
