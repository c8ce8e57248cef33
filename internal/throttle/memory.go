package throttle

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Memory is a Limiter that keeps its state in the process: right for one
// auth server instance, not shared between several. It tracks at most
// Policy.MaxKeys keys: a key is created by its first failure and forgotten
// after Policy.IdleTTL without failures, on Success, or, when the limit is
// reached, oldest failure first. It is safe for concurrent use; every
// call is O(1) amortised.
//
// Attempts that pass Allow at the same moment are not serialised, so a
// client running many attempts in parallel can make more than Burst
// failures before the key backs off; each of those extra failures doubles
// the back-off, so the excess is paid back at once.
type Memory struct {
	p   Policy
	now func() time.Time

	mu   sync.Mutex
	keys map[string]*list.Element // of *entry
	lru  *list.List               // of *entry, least recently failed first
}

var _ Limiter = (*Memory)(nil)

// entry is the state of one key.
type entry struct {
	key      string
	tokens   float64   // failures left before back-off
	refilled time.Time // when tokens was last brought up to date
	strikes  int       // failures made with an empty bucket; 0: not backing off
	until    time.Time // no attempt before this time
	last     time.Time // last failure, or the last attempt while backing off
}

// NewMemory returns an in-memory Limiter with policy p (zero fields take
// the defaults). now is the clock; nil means time.Now.
func NewMemory(p Policy, now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{p: p.withDefaults(), now: now, keys: map[string]*list.Element{}, lru: list.New()}
}

// Policy returns the effective policy.
func (m *Memory) Policy() Policy { return m.p }

// Len returns the number of keys tracked.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

// Allow implements Limiter. It never fails.
func (m *Memory) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	el := m.lookup(key, now)
	if el == nil {
		return true, 0, nil
	}
	e := el.Value.(*entry)
	if e.strikes == 0 {
		return true, 0, nil
	}
	if now.Before(e.until) {
		return false, RetryAfter(e.until.Sub(now)), nil
	}
	// This attempt is the one the back-off period allows; the next one
	// waits a period again even if this one's outcome never arrives.
	e.until = now.Add(m.p.delay(e.strikes))
	m.touch(el, now)
	return true, 0, nil
}

// Failure implements Limiter. It never fails.
func (m *Memory) Failure(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	el := m.lookup(key, now)
	if el == nil {
		el = m.insert(&entry{key: key, tokens: float64(m.p.Burst), refilled: now})
	}
	e := el.Value.(*entry)
	if e.strikes == 0 {
		if d := now.Sub(e.refilled); d > 0 {
			e.tokens = min(float64(m.p.Burst), e.tokens+float64(d)/float64(m.p.Refill))
		}
		e.refilled = now
		e.tokens--
		if e.tokens < 1 {
			e.strikes = 1
			e.until = now.Add(m.p.delay(1))
		}
	} else {
		e.strikes++
		if u := now.Add(m.p.delay(e.strikes)); u.After(e.until) {
			e.until = u
		}
	}
	m.touch(el, now)
	return nil
}

// Success implements Limiter. It never fails.
func (m *Memory) Success(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.keys[key]; ok {
		m.remove(el)
	}
	return nil
}

// lookup returns key's element, or nil if the key is unknown or idle (an
// idle one is removed).
func (m *Memory) lookup(key string, now time.Time) *list.Element {
	el, ok := m.keys[key]
	if !ok {
		return nil
	}
	if m.idle(el.Value.(*entry), now) {
		m.remove(el)
		return nil
	}
	return el
}

func (m *Memory) idle(e *entry, now time.Time) bool {
	return now.Sub(e.last) >= m.p.IdleTTL() && !now.Before(e.until)
}

// sweep forgets the idle keys at the front of the LRU list. Each key is
// removed once, so the cost is amortised over the failures that made it.
func (m *Memory) sweep(now time.Time) {
	for el := m.lru.Front(); el != nil && m.idle(el.Value.(*entry), now); el = m.lru.Front() {
		m.remove(el)
	}
}

// insert adds e, first forgetting the least recently failed keys if the
// limit is reached.
func (m *Memory) insert(e *entry) *list.Element {
	for len(m.keys) >= m.p.MaxKeys {
		m.remove(m.lru.Front())
	}
	el := m.lru.PushBack(e)
	m.keys[e.key] = el
	return el
}

func (m *Memory) touch(el *list.Element, now time.Time) {
	el.Value.(*entry).last = now
	m.lru.MoveToBack(el)
}

func (m *Memory) remove(el *list.Element) {
	delete(m.keys, el.Value.(*entry).key)
	m.lru.Remove(el)
}
