package redis

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/throttle"
)

// flakyLimiter is a primary limiter a test can break: it fails with err
// when err is set, or waits for the end of the call's context when hang
// is set. It counts calls.
type flakyLimiter struct {
	inner throttle.Limiter

	mu       sync.Mutex
	err      error
	hang     bool
	calls    int
	deadline time.Duration // of the last call's context, from its start
}

func (l *flakyLimiter) set(err error, hang bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err, l.hang = err, hang
}

func (l *flakyLimiter) Calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

func (l *flakyLimiter) enter(ctx context.Context) error {
	l.mu.Lock()
	l.calls++
	l.deadline = 0
	if d, ok := ctx.Deadline(); ok {
		l.deadline = time.Until(d)
	}
	err, hang := l.err, l.hang
	l.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (l *flakyLimiter) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	if err := l.enter(ctx); err != nil {
		return false, 0, err
	}
	return l.inner.Allow(ctx, key)
}

func (l *flakyLimiter) Failure(ctx context.Context, key string) error {
	if err := l.enter(ctx); err != nil {
		return err
	}
	return l.inner.Failure(ctx, key)
}

func (l *flakyLimiter) Success(ctx context.Context, key string) error {
	if err := l.enter(ctx); err != nil {
		return err
	}
	return l.inner.Success(ctx, key)
}

// stateLog records OnStateChange calls.
type stateLog struct {
	mu      sync.Mutex
	changes []string
}

func (s *stateLog) record(degraded bool, reason error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if degraded {
		s.changes = append(s.changes, "degraded: "+reason.Error())
	} else {
		s.changes = append(s.changes, "healthy")
	}
}

func (s *stateLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.changes, "; ")
}

// login makes one throttled login attempt that fails, as auth.Service
// does, and reports whether the throttle allowed it.
func login(t *testing.T, l throttle.Limiter, key string) bool {
	t.Helper()
	ctx := context.Background()
	ok, _, err := l.Allow(ctx, key)
	if err != nil {
		t.Fatalf("Allow: %v", err)
	}
	if !ok {
		return false
	}
	if err := l.Failure(ctx, key); err != nil {
		t.Fatalf("Failure: %v", err)
	}
	return true
}

func TestFallbackStates(t *testing.T) {
	clk := newFakeClock()
	p := throttle.Policy{Burst: 2}
	primary := &flakyLimiter{inner: throttle.NewMemory(p, clk.Now)}
	local := throttle.NewMemory(p, clk.Now)
	var states stateLog
	f := NewFallback(primary, local, FallbackOptions{Now: clk.Now, RetryInterval: 3 * time.Second, OnStateChange: states.record})

	// Healthy: the primary does the work.
	if !login(t, f, "k") || primary.Calls() != 2 || local.Len() != 0 {
		t.Fatalf("healthy: %d primary calls, %d local keys; want 2 and 0", primary.Calls(), local.Len())
	}
	if primary.deadline <= 0 || primary.deadline > DefaultCallTimeout {
		t.Fatalf("primary call's deadline %v away, want within %v", primary.deadline, DefaultCallTimeout)
	}

	// The primary breaks: the call that finds out is answered locally.
	refused := errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	primary.set(refused, false)
	if !login(t, f, "k") {
		t.Fatal("first attempt of k on the local limiter refused")
	}
	degraded, reason := f.Degraded()
	if !degraded || !errors.Is(reason, refused) {
		t.Fatalf("Degraded: got %v, %v; want true, %v", degraded, reason, refused)
	}
	if got, want := states.String(), "degraded: "+refused.Error(); got != want {
		t.Fatalf("state changes: got %q, want %q", got, want)
	}
	// Until RetryInterval has passed the primary is left alone, and
	// logins are throttled locally.
	calls := primary.Calls()
	login(t, f, "k")
	if login(t, f, "k") {
		t.Fatal("third attempt in a row allowed with Burst 2 while degraded")
	}
	clk.Advance(3*time.Second - time.Millisecond)
	login(t, f, "other")
	if n := primary.Calls(); n != calls {
		t.Fatalf("%d primary calls before RetryInterval, want none", n-calls)
	}

	// After it one call tries the primary, and when that fails the wait
	// starts over.
	clk.Advance(time.Millisecond)
	login(t, f, "other")
	if n := primary.Calls(); n != calls+1 {
		t.Fatalf("%d primary calls after RetryInterval, want 1", n-calls)
	}
	login(t, f, "other")
	if n := primary.Calls(); n != calls+1 {
		t.Fatalf("%d primary calls after a failed retry, want 1", n-calls)
	}

	// A primary that hangs is abandoned after CallTimeout.
	primary.set(nil, true)
	clk.Advance(3 * time.Second)
	if ok, _, err := f.Allow(context.Background(), "hang"); err != nil || !ok {
		t.Fatalf("Allow with the primary hanging: ok=%v err=%v; want allowed by the local limiter", ok, err)
	}
	if _, reason := f.Degraded(); !errors.Is(reason, context.DeadlineExceeded) {
		t.Fatalf("Degraded reason %v, want the call's deadline", reason)
	}

	// The primary recovers: the next retry finds out and it is used again.
	primary.set(nil, false)
	clk.Advance(3 * time.Second)
	calls = primary.Calls()
	login(t, f, "back")
	if degraded, reason := f.Degraded(); degraded || reason != nil {
		t.Fatalf("after recovery: Degraded %v, %v; want false, nil", degraded, reason)
	}
	if n := primary.Calls(); n != calls+2 {
		t.Fatalf("%d primary calls after recovery, want 2", n-calls)
	}
	if got, want := states.String(), "degraded: "+refused.Error()+"; healthy"; got != want {
		t.Fatalf("state changes: got %q, want %q", got, want)
	}

	// A success is passed to both limiters: k, backing off on the local
	// limiter since the outage, is forgotten there too.
	backingOff := func() bool {
		local.Allow(context.Background(), "k")
		ok, _, _ := local.Allow(context.Background(), "k")
		return !ok
	}
	if !backingOff() {
		t.Fatal("local limiter forgot k's failures early")
	}
	if err := f.Success(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	if backingOff() {
		t.Fatal("Success while healthy did not reach the local limiter")
	}
}

func TestFallbackCallerGivesUp(t *testing.T) {
	p := throttle.Policy{}
	primary := &flakyLimiter{inner: throttle.NewMemory(p, nil)}
	primary.set(nil, true)
	f := NewFallback(primary, throttle.NewMemory(p, nil), FallbackOptions{CallTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := f.Allow(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Allow with a cancelled context: got %v, want context.Canceled", err)
	}
	if degraded, _ := f.Degraded(); degraded {
		t.Fatal("a caller's cancelled context made the Fallback degraded")
	}
}

// closedAddr returns an address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestFallbackRedisRefused(t *testing.T) {
	c, err := NewClient("redis://" + closedAddr(t) + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := throttle.Policy{Burst: 3}
	var states stateLog
	f := NewFallback(NewLimiter(c, p, LimiterOptions{}), throttle.NewMemory(p, nil), FallbackOptions{OnStateChange: states.record})
	for i := range 3 {
		if !login(t, f, "account:alice") {
			t.Fatalf("attempt %d refused, want 3 allowed", i+1)
		}
	}
	if login(t, f, "account:alice") {
		t.Fatal("fourth failed login in a row allowed with Redis down: the local limiter should refuse it")
	}
	degraded, reason := f.Degraded()
	if !degraded || !errors.Is(reason, syscall.ECONNREFUSED) {
		t.Fatalf("Degraded: got %v, %v; want true, connection refused", degraded, reason)
	}
	if s := states.String(); !strings.HasPrefix(s, "degraded: ") || strings.Contains(s, "healthy") {
		t.Fatalf("state changes: got %q, want one change to degraded", s)
	}
}

func TestFallbackRedisHangsAndComesBack(t *testing.T) {
	direct := testClient(t)
	prefix := testPrefix(t, direct)
	px := newProxy(t, direct.Options().Addr)
	u, err := url.Parse(testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = px.Addr()
	viaProxy, err := NewClient(u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer viaProxy.Close()

	clk := newFakeClock()
	p := throttle.Policy{Burst: 3}
	opt := LimiterOptions{Prefix: prefix, Now: clk.Now}
	shared := NewLimiter(direct, p, opt) // another instance's view of Redis
	var states stateLog
	f := NewFallback(NewLimiter(viaProxy, p, opt), throttle.NewMemory(p, clk.Now),
		FallbackOptions{CallTimeout: 100 * time.Millisecond, RetryInterval: 2 * time.Second, Now: clk.Now, OnStateChange: states.record})

	// Healthy: failures are shared through Redis.
	login(t, f, "k")
	login(t, f, "k")
	if degraded, reason := f.Degraded(); degraded {
		t.Fatalf("degraded with Redis up: %v", reason)
	}
	if n, err := direct.Exists(context.Background(), shared.Key("k")).Result(); err != nil || n != 1 {
		t.Fatalf("k's state not in Redis: exists=%d err=%v", n, err)
	}

	// Redis stops answering: logins are throttled locally, with a fresh
	// count, and the Fallback says why.
	px.Pause()
	for i := range 3 {
		if !login(t, f, "k") {
			t.Fatalf("attempt %d on the local limiter refused, want 3 allowed", i+1)
		}
	}
	if login(t, f, "k") {
		t.Fatal("fourth failed login in a row allowed with Redis hanging")
	}
	degraded, reason := f.Degraded()
	var ne net.Error
	if !degraded || !(errors.Is(reason, context.DeadlineExceeded) || errors.As(reason, &ne) && ne.Timeout()) {
		t.Fatalf("Degraded: got %v, %v; want true, a timeout", degraded, reason)
	}
	if ok, _, err := shared.Allow(context.Background(), "k"); err != nil || !ok {
		t.Fatalf("Redis's view of k during the outage: ok=%v err=%v; want allowed (2 failures)", ok, err)
	}

	// Redis answers again: after RetryInterval the next call uses it, and
	// its count resumes where it was.
	px.Resume()
	clk.Advance(2 * time.Second)
	if !login(t, f, "k") {
		t.Fatal("third failure of k refused by Redis, which had two")
	}
	if degraded, reason := f.Degraded(); degraded {
		t.Fatalf("still degraded after Redis came back: %v", reason)
	}
	if ok, _, err := shared.Allow(context.Background(), "k"); err != nil || ok {
		t.Fatalf("Redis's view of k after 3 failures: ok=%v err=%v; want refused", ok, err)
	}
	if s := states.String(); !strings.HasPrefix(s, "degraded: ") || !strings.HasSuffix(s, "; healthy") || strings.Count(s, ";") != 1 {
		t.Fatalf("state changes: got %q, want degraded then healthy", s)
	}
}

func TestFallbackOneRetryAtATime(t *testing.T) {
	clk := newFakeClock()
	p := throttle.Policy{}
	primary := &flakyLimiter{inner: throttle.NewMemory(p, clk.Now)}
	primary.set(nil, true)
	f := NewFallback(primary, throttle.NewMemory(p, clk.Now), FallbackOptions{CallTimeout: 50 * time.Millisecond, Now: clk.Now})
	login(t, f, "k")
	clk.Advance(DefaultRetryInterval)
	calls := primary.Calls()

	// Many logins at once after RetryInterval: one of them tries the
	// hanging primary, the others do not wait for it.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, _, err := f.Allow(context.Background(), "k"+string(rune('a'+i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := primary.Calls() - calls; n != 1 {
		t.Fatalf("%d calls to the primary from 20 parallel logins after RetryInterval, want 1", n)
	}
	if degraded, _ := f.Degraded(); !degraded {
		t.Fatal("healthy after a retry that timed out")
	}
}
