package dpop

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Replayer remembers proof ids for a Checker. *ReplayCache is the
// in-process one. Implementations are safe for concurrent use.
type Replayer interface {
	// Use records id as seen until expires and reports whether it was
	// new: false means it was recorded before and has not expired at
	// now, and the proof is refused as a replay.
	Use(id string, now, expires time.Time) bool
}

var _ Replayer = (*ReplayCache)(nil)

// DefaultReplayCapacity is the number of live proof ids a [ReplayCache]
// made with a capacity of 0 holds: 100,000, in about 3 MiB.
const DefaultReplayCapacity = 100_000

const (
	replayShards = 64 // a power of two
	replayWays   = 8  // slots per bucket: 64 bytes, one cache line
	replaySlots  = 4  // slots allocated per id of capacity
)

// ReplayCache remembers proof ids (jti) until the proof they came in can
// no longer be accepted, so that a proof is used once (RFC 9449 section
// 11.1). It holds a fixed number of entries in memory allocated up front:
// for each id, 32 bits of a keyed hash of it (the key is random per
// cache, so ids cannot be chosen to collide) and its expiry in whole
// seconds, in 8-way buckets of one cache line, two candidate buckets per
// id, spread over 64 locked shards. Recording an id does not allocate.
//
// When both buckets of an id are full of live ids, the one that expires
// first is dropped to make room, and [ReplayCache.Evictions] counts it:
// the cache stays bounded under a flood of proofs at the price of
// forgetting the oldest ids first. Size it for the peak rate of proofs
// times twice the proof window. Two different ids share a 32-bit hash
// with a chance of about one in 2^28 per check, and the second is then
// refused as a replay (the client retries with a new proof). A
// ReplayCache is safe for concurrent use; it remembers ids for one
// process only.
type ReplayCache struct {
	seed      maphash.Seed
	shards    [replayShards]replayShard
	mask      uint64 // buckets per shard - 1
	evictions atomic.Uint64
}

type replayShard struct {
	mu      sync.Mutex
	buckets [][replayWays]uint64
	_       [32]byte // keep shards' locks on separate cache lines
}

// A slot is tag<<32 | expiry: the high half of the id's hash (never 0)
// and the Unix second from which the entry is dead. 0 is an empty slot.
func slotExp(s uint64) uint32 { return uint32(s) }

// NewReplayCache returns a cache for capacity live ids
// (DefaultReplayCapacity when capacity <= 0). It allocates four 8-byte
// slots per id, so that buckets rarely fill.
func NewReplayCache(capacity int) *ReplayCache {
	if capacity <= 0 {
		capacity = DefaultReplayCapacity
	}
	perShard := (replaySlots*capacity + replayShards - 1) / replayShards
	buckets := 1
	for buckets*replayWays < perShard {
		buckets <<= 1
	}
	c := &ReplayCache{seed: maphash.MakeSeed(), mask: uint64(buckets - 1)}
	for i := range c.shards {
		c.shards[i].buckets = make([][replayWays]uint64, buckets)
	}
	return c
}

// Use records id as seen until expires (rounded up to the second) and
// reports whether it was new: false means a live entry for id already
// exists, and the proof is a replay. now decides which entries have
// expired.
func (c *ReplayCache) Use(id string, now, expires time.Time) bool {
	h := maphash.String(c.seed, id)
	tag := (h >> 32) | 1<<31 // never 0
	nowS := uint32(now.Unix())
	expS := uint32(expires.Unix())
	if expires.Nanosecond() != 0 {
		expS++
	}
	s := &c.shards[h&(replayShards-1)]
	s.mu.Lock()
	// Two buckets per id (two-choice hashing): an id is dropped only
	// when both of its buckets, 16 slots, hold live ids.
	i1, i2 := (h>>6)&c.mask, (h>>19)&c.mask
	if i2 == i1 {
		// Two distinct buckets: with one, 8 ids sharing it would be
		// enough to drop one, whatever room the rest of the cache has.
		i2 = (i1 + 1) & c.mask
	}
	b1, b2 := &s.buckets[i1], &s.buckets[i2]
	var victim *uint64
	for _, b := range [2]*[replayWays]uint64{b1, b2} {
		for i := range b {
			e := &b[i]
			exp := slotExp(*e)
			live := exp > nowS
			if live && *e>>32 == tag {
				s.mu.Unlock()
				return false
			}
			switch {
			case victim == nil:
				victim = e
			case !live: // empty (0) or expired: free
				if slotExp(*victim) > nowS {
					victim = e
				}
			case slotExp(*victim) > nowS && exp < slotExp(*victim):
				victim = e
			}
		}
	}
	evicted := slotExp(*victim) > nowS
	*victim = tag<<32 | uint64(expS)
	s.mu.Unlock()
	if evicted {
		c.evictions.Add(1)
	}
	return true
}

// Evictions returns how many live ids were dropped to make room since
// the cache was made. A growing count means the cache is too small for
// the rate of proofs: a proof whose id was dropped could be replayed.
func (c *ReplayCache) Evictions() uint64 { return c.evictions.Load() }
