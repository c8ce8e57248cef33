package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/authtest"
	"github.com/keycard-auth/keycard/internal/outbox"
	"github.com/keycard-auth/keycard/internal/webhook"
)

// received is one request a receiver got.
type received struct {
	id, timestamp, signature string
	body                     []byte
}

// receiver is an endpoint that answers with the status its answer func
// returns for the nth request (from 1).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int, r *http.Request) int
}

func newReceiver(t *testing.T, answer func(n int, r *http.Request) int) *receiver {
	r := &receiver{answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body})
		n := len(r.got)
		r.mu.Unlock()
		w.WriteHeader(r.answer(n, req))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received{}, r.got...)
}

// outcomes counts the worker's outcomes.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) add(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[s]++
}

func (o *outcomes) get(s string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[s]
}

func (o *outcomes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprint(o.n)
}

// env is a store with one endpoint, and the auth service that makes the
// bodies.
type env struct {
	stores   keycard.Stores
	svc      *auth.Service
	endpoint *keycard.WebhookEndpoint
}

func newEnv(t *testing.T, url string, events ...string) *env {
	e := authtest.New(t, nil)
	svc, err := auth.NewService(e.Deps(), auth.Config{Issuer: "https://auth.example"})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := keycard.NewWebhookSecret(strings.NewReader(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	ep := &keycard.WebhookEndpoint{ID: "ep1", URL: url, Secret: secret, Events: events, CreatedAt: time.Now()}
	if err := e.Stores.Webhooks.CreateWebhook(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	return &env{stores: e.Stores, svc: svc, endpoint: ep}
}

// event appends an audit event of the type.
func (e *env) event(t *testing.T, typ, subject, detail string) *keycard.AuditEvent {
	t.Helper()
	ev := &keycard.AuditEvent{Time: time.Now(), Type: typ, Subject: subject, Detail: json.RawMessage(detail)}
	if err := e.stores.Audit.AppendAudit(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// run starts a worker until the test ends.
func (e *env) run(t *testing.T, o webhook.Options) {
	t.Helper()
	w, err := webhook.New(e.stores.Webhooks, e.svc, o)
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

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// states returns the state of every delivery.
func (e *env) states(t *testing.T) []keycard.WebhookState {
	t.Helper()
	ds, err := e.stores.Webhooks.ListWebhookDeliveries(context.Background(), keycard.WebhookFilter{Limit: keycard.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var out []keycard.WebhookState
	for _, d := range ds {
		out = append(out, d.State)
	}
	return out
}

func allIn(states []keycard.WebhookState, n int, want keycard.WebhookState) bool {
	if len(states) != n {
		return false
	}
	for _, s := range states {
		if s != want {
			return false
		}
	}
	return true
}

func fast(o *outcomes) webhook.Options {
	return webhook.Options{Settings: outbox.Settings{Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, PollInterval: 10 * time.Millisecond,
		Timeout: 30 * time.Second}, Outcome: o.add}
}

// TestDeliverAfterFailure: an endpoint that fails the first attempt gets
// the webhook again, the same message (id, body), signed as a receiver
// checks it.
func TestDeliverAfterFailure(t *testing.T) {
	r := newReceiver(t, func(n int, _ *http.Request) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	e := newEnv(t, r.srv.URL+"/hooks")
	ev := e.event(t, keycard.AuditLoginSucceeded, "user-1", `{"session":"s1"}`)
	var o outcomes
	e.run(t, fast(&o))
	// Each outcome is counted after the store records it, and the retried
	// one may be counted after the next attempt is made: wait for all.
	waitFor(t, "the delivery", func() bool {
		return allIn(e.states(t), 1, keycard.WebhookDelivered) && o.get(webhook.OutcomeDelivered) > 0 && o.get(webhook.OutcomeRetried) > 0
	})
	got := r.requests()
	if len(got) != 2 {
		t.Fatalf("requests: got %d, want 2", len(got))
	}
	if got[0].id != got[1].id || string(got[0].body) != string(got[1].body) || got[0].id != "msg_"+jsonNumber(ev.ID) {
		t.Errorf("the retry is another message: ids %s and %s, want msg_%d", got[0].id, got[1].id, ev.ID)
	}
	for i, g := range got {
		if !verify(e.endpoint.Secret, g.id, g.timestamp, g.body, g.signature) {
			t.Errorf("request %d: the signature %q does not verify", i+1, g.signature)
		}
	}
	var body struct {
		Type      string         `json:"type"`
		Timestamp time.Time      `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	if err := json.Unmarshal(got[1].body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Type != keycard.WebhookUserSignedIn || !body.Timestamp.Equal(ev.Time.Truncate(time.Microsecond)) ||
		body.Data["user_id"] != "user-1" || body.Data["session_id"] != "s1" {
		t.Errorf("body: got %s", got[1].body)
	}
	if o.get(webhook.OutcomeRetried) != 1 || o.get(webhook.OutcomeDelivered) != 1 {
		t.Errorf("outcomes: got %v, want one retried, one delivered", &o)
	}
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestGiveUpAndReplay: a delivery failing every attempt is given up after
// MaxAttempts and reported; replayed, it is sent again with the same id.
func TestGiveUpAndReplay(t *testing.T) {
	var mu sync.Mutex
	status := http.StatusInternalServerError
	r := newReceiver(t, func(int, *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		return status
	})
	e := newEnv(t, r.srv.URL)
	e.event(t, keycard.AuditUserCreated, "user-1", `{"username":"ann"}`)
	var o outcomes
	opts := fast(&o)
	opts.MaxAttempts = 3
	e.run(t, opts)
	// The outcomes are counted after the store records them: wait for
	// them too.
	waitFor(t, "the delivery given up", func() bool {
		return allIn(e.states(t), 1, keycard.WebhookFailed) && o.get(webhook.OutcomeFailed) > 0 && o.get(webhook.OutcomeRetried) >= 2
	})
	var audited []*keycard.AuditEvent
	waitFor(t, "the audit event", func() bool {
		var err error
		audited, err = e.stores.Audit.ListAudit(context.Background(), keycard.AuditFilter{Type: auth.AuditWebhookFailed})
		return err == nil && len(audited) > 0
	})
	if len(audited) != 1 || audited[0].Subject != e.endpoint.ID || !strings.Contains(string(audited[0].Detail), `"error":"HTTP 500"`) {
		t.Errorf("audited: got %v, want one webhook.failed of the endpoint with HTTP 500", audited)
	}
	if n := len(r.requests()); n != 3 {
		t.Errorf("requests: got %d, want 3 (MaxAttempts)", n)
	}
	if o.get(webhook.OutcomeRetried) != 2 || o.get(webhook.OutcomeFailed) != 1 {
		t.Errorf("outcomes: got %v, want 2 retried, 1 failed", &o)
	}

	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	ds, _ := e.stores.Webhooks.ListWebhookDeliveries(context.Background(), keycard.WebhookFilter{})
	if _, err := e.stores.Webhooks.ReplayWebhook(context.Background(), ds[0].ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay delivered", func() bool { return allIn(e.states(t), 1, keycard.WebhookDelivered) })
	got := r.requests()
	if len(got) != 4 || got[3].id != got[0].id {
		t.Errorf("replay: got %d requests, last id %q, want 4 with id %q", len(got), got[len(got)-1].id, got[0].id)
	}
}

// TestRedirectIsFailure: a 3xx answer is a failure, and the body never
// goes to where it points.
func TestRedirectIsFailure(t *testing.T) {
	elsewhere := newReceiver(t, func(int, *http.Request) int { return http.StatusOK })
	r := newReceiver(t, func(int, *http.Request) int { return http.StatusFound })
	r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, elsewhere.srv.URL, http.StatusFound)
	})
	e := newEnv(t, r.srv.URL)
	e.event(t, keycard.AuditUserCreated, "user-1", `{}`)
	var o outcomes
	opts := fast(&o)
	opts.MaxAttempts = 2
	e.run(t, opts)
	waitFor(t, "the delivery given up", func() bool { return allIn(e.states(t), 1, keycard.WebhookFailed) })
	if n := len(elsewhere.requests()); n != 0 {
		t.Errorf("the redirect's target got %d requests, want 0", n)
	}
}

// TestTimeout: an endpoint that does not answer within Timeout fails the
// attempt.
func TestTimeout(t *testing.T) {
	r := newReceiver(t, func(n int, req *http.Request) int {
		if n == 1 {
			select {
			case <-req.Context().Done():
			case <-time.After(time.Minute):
			}
		}
		return http.StatusOK
	})
	e := newEnv(t, r.srv.URL)
	e.event(t, keycard.AuditUserCreated, "user-1", `{}`)
	var o outcomes
	opts := fast(&o)
	opts.Timeout = 300 * time.Millisecond
	e.run(t, opts)
	// The retried outcome is counted after the store records the retry,
	// perhaps after the next attempt delivered it: wait for both.
	waitFor(t, "the delivery", func() bool {
		return allIn(e.states(t), 1, keycard.WebhookDelivered) && o.get(webhook.OutcomeRetried) > 0
	})
	if o.get(webhook.OutcomeRetried) != 1 {
		t.Errorf("outcomes: got %v, want the stalled attempt retried", &o)
	}
}

// TestSubscription: an endpoint gets only the types it subscribed to.
func TestSubscription(t *testing.T) {
	r := newReceiver(t, func(int, *http.Request) int { return http.StatusOK })
	e := newEnv(t, r.srv.URL, keycard.WebhookPasswordChanged)
	e.event(t, keycard.AuditUserCreated, "u", `{}`)
	e.event(t, keycard.AuditPasswordChanged, "u", `{"sessions_revoked":2}`)
	e.event(t, keycard.AuditLoginFailed, "u", `{}`)
	var o outcomes
	e.run(t, fast(&o))
	waitFor(t, "the delivery", func() bool { return allIn(e.states(t), 1, keycard.WebhookDelivered) })
	got := r.requests()
	if len(got) != 1 || !strings.Contains(string(got[0].body), `"type":"user.password_changed"`) {
		t.Errorf("requests: got %d, want the password change only", len(got))
	}
}

// TestSharedWork: two workers on one database send each webhook once.
func TestSharedWork(t *testing.T) {
	r := newReceiver(t, func(int, *http.Request) int { return http.StatusOK })
	e := newEnv(t, r.srv.URL)
	for range 30 {
		e.event(t, keycard.AuditLoginSucceeded, "u", `{"session":"s"}`)
	}
	var o outcomes
	e.run(t, fast(&o))
	e.run(t, fast(&o))
	waitFor(t, "every delivery", func() bool { return allIn(e.states(t), 30, keycard.WebhookDelivered) })
	seen := map[string]int{}
	for _, g := range r.requests() {
		seen[g.id]++
	}
	if len(seen) != 30 {
		t.Errorf("distinct messages: got %d, want 30", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("message %s sent %d times, want once", id, n)
		}
	}
}

// TestOptions: options wrong on their face are refused.
func TestOptions(t *testing.T) {
	for _, o := range []webhook.Options{{Settings: outbox.Settings{MaxAttempts: -1}}, {Settings: outbox.Settings{Timeout: time.Minute, Lease: time.Second}}} {
		if err := o.Check(); err == nil {
			t.Errorf("Check(%+v): got nil error", o)
		}
	}
	if err := (webhook.Options{}).Check(); err != nil {
		t.Errorf("Check of the defaults: %v", err)
	}
}
