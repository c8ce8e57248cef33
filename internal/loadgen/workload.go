package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/jose"
)

// Workload names.
const (
	WorkloadLogin             = "login"
	WorkloadRefresh           = "refresh"
	WorkloadClientCredentials = "client-credentials"
	WorkloadIntrospect        = "introspect"
	WorkloadGateway           = "gateway"
	WorkloadGatewayDPoP       = "gateway-dpop"
	WorkloadRevocationLatency = "revocation-latency"
	WorkloadAuthCode          = "authcode"
)

// WorkloadNames returns the names NewWorkload knows, in the order
// docs/bench.md describes them.
func WorkloadNames() []string {
	return []string{WorkloadLogin, WorkloadRefresh, WorkloadClientCredentials, WorkloadIntrospect, WorkloadGateway, WorkloadGatewayDPoP, WorkloadRevocationLatency, WorkloadAuthCode}
}

// NeedsGateway reports whether the named workload sends requests through
// the gateway (Target.Gateway and Target.Path).
func NeedsGateway(name string) bool {
	return name == WorkloadGateway || name == WorkloadGatewayDPoP || name == WorkloadRevocationLatency
}

// BenchScope is the scope of the service client bench creates for the
// client-credentials and introspect workloads.
const BenchScope = "bench:read"

// Defaults of the revocation-latency workload.
const (
	DefaultPollInterval      = 2 * time.Millisecond
	DefaultRevocationTimeout = 10 * time.Second
)

// maxUsers is the most users a workload registers; workers share them.
const maxUsers = 8

// Workload is one kind of request to measure, with what it needs.
type Workload interface {
	// Setup creates, through the Fixture, what workers workers need.
	Setup(ctx context.Context, workers int) error
	// Op performs one request; it is the Op of Run.
	Op(ctx context.Context, worker int) (time.Duration, error)
	// SelfTimed reports whether Op measures its own latency (see
	// Config.SelfTimed).
	SelfTimed() bool
}

// WorkloadOptions tunes the workloads that poll.
type WorkloadOptions struct {
	// PollInterval is how often revocation-latency asks the gateway
	// whether a logged-out token is refused yet; 0 means
	// DefaultPollInterval.
	PollInterval time.Duration
	// RevocationTimeout is how long revocation-latency polls before it
	// counts a token as not refused; 0 means DefaultRevocationTimeout.
	RevocationTimeout time.Duration
}

// NewWorkload returns the named workload on the fixture's target.
func NewWorkload(name string, f *Fixture, opts WorkloadOptions) (Workload, error) {
	if NeedsGateway(name) {
		if f.t.Gateway == "" {
			return nil, fmt.Errorf("workload %s needs the gateway's URL", name)
		}
		if !strings.HasPrefix(f.t.Path, "/") {
			return nil, fmt.Errorf("workload %s needs a path through the gateway starting with /", name)
		}
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.RevocationTimeout <= 0 {
		opts.RevocationTimeout = DefaultRevocationTimeout
	}
	switch name {
	case WorkloadLogin:
		return &loginWorkload{f: f}, nil
	case WorkloadRefresh:
		return &refreshWorkload{f: f}, nil
	case WorkloadClientCredentials:
		return &clientCredentialsWorkload{f: f}, nil
	case WorkloadIntrospect:
		return &introspectWorkload{f: f}, nil
	case WorkloadGateway:
		return &gatewayWorkload{f: f}, nil
	case WorkloadGatewayDPoP:
		return &gatewayDPoPWorkload{f: f}, nil
	case WorkloadRevocationLatency:
		return &revocationWorkload{f: f, opts: opts}, nil
	case WorkloadAuthCode:
		return &authcodeWorkload{f: f}, nil
	}
	return nil, fmt.Errorf("unknown workload %q (want one of %s)", name, strings.Join(WorkloadNames(), ", "))
}

// login: POST /v1/login of the bench users in turn. The rate is bound by
// the server's password hashing (argon2id).
type loginWorkload struct {
	f     *Fixture
	users []User
	// bodies are the login request bodies, one per user.
	bodies [][]byte
}

func (w *loginWorkload) SelfTimed() bool { return false }

func (w *loginWorkload) Setup(ctx context.Context, workers int) error {
	users, err := w.f.CreateUsers(ctx, min(workers, maxUsers))
	if err != nil {
		return err
	}
	w.users = users
	for _, u := range users {
		b, _ := json.Marshal(map[string]string{"username": u.Username, "password": u.Password})
		w.bodies = append(w.bodies, b)
	}
	return nil
}

func (w *loginWorkload) Op(ctx context.Context, worker int) (time.Duration, error) {
	status, body, err := w.f.do(ctx, "POST", w.f.t.URL+"/v1/login", http.Header{"Content-Type": {"application/json"}}, w.bodies[worker%len(w.bodies)])
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, statusError(status, body)
	}
	return 0, nil
}

// refresh: POST /oauth/token grant_type=refresh_token; each worker rotates
// its own session's refresh token, so no two requests present the same
// one.
type refreshWorkload struct {
	f      *Fixture
	users  []User
	chains []string // the current refresh token of each worker's session
}

func (w *refreshWorkload) SelfTimed() bool { return false }

func (w *refreshWorkload) Setup(ctx context.Context, workers int) error {
	users, err := w.f.CreateUsers(ctx, min(workers, maxUsers))
	if err != nil {
		return err
	}
	w.users = users
	toks, err := w.f.LoginAll(ctx, users, workers)
	if err != nil {
		return err
	}
	w.chains = make([]string, workers)
	for i, t := range toks {
		w.chains[i] = t.RefreshToken
	}
	return nil
}

func (w *refreshWorkload) Op(ctx context.Context, worker int) (time.Duration, error) {
	tok, err := w.f.Refresh(ctx, w.chains[worker])
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusBadRequest && ctx.Err() == nil {
		// The chain is broken (the session ended, or the token was reused
		// after the grace window): start a new one for the next request.
		if tok, lerr := w.f.Login(ctx, w.users[worker%len(w.users)]); lerr == nil {
			w.chains[worker] = tok.RefreshToken
		}
	}
	if err != nil {
		return 0, err // a lost answer: the same token gets the same successor within the grace window
	}
	w.chains[worker] = tok.RefreshToken
	return 0, nil
}

// client-credentials: POST /oauth/token grant_type=client_credentials as
// a service client with HTTP Basic authentication.
type clientCredentialsWorkload struct {
	f      *Fixture
	client ServiceClient
}

func (w *clientCredentialsWorkload) SelfTimed() bool { return false }

func (w *clientCredentialsWorkload) Setup(ctx context.Context, workers int) error {
	c, err := w.f.CreateClient(ctx, []string{BenchScope})
	w.client = c
	return err
}

func (w *clientCredentialsWorkload) Op(ctx context.Context, worker int) (time.Duration, error) {
	status, body, err := w.f.postForm(ctx, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {BenchScope}}, &w.client)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, statusError(status, body)
	}
	return 0, nil
}

// introspect: POST /oauth/introspect of a live user access token, as a
// service client; an answer other than "active": true is an error.
type introspectWorkload struct {
	f      *Fixture
	client ServiceClient
	tokens *userTokens
}

func (w *introspectWorkload) SelfTimed() bool { return false }

func (w *introspectWorkload) Setup(ctx context.Context, workers int) error {
	c, err := w.f.CreateClient(ctx, []string{BenchScope})
	if err != nil {
		return err
	}
	w.client = c
	w.tokens, err = newUserTokens(ctx, w.f, workers)
	return err
}

// userTokens holds an access token of each of a few bench users, and
// renews each in the background (a refresh grant) once half its lifetime
// has passed, so that a run longer than the access-token lifetime keeps
// sending valid tokens. The renewal is not on any measured request's path.
type userTokens struct {
	f     *Fixture
	slots []*tokenSlot
}

type tokenSlot struct {
	cur      atomic.Pointer[heldToken]
	renewing atomic.Bool
	// prover, when not nil, is the DPoP key the slot's tokens are bound
	// to: renewals prove it.
	prover *dpop.Prover
}

// heldToken is a token response ready to use.
type heldToken struct {
	access  string
	bearer  http.Header // Authorization: Bearer access
	refresh string
	renewAt time.Time
}

func newHeldToken(t Tokens) *heldToken {
	return &heldToken{
		access:  t.AccessToken,
		bearer:  http.Header{"Authorization": {"Bearer " + t.AccessToken}},
		refresh: t.RefreshToken,
		renewAt: time.Now().Add(time.Duration(t.ExpiresIn) * time.Second / 2),
	}
}

// newUserTokens registers users for workers workers and logs each in once.
func newUserTokens(ctx context.Context, f *Fixture, workers int) (*userTokens, error) {
	users, err := f.CreateUsers(ctx, min(workers, maxUsers))
	if err != nil {
		return nil, err
	}
	toks, err := f.LoginAll(ctx, users, len(users))
	if err != nil {
		return nil, err
	}
	u := &userTokens{f: f}
	for _, t := range toks {
		s := &tokenSlot{}
		s.cur.Store(newHeldToken(t))
		u.slots = append(u.slots, s)
	}
	return u, nil
}

// newDPoPUserTokens is newUserTokens with each user's access token bound
// to a DPoP key of its own (RFC 9449), by a refresh with a proof of it.
func newDPoPUserTokens(ctx context.Context, f *Fixture, workers int) (*userTokens, error) {
	u, err := newUserTokens(ctx, f, workers)
	if err != nil {
		return nil, err
	}
	for _, s := range u.slots {
		var err error
		if s.prover, err = dpop.GenerateProver(jose.ES256, nil); err != nil {
			return nil, err
		}
		next, err := f.RefreshDPoP(ctx, s.cur.Load().refresh, s.prover)
		if err != nil {
			return nil, fmt.Errorf("a refresh with a DPoP proof: %w", err)
		}
		if next.TokenType != "DPoP" {
			return nil, &KindError{Kind: KindBadResponse, Msg: "a refresh with a DPoP proof answered token_type " + next.TokenType}
		}
		s.cur.Store(newHeldToken(next))
	}
	return u, nil
}

// slot returns the token slot of worker.
func (u *userTokens) slot(worker int) *tokenSlot { return u.slots[worker%len(u.slots)] }

// get returns the token for worker, starting its renewal if it is due.
func (u *userTokens) get(ctx context.Context, worker int) *heldToken {
	s := u.slot(worker)
	t := s.cur.Load()
	if time.Now().After(t.renewAt) && s.renewing.CompareAndSwap(false, true) {
		go func() {
			defer s.renewing.Store(false)
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			next, err := u.f.RefreshDPoP(rctx, t.refresh, s.prover)
			if err != nil {
				// Keep the old token; try again in a second rather than on
				// every request.
				retry := *t
				retry.renewAt = time.Now().Add(time.Second)
				s.cur.Store(&retry)
				return
			}
			s.cur.Store(newHeldToken(next))
		}()
	}
	return t
}

func (w *introspectWorkload) Op(ctx context.Context, worker int) (time.Duration, error) {
	form := url.Values{"token": {w.tokens.get(ctx, worker).access}, "token_type_hint": {"access_token"}}
	status, body, err := w.f.postForm(ctx, "/oauth/introspect", form, &w.client)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, statusError(status, body)
	}
	var ans struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return 0, &KindError{Kind: KindBadResponse, Msg: "introspection answer is not JSON"}
	}
	if !ans.Active {
		return 0, &KindError{Kind: KindInactive, Msg: "introspection says a live token is inactive"}
	}
	return 0, nil
}

// gateway: GET Path through the gateway with a user's access token; any
// 2xx answer is a success.
type gatewayWorkload struct {
	f      *Fixture
	url    string
	tokens *userTokens
}

func (w *gatewayWorkload) SelfTimed() bool { return false }

func (w *gatewayWorkload) Setup(ctx context.Context, workers int) error {
	toks, err := newUserTokens(ctx, w.f, workers)
	if err != nil {
		return err
	}
	w.tokens = toks
	w.url = w.f.t.Gateway + w.f.t.Path
	// One request before the run, so that a route that refuses the
	// token is a setup error rather than a run of errors.
	if _, err := w.Op(ctx, 0); err != nil {
		return fmt.Errorf("GET %s through the gateway with a bench user's token: %w", w.f.t.Path, err)
	}
	return nil
}

func (w *gatewayWorkload) Op(ctx context.Context, worker int) (time.Duration, error) {
	status, body, err := w.f.do(ctx, "GET", w.url, w.tokens.get(ctx, worker).bearer, nil)
	if err != nil {
		return 0, err
	}
	if status < 200 || status > 299 {
		return 0, statusError(status, body)
	}
	return 0, nil
}

// gateway-dpop: GET Path through the gateway with a user's DPoP-bound
// access token as Authorization: DPoP and a fresh DPoP proof, signed with
// ES256 by the user's key for each request (the client's signing is in
// the latency); any 2xx answer is a success.
type gatewayDPoPWorkload struct {
	f      *Fixture
	url    string
	tokens *userTokens
}

func (w *gatewayDPoPWorkload) SelfTimed() bool { return false }

func (w *gatewayDPoPWorkload) Setup(ctx context.Context, workers int) error {
	toks, err := newDPoPUserTokens(ctx, w.f, workers)
	if err != nil {
		return err
	}
	w.tokens = toks
	w.url = w.f.t.Gateway + w.f.t.Path
	if _, err := w.Op(ctx, 0); err != nil {
		return fmt.Errorf("GET %s through the gateway with a bench user's DPoP-bound token: %w", w.f.t.Path, err)
	}
	return nil
}

func (w *gatewayDPoPWorkload) Op(ctx context.Context, worker int) (time.Duration, error) {
	t := w.tokens.get(ctx, worker)
	proof, err := w.tokens.slot(worker).prover.Proof("GET", w.url, t.access, "")
	if err != nil {
		return 0, err
	}
	status, body, err := w.f.do(ctx, "GET", w.url, http.Header{"Authorization": {"DPoP " + t.access}, "Dpop": {proof}}, nil)
	if err != nil {
		return 0, err
	}
	if status < 200 || status > 299 {
		return 0, statusError(status, body)
	}
	return 0, nil
}

// revocation-latency: log a bench user in, check that the gateway accepts
// the access token, log out (POST /v1/logout), then ask the gateway every
// PollInterval until it refuses the token with 401. The latency is from
// the logout's answer to the refusal's answer, so it is an upper bound
// that is at most one poll interval and one round trip above the time
// the revocation took to reach the gateway.
type revocationWorkload struct {
	f     *Fixture
	opts  WorkloadOptions
	url   string
	users []User
}

func (w *revocationWorkload) SelfTimed() bool { return true }

func (w *revocationWorkload) Setup(ctx context.Context, workers int) error {
	users, err := w.f.CreateUsers(ctx, min(workers, maxUsers))
	if err != nil {
		return err
	}
	w.users = users
	w.url = w.f.t.Gateway + w.f.t.Path
	tok, err := w.f.Login(ctx, users[0])
	if err != nil {
		return err
	}
	if _, err := w.gatewayStatus(ctx, tok.AccessToken, true); err != nil {
		return fmt.Errorf("GET %s through the gateway with a bench user's token: %w", w.f.t.Path, err)
	}
	return nil
}

// gatewayStatus asks the gateway for the path with token and returns
// whether it accepted (2xx) or refused (401) it; any other answer is an
// error. With wantAccepted a refusal is an error too.
func (w *revocationWorkload) gatewayStatus(ctx context.Context, token string, wantAccepted bool) (accepted bool, err error) {
	status, body, err := w.f.do(ctx, "GET", w.url, http.Header{"Authorization": {"Bearer " + token}}, nil)
	switch {
	case err != nil:
		return false, err
	case status >= 200 && status <= 299:
		return true, nil
	case status == http.StatusUnauthorized && !wantAccepted:
		return false, nil
	}
	return false, statusError(status, body)
}

func (w *revocationWorkload) Op(ctx context.Context, worker int) (time.Duration, error) {
	tok, err := w.f.Login(ctx, w.users[worker%len(w.users)])
	if err != nil {
		return 0, err
	}
	if _, err := w.gatewayStatus(ctx, tok.AccessToken, true); err != nil {
		return 0, err
	}
	status, body, err := w.f.do(ctx, "POST", w.f.t.URL+"/v1/logout", http.Header{"Authorization": {"Bearer " + tok.AccessToken}}, nil)
	if err != nil {
		return 0, err
	}
	if status != http.StatusNoContent {
		return 0, statusError(status, body)
	}
	loggedOut := time.Now()
	for i := 1; ; i++ {
		accepted, err := w.gatewayStatus(ctx, tok.AccessToken, false)
		if err != nil {
			return 0, err
		}
		if !accepted {
			return time.Since(loggedOut), nil
		}
		next := loggedOut.Add(time.Duration(i) * w.opts.PollInterval)
		if next.Sub(loggedOut) > w.opts.RevocationTimeout {
			return 0, &KindError{Kind: KindNotRefused, Msg: fmt.Sprintf("the gateway still accepted a logged-out token after %v", w.opts.RevocationTimeout)}
		}
		if err := (realClock{}).SleepUntil(ctx, next); err != nil {
			return 0, err
		}
	}
}
