package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/metrics"
	"github.com/keycard-auth/keycard/internal/throttle"
)

// limits returns fixture login limits with the given policies.
func limits(account, address throttle.Policy) func(func() time.Time) auth.LoginLimits {
	return func(now func() time.Time) auth.LoginLimits {
		return auth.LoginLimits{Account: throttle.NewMemory(account, now), Address: throttle.NewMemory(address, now)}
	}
}

func TestLoginThrottledPerAccount(t *testing.T) {
	f := newFixture(t, fixtureOptions{limits: limits(
		throttle.Policy{Burst: 3, BaseDelay: time.Minute},
		throttle.Policy{Burst: 1000},
	)})
	f.register(t, "alice", testPassword)

	var bodies [][]byte
	for _, name := range []string{"alice", "nobody"} { // an existing and an unknown account
		for range 3 {
			f.postJSON(t, "/v1/login", "", credentialsJSON(name, "wrong password")).wantError(t, http.StatusUnauthorized, codeInvalidGrant)
		}
		// Throttled, whatever the password: it is not checked.
		for _, pass := range []string{"wrong password", testPassword} {
			res := f.postJSON(t, "/v1/login", "", credentialsJSON(name, pass))
			res.wantError(t, http.StatusTooManyRequests, codeTooManyRequests)
			if got := res.header.Get("Retry-After"); got != "60" {
				t.Errorf("%s: Retry-After %q, want 60", name, got)
			}
			if got := res.header.Get("WWW-Authenticate"); got != "" {
				t.Errorf("%s: 429 with WWW-Authenticate %q", name, got)
			}
			bodies = append(bodies, res.body)
		}
	}
	for _, b := range bodies[1:] {
		if !bytes.Equal(b, bodies[0]) {
			t.Errorf("throttled bodies differ: %s and %s", bodies[0], b)
		}
	}
	// The name is normalized: another spelling is the same account.
	f.postJSON(t, "/v1/login", "", credentialsJSON("ALICE", testPassword)).wantError(t, http.StatusTooManyRequests, codeTooManyRequests)

	events, err := f.svc.AuditEvents(context.Background(), keycard.AuditFilter{Type: keycard.AuditLoginThrottled, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 5 {
		t.Errorf("got %d login.throttled audit events, want 5", len(events))
	}

	// The throttle lifts after the back-off.
	f.clock.Advance(time.Minute - time.Second)
	f.postJSON(t, "/v1/login", "", credentialsJSON("alice", testPassword)).wantError(t, http.StatusTooManyRequests, codeTooManyRequests)
	f.clock.Advance(time.Second)
	f.login(t, "alice", testPassword)
	// The success forgot alice's failures; nobody's remain.
	f.postJSON(t, "/v1/login", "", credentialsJSON("alice", "wrong password")).wantError(t, http.StatusUnauthorized, codeInvalidGrant)
	f.login(t, "alice", testPassword)
	f.postJSON(t, "/v1/login", "", credentialsJSON("nobody", "wrong password")).wantError(t, http.StatusUnauthorized, codeInvalidGrant)
	res := f.postJSON(t, "/v1/login", "", credentialsJSON("nobody", "wrong password"))
	res.wantError(t, http.StatusTooManyRequests, codeTooManyRequests)
	if got := res.header.Get("Retry-After"); got != "120" {
		t.Errorf("second back-off: Retry-After %q, want 120", got)
	}
}

func TestLoginThrottledPerAddress(t *testing.T) {
	f := newFixture(t, fixtureOptions{limits: limits(
		throttle.Policy{Burst: 1000},
		throttle.Policy{Burst: 3, BaseDelay: 10 * time.Second},
	)})
	f.register(t, "alice", testPassword)
	for _, name := range []string{"a1", "a2", "a3"} {
		f.postJSON(t, "/v1/login", "", credentialsJSON(name, "wrong password")).wantError(t, http.StatusUnauthorized, codeInvalidGrant)
	}
	res := f.postJSON(t, "/v1/login", "", credentialsJSON("alice", testPassword))
	res.wantError(t, http.StatusTooManyRequests, codeTooManyRequests)
	if got := res.header.Get("Retry-After"); got != "10" {
		t.Errorf("Retry-After %q, want 10", got)
	}
	f.clock.Advance(10 * time.Second)
	f.login(t, "alice", testPassword)
}

func TestMetricsEndpoint(t *testing.T) {
	var svc *auth.Service
	m := metrics.New(metrics.Options{Keys: func(ctx context.Context) ([]*keycard.SigningKey, error) { return svc.Keys().Keys(ctx) }})
	f := newFixture(t, fixtureOptions{metrics: m, limits: limits(throttle.Policy{Burst: 2}, throttle.Policy{})})
	svc = f.svc
	f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword)
	f.refresh(t, tok.RefreshToken)
	f.refresh(t, tok.RefreshToken) // within the grace window: replayed
	f.postJSON(t, "/v1/login", "", credentialsJSON("nobody", "wrong password"))
	f.postJSON(t, "/v1/login", "", credentialsJSON("nobody", "wrong password"))
	f.postJSON(t, "/v1/login", "", credentialsJSON("nobody", "wrong password")) // throttled
	f.send(t, http.MethodDelete, "/v1/sessions/some-raw-id", tok.AccessToken)
	f.send(t, http.MethodGet, "/no/such/path", "")
	f.postJSON(t, "/v1/logout", tok.AccessToken, "")

	res := f.send(t, http.MethodGet, "/metrics", "")
	if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: status %d, Content-Type %q", res.status, res.header.Get("Content-Type"))
	}
	text := string(res.body)
	for _, want := range []string{
		`keycard_http_requests_total{code="201",route="POST /v1/users"} 1`,
		`keycard_http_requests_total{code="200",route="POST /v1/login"} 1`,
		`keycard_http_requests_total{code="401",route="POST /v1/login"} 2`,
		`keycard_http_requests_total{code="429",route="POST /v1/login"} 1`,
		`keycard_http_requests_total{code="200",route="POST /oauth/token"} 2`,
		`keycard_http_requests_total{code="404",route="DELETE /v1/sessions/{id}"} 1`,
		`keycard_http_requests_total{code="404",route="unmatched"} 1`,
		`keycard_http_requests_total{code="204",route="POST /v1/logout"} 1`,
		`keycard_http_request_duration_seconds_count{route="POST /v1/login"} 4`,
		`keycard_logins_total{outcome="succeeded"} 1`,
		`keycard_logins_total{outcome="failed"} 2`,
		`keycard_logins_total{outcome="throttled"} 1`,
		`keycard_refresh_grants_total{outcome="rotated"} 1`,
		`keycard_refresh_grants_total{outcome="replayed"} 1`,
		`keycard_refresh_grants_total{outcome="theft"} 0`,
		`keycard_sessions_revoked_total{reason="logout"} 1`,
	} {
		if !strings.Contains(text, "\n"+want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(text, "\nkeycard_signing_key_age_seconds ") {
		t.Error("/metrics lacks keycard_signing_key_age_seconds")
	}
	for _, leak := range []string{"some-raw-id", "/no/such/path", tok.AccessToken, tok.RefreshToken} {
		if strings.Contains(text, leak) {
			t.Errorf("/metrics contains %q", leak)
		}
	}
}

func TestNoMetricsRouteWithoutMetrics(t *testing.T) {
	f := newFixture(t)
	f.send(t, http.MethodGet, "/metrics", "").wantError(t, http.StatusNotFound, codeNotFound)
}
