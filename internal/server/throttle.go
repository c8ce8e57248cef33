package server

import (
	"fmt"
	"log/slog"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/redis"
	"github.com/keycard-auth/keycard/internal/throttle"
	goredis "github.com/redis/go-redis/v9"
)

// Defaults of the login throttles. An account gets throttle's default
// burst; an address, which many users may share behind one NAT, gets more.
const (
	DefaultLoginAttempts        = throttle.DefaultBurst
	DefaultLoginAddressAttempts = 20
)

// sharedThrottles are the login throttles kept in Redis (--redis), each
// behind a Fallback to per-instance limits.
type sharedThrottles struct {
	client    *goredis.Client
	prefix    string
	fallbacks []*redis.Fallback
	kinds     []string
}

// newSharedThrottles connects to the Redis at url (lazily: a Redis that
// is down does not stop the server from starting).
func newSharedThrottles(url, prefix string) (*sharedThrottles, error) {
	c, err := redis.NewClient(url)
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	return &sharedThrottles{client: c, prefix: prefix}, nil
}

// limiter returns the throttle of one kind ("account", "address") with
// policy p: in Redis, falling back to memory while Redis is unreachable.
func (s *sharedThrottles) limiter(kind string, p throttle.Policy, log *slog.Logger) throttle.Limiter {
	local := throttle.NewMemory(p, nil)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fb := redis.NewFallback(
		redis.NewLimiter(s.client, local.Policy(), redis.LimiterOptions{Prefix: s.prefix + "throttle:" + kind + ":"}),
		local, redis.FallbackOptions{Logger: log.With("throttle", kind)})
	s.fallbacks = append(s.fallbacks, fb)
	s.kinds = append(s.kinds, kind)
	return fb
}

// Degraded lists the throttles running on per-instance limits, for the
// public /readyz. The Redis error (which names internal addresses) is
// only in the log.
func (s *sharedThrottles) Degraded() []string {
	var out []string
	for i, fb := range s.fallbacks {
		if d, _ := fb.Degraded(); d {
			out = append(out, fmt.Sprintf("login throttle (%s): per-instance limits while Redis is unreachable", s.kinds[i]))
		}
	}
	return out
}

// degradedCount is the number of throttles on per-instance limits.
func (s *sharedThrottles) degradedCount() float64 {
	n := 0.0
	for _, fb := range s.fallbacks {
		if d, _ := fb.Degraded(); d {
			n++
		}
	}
	return n
}

func (s *sharedThrottles) Close() error { return s.client.Close() }

// loginLimits returns the login throttles c asks for: LoginAttempts
// failures per account and LoginAddressAttempts per client address before
// back-off (0 turns one off), one failure forgiven every LoginRefill,
// back-off doubling from LoginBackoff up to LoginLockoutMax. They are in
// memory, per instance, unless shared is not nil: then in Redis, shared by
// every instance. Config.Check has checked the numbers.
func (c *Config) loginLimits(shared *sharedThrottles, log *slog.Logger) auth.LoginLimits {
	p := throttle.Policy{Refill: c.LoginRefill, BaseDelay: c.LoginBackoff, MaxDelay: c.LoginLockoutMax}
	var l auth.LoginLimits
	limiter := func(kind string, p throttle.Policy) throttle.Limiter {
		if shared != nil {
			return shared.limiter(kind, p, log)
		}
		return throttle.NewMemory(p, nil)
	}
	if c.LoginAttempts > 0 {
		p.Burst = c.LoginAttempts
		l.Account = limiter("account", p)
	}
	if c.LoginAddressAttempts > 0 {
		p.Burst = c.LoginAddressAttempts
		l.Address = limiter("address", p)
	}
	return l
}
