// Package throttle limits password guessing: a Limiter tracks failed
// attempts per key (an account, a client address) and tells the caller
// when a key must wait before it may try again.
//
// The model, shared by every implementation, is a token bucket of failures
// per key with growing back-off once the bucket is empty:
//
//   - each key has a bucket of Policy.Burst tokens; every failure takes
//     one, and one comes back every Policy.Refill;
//   - the failure that empties the bucket starts a back-off of
//     Policy.BaseDelay; from then on the key may make one attempt per
//     back-off period, each further failure doubling the period up to
//     Policy.MaxDelay, and the bucket does not refill;
//   - a success (Limiter.Success) forgets the key, and so does a quiet
//     period of Policy.IdleTTL without failures.
//
// Memory (in this package) keeps the state in the process; a Redis
// implementation shares it between instances.
package throttle

import (
	"context"
	"time"
)

// Limiter decides whether a key may make an attempt and learns the
// outcome. Implementations are safe for concurrent use. A caller makes one
// Allow call before each attempt and, once the attempt's outcome is
// known, one Failure or Success call; each call is meant to be one round
// trip to a shared store.
type Limiter interface {
	// Allow reports whether key may make an attempt now and, if not, how
	// long it must wait (always at least one second, rounded up to whole
	// seconds, for a Retry-After header). An allowed attempt made while
	// the key is backing off uses that back-off period's one attempt.
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)

	// Failure records a failed attempt of key.
	Failure(ctx context.Context, key string) error

	// Success records a successful attempt of key: the key's failures
	// and back-off are forgotten. Call it only for a key the success
	// vouches for (the account that proved its password), never for a
	// key shared with others (a client address), or one success would
	// wipe out everybody's failures.
	Success(ctx context.Context, key string) error
}

// Defaults for Policy.
const (
	DefaultBurst     = 5
	DefaultRefill    = time.Minute
	DefaultBaseDelay = time.Second
	DefaultMaxDelay  = 15 * time.Minute
	DefaultMaxKeys   = 100_000
)

// Policy is a Limiter's configuration. Zero fields take the defaults.
type Policy struct {
	// Burst is the number of failures a key may make before it backs off;
	// DefaultBurst (5) when zero.
	Burst int
	// Refill is how often one failure is forgiven while the key is not
	// backing off; DefaultRefill (one minute) when zero.
	Refill time.Duration
	// BaseDelay is the first back-off period; DefaultBaseDelay (one
	// second) when zero. Each further failure doubles it.
	BaseDelay time.Duration
	// MaxDelay caps the back-off period; DefaultMaxDelay (15 minutes)
	// when zero.
	MaxDelay time.Duration
	// MaxKeys bounds the number of keys an in-memory limiter tracks;
	// DefaultMaxKeys (100 000) when zero. When full, the key whose last
	// failure is oldest is forgotten first.
	MaxKeys int
}

func (p Policy) withDefaults() Policy {
	if p.Burst <= 0 {
		p.Burst = DefaultBurst
	}
	if p.Refill <= 0 {
		p.Refill = DefaultRefill
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	if p.MaxKeys <= 0 {
		p.MaxKeys = DefaultMaxKeys
	}
	return p
}

// IdleTTL is how long a key must go without failures to be forgotten:
// the time to refill an empty bucket plus the longest back-off. Sooner,
// a patient attacker would be forgiven before their back-off could grow.
func (p Policy) IdleTTL() time.Duration {
	p = p.withDefaults()
	return time.Duration(p.Burst)*p.Refill + p.MaxDelay
}

// delay returns the back-off period after the given number of failures
// made with an empty bucket (strikes >= 1).
func (p Policy) delay(strikes int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < strikes && d < p.MaxDelay; i++ {
		d *= 2
	}
	return min(d, p.MaxDelay)
}

// RetryAfter rounds a wait up to whole seconds, at least one, as the
// Retry-After header (RFC 9110 section 10.2.3) carries it.
func RetryAfter(d time.Duration) time.Duration {
	if d <= time.Second {
		return time.Second
	}
	return (d + time.Second - 1).Truncate(time.Second)
}
