package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/keycard-auth/keycard/dpop"
)

// DefaultReplayPrefix is the prefix of a ReplayCache's Redis keys when
// ReplayOptions.Prefix is empty.
const DefaultReplayPrefix = "keycard:dpop:"

// DefaultReplayTimeout bounds one call to Redis when ReplayOptions.Timeout
// is zero.
const DefaultReplayTimeout = 100 * time.Millisecond

// SetNXer is what a ReplayCache needs of a Redis client: SET NX with an
// expiry. *goredis.Client, *goredis.ClusterClient, *goredis.Ring and
// goredis.UniversalClient implement it.
type SetNXer interface {
	SetNX(ctx context.Context, key string, value any, expiration time.Duration) *goredis.BoolCmd
}

// ReplayOptions configure a ReplayCache. The zero value is usable.
type ReplayOptions struct {
	// Prefix starts every Redis key; DefaultReplayPrefix when empty.
	Prefix string
	// Timeout bounds each call to Redis; DefaultReplayTimeout when zero.
	Timeout time.Duration
	// Local answers while Redis fails; a dpop.ReplayCache of the default
	// capacity when nil.
	Local *dpop.ReplayCache
	// Logger hears of Redis failures (once per outage); nil discards.
	Logger *slog.Logger
}

// ReplayCache is a dpop.Replayer shared by every process on one Redis (the
// instances of a gateway, of a service): a DPoP proof accepted by one is a
// replay to all the others within its window (RFC 9449 section 11.1).
// Each id is one SET NX with the proof's remaining lifetime as expiry, so
// Redis forgets it when the proof could no longer be accepted anyway. A
// key is the prefix and 32 hex digits of the SHA-256 of the id: bounded,
// whatever a client puts in its jti.
//
// When Redis fails (down, slower than Timeout), the id is checked and
// recorded in Local instead, which protects this instance alone; Degraded
// says so. A ReplayCache is safe for concurrent use.
type ReplayCache struct {
	c        SetNXer
	prefix   string
	timeout  time.Duration
	local    *dpop.ReplayCache
	log      *slog.Logger
	degraded atomic.Bool
}

var _ dpop.Replayer = (*ReplayCache)(nil)

// NewReplayCache returns a ReplayCache on c.
func NewReplayCache(c SetNXer, opt ReplayOptions) *ReplayCache {
	r := &ReplayCache{c: c, prefix: opt.Prefix, timeout: opt.Timeout, local: opt.Local, log: opt.Logger}
	if r.prefix == "" {
		r.prefix = DefaultReplayPrefix
	}
	if r.timeout <= 0 {
		r.timeout = DefaultReplayTimeout
	}
	if r.local == nil {
		r.local = dpop.NewReplayCache(0)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// Key returns the Redis key of a proof id.
func (r *ReplayCache) Key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return r.prefix + hex.EncodeToString(sum[:16])
}

// Use implements dpop.Replayer.
func (r *ReplayCache) Use(id string, now, expires time.Time) bool {
	ttl := expires.Sub(now)
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	isNew, err := r.c.SetNX(ctx, r.Key(id), 1, ttl).Result()
	if err != nil {
		if !r.degraded.Swap(true) {
			r.log.Warn("DPoP replay cache: Redis failed; checking proof ids in this instance alone", "err", err)
		}
		return r.local.Use(id, now, expires)
	}
	if r.degraded.Swap(false) {
		r.log.Info("DPoP replay cache: Redis is back")
	}
	return isNew
}

// Degraded reports whether the last call fell back to the local cache.
func (r *ReplayCache) Degraded() bool { return r.degraded.Load() }
