package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// TestAdminWebhooks: the console lists the endpoints and their
// deliveries; a failed delivery has a Replay button, which needs the
// CSRF token and makes it pending again; a pending one has none, and
// replaying it anyway is refused.
func TestAdminWebhooks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.addUser(t, "root", "admin")
	ep, err := f.svc.CreateWebhook(ctx, auth.Operator(), auth.WebhookSpec{URL: "https://crm.example/hooks", Description: "CRM"})
	if err != nil {
		t.Fatal(err)
	}
	f.addUser(t, "alice")
	b := f.browser(t)
	b.mustSignIn("root")

	ds, err := f.stores.Webhooks.ListWebhookDeliveries(ctx, keycard.WebhookFilter{EndpointID: ep.ID})
	if err != nil || len(ds) == 0 {
		t.Fatalf("deliveries: %d, %v", len(ds), err)
	}
	// The oldest: alice's user.created (root was made before the
	// endpoint; root's sign-in came after).
	d := ds[len(ds)-1]
	replay := "/admin/webhooks/deliveries/" + strconv.FormatInt(d.ID, 10) + "/replay"
	p := b.get("/admin/webhooks")
	if p.status != http.StatusOK || !strings.Contains(p.body, `data-endpoint="`+ep.ID+`"`) || !strings.Contains(p.body, "https://crm.example/hooks") ||
		!strings.Contains(p.body, `data-delivery="`+strconv.FormatInt(d.ID, 10)+`"`) || !strings.Contains(p.body, d.MessageID()) {
		t.Fatalf("GET /admin/webhooks: %d\n%s", p.status, p.body)
	}
	if strings.Contains(p.body, replay) {
		t.Error("a pending delivery has a Replay button")
	}
	if strings.Contains(p.body, ep.Secret) {
		t.Error("the page shows the endpoint's secret")
	}
	if r := b.postFrom("/admin/webhooks", replay, nil); r.status != http.StatusConflict {
		t.Errorf("replay of a pending delivery: %d, want 409", r.status)
	}

	// Given up by the worker: a Replay button.
	claimed, err := f.stores.Webhooks.ClaimWebhookDeliveries(ctx, f.clock.Now().Add(time.Hour), time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range claimed {
		if err := f.stores.Webhooks.GiveUpWebhook(ctx, c.ID, c.Attempts, f.clock.Now(), "HTTP 503"); err != nil {
			t.Fatal(err)
		}
	}
	p = b.get("/admin/webhooks?state=failed")
	if !strings.Contains(p.body, `action="`+replay+`"`) || !strings.Contains(p.body, "HTTP 503") {
		t.Fatalf("failed deliveries: no Replay button for %d, or no error:\n%s", d.ID, p.body)
	}
	// Without the CSRF token: refused, nothing changed.
	if r := b.post(replay, url.Values{"back": {"/admin/webhooks"}}); r.status != http.StatusForbidden {
		t.Errorf("replay without the CSRF token: %d, want 403", r.status)
	}
	if got, _ := f.stores.Webhooks.WebhookDelivery(ctx, d.ID); got.State != keycard.WebhookFailed {
		t.Errorf("after a forged replay: %s, want failed", got.State)
	}
	r := b.postFrom("/admin/webhooks?state=failed", replay, url.Values{"back": {"/admin/webhooks?state=failed"}})
	if r.status != http.StatusSeeOther || r.location() != "/admin/webhooks?done=replayed&state=failed" {
		t.Fatalf("replay: %d %q", r.status, r.location())
	}
	if got, _ := f.stores.Webhooks.WebhookDelivery(ctx, d.ID); got.State != keycard.WebhookPending || got.RoundAttempts() != 0 {
		t.Errorf("after the replay: %s, round attempts %d; want pending, 0", got.State, got.RoundAttempts())
	}
	if p := b.get(r.location()); !strings.Contains(p.body, "sent again") {
		t.Error("no notice after the replay")
	}
	// A back field elsewhere is not followed.
	other := claimed[0].ID
	if other == d.ID && len(claimed) > 1 {
		other = claimed[1].ID
	}
	if other != d.ID {
		r := b.postFrom("/admin/webhooks", "/admin/webhooks/deliveries/"+strconv.FormatInt(other, 10)+"/replay", url.Values{"back": {"https://evil.example/admin/webhooks"}})
		if r.location() != "/admin/webhooks?done=replayed" {
			t.Errorf("replay with a foreign back: Location %q", r.location())
		}
	}

	for _, path := range []string{"/admin/webhooks?state=lost", "/admin/webhooks?before=x", "/admin/webhooks?endpoint=" + strings.Repeat("x", 300)} {
		if p := b.get(path); p.status != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", path, p.status)
		}
	}
	for _, path := range []string{"/admin/webhooks/deliveries/999999/replay", "/admin/webhooks/deliveries/abc/replay"} {
		if r := b.postFrom("/admin/webhooks", path, nil); r.status != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", path, r.status)
		}
	}
}
