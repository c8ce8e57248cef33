package redis

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/keycard-auth/keycard/internal/throttle"
)

// Defaults for FallbackOptions.
const (
	DefaultCallTimeout   = 200 * time.Millisecond
	DefaultRetryInterval = 2 * time.Second
)

// FallbackOptions configure a Fallback. The zero value is usable.
type FallbackOptions struct {
	// CallTimeout bounds each call to the primary limiter;
	// DefaultCallTimeout (200ms) when zero. It is how long a login can
	// wait on a Redis that hangs before it is throttled locally.
	CallTimeout time.Duration
	// RetryInterval is how long a degraded Fallback uses only the local
	// limiter before it tries the primary again, with one call;
	// DefaultRetryInterval (2s) when zero.
	RetryInterval time.Duration
	// Now is the clock for RetryInterval; nil means time.Now.
	Now func() time.Time
	// Logger hears of each change of state, at level Warn when the
	// Fallback degrades and Info when it recovers; nil discards.
	Logger *slog.Logger
	// OnStateChange, when not nil, is called on each change of state:
	// degraded true with the error that caused it, or false and nil on
	// recovery. It is called with the Fallback's lock held, in the order
	// of the changes, so it must be quick (set a gauge) and must not call
	// the Fallback's methods.
	OnStateChange func(degraded bool, reason error)
}

// Fallback is a throttle.Limiter that uses a primary limiter (a Limiter
// on Redis) and, while the primary fails, a local one (a
// throttle.Memory), so that the auth server keeps throttling logins,
// per instance, when Redis is unreachable or hangs.
//
// It starts healthy. Each call goes to the primary with a deadline of
// CallTimeout; the first call that fails (other than by its caller's
// context ending) makes the Fallback degraded and is answered by the
// local limiter instead. While degraded, calls go to the local limiter
// only, but once every RetryInterval one call tries the primary again:
// if it succeeds the Fallback is healthy again, else it is answered
// locally and the wait starts over. So a dead Redis costs one login per
// RetryInterval at most CallTimeout, and sees one command per interval
// from each instance.
//
// The two limiters' states are separate: failures counted locally during
// an outage are not copied to Redis (nor the reverse), so an outage
// gives a key a fresh count on each instance. A success is passed to
// both, so that a key the primary has forgiven is not held by stale
// local state in the next outage.
//
// Degraded reports the state, for readiness detail and metrics. Fallback
// is safe for concurrent use.
type Fallback struct {
	primary, local throttle.Limiter
	timeout        time.Duration
	interval       time.Duration
	now            func() time.Time
	log            *slog.Logger
	onChange       func(bool, error)

	mu      sync.Mutex
	reason  error     // why the primary is not used; nil: healthy
	retryAt time.Time // while degraded, when the primary may be tried again
	probing bool      // a call is trying the primary while degraded
}

var _ throttle.Limiter = (*Fallback)(nil)

// NewFallback returns a Fallback that uses primary while it works and
// local while it does not. local should be a limiter that cannot fail,
// such as a throttle.Memory with the same policy as primary.
func NewFallback(primary, local throttle.Limiter, opt FallbackOptions) *Fallback {
	f := &Fallback{primary: primary, local: local, timeout: opt.CallTimeout, interval: opt.RetryInterval,
		now: opt.Now, log: opt.Logger, onChange: opt.OnStateChange}
	if f.timeout <= 0 {
		f.timeout = DefaultCallTimeout
	}
	if f.interval <= 0 {
		f.interval = DefaultRetryInterval
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
}

// Degraded reports whether the Fallback is using the local limiter
// because the primary failed, and if so the primary's last error. The
// state changes only on calls: after the primary recovers, Degraded
// keeps reporting true until a call, at most RetryInterval later, has
// used it again.
func (f *Fallback) Degraded() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reason != nil, f.reason
}

// Allow implements throttle.Limiter.
func (f *Fallback) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	err = f.do(ctx, func(ctx context.Context, l throttle.Limiter) error {
		ok, retryAfter, err = l.Allow(ctx, key)
		return err
	})
	return ok, retryAfter, err
}

// Failure implements throttle.Limiter.
func (f *Fallback) Failure(ctx context.Context, key string) error {
	return f.do(ctx, func(ctx context.Context, l throttle.Limiter) error {
		return l.Failure(ctx, key)
	})
}

// Success implements throttle.Limiter. The local limiter forgets the key
// too, whichever limiter is in use.
func (f *Fallback) Success(ctx context.Context, key string) error {
	if err := f.local.Success(ctx, key); err != nil {
		return err
	}
	// While degraded this tells the local limiter a second time, which
	// changes nothing.
	return f.do(ctx, func(ctx context.Context, l throttle.Limiter) error {
		return l.Success(ctx, key)
	})
}

// do makes call with the primary limiter if the state allows, else, or
// if the primary fails, with the local one.
func (f *Fallback) do(ctx context.Context, call func(context.Context, throttle.Limiter) error) error {
	usePrimary, probe := f.choose()
	if !usePrimary {
		return call(ctx, f.local)
	}
	pctx, cancel := context.WithTimeout(ctx, f.timeout)
	err := call(pctx, f.primary)
	cancel()
	switch {
	case err == nil:
		if probe {
			f.recovered()
		}
		return nil
	case ctx.Err() != nil:
		// The caller gave up, which says nothing about the primary.
		if probe {
			f.mu.Lock()
			f.probing = false
			f.mu.Unlock()
		}
		return err
	}
	f.failed(err)
	return call(ctx, f.local)
}

// choose reports whether a call should use the primary and, if so,
// whether it is the one call that tries a primary that failed.
func (f *Fallback) choose() (usePrimary, probe bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reason == nil {
		return true, false
	}
	if f.probing || f.now().Before(f.retryAt) {
		return false, false
	}
	f.probing = true
	return true, true
}

// failed records a failure of the primary.
func (f *Fallback) failed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	was := f.reason != nil
	f.reason = err
	f.retryAt = f.now().Add(f.interval)
	f.probing = false
	if was {
		return
	}
	f.log.Warn("login throttle: primary limiter failed; throttling locally until it recovers",
		"err", err, "retry_interval", f.interval)
	if f.onChange != nil {
		f.onChange(true, err)
	}
}

// recovered records a success of the probe call.
func (f *Fallback) recovered() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reason = nil
	f.probing = false
	f.log.Info("login throttle: primary limiter recovered")
	if f.onChange != nil {
		f.onChange(false, nil)
	}
}
