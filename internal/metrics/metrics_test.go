package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/webhook"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 {
		t.Fatalf("scrape: status %d", w.Code)
	}
	b, _ := io.ReadAll(w.Body)
	return string(b)
}

func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, "\n"+l+"\n") {
			t.Errorf("exposition lacks the line %q", l)
		}
	}
}

func TestMetrics(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	keys := []*keycard.SigningKey{
		{KID: "old", State: keycard.KeyRetired, CreatedAt: now.Add(-48 * time.Hour)},
		{KID: "cur", State: keycard.KeyActive, CreatedAt: now.Add(-90 * time.Second)},
		{KID: "new", State: keycard.KeyNext, CreatedAt: now},
	}
	m := New(Options{
		Now:  func() time.Time { return now },
		Keys: func(context.Context) ([]*keycard.SigningKey, error) { return keys, nil },
	})
	m.ObserveRequest("POST /v1/login", 429, 3*time.Millisecond)
	m.ObserveRequest("POST /v1/login", 200, 30*time.Millisecond)
	m.ObserveRequest("", 404, time.Millisecond)
	m.LoginOutcome(auth.LoginThrottled)
	m.LoginOutcome(auth.LoginSucceeded)
	m.RefreshOutcome(auth.RefreshRotated)
	m.SessionsRevoked(keycard.RevokeLogoutAll, 3)
	m.SessionsRevoked(keycard.RevokeLogout, 0)

	text := scrape(t, m)
	wantLines(t, text,
		`keycard_http_requests_total{code="429",route="POST /v1/login"} 1`,
		`keycard_http_requests_total{code="200",route="POST /v1/login"} 1`,
		`keycard_http_requests_total{code="404",route="unmatched"} 1`,
		`keycard_http_request_duration_seconds_count{route="POST /v1/login"} 2`,
		`keycard_http_request_duration_seconds_bucket{route="POST /v1/login",le="0.005"} 1`,
		`keycard_logins_total{outcome="throttled"} 1`,
		`keycard_logins_total{outcome="succeeded"} 1`,
		`keycard_logins_total{outcome="failed"} 0`,
		`keycard_refresh_grants_total{outcome="rotated"} 1`,
		`keycard_refresh_grants_total{outcome="theft"} 0`,
		`keycard_sessions_revoked_total{reason="logout_all"} 3`,
		`keycard_sessions_revoked_total{reason="logout"} 0`,
		`keycard_signing_key_age_seconds 90`,
	)
	if !strings.Contains(text, "go_goroutines ") || !strings.Contains(text, "process_") {
		t.Error("exposition lacks the Go runtime or process collectors")
	}
}

func TestKeyAgeLeftOut(t *testing.T) {
	for name, keys := range map[string]func(context.Context) ([]*keycard.SigningKey, error){
		"no keys function": nil,
		"listing fails":    func(context.Context) ([]*keycard.SigningKey, error) { return nil, errors.New("db down") },
		"no active key": func(context.Context) ([]*keycard.SigningKey, error) {
			return []*keycard.SigningKey{{KID: "n", State: keycard.KeyNext}}, nil
		},
	} {
		if text := scrape(t, New(Options{Keys: keys})); strings.Contains(text, "keycard_signing_key_age_seconds ") {
			t.Errorf("%s: key age reported", name)
		}
	}
}

func TestRegistriesAreSeparate(t *testing.T) {
	a, b := New(Options{}), New(Options{})
	a.LoginOutcome(auth.LoginFailed)
	wantLines(t, scrape(t, b), `keycard_logins_total{outcome="failed"} 0`)
	wantLines(t, scrape(t, a), `keycard_logins_total{outcome="failed"} 1`)
}

func TestFeedMetrics(t *testing.T) {
	m := New(Options{})
	wantLines(t, scrape(t, m),
		`keycard_revocation_feed_subscribers{kind="long_poll"} 0`,
		`keycard_revocation_feed_subscribers{kind="stream"} 0`,
	)
	m.FeedSubscribers("long_poll", 1)
	m.FeedSubscribers("long_poll", 1)
	m.FeedSubscribers("stream", 1)
	m.FeedSubscribers("long_poll", -1)
	m.ObserveFeedLag("stream", 3*time.Millisecond)
	m.ObserveFeedLag("poll", 20*time.Second)
	wantLines(t, scrape(t, m),
		`keycard_revocation_feed_subscribers{kind="long_poll"} 1`,
		`keycard_revocation_feed_subscribers{kind="stream"} 1`,
		`keycard_revocation_feed_lag_seconds_bucket{kind="stream",le="0.005"} 1`,
		`keycard_revocation_feed_lag_seconds_count{kind="stream"} 1`,
		`keycard_revocation_feed_lag_seconds_bucket{kind="poll",le="15"} 0`,
		`keycard_revocation_feed_lag_seconds_bucket{kind="poll",le="30"} 1`,
		`keycard_revocation_feed_lag_seconds_sum{kind="poll"} 20`,
	)
}

// TestWebhookMetrics: every outcome the webhook worker reports starts at
// 0, and each attempt counts under its outcome.
func TestWebhookMetrics(t *testing.T) {
	m := New(Options{})
	outcomes := []string{webhook.OutcomeDelivered, webhook.OutcomeRetried, webhook.OutcomeFailed}
	var zero []string
	for _, o := range outcomes {
		zero = append(zero, `keycard_webhook_deliveries_total{outcome="`+o+`"} 0`)
	}
	wantLines(t, scrape(t, m), zero...)
	m.WebhookOutcome(webhook.OutcomeRetried)
	m.WebhookOutcome(webhook.OutcomeRetried)
	m.WebhookOutcome(webhook.OutcomeDelivered)
	wantLines(t, scrape(t, m),
		`keycard_webhook_deliveries_total{outcome="retried"} 2`,
		`keycard_webhook_deliveries_total{outcome="delivered"} 1`,
		`keycard_webhook_deliveries_total{outcome="failed"} 0`,
	)
}
