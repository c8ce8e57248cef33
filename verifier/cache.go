package verifier

import (
	"sync"
	"time"
)

// cacheShards is the number of independently locked parts of the cache.
const cacheShards = 16

// maxCachedToken is the longest token the cache keeps: longer ones are
// verified every time, so that CacheSize bounds memory (about 1 KiB per
// entry for a typical access token, at most about 5 KiB).
const maxCachedToken = 4 << 10

// evictScan is how many entries an insertion into a full shard looks at
// for an expired one before it evicts the first it saw.
const evictScan = 8

// cache remembers verified tokens until their expiry, so that a token
// presented again skips the signature check and the parsing of its
// claims. Keys are whole tokens: only a byte-identical token finds an
// entry, and only tokens that passed verification are put in. It is
// bounded in entries; a full shard evicts an expired entry if it finds
// one quickly, else an arbitrary one (Go's map iteration order is
// random). It is safe for concurrent use.
type cache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu  sync.RWMutex
	m   map[string]cacheEntry
	max int
	_   [40]byte // keep shards on separate cache lines
}

type cacheEntry struct {
	claims *Claims
	until  int64 // unix nanoseconds after which the entry is useless
}

func newCache(size int) *cache {
	c := new(cache)
	per := max(size/cacheShards, 1)
	for i := range c.shards {
		c.shards[i].m = make(map[string]cacheEntry)
		c.shards[i].max = per
	}
	return c
}

// shard picks the token's shard from a character of its signature, which
// is random for the tokens the cache holds (those the issuer signed). The
// last character carries fewer bits, so it is the one before.
func (c *cache) shard(token string) *cacheShard {
	if len(token) < 2 {
		return &c.shards[0]
	}
	return &c.shards[token[len(token)-2]%cacheShards]
}

func (c *cache) get(token string) (*Claims, bool) {
	s := c.shard(token)
	s.mu.RLock()
	e, ok := s.m[token]
	s.mu.RUnlock()
	return e.claims, ok
}

// put remembers claims for token until the given time; now is the
// verifier's clock, used to find expired entries to evict.
func (c *cache) put(token string, claims *Claims, until, now time.Time) {
	if len(token) > maxCachedToken {
		return
	}
	s := c.shard(token)
	nowNano := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[token]; !ok && len(s.m) >= s.max {
		var first string
		seen, evicted := 0, false
		for k, e := range s.m {
			if seen == 0 {
				first = k
			}
			if e.until < nowNano {
				delete(s.m, k)
				evicted = true
			}
			if seen++; seen == evictScan {
				break
			}
		}
		if !evicted {
			delete(s.m, first)
		}
	}
	s.m[token] = cacheEntry{claims: claims, until: until.UnixNano()}
}

func (c *cache) remove(token string) {
	s := c.shard(token)
	s.mu.Lock()
	delete(s.m, token)
	s.mu.Unlock()
}

// len returns the number of entries.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
