package auth

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// hookFunc is a ClaimsHook that runs a function and keeps the requests.
type hookFunc struct {
	mu   sync.Mutex
	reqs []ClaimsRequest
	fn   func(*ClaimsRequest) (*CustomClaims, error)
}

func (h *hookFunc) Claims(_ context.Context, r *ClaimsRequest) (*CustomClaims, error) {
	h.mu.Lock()
	h.reqs = append(h.reqs, *r)
	h.mu.Unlock()
	return h.fn(r)
}

// withHook rebuilds f's service with the hook (over the same stores and
// keys).
func (f *fixture) withHook(t *testing.T, h ClaimsHook, cont bool) {
	t.Helper()
	svc, err := NewService(Deps{Stores: f.db.Stores(), Keys: f.svc.keys, Sealer: f.svc.sealer, Hasher: fastHasher, Now: f.clock.Now, ClaimsHook: h},
		Config{Issuer: "https://auth.test", Registration: true, ClaimsHookContinue: cont})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// claimsOf returns the claims of a token f's keys verify, as a map.
func (f *fixture) claimsOf(t *testing.T, token string) jwt.MapClaims {
	t.Helper()
	keys, err := f.svc.Keys().VerificationKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var m jwt.MapClaims
	if err := jwt.NewParser(keys, jwt.WithIssuer("https://auth.test"), jwt.WithNow(f.clock.Now)).Parse(token, &m); err != nil {
		t.Fatalf("parse: %v", err)
	}
	return m
}

func TestClaimsHookAddsClaims(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	h := &hookFunc{fn: func(r *ClaimsRequest) (*CustomClaims, error) {
		cc := &CustomClaims{AccessToken: map[string]json.RawMessage{"tenant": raw(`"acme"`), "perms": raw(`["read", "write"]`)}}
		if r.IDToken {
			cc.IDToken = map[string]json.RawMessage{"tenant": raw(`"acme"`), "locale": raw(`"fr"`)}
		}
		return cc, nil
	}}
	f.withHook(t, h, false)

	tok, err := f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	m := f.claimsOf(t, tok.AccessToken)
	if m["tenant"] != "acme" || len(m["perms"].([]any)) != 2 || m["sub"] == "" || m["sid"] != tok.SessionID {
		t.Errorf("access token claims %v: want tenant, perms and Keycard's own", m)
	}
	// Keycard's own claims are still what verifiers read.
	if _, err := f.svc.Authenticate(ctx, tok.AccessToken); err != nil {
		t.Errorf("Authenticate: %v", err)
	}
	if len(h.reqs) != 1 || h.reqs[0].Username != "alice" || h.reqs[0].SessionID != tok.SessionID || h.reqs[0].ClientID != DefaultClientID || h.reqs[0].IDToken {
		t.Errorf("hook requests %+v", h.reqs)
	}
	// A refresh asks again.
	if _, err := f.svc.Refresh(ctx, tok.RefreshToken, Agent{}); err != nil {
		t.Fatal(err)
	}
	if len(h.reqs) != 2 {
		t.Errorf("%d hook calls after a refresh, want 2", len(h.reqs))
	}

	// The code grant: one call for both tokens, the ID token's claims in
	// the ID token only.
	c, secret := f.app(t, true, false)
	b := f.browser(t, "alice")
	a, err := f.svc.Authorize(ctx, authzParams(c))
	if err != nil {
		t.Fatal(err)
	}
	code, err := f.svc.IssueCode(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	authed, err := f.svc.AuthenticateClient(ctx, c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	calls := len(h.reqs)
	otok, err := f.svc.ExchangeCode(ctx, authed, code, testRedirect, testVerifier, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.reqs) != calls+1 || !h.reqs[calls].IDToken || h.reqs[calls].ClientID != c.ID || !strings.Contains(h.reqs[calls].Scope, "openid") {
		t.Errorf("hook requests for the code grant %+v", h.reqs[calls:])
	}
	if id := f.claimsOf(t, otok.IDToken); id["locale"] != "fr" || id["tenant"] != "acme" || id["nonce"] == nil {
		t.Errorf("ID token claims %v", id)
	}
	if at := f.claimsOf(t, otok.AccessToken); at["locale"] != nil || at["tenant"] != "acme" || at["client_id"] != c.ID {
		t.Errorf("access token claims %v", at)
	}
}

// TestClaimsHookFailures: a hook that fails, or answers with a claim it
// may not set, fails the sign-in (leaving no session) unless
// ClaimsHookContinue, which mints the tokens without its claims.
func TestClaimsHookFailures(t *testing.T) {
	answers := map[string]*CustomClaims{
		"sub":                            {AccessToken: map[string]json.RawMessage{"sub": raw(`"admin"`)}},
		"roles":                          {AccessToken: map[string]json.RawMessage{"roles": raw(`["admin"]`)}},
		"scope":                          {AccessToken: map[string]json.RawMessage{"scope": raw(`"admin:all"`)}},
		"exp":                            {AccessToken: map[string]json.RawMessage{"exp": raw(`99999999999`)}},
		"cnf":                            {AccessToken: map[string]json.RawMessage{"cnf": raw(`{"jkt":"x"}`)}},
		"Sub, another spelling":          {AccessToken: map[string]json.RawMessage{"Sub": raw(`"admin"`)}},
		"email_verified in the ID token": {IDToken: map[string]json.RawMessage{"email_verified": raw(`true`)}},
		"empty name":                     {AccessToken: map[string]json.RawMessage{"": raw(`1`)}},
		"long name":                      {AccessToken: map[string]json.RawMessage{strings.Repeat("n", maxClaimName+1): raw(`1`)}},
		"not JSON":                       {AccessToken: map[string]json.RawMessage{"x": raw(`{`)}},
	}
	for name, cc := range answers {
		t.Run(name, func(t *testing.T) { hookFails(t, func(*ClaimsRequest) (*CustomClaims, error) { return cc, nil }) })
	}
	t.Run("error", func(t *testing.T) {
		hookFails(t, func(*ClaimsRequest) (*CustomClaims, error) { return nil, errors.New("connection refused") })
	})
}

func hookFails(t *testing.T, fn func(*ClaimsRequest) (*CustomClaims, error)) {
	t.Helper()
	ctx := context.Background()
	for _, cont := range []bool{false, true} {
		f := newFixture(t, jose.ES256)
		f.user(t, "alice")
		f.withHook(t, &hookFunc{fn: fn}, cont)
		tok, err := f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
		u, _ := f.db.Stores().Users.UserByUsername(ctx, "alice")
		sessions, _ := f.db.Stores().Sessions.ListSessions(ctx, keycard.SessionFilter{UserID: u.ID})
		if !cont {
			if keycard.ErrorCode(err) != keycard.EINTERNAL || tok != nil {
				t.Errorf("deny: Login = %v, %v; want EINTERNAL", tok, err)
			}
			if len(sessions) != 0 {
				t.Errorf("deny: %d sessions left behind, want none", len(sessions))
			}
			continue
		}
		if err != nil {
			t.Fatalf("continue: Login: %v", err)
		}
		m := f.claimsOf(t, tok.AccessToken)
		if m["sub"] != u.ID {
			t.Errorf("continue: sub %v, want %s", m["sub"], u.ID)
		}
		for k := range m {
			switch k {
			case "iss", "sub", "aud", "exp", "iat", "jti", "sid", "client_id", "roles", "auth_time", "acr", "amr":
			default:
				t.Errorf("continue: claim %q in the token; want only Keycard's", k)
			}
		}
	}
}

func TestWithClaimsMarshal(t *testing.T) {
	for _, tc := range []struct {
		base any
		want string
	}{
		{struct {
			A string `json:"a"`
		}{"x"}, `{"a":"x","b":[1,2],"c":{"d":true}}`},
		{struct{}{}, `{"b":[1,2],"c":{"d":true}}`},
	} {
		got, err := json.Marshal(extend(tc.base, map[string]json.RawMessage{"c": raw(` { "d" : true } `), "b": raw("[1, 2]")}))
		if err != nil || string(got) != tc.want {
			t.Errorf("got %s, %v; want %s", got, err, tc.want)
		}
	}
	if _, err := json.Marshal(extend([]int{1}, map[string]json.RawMessage{"b": raw("1")})); err == nil {
		t.Error("extend of a non-object marshalled")
	}
}
