package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/throttle"
	"github.com/keycard-auth/keycard/jose"
)

// countingMetrics records what a Service reports.
type countingMetrics struct {
	mu      sync.Mutex
	logins  map[string]int
	refresh map[string]int
	revoked map[string]int
}

func newCountingMetrics() *countingMetrics {
	return &countingMetrics{logins: map[string]int{}, refresh: map[string]int{}, revoked: map[string]int{}}
}

func (m *countingMetrics) LoginOutcome(o string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logins[o]++
}

func (m *countingMetrics) RefreshOutcome(o string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refresh[o]++
}

func (m *countingMetrics) ClaimsHookOutcome(string) {}

func (m *countingMetrics) SessionsRevoked(reason string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revoked[reason] += n
}

// throttledService returns a Service over f's stores with login limits
// on f's clock and metrics.
func throttledService(t *testing.T, f *fixture, account, address throttle.Policy) (*Service, *countingMetrics) {
	t.Helper()
	m := newCountingMetrics()
	svc, err := NewService(Deps{
		Stores: f.db.Stores(), Keys: f.svc.keys, Sealer: f.svc.sealer, Hasher: fastHasher, Now: f.clock.Now,
		LoginLimits: LoginLimits{
			Account: throttle.NewMemory(account, f.clock.Now),
			Address: throttle.NewMemory(address, f.clock.Now),
		},
		Metrics: m,
	}, f.svc.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc, m
}

func TestLoginKeys(t *testing.T) {
	tests := []struct {
		name, addr  string
		sameAs      string // a name with the same account key
		wantAddress string
	}{
		{name: "Alice", addr: "192.0.2.7", sameAs: "alice", wantAddress: "address:192.0.2.7"},
		{name: "ALICE", addr: "::ffff:192.0.2.7", sameAs: "alice", wantAddress: "address:192.0.2.7"},
		{name: "bob", addr: "2001:db8:1:2:3:4:5:6", sameAs: "Bob", wantAddress: "address:2001:db8:1:2::/64"},
		{name: "bob", addr: "", sameAs: "BOB", wantAddress: ""},
		{name: "bad\x00name", addr: "not-an-ip", sameAs: "bad\x00name", wantAddress: "address:not-an-ip"},
	}
	for _, tt := range tests {
		account, address := loginKeys(tt.name, tt.addr)
		same, _ := loginKeys(tt.sameAs, "")
		if account != same {
			t.Errorf("loginKeys(%q): account key %q differs from %q's %q", tt.name, account, tt.sameAs, same)
		}
		if address != tt.wantAddress {
			t.Errorf("loginKeys(%q, %q): got address %q, want %q", tt.name, tt.addr, address, tt.wantAddress)
		}
	}
	a, _ := loginKeys("alice", "")
	b, _ := loginKeys("bob", "")
	if a == b {
		t.Error("alice and bob share an account key")
	}
}

func TestLoginThrottledPerAccount(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	svc, m := throttledService(t, f, throttle.Policy{Burst: 3, BaseDelay: time.Minute}, throttle.Policy{Burst: 100})

	for _, name := range []string{"Alice", "nobody"} { // an existing and an unknown account
		for i := range 3 {
			_, err := svc.Login(ctx, name, "wrong password", Agent{Addr: "192.0.2.1"})
			if keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
				t.Fatalf("%s attempt %d: got %v, want EUNAUTHORIZED", name, i+1, err)
			}
		}
		// Now even the right password is not checked.
		_, err := svc.Login(ctx, name, "correct horse battery", Agent{Addr: "192.0.2.2"})
		te, ok := errors.AsType[*ThrottledError](err)
		if !ok || te.RetryAfter != time.Minute || keycard.ErrorCode(err) != keycard.ETHROTTLED {
			t.Fatalf("%s after 3 failures: got %v, want a ThrottledError of 1m with code ETHROTTLED", name, err)
		}
		if got, want := keycard.ErrorMessage(err), "Too many login attempts. Try again later."; got != want {
			t.Errorf("message %q, want %q", got, want)
		}
	}

	events, err := f.db.Stores().Audit.ListAudit(ctx, keycard.AuditFilter{Type: keycard.AuditLoginThrottled, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].ClientAddr != "192.0.2.2" || events[0].Subject != "" {
		t.Fatalf("got %d login.throttled events (%+v), want 2 without a subject", len(events), events)
	}
	if got, want := m.logins, map[string]int{LoginFailed: 6, LoginThrottled: 2}; !equalCounts(got, want) {
		t.Errorf("login outcomes %v, want %v", got, want)
	}

	// The throttle lifts after the back-off; a success forgets the
	// failures, so the next typo is free again.
	f.clock.Advance(time.Minute)
	if _, err := svc.Login(ctx, "alice", "correct horse battery", Agent{}); err != nil {
		t.Fatalf("after the back-off: %v", err)
	}
	if _, err := svc.Login(ctx, "alice", "wrong password", Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Fatalf("typo after a success: got %v, want EUNAUTHORIZED", err)
	}
	if _, err := svc.Login(ctx, "alice", "correct horse battery", Agent{}); err != nil {
		t.Fatalf("after one typo: %v", err)
	}
}

func TestLoginThrottledPerAddress(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	svc, _ := throttledService(t, f, throttle.Policy{Burst: 100}, throttle.Policy{Burst: 4, BaseDelay: 30 * time.Second})
	for _, name := range []string{"a1", "a2", "a3", "a4"} {
		if _, err := svc.Login(ctx, name, "wrong password", Agent{Addr: "2001:db8::1"}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
			t.Fatalf("got %v, want EUNAUTHORIZED", err)
		}
	}
	// Another address in the same /64 is throttled too.
	_, err := svc.Login(ctx, "alice", "correct horse battery", Agent{Addr: "2001:db8::2"})
	if te, ok := errors.AsType[*ThrottledError](err); !ok || te.RetryAfter != 30*time.Second {
		t.Fatalf("got %v, want throttled for 30s", err)
	}
	// Another address is not.
	if _, err := svc.Login(ctx, "alice", "correct horse battery", Agent{Addr: "192.0.2.9"}); err != nil {
		t.Fatalf("from another address: %v", err)
	}
}

func TestMetricsReported(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	svc, m := throttledService(t, f, throttle.Policy{}, throttle.Policy{})
	tok, err := svc.Login(ctx, "alice", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Refresh(ctx, tok.RefreshToken, Agent{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Refresh(ctx, tok.RefreshToken, Agent{}); err != nil { // within the grace window
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	if _, err := svc.Refresh(ctx, tok.RefreshToken, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Fatalf("reuse after the grace window: got %v", err)
	}
	if got, want := m.refresh, map[string]int{RefreshRotated: 1, RefreshReplayed: 1, RefreshTheft: 1}; !equalCounts(got, want) {
		t.Errorf("refresh outcomes %v, want %v", got, want)
	}
	if got, want := m.revoked, map[string]int{keycard.RevokeTokenReuse: 1}; !equalCounts(got, want) {
		t.Errorf("revocations %v, want %v", got, want)
	}
	if got, want := m.logins, map[string]int{LoginSucceeded: 1}; !equalCounts(got, want) {
		t.Errorf("logins %v, want %v", got, want)
	}
}

func TestNilMetricsAndLimits(t *testing.T) {
	f := newFixture(t, jose.ES256) // no Metrics, no LoginLimits
	f.user(t, "alice")
	for range 20 {
		if _, err := f.svc.Login(context.Background(), "alice", "wrong password", Agent{Addr: "192.0.2.1"}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
			t.Fatalf("without limits: got %v, want EUNAUTHORIZED", err)
		}
	}
}

func equalCounts(got, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
