// Package outbox is what the auth server's two outbox workers share —
// back-channel logout (internal/backchannel) and webhooks
// (internal/webhook): the loop that claims due deliveries from the store
// with a lease and sends them with bounded concurrency, the POST whose
// only success is a 2xx answer, and the back-off between attempts. What
// each delivers, and how it records an outcome, stays in its package.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Loop is how Run claims and sends deliveries.
type Loop[D any] struct {
	// Claim claims up to n deliveries due at the given time, each leased
	// for lease.
	Claim func(ctx context.Context, at time.Time, lease time.Duration, n int) ([]D, error)
	// Deliver makes one attempt at a claimed delivery and records its
	// outcome.
	Deliver func(ctx context.Context, d D)
	// Concurrency bounds the attempts under way; PollInterval is how
	// often Run looks for due deliveries; Lease is Claim's lease.
	Concurrency  int
	PollInterval time.Duration
	Lease        time.Duration
	// Wake, when not nil, returns a channel closed when deliveries may
	// have become due (it is asked before each claim).
	Wake func() <-chan struct{}
	Now  func() time.Time
	// Logger hears of failed claims, with Name ("webhooks") first.
	Logger *slog.Logger
	Name   string
}

// Run claims and delivers until ctx ends, then waits for the attempts
// under way to end (ctx's end cancels them; their deliveries are claimed
// again once their lease runs out). It claims again at once when a claim
// filled every free slot, and otherwise when a slot frees, Wake fires or
// PollInterval passes.
func Run[D any](ctx context.Context, l Loop[D]) {
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, l.Concurrency)
		freed = make(chan struct{}, 1)
	)
	defer wg.Wait()
	tick := time.NewTicker(l.PollInterval)
	defer tick.Stop()
	for {
		var wake <-chan struct{}
		if l.Wake != nil {
			wake = l.Wake() // before the claim: what becomes due after it wakes us
		}
		if free := cap(slots) - len(slots); free > 0 {
			ds, err := l.Claim(ctx, l.Now(), l.Lease, free)
			if err != nil && ctx.Err() == nil {
				l.Logger.Error(l.Name+": claiming deliveries", "err", err)
			}
			for _, d := range ds {
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					l.Deliver(ctx, d)
					<-slots
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
			}
			if len(ds) == free {
				continue // more may be due: claim again once a slot is free
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		case <-freed:
		}
	}
}

// MaxErrorLen bounds the error Send returns, which is kept with a
// delivery.
const MaxErrorLen = 300

// Send sends req with client and returns an error unless the answer is
// 2xx. The answer's body is read (up to 64 KiB) and dropped, so that the
// connection can be reused.
func Send(client *http.Client, req *http.Request) error {
	resp, err := client.Do(req)
	if err != nil {
		msg := err.Error()
		if len(msg) > MaxErrorLen {
			msg = msg[:MaxErrorLen]
		}
		return errors.New(msg)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// NoRedirects is an http.Client's CheckRedirect that follows none: a 3xx
// answer is then a failure, and a body goes to the registered URL and
// nowhere else.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Backoff returns the delay after the failed attempt number attempt
// (from 1): base doubled attempt-1 times, at most limit, then scaled
// into [half, whole] by frac in [0, 1) (the jitter).
func Backoff(attempt int, base, limit time.Duration, frac float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := d / 2
	return half + time.Duration(frac*float64(d-half))
}

// Settings are the tunables both workers have. The zero value of each
// field means its default: the worker's for the first six (given to
// WithDefaults), the rest as each field says.
type Settings struct {
	// MaxAttempts is how many times a delivery is tried before it is
	// given up.
	MaxAttempts int
	// Backoff is the delay before the first retry, doubled for each
	// retry after it up to MaxBackoff; each delay is then drawn at random
	// between its half and itself (jitter), so that receivers coming back
	// from an outage are not all retried at once.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one request, from connecting to reading the answer.
	Timeout time.Duration
	// Lease is how long a claimed delivery is kept from other workers
	// (another instance, or this one after a crash); twice Timeout plus
	// ten seconds when zero. It must exceed Timeout.
	Lease time.Duration
	// Concurrency is how many deliveries are sent at once.
	Concurrency int
	// PollInterval is how often the worker looks for due deliveries
	// when nothing wakes it.
	PollInterval time.Duration
	// Client sends the requests; nil means one with Timeout that follows
	// no redirect (NoRedirects: a 3xx answer is a failure, and a body
	// goes to the registered URL and nowhere else).
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger hears of deliveries that fail; nil discards. It never hears
	// a secret, a token or a body.
	Logger *slog.Logger
}

// WithDefaults returns s with every zero field set: the first six from
// d, the others as Settings says. It refuses a negative field, or a
// lease that does not exceed the timeout; name ("webhook") begins the
// error.
func (s Settings) WithDefaults(name string, d Settings) (Settings, error) {
	if s.MaxAttempts < 0 || s.Backoff < 0 || s.MaxBackoff < 0 || s.Timeout < 0 || s.Lease < 0 || s.Concurrency < 0 || s.PollInterval < 0 {
		return s, errors.New(name + ": options must not be negative")
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = d.MaxAttempts
	}
	if s.Backoff == 0 {
		s.Backoff = d.Backoff
	}
	if s.MaxBackoff == 0 {
		s.MaxBackoff = max(d.MaxBackoff, s.Backoff)
	}
	if s.Timeout == 0 {
		s.Timeout = d.Timeout
	}
	if s.Lease == 0 {
		s.Lease = 2*s.Timeout + 10*time.Second
	}
	if s.Lease <= s.Timeout {
		return s, fmt.Errorf("%s: the lease (%v) must exceed the request timeout (%v)", name, s.Lease, s.Timeout)
	}
	if s.Concurrency == 0 {
		s.Concurrency = d.Concurrency
	}
	if s.PollInterval == 0 {
		s.PollInterval = d.PollInterval
	}
	if s.Client == nil {
		s.Client = &http.Client{Timeout: s.Timeout, CheckRedirect: NoRedirects}
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}
