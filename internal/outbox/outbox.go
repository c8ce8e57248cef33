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
