package backchannel_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/authtest"
	"github.com/keycard-auth/keycard/internal/backchannel"
	"github.com/keycard-auth/keycard/internal/outbox"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

const (
	issuer   = "https://auth.test"
	redirect = "https://app.example/cb"
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" // RFC 7636 appendix B
	password = "correct horse battery"
	// deadline bounds every wait; generous, for a loaded machine.
	deadline = 30 * time.Second
)

// clock is the wall clock plus an offset the test moves forward (to age a
// rotated refresh token past its grace window).
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// receiver is a client's back-channel logout endpoint on loopback. By
// default it answers 200; fail makes it answer 503 to that many first
// requests; block makes it hold every request until block is closed.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	tokens  []string // the logout_token of every request answered 200
	reqs    int
	fail    int
	status  int // answered to the failing requests; 503 when 0
	block   chan struct{}
	entered chan struct{} // gets one value per request, when it arrives
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{entered: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.entered <- struct{}{}
	if r.block != nil {
		select {
		case <-r.block:
		case <-req.Context().Done():
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs++
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		http.Error(w, "want a form POST", http.StatusBadRequest)
		return
	}
	if r.reqs <= r.fail {
		w.WriteHeader(max(r.status, http.StatusServiceUnavailable))
		return
	}
	if err := req.ParseForm(); err != nil || len(req.PostForm["logout_token"]) != 1 {
		http.Error(w, "want one logout_token", http.StatusBadRequest)
		return
	}
	r.tokens = append(r.tokens, req.PostForm.Get("logout_token"))
}

func (r *receiver) uri() string { return r.srv.URL + "/backchannel" }

// got returns the tokens received and the number of requests.
func (r *receiver) got() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string{}, r.tokens...), r.reqs
}

// env is an auth.Service on a fresh SQLite database with a back-channel
// logout worker running.
type env struct {
	svc   *auth.Service
	store keycard.LogoutStore
	clock *clock
}

// fastRetries are worker options that retry at once, so that tests wait
// for outcomes rather than for back-off.
func fastRetries() backchannel.Options {
	return backchannel.Options{Settings: outbox.Settings{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, PollInterval: 10 * time.Millisecond,
		Timeout: deadline, MaxAttempts: 5}}
}

func newEnv(t *testing.T, cfg auth.Config, o backchannel.Options) *env {
	t.Helper()
	e := newStoppedEnv(t, cfg)
	e.run(t, o)
	return e
}

// newStoppedEnv is newEnv without a worker.
func newStoppedEnv(t *testing.T, cfg auth.Config) *env {
	t.Helper()
	clk := &clock{}
	e := authtest.New(t, clk.Now)
	cfg.Issuer = issuer
	svc, err := auth.NewService(e.Deps(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, store: e.Stores.Logouts, clock: clk}
}

// run starts a worker with options o until the test ends.
func (e *env) run(t *testing.T, o backchannel.Options) {
	t.Helper()
	o.Wake, o.Now = e.svc.RevocationsChanged, e.clock.Now
	w, err := backchannel.New(e.store, e.svc, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// app registers a client with a back-channel logout URI (none when uri
// is empty); first says first party.
func (e *env) app(t *testing.T, uri string, first bool) *keycard.Client {
	t.Helper()
	c, _, err := e.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "App", Scopes: []string{"orders:read"},
		OAuth: keycard.OAuthSettings{
			GrantTypes:   []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken},
			RedirectURIs: []string{redirect}, FirstParty: first, BackchannelLogoutURI: uri,
		}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signIn makes the user (if new) and signs the browser in.
func (e *env) signIn(t *testing.T, name string) (*auth.Tokens, *auth.BrowserSession) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.svc.UserByName(ctx, name); keycard.ErrorCode(err) == keycard.ENOTFOUND {
		if _, err := e.svc.CreateUser(ctx, auth.Operator(), name, password, []string{"user"}); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := e.svc.Login(ctx, name, password, auth.Agent{UserAgent: "browser"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.svc.BrowserSession(ctx, tok.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	return tok, b
}

// code runs the authorization endpoint for the app in browser b (with
// consent for a third-party app) and returns the code.
func (e *env) code(t *testing.T, c *keycard.Client, b *auth.BrowserSession) string {
	t.Helper()
	ctx := context.Background()
	sum := sha256.Sum256([]byte(verifier))
	a, err := e.svc.Authorize(ctx, url.Values{"client_id": {c.ID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid profile offline_access orders:read"}, "state": {"st"}, "nonce": {"n-0S6_WzA2Mj"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}})
	if err != nil {
		t.Fatal(err)
	}
	if need, err := e.svc.NeedsConsent(ctx, a, b); err != nil {
		t.Fatal(err)
	} else if need {
		if err := e.svc.Consent(ctx, b, a, auth.Agent{}); err != nil {
			t.Fatal(err)
		}
	}
	code, err := e.svc.IssueCode(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// grant signs the app in through browser b: a grant session.
func (e *env) grant(t *testing.T, c *keycard.Client, b *auth.BrowserSession) *auth.Tokens {
	t.Helper()
	tok, err := e.svc.ExchangeCode(context.Background(), c, e.code(t, c, b), redirect, verifier, auth.Agent{UserAgent: "app"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// settled waits until n deliveries are owed and none is pending, and
// returns them.
func (e *env) settled(t *testing.T, n int) []*keycard.LogoutDelivery {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		ds, err := e.store.ListLogouts(context.Background(), keycard.LogoutFilter{Limit: keycard.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		pending := 0
		for _, d := range ds {
			if d.State == keycard.LogoutPending {
				pending++
			}
		}
		if len(ds) == n && pending == 0 {
			return ds
		}
		if time.Now().After(end) {
			t.Fatalf("after %v: %d deliveries, %d pending; want %d settled", deadline, len(ds), pending, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantLogout checks that raw is a valid logout token (OpenID Connect
// Back-Channel Logout 1.0 section 2.4) for the client, the user and the
// browser session, signed by a key of the server's JWKS.
func (e *env) wantLogout(t *testing.T, raw string, clientID, sub, sid string) {
	t.Helper()
	jwks, err := e.svc.Keys().JWKS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := jose.ParseKeySet(jwks)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		auth.LogoutClaims
		Nonce *string `json:"nonce"`
	}
	err = jwt.NewParser(keys, jwt.WithIssuer(issuer), jwt.WithAudience(clientID), jwt.WithType("logout+jwt"),
		jwt.WithRequired("iat", "exp", "jti", "sub", "sid", "events"), jwt.WithNow(e.clock.Now)).Parse(raw, &c)
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	if c.Subject != sub || c.SessionID != sid {
		t.Errorf("logout token sub %q sid %q, want %q and %q", c.Subject, c.SessionID, sub, sid)
	}
	if c.Nonce != nil {
		t.Errorf("logout token has a nonce %q; it must never have one", *c.Nonce)
	}
	if life := c.ExpiresAt.Sub(c.IssuedAt.Time); life <= 0 || life > 2*time.Minute {
		t.Errorf("logout token lives %v, want a short lifetime", life)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	var events map[string]json.RawMessage
	if err := json.Unmarshal(m["events"], &events); err != nil || len(events) != 1 || string(events[auth.BackchannelLogoutEvent]) != "{}" {
		t.Errorf("events %s, want {%q: {}}", m["events"], auth.BackchannelLogoutEvent)
	}
}

// TestEveryPath: each way a session ends sends each app whose grant
// session ended exactly one valid logout token, naming the browser
// session; an app whose grant session lives on, or that registered no
// back-channel logout URI, gets none; a deleted client is not called.
func TestEveryPath(t *testing.T) {
	ctx := context.Background()
	// fixture is what each case ends sessions among: alice's browser,
	// signed into apps A and B (both with receivers) and C (none).
	type fixture struct {
		e          *env
		tok        *auth.Tokens
		b          *auth.BrowserSession
		a, bApp, c *keycard.Client
		aTok       *auth.Tokens
		aCode      string // a code A has redeemed (for the code reuse case)
	}
	for _, tc := range []struct {
		name string
		cfg  auth.Config
		// end ends sessions in f.
		end func(t *testing.T, f *fixture)
		// ended names the apps told: "A", "B".
		ended []string
	}{
		{"logout", auth.Config{}, func(t *testing.T, f *fixture) {
			p, err := f.e.svc.Authenticate(ctx, f.tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.e.svc.Logout(ctx, p, auth.Agent{}); err != nil {
				t.Fatal(err)
			}
		}, []string{"A", "B"}},
		{"sign-out page", auth.Config{}, func(t *testing.T, f *fixture) {
			if err := f.e.svc.EndBrowserSession(ctx, f.b, auth.Agent{}); err != nil {
				t.Fatal(err)
			}
		}, []string{"A", "B"}},
		{"logout everywhere", auth.Config{}, func(t *testing.T, f *fixture) {
			p, err := f.e.svc.Authenticate(ctx, f.tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.e.svc.LogoutAll(ctx, p, auth.Agent{}); err != nil {
				t.Fatal(err)
			}
		}, []string{"A", "B"}},
		{"browser's refresh token stolen", auth.Config{}, func(t *testing.T, f *fixture) {
			if _, err := f.e.svc.Refresh(ctx, f.tok.RefreshToken, auth.Agent{}); err != nil {
				t.Fatal(err)
			}
			f.e.clock.advance(time.Minute) // past the grace window
			if _, err := f.e.svc.Refresh(ctx, f.tok.RefreshToken, auth.Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
				t.Fatalf("reused refresh token: got %v, want EUNAUTHORIZED", err)
			}
		}, []string{"A", "B"}},
		{"app's refresh token stolen", auth.Config{}, func(t *testing.T, f *fixture) {
			if _, err := f.e.svc.RefreshFor(ctx, f.aTok.RefreshToken, f.a, auth.Agent{}); err != nil {
				t.Fatal(err)
			}
			f.e.clock.advance(time.Minute)
			if _, err := f.e.svc.RefreshFor(ctx, f.aTok.RefreshToken, f.a, auth.Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
				t.Fatalf("reused refresh token: got %v, want EUNAUTHORIZED", err)
			}
		}, []string{"A"}},
		{"session cap", auth.Config{MaxSessionsPerUser: 1}, func(t *testing.T, f *fixture) {
			f.e.clock.advance(time.Second) // the new sign-in is the most recent
			f.e.signIn(t, "alice")
		}, []string{"A", "B"}},
		{"admin revokes the session", auth.Config{}, func(t *testing.T, f *fixture) {
			if err := f.e.svc.RevokeUserSession(ctx, auth.Operator(), f.b.User.ID, f.b.Session.ID); err != nil {
				t.Fatal(err)
			}
		}, []string{"A", "B"}},
		{"admin revokes all the user's sessions", auth.Config{}, func(t *testing.T, f *fixture) {
			if _, err := f.e.svc.RevokeUserSessions(ctx, auth.Operator(), f.b.User.ID); err != nil {
				t.Fatal(err)
			}
		}, []string{"A", "B"}},
		{"revoke-all", auth.Config{}, func(t *testing.T, f *fixture) {
			if _, err := f.e.svc.RevokeAll(ctx, auth.Operator()); err != nil {
				t.Fatal(err)
			}
		}, []string{"A", "B"}},
		{"password change", auth.Config{}, func(t *testing.T, f *fixture) {
			if err := f.e.svc.SetPassword(ctx, auth.Operator(), f.b.User.ID, "a brand new passphrase", ""); err != nil {
				t.Fatal(err)
			}
		}, []string{"A", "B"}},
		{"user disabled", auth.Config{}, func(t *testing.T, f *fixture) {
			if _, err := f.e.svc.SetUserDisabled(ctx, auth.Operator(), f.b.User.ID, true); err != nil {
				t.Fatal(err)
			}
		}, []string{"A", "B"}},
		{"user deleted", auth.Config{}, func(t *testing.T, f *fixture) {
			if err := f.e.svc.DeleteUser(ctx, auth.Operator(), f.b.User.ID); err != nil {
				t.Fatal(err)
			}
		}, []string{"A", "B"}},
		{"consent revoked", auth.Config{}, func(t *testing.T, f *fixture) {
			if err := f.e.svc.RevokeConsent(ctx, auth.Operator(), f.b.User.ID, f.bApp.ID); err != nil {
				t.Fatal(err)
			}
		}, []string{"B"}},
		{"code presented twice", auth.Config{}, func(t *testing.T, f *fixture) {
			if _, err := f.e.svc.ExchangeCode(ctx, f.a, f.aCode, redirect, verifier, auth.Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
				t.Fatalf("code reused: got %v, want EUNAUTHORIZED", err)
			}
		}, []string{"A"}},
		{"client deleted", auth.Config{}, func(t *testing.T, f *fixture) {
			if err := f.e.svc.DeleteClient(ctx, auth.Operator(), f.a.ID); err != nil {
				t.Fatal(err)
			}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.cfg, fastRetries())
			recvA, recvB := newReceiver(t), newReceiver(t)
			f := &fixture{e: e}
			f.a, f.bApp, f.c = e.app(t, recvA.uri(), true), e.app(t, recvB.uri(), false), e.app(t, "", true)
			f.tok, f.b = e.signIn(t, "alice")
			f.aCode = e.code(t, f.a, f.b)
			var err error
			if f.aTok, err = e.svc.ExchangeCode(ctx, f.a, f.aCode, redirect, verifier, auth.Agent{}); err != nil {
				t.Fatal(err)
			}
			e.grant(t, f.bApp, f.b)
			e.grant(t, f.c, f.b)

			tc.end(t, f)
			ds := e.settled(t, len(tc.ended))
			for _, d := range ds {
				if d.State != keycard.LogoutDelivered || d.Attempts != 1 {
					t.Errorf("delivery %+v: want delivered at the first attempt", d)
				}
			}
			for name, r := range map[string]*receiver{"A": recvA, "B": recvB} {
				clientID := map[string]string{"A": f.a.ID, "B": f.bApp.ID}[name]
				tokens, reqs := r.got()
				want := 0
				for _, n := range tc.ended {
					if n == name {
						want = 1
					}
				}
				if len(tokens) != want || reqs != want {
					t.Errorf("app %s got %d tokens in %d requests, want %d", name, len(tokens), reqs, want)
					continue
				}
				for _, tok := range tokens {
					e.wantLogout(t, tok, clientID, f.b.User.ID, f.b.Session.ID)
				}
			}
		})
	}
}

// TestClientDeletedIsNotCalled: a client deleted after its session ended
// but before its logout was sent is not called; the delivery is given up.
func TestClientDeletedIsNotCalled(t *testing.T) {
	ctx := context.Background()
	o := fastRetries()
	o.Concurrency = 1
	e := newEnv(t, auth.Config{}, o)
	busy, gone := newReceiver(t), newReceiver(t)
	release := make(chan struct{})
	busy.block = release // holds the worker's one request slot
	first, doomed := e.app(t, busy.uri(), true), e.app(t, gone.uri(), true)
	_, b1 := e.signIn(t, "bob")
	e.grant(t, first, b1)
	_, b2 := e.signIn(t, "bob")
	e.grant(t, doomed, b2)
	if err := e.svc.EndBrowserSession(ctx, b1, auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-busy.entered:
	case <-time.After(deadline):
		t.Fatal("the first delivery never arrived")
	}
	// The worker is busy: the second logout is owed, then its client
	// goes.
	if err := e.svc.EndBrowserSession(ctx, b2, auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteClient(ctx, auth.Operator(), doomed.ID); err != nil {
		t.Fatal(err)
	}
	close(release)
	ds := e.settled(t, 2)
	for _, d := range ds {
		want := keycard.LogoutDelivered
		if d.ClientID == doomed.ID {
			want = keycard.LogoutFailed
		}
		if d.State != want {
			t.Errorf("delivery to %s: got %s, want %s", d.ClientID, d.State, want)
		}
	}
	if tokens, reqs := gone.got(); reqs != 0 {
		t.Errorf("the deleted client got %d requests (%d tokens), want none", reqs, len(tokens))
	}
}
