package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// TestAdminWebhooks: endpoints are registered (the secret shown once),
// listed, their deliveries listed with their payload, a given-up one
// replayed, and the endpoint deleted; bad input is a clear 4xx.
func TestAdminWebhooks(t *testing.T) {
	ctx := context.Background()
	f := newAdminFixture(t)
	var created webhookJSON
	ok(t, f.call(t, "POST", "/admin/v1/webhooks", `{"url":"https://hooks.example/keycard","events":["user.created"],"description":"CRM"}`),
		http.StatusCreated, &created)
	if !strings.HasPrefix(created.Secret, "whsec_") || created.ID == "" || created.URL != "https://hooks.example/keycard" ||
		len(created.Events) != 1 || created.Description != "CRM" {
		t.Fatalf("created: got %+v", created)
	}
	var loop webhookJSON
	ok(t, f.call(t, "POST", "/admin/v1/webhooks", `{"url":"http://127.0.0.1:9/hooks"}`), http.StatusCreated, &loop)
	if len(loop.Events) != 0 {
		t.Errorf("an endpoint of every event: got events %v, want []", loop.Events)
	}

	for _, body := range []string{
		`{"url":"http://hooks.example/keycard"}`,                 // http off loopback
		`{"url":"https://user:pw@hooks.example/keycard"}`,        // credentials in the URL
		`{"url":"https://hooks.example/k#frag"}`,                 // fragment
		`{"url":"ftp://hooks.example/k"}`,                        // another scheme
		`{"url":"/relative"}`,                                    // not absolute
		`{"url":"https://hooks.example/k","events":["user.x"]}`,  // unknown event
		`{"url":"https://hooks.example/k","description":"a\nb"}`, // control character
		`{"events":["user.created"]}`,                            // no URL
		`{"url":"https://hooks.example/k","secret":"whsec_x"}`,   // a secret is made, not given
		`{"url":["https://hooks.example/k"]}`,                    // wrong type
	} {
		f.call(t, "POST", "/admin/v1/webhooks", body).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	}

	var list struct {
		Webhooks []webhookJSON `json:"webhooks"`
	}
	ok(t, f.call(t, "GET", "/admin/v1/webhooks", ""), http.StatusOK, &list)
	if len(list.Webhooks) != 2 || list.Webhooks[0].Secret != "" || list.Webhooks[1].Secret != "" {
		t.Errorf("list: got %+v, want both endpoints without secrets", list.Webhooks)
	}
	var one webhookJSON
	ok(t, f.call(t, "GET", "/admin/v1/webhooks/"+created.ID, ""), http.StatusOK, &one)
	if one.ID != created.ID || one.Secret != "" {
		t.Errorf("get: got %+v", one)
	}
	f.call(t, "GET", "/admin/v1/webhooks/nope", "").wantError(t, http.StatusNotFound, codeNotFound)

	// A sign-up owes a user.created to both endpoints; the sign-in that
	// follows, a user.signed_in to the one of every event.
	uid := f.register(t, "alice", testPassword)
	type deliveries struct {
		Deliveries []webhookDeliveryJSON `json:"deliveries"`
	}
	var got deliveries
	ok(t, f.call(t, "GET", "/admin/v1/webhooks/deliveries?endpoint_id="+created.ID, ""), http.StatusOK, &got)
	if len(got.Deliveries) != 1 {
		t.Fatalf("deliveries to the user.created endpoint: got %d, want 1", len(got.Deliveries))
	}
	d := got.Deliveries[0]
	if d.EventType != keycard.WebhookUserCreated || d.State != "pending" || d.URL != created.URL || !strings.HasPrefix(d.WebhookID, "msg_") ||
		d.Payload == nil || d.Payload.Data["user_id"] != uid || d.Payload.Data["username"] != "alice" {
		t.Errorf("delivery: got %+v", d)
	}
	var all deliveries
	ok(t, f.call(t, "GET", "/admin/v1/webhooks/deliveries", ""), http.StatusOK, &all)
	oldest := all.Deliveries[len(all.Deliveries)-1].ID
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"", 2},
		{"?state=pending", 2},
		{"?state=failed", 0},
		{"?endpoint_id=" + loop.ID, 1},
		{"?limit=1", 1},
		{"?before=" + strconv.FormatInt(oldest, 10), 0},
		{"?before=" + strconv.FormatInt(oldest+1, 10), 1},
	} {
		var page deliveries
		ok(t, f.call(t, "GET", "/admin/v1/webhooks/deliveries"+tc.query, ""), http.StatusOK, &page)
		if len(page.Deliveries) != tc.want {
			t.Errorf("GET deliveries%s: got %d, want %d", tc.query, len(page.Deliveries), tc.want)
		}
	}
	for _, query := range []string{"?state=lost", "?limit=0", "?before=-1", "?before=x", "?endpoint_id=" + strings.Repeat("x", 300), "?cursor=x"} {
		f.call(t, "GET", "/admin/v1/webhooks/deliveries"+query, "").wantError(t, http.StatusBadRequest, codeInvalidRequest)
	}

	// Replay: refused while pending; a given-up delivery is pending again.
	replay := "/admin/v1/webhooks/deliveries/" + strconv.FormatInt(d.ID, 10) + "/replay"
	f.call(t, "POST", replay, "").wantError(t, http.StatusConflict, codeConflict)
	now := f.clock.Now()
	claimed, err := f.stores.Webhooks.ClaimWebhookDeliveries(ctx, now.Add(time.Hour), time.Minute, 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: got %d, %v", len(claimed), err)
	}
	for _, c := range claimed {
		if err := f.stores.Webhooks.GiveUpWebhook(ctx, c.ID, c.Attempts, now, "HTTP 500"); err != nil {
			t.Fatal(err)
		}
	}
	var replayed webhookDeliveryJSON
	ok(t, f.call(t, "POST", replay, ""), http.StatusOK, &replayed)
	if replayed.ID != d.ID || replayed.State != "pending" || replayed.Attempts != 0 || replayed.WebhookID != d.WebhookID {
		t.Errorf("replayed: got %+v", replayed)
	}
	for _, path := range []string{"/admin/v1/webhooks/deliveries/999999/replay", "/admin/v1/webhooks/deliveries/abc/replay", "/admin/v1/webhooks/deliveries/0/replay"} {
		f.call(t, "POST", path, "").wantError(t, http.StatusNotFound, codeNotFound)
	}

	// Deleting the endpoint deletes its deliveries.
	ok(t, f.call(t, "DELETE", "/admin/v1/webhooks/"+created.ID, ""), http.StatusNoContent, nil)
	f.call(t, "DELETE", "/admin/v1/webhooks/"+created.ID, "").wantError(t, http.StatusNotFound, codeNotFound)
	var after deliveries
	ok(t, f.call(t, "GET", "/admin/v1/webhooks/deliveries", ""), http.StatusOK, &after)
	if len(after.Deliveries) != 1 || after.Deliveries[0].EndpointID != loop.ID {
		t.Errorf("deliveries after the deletion: got %+v, want the loopback endpoint's", after.Deliveries)
	}

	// Not an admin: 403.
	f.token = f.login(t, "alice", testPassword).AccessToken
	f.call(t, "GET", "/admin/v1/webhooks", "").wantError(t, http.StatusForbidden, codeInsufficientRole)
	f.call(t, "POST", "/admin/v1/webhooks", `{"url":"https://evil.example"}`).wantError(t, http.StatusForbidden, codeInsufficientRole)
}
