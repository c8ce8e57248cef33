package loadgen

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when Advance is called, so a run
// on it is deterministic: SleepUntil waits until some Op has advanced
// the clock far enough.
type fakeClock struct {
	mu   sync.Mutex
	cond *sync.Cond
	now  time.Time
}

func newFakeClock() *fakeClock {
	c := &fakeClock{now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	c.cond.Broadcast()
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.now.Before(t) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.cond.Wait()
	}
	return ctx.Err()
}

// slowServer is an Op that takes 50 ms of fake time per request, one
// request at a time.
func slowServer(c *fakeClock) Op {
	return func(ctx context.Context, worker int) (time.Duration, error) {
		c.Advance(50 * time.Millisecond)
		return 0, nil
	}
}

func within(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= precision*float64(want)
}

// TestOpenLoopCountsFromScheduledStart drives a server that takes 50 ms
// per request at 100 requests per second with one worker. Request k is
// scheduled at 10k ms but can only start when request k-1 is answered,
// at 50k ms, and is answered at 50(k+1) ms: its latency is 50+40k ms,
// not the 50 ms a closed loop would report.
func TestOpenLoopCountsFromScheduledStart(t *testing.T) {
	clock := newFakeClock()
	res, err := Run(context.Background(), Config{Concurrency: 1, Rate: 100, Requests: 20, Clock: clock}, slowServer(clock))
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != ModeOpen || res.Rate != 100 || res.Successes() != 20 || res.ErrorCount() != 0 {
		t.Fatalf("mode %s rate %v successes %d errors %d", res.Mode, res.Rate, res.Successes(), res.ErrorCount())
	}
	h := res.Latency
	if h.Min() != 50*time.Millisecond || h.Max() != 810*time.Millisecond {
		t.Errorf("min %v max %v, want 50ms and 810ms (50+40·19)", h.Min(), h.Max())
	}
	// The 10th of 20 latencies is request 9's: 50+40·9 = 410 ms.
	if got := h.Quantile(0.5); !within(got, 410*time.Millisecond) {
		t.Errorf("p50 %v, want 410ms", got)
	}
	if want := 430 * time.Millisecond; h.Mean() != want { // mean of 50+40k for k < 20
		t.Errorf("mean %v, want %v", h.Mean(), want)
	}
	// Request k starts at 50k ms, scheduled at 10k: request 19 is 760 ms late.
	if res.LateStarts != 19 || res.MaxStartLag != 760*time.Millisecond {
		t.Errorf("late starts %d, max lag %v; want 19 and 760ms", res.LateStarts, res.MaxStartLag)
	}
	if res.Elapsed != time.Second {
		t.Errorf("elapsed %v, want 1s", res.Elapsed)
	}
}

// TestClosedLoopHidesTheQueue is the same server in a closed loop: every
// latency is 50 ms.
func TestClosedLoopHidesTheQueue(t *testing.T) {
	clock := newFakeClock()
	res, err := Run(context.Background(), Config{Concurrency: 1, Requests: 20, Clock: clock}, slowServer(clock))
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != ModeClosed || res.Successes() != 20 || res.Latency.Min() != 50*time.Millisecond || res.Latency.Max() != 50*time.Millisecond {
		t.Errorf("mode %s successes %d min %v max %v, want closed, 20, 50ms, 50ms", res.Mode, res.Successes(), res.Latency.Min(), res.Latency.Max())
	}
	if res.LateStarts != 0 || res.Elapsed != time.Second || res.Throughput() != 20 {
		t.Errorf("late %d elapsed %v throughput %v", res.LateStarts, res.Elapsed, res.Throughput())
	}
}

// TestOpenLoopKeepsItsSchedule: a server faster than the schedule gets
// requests at the scheduled times, none late.
func TestOpenLoopKeepsItsSchedule(t *testing.T) {
	clock := newFakeClock()
	var mu sync.Mutex
	var starts []time.Time
	op := func(ctx context.Context, worker int) (time.Duration, error) {
		mu.Lock()
		starts = append(starts, clock.Now())
		mu.Unlock()
		clock.Advance(time.Millisecond) // 1 ms of work
		clock.Advance(9 * time.Millisecond)
		return 0, nil
	}
	res, err := Run(context.Background(), Config{Concurrency: 4, Rate: 100, Duration: 100 * time.Millisecond, Clock: clock}, op)
	if err != nil {
		t.Fatal(err)
	}
	if res.Successes() != 10 || res.LateStarts != 0 {
		t.Fatalf("successes %d late %d, want 10 and 0", res.Successes(), res.LateStarts)
	}
	for i := 1; i < len(starts); i++ {
		if d := starts[i].Sub(starts[i-1]); d != 10*time.Millisecond {
			t.Errorf("start %d is %v after start %d, want 10ms", i, d, i-1)
		}
	}
}

func TestClosedLoopDurationAndErrors(t *testing.T) {
	clock := newFakeClock()
	var calls atomic.Int64
	op := func(ctx context.Context, worker int) (time.Duration, error) {
		n := calls.Add(1)
		clock.Advance(10 * time.Millisecond)
		switch n % 5 {
		case 0:
			return 0, &StatusError{Code: 503}
		case 1:
			return 0, &KindError{Kind: KindInactive, Msg: "test"}
		}
		return 0, nil
	}
	res, err := Run(context.Background(), Config{Concurrency: 1, Duration: 100 * time.Millisecond, Clock: clock}, op)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 10 {
		t.Fatalf("%d requests in 100ms of 10ms requests, want 10", calls.Load())
	}
	if res.Errors["http_503"] != 2 || res.Errors[KindInactive] != 2 || len(res.Errors) != 2 || res.Successes() != 6 {
		t.Errorf("errors %v successes %d, want 2 http_503, 2 inactive, 6 successes", res.Errors, res.Successes())
	}
}

func TestRequestsAcrossWorkers(t *testing.T) {
	var calls atomic.Int64
	seen := make([]atomic.Int64, 8)
	op := func(ctx context.Context, worker int) (time.Duration, error) {
		calls.Add(1)
		seen[worker].Add(1)
		return 0, nil
	}
	res, err := Run(context.Background(), Config{Concurrency: 8, Requests: 1000}, op)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1000 || res.Successes() != 1000 || res.Concurrency != 8 {
		t.Errorf("calls %d successes %d concurrency %d, want 1000, 1000, 8", calls.Load(), res.Successes(), res.Concurrency)
	}
}

func TestSelfTimed(t *testing.T) {
	op := func(ctx context.Context, worker int) (time.Duration, error) { return 42 * time.Millisecond, nil }
	res, err := Run(context.Background(), Config{Concurrency: 2, Requests: 10, SelfTimed: true}, op)
	if err != nil {
		t.Fatal(err)
	}
	if res.Latency.Min() != 42*time.Millisecond || res.Latency.Max() != 42*time.Millisecond {
		t.Errorf("min %v max %v, want the Op's 42ms", res.Latency.Min(), res.Latency.Max())
	}
}

// TestInterrupt: cancelling the run's context stops it; the requests it
// cut short count neither as successes nor as errors.
func TestInterrupt(t *testing.T) {
	for _, rate := range []float64{0, 1e6} {
		ctx, cancel := context.WithCancel(context.Background())
		var done atomic.Int64
		op := func(ctx context.Context, worker int) (time.Duration, error) {
			if done.Add(1) == 5 {
				cancel()
			}
			if worker == 0 {
				<-ctx.Done() // a request the interruption cuts short
				return 0, ctx.Err()
			}
			return 0, nil
		}
		res, err := Run(ctx, Config{Concurrency: 2, Rate: rate, Duration: time.Hour}, op)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if !res.Interrupted || res.ErrorCount() != 0 {
			t.Errorf("rate %v: interrupted %v errors %v, want true and none", rate, res.Interrupted, res.Errors)
		}
	}
}

func TestProgress(t *testing.T) {
	reported := make(chan Progress, 100)
	var calls atomic.Int64
	op := func(ctx context.Context, worker int) (time.Duration, error) {
		if calls.Add(1) == 1 {
			return 0, nil
		}
		// The second request waits until a progress report shows the
		// first one.
		for p := range reported {
			if p.Requests >= 1 {
				break
			}
		}
		return 0, errors.New("done")
	}
	var mu sync.Mutex
	var last Progress
	cfg := Config{Concurrency: 1, Requests: 2, ProgressEvery: 5 * time.Millisecond, Progress: func(p Progress) {
		mu.Lock()
		last = p
		mu.Unlock()
		select {
		case reported <- p:
		default:
		}
	}}
	res, err := Run(context.Background(), cfg, op)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if last.Requests < 1 || last.Elapsed <= 0 {
		t.Errorf("last progress %+v, want a request and a positive elapsed time", last)
	}
	if res.Successes() != 1 || res.Errors[KindOther] != 1 {
		t.Errorf("successes %d errors %v", res.Successes(), res.Errors)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	op := func(context.Context, int) (time.Duration, error) { return 0, nil }
	for _, cfg := range []Config{
		{Concurrency: 0, Requests: 1},
		{Concurrency: 1},
		{Concurrency: 1, Requests: 1, Duration: time.Second},
		{Concurrency: 1, Requests: 1, Rate: -1},
	} {
		if _, err := Run(context.Background(), cfg, op); err == nil {
			t.Errorf("Run(%+v) succeeded, want an error", cfg)
		}
	}
}
