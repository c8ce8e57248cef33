package throttle

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func allow(t *testing.T, l Limiter, key string) (bool, time.Duration) {
	t.Helper()
	ok, retry, err := l.Allow(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return ok, retry
}

func fail(t *testing.T, l Limiter, key string) {
	t.Helper()
	if err := l.Failure(context.Background(), key); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryBackOffGrowsAndLifts(t *testing.T) {
	clk := newFakeClock()
	l := NewMemory(Policy{Burst: 5, Refill: time.Minute, BaseDelay: time.Second, MaxDelay: 15 * time.Minute}, clk.Now)
	const key = "account:alice"

	for i := range 5 {
		if ok, _ := allow(t, l, key); !ok {
			t.Fatalf("attempt %d refused, want the first 5 allowed", i+1)
		}
		fail(t, l, key)
	}
	ok, retry := allow(t, l, key)
	if ok || retry != time.Second {
		t.Fatalf("after 5 failures: got ok=%v retry=%v, want refused for 1s", ok, retry)
	}
	// Each failure after the bucket is empty doubles the wait, up to the cap.
	wantDelays := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	clk.Advance(time.Second)
	for _, want := range wantDelays {
		if ok, _ := allow(t, l, key); !ok {
			t.Fatalf("attempt after the back-off refused")
		}
		fail(t, l, key)
		ok, retry := allow(t, l, key)
		if ok || retry != want {
			t.Fatalf("got ok=%v retry=%v, want refused for %v", ok, retry, want)
		}
		clk.Advance(want - time.Millisecond)
		if ok, _ := allow(t, l, key); ok {
			t.Fatalf("allowed %v before the back-off of %v ends", time.Millisecond, want)
		}
		clk.Advance(time.Millisecond)
	}
	for range 20 {
		allow(t, l, key)
		fail(t, l, key)
		_, retry := allow(t, l, key)
		if retry > 15*time.Minute {
			t.Fatalf("retry %v exceeds the 15m cap", retry)
		}
		clk.Advance(retry)
	}
	fail(t, l, key)
	if _, retry := allow(t, l, key); retry != 15*time.Minute {
		t.Fatalf("got retry %v, want the 15m cap", retry)
	}

	// A quiet period of IdleTTL forgets the key: five free attempts again.
	clk.Advance(l.Policy().IdleTTL())
	for i := range 5 {
		if ok, _ := allow(t, l, key); !ok {
			t.Fatalf("after the idle period, attempt %d refused", i+1)
		}
		fail(t, l, key)
	}
	if ok, _ := allow(t, l, key); ok {
		t.Fatal("sixth failure in a row allowed")
	}
}

func TestMemoryRefillAndSuccess(t *testing.T) {
	clk := newFakeClock()
	l := NewMemory(Policy{Burst: 3, Refill: time.Minute}, clk.Now)
	const key = "k"
	// Failures a minute apart are forgiven as fast as they come.
	for range 4 {
		fail(t, l, key)
		clk.Advance(time.Minute)
	}
	if ok, _ := allow(t, l, key); !ok {
		t.Fatal("failures spread at the refill rate should never back off")
	}
	fail(t, l, key)
	fail(t, l, key)
	fail(t, l, key)
	if ok, _ := allow(t, l, key); ok {
		t.Fatal("three failures in a row allowed a fourth attempt at once")
	}
	// Success forgets the key.
	if err := l.Success(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if ok, _ := allow(t, l, key); !ok || l.Len() != 0 {
		t.Fatalf("after Success: ok=%v, keys=%d; want allowed and forgotten", ok, l.Len())
	}
	// Keys are independent.
	for range 3 {
		fail(t, l, "a")
	}
	if ok, _ := allow(t, l, "b"); !ok {
		t.Fatal("key b throttled by key a's failures")
	}
}

func TestMemoryOneAttemptPerBackOffPeriod(t *testing.T) {
	clk := newFakeClock()
	l := NewMemory(Policy{Burst: 1, BaseDelay: 10 * time.Second}, clk.Now)
	fail(t, l, "k")
	clk.Advance(10 * time.Second)
	if ok, _ := allow(t, l, "k"); !ok {
		t.Fatal("attempt after the back-off refused")
	}
	// A parallel attempt, before the first one's outcome is known, waits.
	if ok, retry := allow(t, l, "k"); ok || retry != 10*time.Second {
		t.Fatalf("second attempt in one back-off period: ok=%v retry=%v, want refused for 10s", ok, retry)
	}
}

func TestMemoryBounded(t *testing.T) {
	clk := newFakeClock()
	const maxKeys = 1000
	l := NewMemory(Policy{MaxKeys: maxKeys}, clk.Now)
	for i := range 50 * maxKeys {
		fail(t, l, fmt.Sprintf("addr:%d", i))
		if i%1000 == 0 {
			clk.Advance(time.Second)
		}
	}
	if n := l.Len(); n != maxKeys {
		t.Fatalf("got %d keys, want the limit %d", n, maxKeys)
	}
	// Allow never creates state.
	for i := range 10 * maxKeys {
		allow(t, l, fmt.Sprintf("new:%d", i))
	}
	if n := l.Len(); n != maxKeys {
		t.Fatalf("after Allow of unknown keys: got %d keys, want %d", n, maxKeys)
	}
	// Idle keys are swept by later failures.
	clk.Advance(l.Policy().IdleTTL())
	fail(t, l, "fresh")
	if n := l.Len(); n != 1 {
		t.Fatalf("after the idle period: got %d keys, want 1", n)
	}
	if len(l.keys) != l.lru.Len() {
		t.Fatalf("map has %d keys, list %d", len(l.keys), l.lru.Len())
	}
}

func TestMemoryConcurrent(t *testing.T) {
	l := NewMemory(Policy{MaxKeys: 64}, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			ctx := context.Background()
			for i := range 2000 {
				key := fmt.Sprintf("k%d", (g*7+i)%100)
				l.Allow(ctx, key)
				if i%5 == 0 {
					l.Success(ctx, key)
				} else {
					l.Failure(ctx, key)
				}
			}
		})
	}
	wg.Wait()
	if n := l.Len(); n > 64 {
		t.Fatalf("got %d keys, want at most 64", n)
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		in, want time.Duration
	}{
		{0, time.Second},
		{time.Millisecond, time.Second},
		{time.Second, time.Second},
		{time.Second + time.Nanosecond, 2 * time.Second},
		{90 * time.Second, 90 * time.Second},
	}
	for _, tt := range tests {
		if got := RetryAfter(tt.in); got != tt.want {
			t.Errorf("RetryAfter(%v): got %v, want %v", tt.in, got, tt.want)
		}
	}
}
