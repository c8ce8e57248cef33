package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// BenchAppendAudit is the body of a store's benchmark of the audit
// append that the webhook trigger follows: each iteration appends one
// event of the audit type typ, with endpoints webhook endpoints
// registered (each subscribed to every event), so that the cost the
// trigger adds to a sign-in (login.succeeded, owed to each endpoint) and
// to an event that is no webhook (login.failed) can be compared with no
// endpoint at all.
func BenchAppendAudit(b *testing.B, s keycard.Stores, typ string, endpoints int) {
	ctx := context.Background()
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range endpoints {
		e := &keycard.WebhookEndpoint{ID: fmt.Sprint("ep", i), URL: "https://hooks.example/" + fmt.Sprint(i), Secret: "whsec_x", CreatedAt: at}
		if err := s.Webhooks.CreateWebhook(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	detail := []byte(`{"session":"Qm3xQm3xQm3xQm3xQm3xQm"}`)
	b.ResetTimer()
	for b.Loop() {
		e := &keycard.AuditEvent{Time: at, Type: typ, Actor: "user", Subject: "user", ClientAddr: "192.0.2.1", UserAgent: "bench", Detail: detail}
		if err := s.Audit.AppendAudit(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}
