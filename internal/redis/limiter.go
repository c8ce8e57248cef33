package redis

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/keycard-auth/keycard/internal/throttle"
)

// DefaultPrefix is the prefix of a Limiter's Redis keys when
// LimiterOptions.Prefix is empty.
const DefaultPrefix = "keycard:throttle:"

// Client is what a Limiter needs of a Redis client: scripts and DEL.
// *goredis.Client, *goredis.ClusterClient, *goredis.Ring and
// goredis.UniversalClient implement it.
type Client interface {
	goredis.Scripter
	Del(ctx context.Context, keys ...string) *goredis.IntCmd
}

//go:embed throttle.lua
var throttleLua string

// throttleScript is run with EVALSHA, falling back to EVAL (which loads
// it) when the server does not know it yet. A Script is safe for
// concurrent use and holds no connection, so one serves every client.
var throttleScript = goredis.NewScript(throttleLua)

// LimiterOptions configure a Limiter. The zero value is usable.
type LimiterOptions struct {
	// Prefix starts every Redis key of the Limiter; DefaultPrefix when
	// empty. Limiters with different policies must use different
	// prefixes (or never share a key), since the state in Redis does not
	// record the policy it was made under.
	Prefix string
	// Now is the clock; nil means time.Now. Every instance sharing the
	// keys should use a synchronised clock: a back-off ends at a time
	// written by one instance and read by others, so instances disagree
	// by their clock skew.
	Now func() time.Time
}

// Limiter is a throttle.Limiter whose state lives in Redis, shared by
// every auth server instance that uses the same Redis and prefix. It
// follows throttle.Memory's algorithm exactly, with times kept to the
// microsecond; Policy.MaxKeys does not apply, as keys expire on their own
// after Policy.IdleTTL.
//
// Each call is one round trip: Allow and Failure run a Lua script that
// reads, updates and sets the expiry of one hash atomically, so
// concurrent attempts from any number of instances are counted exactly;
// Success is a DEL. A key is stored as Prefix followed by a hash of the
// key (32 hex digits), so that keys are bounded in length however long
// the caller's key and Redis holds no usernames or addresses in clear.
//
// Calls fail when Redis does; Limiter does not retry or fall back (see
// Fallback). It is safe for concurrent use.
type Limiter struct {
	c      Client
	p      throttle.Policy
	prefix string
	now    func() time.Time
	args   [5]any // ARGV[3:] of the script: the policy
}

var _ throttle.Limiter = (*Limiter)(nil)

// NewLimiter returns a Limiter with policy p (zero fields take the
// defaults, as for throttle.NewMemory) storing its state through c.
func NewLimiter(c Client, p throttle.Policy, opt LimiterOptions) *Limiter {
	// NewMemory is where the throttle package applies its defaults.
	p = throttle.NewMemory(p, nil).Policy()
	l := &Limiter{c: c, p: p, prefix: opt.Prefix, now: opt.Now}
	if l.prefix == "" {
		l.prefix = DefaultPrefix
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.args = [5]any{p.Burst, micros(p.Refill), micros(p.BaseDelay), micros(p.MaxDelay), micros(p.IdleTTL())}
	return l
}

// micros returns d in whole microseconds, at least one.
func micros(d time.Duration) int64 { return max(d.Microseconds(), 1) }

// Policy returns the effective policy.
func (l *Limiter) Policy() throttle.Policy { return l.p }

// Key returns the Redis key holding the state of key.
func (l *Limiter) Key(key string) string {
	sum := sha256.Sum256([]byte(key))
	return l.prefix + hex.EncodeToString(sum[:16])
}

// Allow implements throttle.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	r, err := l.run(ctx, "allow", key).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("redis: login throttle: %w", err)
	}
	if len(r) != 2 {
		return false, 0, fmt.Errorf("redis: login throttle: script returned %d values, want 2", len(r))
	}
	if r[0] == 1 {
		return true, 0, nil
	}
	return false, throttle.RetryAfter(time.Duration(r[1]) * time.Microsecond), nil
}

// Failure implements throttle.Limiter.
func (l *Limiter) Failure(ctx context.Context, key string) error {
	if err := l.run(ctx, "failure", key).Err(); err != nil {
		return fmt.Errorf("redis: login throttle: %w", err)
	}
	return nil
}

// Success implements throttle.Limiter.
func (l *Limiter) Success(ctx context.Context, key string) error {
	if err := l.c.Del(ctx, l.Key(key)).Err(); err != nil {
		return fmt.Errorf("redis: login throttle: %w", err)
	}
	return nil
}

func (l *Limiter) run(ctx context.Context, op, key string) *goredis.Cmd {
	args := make([]any, 0, 2+len(l.args))
	args = append(args, op, l.now().UnixMicro())
	args = append(args, l.args[:]...)
	return throttleScript.Run(ctx, l.c, []string{l.Key(key)}, args...)
}
