// Package redis keeps the state that several auth server instances must
// share but need not keep durably in Redis (github.com/redis/go-redis/v9):
// the login throttle's counters. Limiter is a throttle.Limiter on Redis;
// Fallback puts a local limiter in its place while Redis is unreachable.
//
// docs/decisions/redis.md explains the choices: Lua scripts, key layout,
// expiry, whose clock, and what happens when Redis goes away.
package redis

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Timeouts NewClient sets when the URL does not.
const (
	DefaultDialTimeout = 250 * time.Millisecond
	DefaultIOTimeout   = 250 * time.Millisecond
)

// NewClient returns a client for the Redis server at rawURL, such as
// redis://user:password@host:6379/0 or rediss://… for TLS (the syntax of
// goredis.ParseURL, whose query parameters set further options). It
// does not connect.
//
// Unless the URL says otherwise, a client made for logins fails fast: it
// dials for at most DefaultDialTimeout, once; reads and writes time out
// after DefaultIOTimeout; a failed command is not retried; and the
// deadline of a call's context is always respected. The error for a
// malformed URL does not repeat it, since it may hold a password. A login should not wait on
// a Redis that has gone away: Fallback answers from memory instead.
func NewClient(rawURL string) (*goredis.Client, error) {
	opt, err := goredis.ParseURL(rawURL)
	if err != nil {
		// A *url.Error repeats the URL, password and all.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis: invalid URL: %w", err)
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = DefaultDialTimeout
	}
	if opt.DialerRetries == 0 {
		opt.DialerRetries = 1
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = DefaultIOTimeout
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = DefaultIOTimeout
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = -1
	}
	if opt.PoolTimeout == 0 {
		opt.PoolTimeout = DefaultIOTimeout
	}
	opt.ContextTimeoutEnabled = true
	return goredis.NewClient(opt), nil
}
