package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testClusterWebhooksOnce: users registered on each of three instances
// sharing one database are each told to a webhook endpoint once, signed:
// the instances share the outbox through their leases, and none sends
// what another claimed.
func testClusterWebhooksOnce(t *testing.T, bin string) {
	c := newCluster(t, bin, clusterOptions{})
	ctx := context.Background()
	var (
		mu  sync.Mutex
		got []hookRequest
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, hookRequest{r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, http.StatusOK})
	}))
	defer receiver.Close()

	r := c.on(t, 1, "POST", "/admin/v1/webhooks", c.admin, "application/json", `{"url":"`+receiver.URL+`/hooks","events":["user.created"]}`)
	var ep struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if r.code != http.StatusCreated || r.decode(&ep) != nil || ep.Secret == "" {
		t.Fatalf("POST /admin/v1/webhooks: %d %s", r.code, r.body)
	}
	c.secrets = append(c.secrets, ep.Secret)
	const users = 12
	for i := range users {
		c.register(t, i%3, fmt.Sprintf("hook%02d", i))
	}

	conn, err := pgx.Connect(ctx, c.store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	c.eventually(t, "every webhook delivered", 60*time.Second, func() bool {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'`).Scan(&n)
		return err == nil && n == users
	})
	var attempts int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(max(attempts), 0) FROM webhook_deliveries`).Scan(&attempts); err != nil || attempts != 1 {
		t.Errorf("attempts: got at most %d (%v), want each delivery made at its first", attempts, err)
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]int{}
	names := map[string]bool{}
	for _, h := range got {
		seen[h.id]++
		if !checkHookSignature(ep.Secret, h) {
			t.Errorf("message %s: the signature does not verify", h.id)
		}
		var body struct {
			Type string `json:"type"`
			Data struct {
				Username string `json:"username"`
			} `json:"data"`
		}
		if json.Unmarshal(h.body, &body) != nil || body.Type != "user.created" {
			t.Errorf("message %s: body %s", h.id, h.body)
		}
		names[body.Data.Username] = true
	}
	if len(seen) != users || len(names) != users || len(got) != users {
		t.Errorf("the receiver got %d requests of %d messages for %d users; want %d of each", len(got), len(seen), len(names), users)
	}
}
