package auth_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// TestNewWebhookBody: each event type's data, made from the audit event by an
// allow-list: fields of the detail not on it are never sent.
func TestNewWebhookBody(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		eventType string
		auditType string
		detail    string
		want      string
	}{
		{"created", keycard.WebhookUserCreated, keycard.AuditUserCreated, `{"username":"ann","password_hash":"$argon2id$x"}`,
			`{"type":"user.created","timestamp":"2026-12-06T10:00:00Z","data":{"user_id":"u1","username":"ann"}}`},
		{"signed in", keycard.WebhookUserSignedIn, keycard.AuditLoginSucceeded, `{"session":"s1","refresh_token":"secret"}`,
			`{"type":"user.signed_in","timestamp":"2026-12-06T10:00:00Z","data":{"reauthenticated":false,"session_id":"s1","user_id":"u1"}}`},
		{"password", keycard.WebhookPasswordChanged, keycard.AuditPasswordChanged, `{"sessions_revoked":3}`,
			`{"type":"user.password_changed","timestamp":"2026-12-06T10:00:00Z","data":{"sessions_revoked":3,"user_id":"u1"}}`},
		{"logout", keycard.WebhookSessionRevoked, keycard.AuditLogout, `{"session":"s1","reason":"logout"}`,
			`{"type":"session.revoked","timestamp":"2026-12-06T10:00:00Z","data":{"reason":"logout","session_ids":["s1"],"user_id":"u1"}}`},
		{"logout everywhere", keycard.WebhookSessionRevoked, keycard.AuditLogout, `{"sessions":["s1","s2"],"reason":"logout_all"}`,
			`{"type":"session.revoked","timestamp":"2026-12-06T10:00:00Z","data":{"reason":"logout_all","session_ids":["s1","s2"],"user_id":"u1"}}`},
		{"app access", keycard.WebhookSessionRevoked, keycard.AuditLogout, `{"client":"c1","sessions":[],"reason":"consent_revoked"}`,
			`{"type":"session.revoked","timestamp":"2026-12-06T10:00:00Z","data":{"client_id":"c1","reason":"consent_revoked","session_ids":[],"user_id":"u1"}}`},
		{"theft", keycard.WebhookSessionRevoked, keycard.AuditTokenReuse, `{"session":"s1"}`,
			`{"type":"session.revoked","timestamp":"2026-12-06T10:00:00Z","data":{"reason":"refresh_token_reuse","session_ids":["s1"],"user_id":"u1"}}`},
		{"mfa", keycard.WebhookMFAEnrolled, "mfa.enrolled", `{"method":"totp","secret":"JBSWY3DP"}`,
			`{"type":"mfa.enrolled","timestamp":"2026-12-06T10:00:00Z","data":{"method":"totp","user_id":"u1"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := auth.NewWebhookBody(&keycard.WebhookDelivery{EventID: 9, EventType: tt.eventType, AuditType: tt.auditType,
				Subject: "u1", Detail: json.RawMessage(tt.detail), EventTime: at})
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("body:\n got %s\nwant %s", got, tt.want)
			}
			for _, secret := range []string{"argon2id", "secret", "JBSWY3DP"} {
				if strings.Contains(string(got), secret) {
					t.Errorf("body holds %q", secret)
				}
			}
		})
	}
	if _, err := auth.NewWebhookBody(&keycard.WebhookDelivery{EventType: "user.exploded"}); err == nil {
		t.Error("NewWebhookBody of an unknown type: got nil error")
	}
	if _, err := auth.NewWebhookBody(&keycard.WebhookDelivery{EventType: keycard.WebhookUserCreated, Detail: json.RawMessage(`[`)}); err == nil {
		t.Error("NewWebhookBody of a malformed detail: got nil error")
	}
	if got := (&keycard.WebhookDelivery{EventID: 42}).MessageID(); got != "msg_42" {
		t.Errorf("MessageID: got %s, want msg_42", got)
	}
}
