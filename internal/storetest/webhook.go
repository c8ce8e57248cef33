package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// createWebhook stores an endpoint subscribed to events (all when none).
func createWebhook(t *testing.T, s keycard.Stores, name string, events ...string) *keycard.WebhookEndpoint {
	t.Helper()
	e := &keycard.WebhookEndpoint{
		ID: id(t), URL: "https://" + name + ".example/hooks", Secret: "whsec_" + name,
		Events: events, Description: name, CreatedAt: t0,
	}
	if err := s.Webhooks.CreateWebhook(context.Background(), e); err != nil {
		t.Fatalf("CreateWebhook(%q): %v", name, err)
	}
	return e
}

// appendAudit appends an audit event of the type about subject at.
func appendAudit(t *testing.T, s keycard.Stores, typ, subject string, at time.Time, detail string) *keycard.AuditEvent {
	t.Helper()
	e := &keycard.AuditEvent{Time: at, Type: typ, Actor: subject, Subject: subject, Detail: json.RawMessage(detail)}
	if err := s.Audit.AppendAudit(context.Background(), e); err != nil {
		t.Fatalf("AppendAudit(%s): %v", typ, err)
	}
	return e
}

// deliveries lists every delivery, newest first.
func deliveries(t *testing.T, s keycard.Stores, f keycard.WebhookFilter) []*keycard.WebhookDelivery {
	t.Helper()
	f.Limit = keycard.MaxPageSize
	ds, err := s.Webhooks.ListWebhookDeliveries(context.Background(), f)
	if err != nil {
		t.Fatalf("ListWebhookDeliveries: %v", err)
	}
	return ds
}

// summary names each delivery by endpoint description, event type and
// event id, sorted.
func summary(ds []*keycard.WebhookDelivery, endpoints ...*keycard.WebhookEndpoint) []string {
	names := map[string]string{}
	for _, e := range endpoints {
		names[e.ID] = e.Description
	}
	out := []string{}
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s %s %d", names[d.EndpointID], d.EventType, d.EventID))
	}
	slices.Sort(out)
	return out
}

// testWebhookEndpoints: endpoints are created, read, listed and deleted;
// bad ones are refused.
func testWebhookEndpoints(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	if got, err := s.Webhooks.ListWebhooks(ctx); err != nil || len(got) != 0 {
		t.Fatalf("ListWebhooks on an empty store: got %v, %v, want none", got, err)
	}
	a := createWebhook(t, s, "a")
	b := &keycard.WebhookEndpoint{
		ID: id(t), URL: "https://b.example/hooks", Secret: "whsec_b", Description: "b", CreatedAt: t0.Add(time.Second),
		Events: []string{keycard.WebhookUserCreated, keycard.WebhookSessionRevoked},
	}
	if err := s.Webhooks.CreateWebhook(ctx, b); err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	got, err := s.Webhooks.Webhook(ctx, b.ID)
	if err != nil {
		t.Fatalf("Webhook: %v", err)
	}
	check(t, "endpoint read back", got, b)
	list, err := s.Webhooks.ListWebhooks(ctx)
	if err != nil {
		t.Fatalf("ListWebhooks: %v", err)
	}
	check(t, "endpoints listed", list, []*keycard.WebhookEndpoint{a, b})
	if err := s.Webhooks.CreateWebhook(ctx, &keycard.WebhookEndpoint{ID: a.ID, URL: "https://x.example", Secret: "whsec_x", CreatedAt: t0}); keycard.ErrorCode(err) != keycard.ECONFLICT {
		t.Errorf("CreateWebhook with a taken id: got %v, want ECONFLICT", err)
	}
	for name, e := range map[string]*keycard.WebhookEndpoint{
		"no id":         {URL: "https://x.example", Secret: "whsec_x"},
		"no URL":        {ID: id(t), Secret: "whsec_x"},
		"no secret":     {ID: id(t), URL: "https://x.example"},
		"unknown event": {ID: id(t), URL: "https://x.example", Secret: "whsec_x", Events: []string{"user.exploded"}},
	} {
		if err := s.Webhooks.CreateWebhook(ctx, e); keycard.ErrorCode(err) != keycard.EINVALID {
			t.Errorf("CreateWebhook with %s: got %v, want EINVALID", name, err)
		}
	}
	if err := s.Webhooks.DeleteWebhook(ctx, a.ID); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
	if _, err := s.Webhooks.Webhook(ctx, a.ID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("Webhook after its deletion: got %v, want ENOTFOUND", err)
	}
	if err := s.Webhooks.DeleteWebhook(ctx, a.ID); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("DeleteWebhook again: got %v, want ENOTFOUND", err)
	}
	if _, err := s.Webhooks.Webhook(ctx, "nul\x00id"); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("Webhook with a NUL in the id: got %v, want ENOTFOUND", err)
	}
}

// testWebhookOwed: appending an audit event that is a webhook owes one
// delivery to each endpoint subscribed to its type, with what the body
// needs; other audit events owe nothing.
func testWebhookOwed(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	// Events before any endpoint exists are owed to nobody.
	appendAudit(t, s, keycard.AuditUserCreated, "early", t0, `{}`)
	all := createWebhook(t, s, "all")
	created := createWebhook(t, s, "created", keycard.WebhookUserCreated)
	revoked := createWebhook(t, s, "revoked", keycard.WebhookSessionRevoked, keycard.WebhookMFAEnrolled)

	ev := map[string]*keycard.AuditEvent{}
	for i, typ := range []string{
		keycard.AuditUserCreated, keycard.AuditLoginSucceeded, keycard.AuditPasswordChanged,
		keycard.AuditLogout, keycard.AuditTokenReuse, "mfa.enrolled",
		keycard.AuditLoginFailed, keycard.AuditRefresh, keycard.AuditKeyRotated, "user.created_by_admin",
	} {
		ev[typ] = appendAudit(t, s, typ, "user-1", t0.Add(time.Duration(i)*time.Second), `{"session":"s1","reason":"logout"}`)
	}
	got := summary(deliveries(t, s, keycard.WebhookFilter{}), all, created, revoked)
	want := []string{}
	for _, w := range []struct {
		endpoint  string
		eventType string
		audit     string
	}{
		{"all", keycard.WebhookUserCreated, keycard.AuditUserCreated},
		{"created", keycard.WebhookUserCreated, keycard.AuditUserCreated},
		{"all", keycard.WebhookUserSignedIn, keycard.AuditLoginSucceeded},
		{"all", keycard.WebhookPasswordChanged, keycard.AuditPasswordChanged},
		{"all", keycard.WebhookSessionRevoked, keycard.AuditLogout},
		{"revoked", keycard.WebhookSessionRevoked, keycard.AuditLogout},
		{"all", keycard.WebhookSessionRevoked, keycard.AuditTokenReuse},
		{"revoked", keycard.WebhookSessionRevoked, keycard.AuditTokenReuse},
		{"all", keycard.WebhookMFAEnrolled, "mfa.enrolled"},
		{"revoked", keycard.WebhookMFAEnrolled, "mfa.enrolled"},
	} {
		want = append(want, fmt.Sprintf("%s %s %d", w.endpoint, w.eventType, ev[w.audit].ID))
	}
	slices.Sort(want)
	check(t, "deliveries owed", got, want)

	// A delivery keeps the audit event's facts.
	ds := deliveries(t, s, keycard.WebhookFilter{EndpointID: created.ID})
	if len(ds) != 1 {
		t.Fatalf("deliveries to the user.created endpoint: got %d, want 1", len(ds))
	}
	e := ev[keycard.AuditUserCreated]
	d := ds[0]
	want1 := &keycard.WebhookDelivery{
		ID: d.ID, EndpointID: created.ID, EventID: e.ID, EventType: keycard.WebhookUserCreated, AuditType: keycard.AuditUserCreated,
		Subject: "user-1", Detail: json.RawMessage(`{"session":"s1","reason":"logout"}`), EventTime: e.Time,
		State: keycard.WebhookPending, NextAttemptAt: e.Time, UpdatedAt: e.Time, URL: created.URL,
	}
	check(t, "delivery", d, want1)
	one, err := s.Webhooks.WebhookDelivery(ctx, d.ID)
	if err != nil {
		t.Fatalf("WebhookDelivery: %v", err)
	}
	check(t, "delivery read by id", one, want1)
	if _, err := s.Webhooks.WebhookDelivery(ctx, d.ID+1000); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("WebhookDelivery of an unknown id: got %v, want ENOTFOUND", err)
	}

	// Filters and pages.
	if got := len(deliveries(t, s, keycard.WebhookFilter{EndpointID: all.ID})); got != 6 {
		t.Errorf("deliveries to the endpoint of every event: got %d, want 6", got)
	}
	if got := len(deliveries(t, s, keycard.WebhookFilter{State: keycard.WebhookDelivered})); got != 0 {
		t.Errorf("delivered deliveries: got %d, want 0", got)
	}
	if _, err := s.Webhooks.ListWebhookDeliveries(ctx, keycard.WebhookFilter{State: "lost"}); keycard.ErrorCode(err) != keycard.EINVALID {
		t.Errorf("ListWebhookDeliveries with an unknown state: got %v, want EINVALID", err)
	}
	page, err := s.Webhooks.ListWebhookDeliveries(ctx, keycard.WebhookFilter{Limit: 4})
	if err != nil || len(page) != 4 {
		t.Fatalf("first page: got %d, %v, want 4", len(page), err)
	}
	rest := deliveries(t, s, keycard.WebhookFilter{Before: page[3].ID})
	if len(rest) != 6 || rest[0].ID >= page[3].ID {
		t.Errorf("second page: got %d deliveries, want the 6 older ones", len(rest))
	}
	for i := 1; i < len(page); i++ {
		if page[i].ID >= page[i-1].ID {
			t.Errorf("page not newest first: %d after %d", page[i].ID, page[i-1].ID)
		}
	}

	// Deleting an endpoint deletes its deliveries; the others stay.
	if err := s.Webhooks.DeleteWebhook(ctx, revoked.ID); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
	if got := len(deliveries(t, s, keycard.WebhookFilter{})); got != 7 {
		t.Errorf("deliveries after deleting an endpoint: got %d, want 7", got)
	}
}

// testWebhookClaim: claims take due deliveries with a lease and count the
// attempt; outcomes are fenced by the attempt number; retries wait for
// their time; given-up and delivered ones can be replayed.
func testWebhookClaim(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	e := createWebhook(t, s, "claimed")
	ev := appendAudit(t, s, keycard.AuditUserCreated, "u", t0, `{}`)
	if ds, err := s.Webhooks.ClaimWebhookDeliveries(ctx, t0.Add(-time.Second), time.Minute, 10); err != nil || len(ds) != 0 {
		t.Fatalf("claim before the event: got %d, %v, want none", len(ds), err)
	}
	ds, err := s.Webhooks.ClaimWebhookDeliveries(ctx, t0, time.Minute, 10)
	if err != nil || len(ds) != 1 {
		t.Fatalf("claim: got %d, %v, want 1", len(ds), err)
	}
	d := ds[0]
	if d.Attempts != 1 || d.Secret != e.Secret || d.URL != e.URL || d.EventID != ev.ID || !d.NextAttemptAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("claimed: got attempts %d, secret %q, URL %q, event %d, next %v; want 1, %q, %q, %d, %v",
			d.Attempts, d.Secret, d.URL, d.EventID, d.NextAttemptAt, e.Secret, e.URL, ev.ID, t0.Add(time.Minute))
	}
	if ds, _ := s.Webhooks.ClaimWebhookDeliveries(ctx, t0.Add(30*time.Second), time.Minute, 10); len(ds) != 0 {
		t.Errorf("claim within the lease: got %d, want none", len(ds))
	}
	if got := deliveries(t, s, keycard.WebhookFilter{}); got[0].Secret != "" {
		t.Error("ListWebhookDeliveries returned the endpoint's secret")
	}
	// The lease runs out: claimed again, and the first attempt's outcome
	// is refused.
	ds, _ = s.Webhooks.ClaimWebhookDeliveries(ctx, t0.Add(time.Minute), time.Minute, 10)
	if len(ds) != 1 || ds[0].Attempts != 2 {
		t.Fatalf("claim after the lease: got %v, want the delivery at attempt 2", ds)
	}
	if err := s.Webhooks.WebhookDelivered(ctx, d.ID, 1, t0.Add(time.Minute)); keycard.ErrorCode(err) != keycard.ECONFLICT {
		t.Errorf("outcome of a lapsed attempt: got %v, want ECONFLICT", err)
	}
	if err := s.Webhooks.WebhookDelivered(ctx, d.ID+1000, 1, t0); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("outcome of an unknown delivery: got %v, want ENOTFOUND", err)
	}
	// Retry: due again at next, not before.
	next := t0.Add(5 * time.Minute)
	if err := s.Webhooks.RetryWebhook(ctx, d.ID, 2, t0.Add(time.Minute), next, "HTTP 503"); err != nil {
		t.Fatalf("RetryWebhook: %v", err)
	}
	if ds, _ := s.Webhooks.ClaimWebhookDeliveries(ctx, next.Add(-time.Second), time.Minute, 10); len(ds) != 0 {
		t.Errorf("claim before the retry is due: got %d, want none", len(ds))
	}
	ds, _ = s.Webhooks.ClaimWebhookDeliveries(ctx, next, time.Minute, 10)
	if len(ds) != 1 || ds[0].Attempts != 3 || ds[0].LastError != "HTTP 503" {
		t.Fatalf("claim of the retry: got %v, want attempt 3 with the last error", ds)
	}
	if err := s.Webhooks.GiveUpWebhook(ctx, d.ID, 3, next, "HTTP 500"); err != nil {
		t.Fatalf("GiveUpWebhook: %v", err)
	}
	if err := s.Webhooks.WebhookDelivered(ctx, d.ID, 3, next); keycard.ErrorCode(err) != keycard.ECONFLICT {
		t.Errorf("outcome of a given-up delivery: got %v, want ECONFLICT", err)
	}
	if ds, _ := s.Webhooks.ClaimWebhookDeliveries(ctx, next.Add(time.Hour), time.Minute, 10); len(ds) != 0 {
		t.Errorf("claim of a given-up delivery: got %d, want none", len(ds))
	}
	failed, _ := s.Webhooks.WebhookDelivery(ctx, d.ID)
	if failed.State != keycard.WebhookFailed || failed.LastError != "HTTP 500" || failed.Attempts != 3 {
		t.Errorf("given up: got state %s, error %q, attempts %d", failed.State, failed.LastError, failed.Attempts)
	}

	// Replay: pending again at once, a new round of attempts.
	at := next.Add(time.Hour)
	r, err := s.Webhooks.ReplayWebhook(ctx, d.ID, at)
	if err != nil {
		t.Fatalf("ReplayWebhook: %v", err)
	}
	if r.State != keycard.WebhookPending || r.ReplayedAttempts != 3 || r.RoundAttempts() != 0 || !r.NextAttemptAt.Equal(at) || r.Secret != "" {
		t.Errorf("replayed: got state %s, replayed attempts %d, round %d, next %v", r.State, r.ReplayedAttempts, r.RoundAttempts(), r.NextAttemptAt)
	}
	if _, err := s.Webhooks.ReplayWebhook(ctx, d.ID, at); keycard.ErrorCode(err) != keycard.ECONFLICT {
		t.Errorf("replay of a pending delivery: got %v, want ECONFLICT", err)
	}
	if _, err := s.Webhooks.ReplayWebhook(ctx, d.ID+1000, at); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("replay of an unknown delivery: got %v, want ENOTFOUND", err)
	}
	ds, _ = s.Webhooks.ClaimWebhookDeliveries(ctx, at, time.Minute, 10)
	if len(ds) != 1 || ds[0].Attempts != 4 || ds[0].RoundAttempts() != 1 {
		t.Fatalf("claim of the replay: got %v, want attempt 4, the round's first", ds)
	}
	if err := s.Webhooks.WebhookDelivered(ctx, d.ID, 4, at); err != nil {
		t.Fatalf("WebhookDelivered: %v", err)
	}
	if got := deliveries(t, s, keycard.WebhookFilter{State: keycard.WebhookDelivered}); len(got) != 1 || got[0].LastError != "" {
		t.Errorf("delivered: got %v, want the delivery without an error", got)
	}
	// A delivered one may be replayed too (a receiver that lost it).
	if _, err := s.Webhooks.ReplayWebhook(ctx, d.ID, at); err != nil {
		t.Errorf("replay of a delivered delivery: %v", err)
	}
}

// testWebhookClaimConcurrent: claimers racing take every due delivery
// once between them.
func testWebhookClaimConcurrent(t *testing.T, open OpenFunc) {
	s := open(t)
	createWebhook(t, s, "a")
	createWebhook(t, s, "b")
	var owed []int64
	for i := range 20 {
		appendAudit(t, s, keycard.AuditLoginSucceeded, fmt.Sprint("u", i), t0, `{}`)
	}
	for _, d := range deliveries(t, s, keycard.WebhookFilter{}) {
		owed = append(owed, d.ID)
	}
	slices.Sort(owed)
	var (
		mu   sync.Mutex
		got  []int64
		wg   sync.WaitGroup
		errs = make(chan error, 4)
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ds, err := s.Webhooks.ClaimWebhookDeliveries(context.Background(), t0, time.Minute, 3)
				if err != nil {
					errs <- err
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					got = append(got, d.ID)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("ClaimWebhookDeliveries: %v", err)
	}
	slices.Sort(got)
	if len(owed) != 40 {
		t.Fatalf("owed %d deliveries, want 40", len(owed))
	}
	check(t, "deliveries claimed by all claimers together", got, owed)
}

// testPruneWebhookDeliveries: settled deliveries go once last updated
// before the cut-off; pending ones stay.
func testPruneWebhookDeliveries(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	createWebhook(t, s, "a")
	appendAudit(t, s, keycard.AuditUserCreated, "u1", t0, `{}`)
	appendAudit(t, s, keycard.AuditUserCreated, "u2", t0, `{}`)
	appendAudit(t, s, keycard.AuditUserCreated, "u3", t0, `{}`)
	ds, err := s.Webhooks.ClaimWebhookDeliveries(ctx, t0, time.Minute, 2)
	if err != nil || len(ds) != 2 {
		t.Fatalf("claim: got %d, %v, want 2", len(ds), err)
	}
	if err := s.Webhooks.WebhookDelivered(ctx, ds[0].ID, 1, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Webhooks.GiveUpWebhook(ctx, ds[1].ID, 1, t0.Add(time.Hour), "x"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Webhooks.PruneWebhookDeliveries(ctx, t0.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("PruneWebhookDeliveries: got %d, %v, want 1", n, err)
	}
	if n, err := s.Webhooks.PruneWebhookDeliveries(ctx, t0.Add(48*time.Hour)); err != nil || n != 1 {
		t.Fatalf("PruneWebhookDeliveries later: got %d, %v, want 1", n, err)
	}
	if got := deliveries(t, s, keycard.WebhookFilter{}); len(got) != 1 || got[0].State != keycard.WebhookPending {
		t.Errorf("after pruning: got %v, want the pending delivery", got)
	}
}
