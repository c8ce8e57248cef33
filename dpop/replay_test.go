package dpop_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/dpop"
)

func TestReplayCache(t *testing.T) {
	c := dpop.NewReplayCache(1000)
	now := time.Unix(1_800_000_000, 0)
	exp := now.Add(time.Minute)
	if !c.Use("a", now, exp) {
		t.Fatal("first use of a refused")
	}
	if c.Use("a", now.Add(59*time.Second), exp) {
		t.Error("second use of a within its life accepted")
	}
	if !c.Use("b", now, exp) {
		t.Error("b refused")
	}
	if !c.Use("a", exp, exp.Add(time.Minute)) {
		t.Error("a refused once its entry expired")
	}
}

// TestReplayCacheHoldsItsCapacity fills a cache to its capacity and
// checks that every id is still remembered and none was evicted.
func TestReplayCacheHoldsItsCapacity(t *testing.T) {
	const n = 100_000
	c := dpop.NewReplayCache(n)
	now := time.Unix(1_800_000_000, 0)
	exp := now.Add(time.Minute)
	for i := range n {
		if !c.Use(strconv.Itoa(i), now, exp) {
			t.Fatalf("new id %d refused", i)
		}
	}
	for i := range n {
		if c.Use(strconv.Itoa(i), now, exp) {
			t.Fatalf("id %d forgotten", i)
		}
	}
	if e := c.Evictions(); e != 0 {
		t.Errorf("got %d evictions at capacity, want 0", e)
	}
}

// TestReplayCacheStaysBounded floods a small cache: it keeps working,
// counts what it drops, and still remembers the newest ids.
func TestReplayCacheStaysBounded(t *testing.T) {
	c := dpop.NewReplayCache(64)
	now := time.Unix(1_800_000_000, 0)
	for i := range 100_000 {
		c.Use(strconv.Itoa(i), now, now.Add(time.Hour))
	}
	if c.Evictions() == 0 {
		t.Error("a flood of 100,000 ids in a cache of 64 evicted nothing")
	}
	if c.Use("99999", now, now.Add(time.Hour)) {
		t.Error("the newest id was forgotten")
	}
}

func TestReplayCacheUseDoesNotAllocate(t *testing.T) {
	c := dpop.NewReplayCache(1000)
	now := time.Unix(1_800_000_000, 0)
	ids := []string{"a", "b", "c"}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		c.Use(ids[i%3], now, now.Add(time.Minute))
		i++
	})
	if allocs != 0 {
		t.Errorf("Use allocates %v times per call, want 0", allocs)
	}
}

// BenchmarkReplay is the replay check with 100,000 live ids: each
// iteration records a new id (the common case, a fresh proof).
func BenchmarkReplay(b *testing.B) {
	const live = 100_000
	c := dpop.NewReplayCache(live)
	now := time.Unix(1_800_000_000, 0)
	exp := now.Add(time.Minute)
	ids := make([]string, 2*live)
	for i := range ids {
		ids[i] = "proof-id-" + strconv.Itoa(i)
	}
	for i := range live {
		c.Use(ids[i], now, exp)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		// Ids expire in turn so the cache stays at 100,000 live: the id
		// recorded now replaces one that expired.
		c.Use(ids[live+i%live], now, exp)
		i++
		if i%live == 0 {
			now = now.Add(2 * time.Minute)
			exp = now.Add(time.Minute)
		}
	}
}
