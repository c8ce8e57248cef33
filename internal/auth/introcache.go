package auth

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
)

// Defaults of Config.IntrospectionCache and Config.ClientCacheFor.
const (
	// DefaultIntrospectionCacheFor is how long an introspection answer
	// or a service client's authentication is trusted at most, for a
	// change made by another process that is not announced on the
	// revocation feed (a client deleted or its secret rotated on
	// another instance, a user renamed): the feed's own changes, and
	// every change this process makes, end the cached answers at once.
	DefaultIntrospectionCacheFor = time.Second
)

// introShards is the number of independently locked parts of a cache.
const introShards = 16

// maxIntrospectedToken is the longest token the introspection cache
// keeps, as the verifier's cache (about 1 KiB per entry for a typical
// access token, at most about 5 KiB).
const maxIntrospectedToken = 4 << 10

// introEvictScan is how many entries an insertion into a full shard
// looks at for a useless one before it evicts the first it saw.
const introEvictScan = 8

// epochs counts the changes that can end a cached answer: every append
// to the revocation feed (a session, a user's sessions, everyone's, a
// token id, a key), every change to users and clients, whether made by
// this process (the notifying stores) or announced by another
// (RevocationsAppended), and every change of the signing keys this
// process reads. An answer cached before the count moved is never used
// again, so bumping it empties every cache at once (in O(1): the stale
// entries are evicted first as new ones come in).
type epochs struct{ n atomic.Uint64 }

func (e *epochs) now() uint64 { return e.n.Load() }
func (e *epochs) bump()       { e.n.Add(1) }

// introCache remembers the answers of Introspect for active access
// tokens, as the verifier's verification cache remembers verified
// tokens: keyed by the whole token (only a byte-identical token finds
// an entry), bounded in entries, sharded. The dozen lines of sharding
// and eviction it has in common with that cache are not shared: the
// verifier is a public library that imports nothing from internal/, so
// sharing them would mean exporting a cache from it, and the two evict
// differently (this one also drops the entries a change made stale). An entry is used only while
// the token and its session have not expired, no more than maxAge after
// it was filled, while no change has happened since its lookup began
// (epochs), and while the key that signed the token is still one the
// server verifies with (checked on every hit). It is safe for
// concurrent use.
type introCache struct {
	shards [introShards]introShard
	epochs *epochs
	maxAge time.Duration
}

type introShard struct {
	mu  sync.RWMutex
	m   map[string]introEntry
	max int
	_   [40]byte // keep shards on separate cache lines
}

type introEntry struct {
	in     *Introspection // shared, read-only
	header jose.Header    // alg and kid of the token, to find its key again
	until  int64          // unix nanoseconds: the earliest of exp, the session's end, fill + maxAge
	epoch  uint64
}

// newIntroCache returns a cache of at most size answers (an operator
// setting, --introspection-cache): the shards share them out exactly, so
// that with fewer than introShards some shards keep none.
func newIntroCache(size int, maxAge time.Duration, e *epochs) *introCache {
	c := &introCache{epochs: e, maxAge: maxAge}
	for i := range c.shards {
		c.shards[i].m = make(map[string]introEntry)
		c.shards[i].max = size / introShards
		if i < size%introShards {
			c.shards[i].max++
		}
	}
	return c
}

// shard picks a shard from a character of the token's signature, random
// for the tokens the cache holds (the server signed them); the last
// character carries fewer bits, so it is the one before.
func (c *introCache) shard(token string) *introShard {
	if len(token) < 2 {
		return &c.shards[0]
	}
	return &c.shards[token[len(token)-2]%introShards]
}

// get returns the cached answer for token, if one is still usable at
// now, with the header of the token (its key must still verify).
func (c *introCache) get(token string, now time.Time) (*Introspection, *jose.Header, bool) {
	s := c.shard(token)
	s.mu.RLock()
	e, ok := s.m[token]
	s.mu.RUnlock()
	if !ok || e.epoch != c.epochs.now() || now.UnixNano() >= e.until {
		return nil, nil, false
	}
	return e.in, &e.header, true
}

// put remembers an answer whose lookup began at epoch, until the given
// time (or maxAge from now, if sooner). An answer whose lookup a change
// overtook (the epoch moved) is not kept.
func (c *introCache) put(token string, in *Introspection, h jose.Header, until, now time.Time, epoch uint64) {
	s := c.shard(token)
	if len(token) > maxIntrospectedToken || s.max == 0 {
		return
	}
	if limit := now.Add(c.maxAge); limit.Before(until) {
		until = limit
	}
	nowNano := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked under the lock: a bump after this still ends the entry,
	// whose epoch is then old.
	if epoch != c.epochs.now() {
		return
	}
	if _, ok := s.m[token]; !ok && len(s.m) >= s.max {
		var first string
		seen, evicted := 0, false
		for k, e := range s.m {
			if seen == 0 {
				first = k
			}
			if e.until <= nowNano || e.epoch != epoch {
				delete(s.m, k)
				evicted = true
			}
			if seen++; seen == introEvictScan {
				break
			}
		}
		if !evicted {
			delete(s.m, first)
		}
	}
	s.m[token] = introEntry{in: in, header: h, until: until.UnixNano(), epoch: epoch}
}

// len returns the number of entries, usable or not.
func (c *introCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// maxCachedClients bounds the client cache: a cache this full is emptied
// before the next entry goes in (service clients are few; unknown ids,
// which are cached too, are what could fill it).
const maxCachedClients = 4096

// clientCache remembers the service clients that authentication looked
// up, unknown ids included (as nil), for at most maxAge and only while no
// change has happened since the lookup began (epochs). The secret is
// still hashed and compared on every authentication; only the store's
// read is saved. It is safe for concurrent use.
type clientCache struct {
	mu     sync.RWMutex
	m      map[string]clientEntry
	epochs *epochs
	maxAge time.Duration
}

type clientEntry struct {
	c     *keycard.Client // nil: no such client; shared, read-only
	until int64
	epoch uint64
}

func newClientCache(maxAge time.Duration, e *epochs) *clientCache {
	return &clientCache{m: make(map[string]clientEntry), epochs: e, maxAge: maxAge}
}

func (c *clientCache) get(id string, now time.Time) (*keycard.Client, bool) {
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if !ok || e.epoch != c.epochs.now() || now.UnixNano() >= e.until {
		return nil, false
	}
	return e.c, true
}

func (c *clientCache) put(id string, cl *keycard.Client, now time.Time, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epochs.now() {
		return
	}
	if _, ok := c.m[id]; !ok && len(c.m) >= maxCachedClients {
		clear(c.m)
	}
	c.m[id] = clientEntry{c: cl, until: now.Add(c.maxAge).UnixNano(), epoch: epoch}
}
