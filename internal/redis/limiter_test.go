package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/keycard-auth/keycard/internal/throttle"
)

// step is one step of a conformance sequence: "a:KEY" (Allow), "f:KEY"
// (Failure), "s:KEY" (Success) or "+DURATION" (advance the clock).
type step string

// parseSteps splits a space-separated list of steps.
func parseSteps(s string) []step {
	var steps []step
	for _, f := range strings.Fields(s) {
		steps = append(steps, step(f))
	}
	return steps
}

// conform runs steps against a throttle.Memory and a Limiter on Redis with
// the same policy and clock, and fails at the first Allow where they
// disagree.
func conform(t *testing.T, c *goredis.Client, p throttle.Policy, steps []step) {
	t.Helper()
	ctx := context.Background()
	clk := newFakeClock()
	mem := throttle.NewMemory(p, clk.Now)
	rl := NewLimiter(c, p, LimiterOptions{Prefix: testPrefix(t, c), Now: clk.Now})
	for i, s := range steps {
		if d, ok := strings.CutPrefix(string(s), "+"); ok {
			dur, err := time.ParseDuration(d)
			if err != nil {
				t.Fatalf("step %d %q: %v", i, s, err)
			}
			clk.Advance(dur)
			continue
		}
		op, key, _ := strings.Cut(string(s), ":")
		switch op {
		case "a":
			mok, mretry, err := mem.Allow(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			rok, rretry, err := rl.Allow(ctx, key)
			if err != nil {
				t.Fatalf("step %d %q: %v", i, s, err)
			}
			if mok != rok || mretry != rretry {
				lo := max(0, i-12)
				t.Fatalf("step %d %q (after …%v): Redis ok=%v retry=%v, Memory ok=%v retry=%v",
					i, s, steps[lo:i], rok, rretry, mok, mretry)
			}
		case "f":
			if err := mem.Failure(ctx, key); err != nil {
				t.Fatal(err)
			}
			if err := rl.Failure(ctx, key); err != nil {
				t.Fatalf("step %d %q: %v", i, s, err)
			}
		case "s":
			if err := mem.Success(ctx, key); err != nil {
				t.Fatal(err)
			}
			if err := rl.Success(ctx, key); err != nil {
				t.Fatalf("step %d %q: %v", i, s, err)
			}
		default:
			t.Fatalf("step %d: bad step %q", i, s)
		}
	}
}

func TestLimiterConformsToMemory(t *testing.T) {
	c := testClient(t)
	dflt := throttle.Policy{}
	tests := []struct {
		name   string
		policy throttle.Policy
		steps  string
	}{{
		name:   "back-off starts after Burst failures and doubles",
		policy: dflt,
		steps: strings.Repeat("a:k f:k ", 5) + "a:k +999ms a:k +1ms a:k a:k f:k a:k +1999ms a:k +1ms a:k f:k a:k " +
			"+4s a:k f:k a:k +8s a:k f:k a:k +16s f:k f:k f:k f:k f:k f:k f:k f:k f:k f:k a:k +15m a:k",
	}, {
		name:   "back-off is capped at MaxDelay",
		policy: throttle.Policy{Burst: 1, BaseDelay: time.Second, MaxDelay: 10 * time.Second},
		steps:  strings.Repeat("f:k a:k +3s a:k ", 12),
	}, {
		name:   "failures at the refill rate never back off",
		policy: throttle.Policy{Burst: 3, Refill: time.Minute},
		steps:  "f:k +1m f:k +1m f:k +1m f:k +1m a:k f:k f:k a:k f:k a:k s:k a:k f:k a:k",
	}, {
		name:   "partial refill",
		policy: throttle.Policy{Burst: 3, Refill: time.Minute},
		steps:  "f:k f:k +30s a:k f:k a:k +29s f:k a:k +31s s:k f:k f:k +45s f:k a:k +15s f:k a:k +1s a:k",
	}, {
		name:   "one attempt per back-off period",
		policy: throttle.Policy{Burst: 1, BaseDelay: 10 * time.Second},
		steps:  "f:k +10s a:k a:k +9s a:k +1s a:k a:k f:k a:k +20s a:k",
	}, {
		name:   "idle keys are forgotten",
		policy: throttle.Policy{Burst: 2, Refill: time.Minute, MaxDelay: time.Minute},
		steps: "f:k f:k a:k +2m59999ms a:k +1ms a:k f:k a:k f:k a:k " +
			"f:j f:j f:j f:j +3m a:j f:j a:j f:j a:j",
	}, {
		name:   "keys are independent and success forgets only its own",
		policy: throttle.Policy{Burst: 2},
		steps:  "f:a f:a f:b a:a a:b s:b a:a f:b a:b f:b a:b s:a a:a a:b",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conform(t, c, tt.policy, parseSteps(tt.steps))
		})
	}
}

func TestLimiterConformsToMemoryRandom(t *testing.T) {
	c := testClient(t)
	policies := []throttle.Policy{
		{Burst: 1, Refill: 10 * time.Second, BaseDelay: time.Second, MaxDelay: 8 * time.Second},
		{Burst: 3, Refill: time.Minute, BaseDelay: 500 * time.Millisecond, MaxDelay: time.Minute},
		{Burst: 5, Refill: 7 * time.Second, BaseDelay: 250 * time.Millisecond, MaxDelay: 15 * time.Minute},
		{},
	}
	for pi, p := range policies {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("policy%d/seed%d", pi, seed), func(t *testing.T) {
				conform(t, c, p, randomSteps(rand.New(rand.NewPCG(seed, uint64(pi))), p, 400))
			})
		}
	}
}

// randomSteps returns n steps on three keys, with clock advances chosen
// around the policy's periods.
func randomSteps(r *rand.Rand, p throttle.Policy, n int) []step {
	p = throttle.NewMemory(p, nil).Policy()
	advances := []time.Duration{
		time.Millisecond, 250 * time.Millisecond, time.Second, 3 * time.Second,
		p.Refill / 2, p.Refill, p.BaseDelay, p.BaseDelay - time.Millisecond, 2 * p.BaseDelay,
		p.MaxDelay, p.MaxDelay - time.Millisecond, p.IdleTTL() - time.Millisecond, p.IdleTTL(),
	}
	keys := []string{"x", "y", "z"}
	steps := make([]step, 0, n)
	for range n {
		key := keys[r.IntN(len(keys))]
		switch v := r.IntN(100); {
		case v < 40:
			steps = append(steps, step("a:"+key))
		case v < 75:
			steps = append(steps, step("f:"+key))
		case v < 79:
			steps = append(steps, step("s:"+key))
		default:
			steps = append(steps, step("+"+advances[r.IntN(len(advances))].String()))
		}
	}
	return steps
}

func TestLimiterKeys(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	prefix := testPrefix(t, c)
	p := throttle.Policy{Burst: 2}
	l := NewLimiter(c, p, LimiterOptions{Prefix: prefix})

	// A key of a megabyte is stored under a key of fixed length.
	huge := strings.Repeat("a", 1<<20)
	if err := l.Failure(ctx, huge); err != nil {
		t.Fatal(err)
	}
	if err := l.Failure(ctx, huge+"b"); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := l.Allow(ctx, huge); err != nil || !ok {
		t.Fatalf("one failure each of two long keys: got ok=%v err=%v, want allowed (keys distinct)", ok, err)
	}
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("got %d Redis keys, want 2", len(keys))
	}
	for _, k := range keys {
		if len(k) != len(prefix)+32 {
			t.Errorf("Redis key %q: got length %d, want %d", k[:min(len(k), 80)], len(k), len(prefix)+32)
		}
		if strings.Contains(k, "aaaa") {
			t.Errorf("Redis key %q holds the caller's key in clear", k[:min(len(k), 80)])
		}
	}

	// Keys expire after IdleTTL by Redis's clock.
	ttl, err := c.PTTL(ctx, l.Key(huge)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > l.Policy().IdleTTL() {
		t.Fatalf("got TTL %v, want in (0, %v]", ttl, l.Policy().IdleTTL())
	}

	// Allow creates no state; Success removes it.
	if ok, _, err := l.Allow(ctx, "unknown"); err != nil || !ok {
		t.Fatalf("Allow of an unknown key: ok=%v err=%v", ok, err)
	}
	if n, err := c.Exists(ctx, l.Key("unknown")).Result(); err != nil || n != 0 {
		t.Fatalf("Allow of an unknown key created it: exists=%d err=%v", n, err)
	}
	if err := l.Success(ctx, huge); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Exists(ctx, l.Key(huge)).Result(); err != nil || n != 0 {
		t.Fatalf("after Success: exists=%d err=%v, want the key gone", n, err)
	}
}

func TestLimiterCorruptStateIsForgotten(t *testing.T) {
	c := testClient(t)
	ctx := context.Background()
	l := NewLimiter(c, throttle.Policy{Burst: 1}, LimiterOptions{Prefix: testPrefix(t, c)})
	// State not written by the script (an operator's edit, an old
	// version) reads as no state, rather than failing every login.
	if err := c.HSet(ctx, l.Key("k"), "t", "zero", "s", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := l.Allow(ctx, "k"); err != nil || !ok {
		t.Fatalf("Allow over corrupt state: ok=%v err=%v, want allowed", ok, err)
	}
	if err := l.Failure(ctx, "k"); err != nil {
		t.Fatalf("Failure over corrupt state: %v", err)
	}
	if ok, _, err := l.Allow(ctx, "k"); err != nil || ok {
		t.Fatalf("after one failure with Burst 1: ok=%v err=%v, want refused", ok, err)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	c := testClient(t)
	prefix := testPrefix(t, c)
	const workers, each = 20, 25
	const burst = workers * each
	clk := newFakeClock()
	l := NewLimiter(c, throttle.Policy{Burst: burst, Refill: time.Hour, BaseDelay: time.Minute}, LimiterOptions{Prefix: prefix, Now: clk.Now})
	ctx := context.Background()

	// burst-1 failures in parallel leave one token: not backing off.
	var wg sync.WaitGroup
	var errs atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if w == 0 && i == 0 {
					continue
				}
				if err := l.Failure(ctx, "k"); err != nil {
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := errs.Load(); n > 0 {
		t.Fatalf("%d failures failed", n)
	}
	tokens, err := c.HGet(ctx, l.Key("k"), "t").Float64()
	if err != nil {
		t.Fatal(err)
	}
	if tokens != 1 {
		t.Fatalf("after %d parallel failures of a bucket of %d: got %v tokens, want 1 (updates lost)", burst-1, burst, tokens)
	}
	if ok, _, err := l.Allow(ctx, "k"); err != nil || !ok {
		t.Fatalf("with one token left: ok=%v err=%v, want allowed", ok, err)
	}
	if err := l.Failure(ctx, "k"); err != nil {
		t.Fatal(err)
	}

	// Once the back-off period ends, parallel attempts get exactly one.
	clk.Advance(time.Minute)
	var allowed atomic.Int64
	for range workers {
		wg.Go(func() {
			for range each {
				ok, _, err := l.Allow(ctx, "k")
				if err != nil {
					errs.Add(1)
				}
				if ok {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := errs.Load(); n > 0 {
		t.Fatalf("%d Allow calls failed", n)
	}
	if n := allowed.Load(); n != 1 {
		t.Fatalf("%d parallel attempts after the back-off: %d allowed, want 1", workers*each, n)
	}
}

func TestNewClient(t *testing.T) {
	c, err := NewClient("redis://127.0.0.1:6379/2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := c.Options()
	if o.DialTimeout != DefaultDialTimeout || o.ReadTimeout != DefaultIOTimeout || o.WriteTimeout != DefaultIOTimeout ||
		o.MaxRetries != 0 || o.DialerRetries != 1 || !o.ContextTimeoutEnabled || o.DB != 2 {
		t.Errorf("got dial %v read %v write %v retries %d dial retries %d context %v db %d; want fail-fast defaults on db 2",
			o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries, o.DialerRetries, o.ContextTimeoutEnabled, o.DB)
	}
	c2, err := NewClient("redis://127.0.0.1:6379/0?dial_timeout=3s&max_retries=2")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if o := c2.Options(); o.DialTimeout != 3*time.Second || o.MaxRetries != 2 {
		t.Errorf("URL options: got dial %v retries %d, want 3s and 2", o.DialTimeout, o.MaxRetries)
	}

	for _, bad := range []string{
		"redis://user:s3cret@[::1/0",
		"http://user:s3cret@localhost:6379/0",
		"redis://user:s3cret@localhost:6379/zero",
		"redis://user:s3cret@localhost:6379/0?no_such_option=1",
	} {
		_, err := NewClient(bad)
		if err == nil {
			t.Errorf("NewClient(%q): no error", bad)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("NewClient(%q): error %q shows the password", bad, err)
		}
	}
}

// BenchmarkRedisLimiter measures one login's throttle round trips, an
// Allow and a Failure, against KEYCARD_TEST_REDIS.
func BenchmarkRedisLimiter(b *testing.B) {
	c := testClient(b)
	ctx := context.Background()
	l := NewLimiter(c, throttle.Policy{}, LimiterOptions{Prefix: testPrefix(b, c)})
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			key := fmt.Sprintf("account:%d", i%1000)
			i++
			if _, _, err := l.Allow(ctx, key); err != nil {
				b.Fatal(err)
			}
			if err := l.Failure(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				key := fmt.Sprintf("address:%d", n.Add(1)%1000)
				if _, _, err := l.Allow(ctx, key); err != nil {
					b.Error(err)
					return
				}
				if err := l.Failure(ctx, key); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
