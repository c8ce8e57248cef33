package verifier

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of revocation feed entries (the "kind" of an Entry), and what a
// verifier refuses for each.
const (
	// KindSession revokes the session whose id is Value: every access
	// token whose sid claim is Value.
	KindSession = "session"
	// KindToken revokes the access token whose jti claim is Value.
	KindToken = "token"
	// KindUser is a cut-off for the user whose id is Value: every access
	// token whose sub claim is Value and whose iat is before At (the
	// password changed, the user was disabled).
	KindUser = "user"
	// KindAll is a global cut-off: every access token whose iat is before
	// At, whoever it was issued to. Value is empty.
	KindAll = "all"
	// KindKey revokes the signing key whose id is Value: every token whose
	// header's kid is Value.
	KindKey = "key"
)

// Entry is one entry of the auth server's revocation feed, as served by
// GET /v1/revocations and GET /v1/revocations/stream (see the HTTP API
// reference, "Revocation feed").
type Entry struct {
	// Seq is the entry's place in the feed, increasing in commit order.
	Seq int64 `json:"seq"`
	// Kind is one of KindSession, KindToken, KindUser, KindAll and
	// KindKey. Later versions of the server may add kinds; a
	// RevocationSet ignores the ones it does not know.
	Kind string `json:"kind"`
	// Value is the session id, token id, user id or key id; empty for
	// KindAll.
	Value string `json:"value"`
	// At is when the revocation happened; for KindUser and KindAll it is
	// the cut-off.
	At time.Time `json:"at"`
	// ExpiresAt is when the entry can no longer match a valid token (At
	// plus the access-token lifetime plus leeway). A zero ExpiresAt never
	// expires.
	ExpiresAt time.Time `json:"expires_at"`
}

// cutoff is a "not before" time with the time after which it can match no
// valid token, both in Unix microseconds.
type cutoff struct {
	at, expires int64
}

// RevocationSet is the in-memory set of what the revocation feed revokes:
// session ids, access token ids (jti), per-user cut-offs, a global cut-off
// and signing key ids. Checking a token against it (Revoked) takes
// nanoseconds and allocates nothing.
//
// A RevocationSet is safe for concurrent use. The zero value is an empty
// set ready to use.
type RevocationSet struct {
	mu sync.RWMutex
	// seed hashes the values, for the tables and the filter alike; it is
	// made with the first value (zero until then).
	seed maphash.Seed
	// sessions, tokens and keys map a revoked value to when its entry
	// expires, in Unix microseconds (math.MaxInt64: never).
	sessions idTable[int64]
	tokens   idTable[int64]
	keys     idTable[int64]
	// users holds the per-user cut-offs.
	users idTable[cutoff]
	// all is the global cut-off, when hasAll.
	all    cutoff
	hasAll bool
	// filter holds every value of sessions, tokens, keys and users (and
	// values since deleted): Revoked looks in a table only for what it
	// may hold, so that a token nothing revokes, the common case, costs a
	// few cache-resident reads instead of a cache miss per table. It is
	// empty (no words) only while the set has never held a value.
	filter valueFilter
	// skipped counts the entries ignored because their kind is unknown.
	skipped atomic.Uint64
}

// NewRevocationSet returns an empty RevocationSet.
func NewRevocationSet() *RevocationSet {
	return &RevocationSet{}
}

// Revoked reports whether an access token with the given header kid and
// claims sub, sid, jti and iat is revoked: its kid is a revoked key, its
// sid a revoked session, its jti a revoked token, or its iat is before the
// cut-off of its user (sub) or before the global cut-off.
//
// Empty kid, sub, sid and jti match nothing. iat has whole seconds and
// cut-offs have microseconds; Revoked compares iat < cut-off exactly, so
// a token issued in the same second as a cut-off, but after it, is refused
// too (it fails closed; its holder refreshes). A zero iat (a token without
// one) is before every cut-off.
//
// Revoked does not allocate.
func (s *RevocationSet) Revoked(kid, sub, sid, jti string, iat time.Time) bool {
	t := iat.UnixMicro()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.hasAll && t < s.all.at {
		return true
	}
	if len(s.filter.words) == 0 {
		return false // no value ever held, and no seed to hash with
	}
	if s.holds(&s.keys, kid) || s.holds(&s.sessions, sid) || s.holds(&s.tokens, jti) {
		return true
	}
	if sub != "" {
		if h := maphash.String(s.seed, sub); s.filter.mayHold(h) {
			if c, ok := s.users.get(h, sub); ok && t < c.at {
				return true
			}
		}
	}
	return false
}

// holds reports whether t, one of s's tables, holds v, asking the filter
// first; an empty v is held by none. The caller holds s.mu, and s has a
// filter (and so a seed).
func (s *RevocationSet) holds(t *idTable[int64], v string) bool {
	if v == "" {
		return false
	}
	h := maphash.String(s.seed, v)
	if !s.filter.mayHold(h) {
		return false
	}
	_, ok := t.get(h, v)
	return ok
}

// Apply adds one entry to the set. An entry of a kind unknown to this
// version is ignored and counted (see Skipped); so is one that names no
// session, token, user or key. When several cut-offs arrive for one user
// (or several global ones), the set keeps the latest, the most
// restrictive.
func (s *RevocationSet) Apply(e Entry) { s.apply(&e) }

// apply adds e and reports whether it revokes a key the set did not
// hold.
func (s *RevocationSet) apply(e *Entry) (newKey bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addNew(e)
}

// applyAll adds entries under one lock and returns the ids of the keys
// they revoke that the set did not hold.
func (s *RevocationSet) applyAll(entries []Entry) (newKeys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range entries {
		if s.addNew(&entries[i]) {
			newKeys = append(newKeys, entries[i].Value)
		}
	}
	return newKeys
}

// addNew adds e, remembering its value in the filter, and reports whether
// it revokes a key the set did not hold. The caller holds s.mu for
// writing.
func (s *RevocationSet) addNew(e *Entry) (newKey bool) {
	if e.Kind == KindKey && e.Value != "" {
		newKey = !s.holdsKey(e.Value)
	}
	if h, ok := s.add(e); ok {
		s.remember(h)
	}
	return newKey
}

// holdsKey reports whether the set holds the revoked key kid. The caller
// holds s.mu.
func (s *RevocationSet) holdsKey(kid string) bool {
	return s.keys.len() != 0 && s.holds(&s.keys, kid)
}

// Reset replaces everything the set holds with entries: what a follower
// does with a snapshot of the feed. Checks running at the same time see
// either the old set or the new one, never a mix.
func (s *RevocationSet) Reset(entries []Entry) { s.reset(entries) }

// reset is Reset, and returns the ids of the keys the new entries revoke
// that the set did not hold before.
func (s *RevocationSet) reset(entries []Entry) (newKeys []string) {
	var counts [4]int // sessions, tokens, keys, users: the tables' sizes
	for i := range entries {
		switch entries[i].Kind {
		case KindSession:
			counts[0]++
		case KindToken:
			counts[1]++
		case KindKey:
			counts[2]++
		case KindUser:
			counts[3]++
		}
	}
	fresh := &RevocationSet{
		seed:     maphash.MakeSeed(),
		sessions: newIDTable[int64](counts[0]),
		tokens:   newIDTable[int64](counts[1]),
		keys:     newIDTable[int64](counts[2]),
		users:    newIDTable[cutoff](counts[3]),
	}
	for i := range entries {
		fresh.add(&entries[i])
	}
	fresh.rebuildFilter()
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh.keys.each(func(inline []byte, long string, _ int64) {
		kid := long
		if inline != nil {
			kid = string(inline)
		}
		if !s.holdsKey(kid) {
			newKeys = append(newKeys, kid)
		}
	})
	s.seed, s.sessions, s.tokens, s.keys, s.users, s.filter = fresh.seed, fresh.sessions, fresh.tokens, fresh.keys, fresh.users, fresh.filter
	s.all, s.hasAll = fresh.all, fresh.hasAll
	s.skipped.Add(fresh.skipped.Load())
	return newKeys
}

// entryExpiry returns when e expires, in Unix microseconds.
func entryExpiry(e *Entry) int64 {
	if e.ExpiresAt.IsZero() {
		return math.MaxInt64
	}
	return e.ExpiresAt.UnixMicro()
}

// add adds e to the tables, and returns the hash of the value the filter
// must then remember (see remember) and true, or false for none. The
// caller holds s.mu for writing (or owns s alone).
func (s *RevocationSet) add(e *Entry) (uint64, bool) {
	exp := entryExpiry(e)
	var t *idTable[int64]
	switch e.Kind {
	case KindSession:
		t = &s.sessions
	case KindToken:
		t = &s.tokens
	case KindKey:
		t = &s.keys
	case KindUser:
		if e.Value == "" {
			s.skipped.Add(1)
			return 0, false
		}
		h := s.hash(e.Value)
		s.users.put(h, e.Value, cutoff{e.At.UnixMicro(), exp}, mergeCutoffs)
		return h, true
	case KindAll:
		c := cutoff{e.At.UnixMicro(), exp}
		if s.hasAll {
			c = mergeCutoffs(s.all, c)
		}
		s.all, s.hasAll = c, true
		return 0, false
	default:
		s.skipped.Add(1)
		return 0, false
	}
	if e.Value == "" {
		s.skipped.Add(1)
		return 0, false
	}
	// Of duplicates, the later expiry is kept.
	h := s.hash(e.Value)
	t.put(h, e.Value, exp, maxInt64)
	return h, true
}

func maxInt64(a, b int64) int64 { return max(a, b) }

// hash returns the hash of v with the set's seed, making the seed first
// if the set has none. The caller holds s.mu for writing (or owns s
// alone).
func (s *RevocationSet) hash(v string) uint64 {
	if s.seed == (maphash.Seed{}) {
		s.seed = maphash.MakeSeed()
	}
	return maphash.String(s.seed, v)
}

// remember puts the value whose hash is h, just added to a table, in the
// filter, rebuilding the filter from the tables first when it has no
// room left (which also forgets the values deleted since it was built).
// The caller holds s.mu for writing.
func (s *RevocationSet) remember(h uint64) {
	if s.filter.full() {
		s.rebuildFilter() // the value is in a table already
		return
	}
	s.filter.insert(h)
}

// rebuildFilter makes a filter of the values in the tables, with room
// for as many again. The caller holds s.mu for writing (or owns s
// alone), and s has a seed.
func (s *RevocationSet) rebuildFilter() {
	n := s.sessions.len() + s.tokens.len() + s.keys.len() + s.users.len()
	f := newValueFilter(2 * n)
	insert := func(inline []byte, long string) {
		if inline != nil {
			f.insert(maphash.Bytes(s.seed, inline))
		} else {
			f.insert(maphash.String(s.seed, long))
		}
	}
	for _, t := range []*idTable[int64]{&s.sessions, &s.tokens, &s.keys} {
		t.each(func(inline []byte, long string, _ int64) { insert(inline, long) })
	}
	s.users.each(func(inline []byte, long string, _ cutoff) { insert(inline, long) })
	s.filter = f
}

// filterBitsPerValue is the size of a valueFilter per value it has room
// for. With two bits set per value in one 64-bit word, a full filter
// answers "may hold" for about 1.5% of the values it does not hold.
const filterBitsPerValue = 16

// valueFilter is a Bloom filter blocked by 64-bit words, of the values'
// hashes: a value sets two bits of one word, so asking about it reads a
// single word. It has no false negatives: mayHold is true for every
// value inserted. The zero value holds nothing and has no room: mayHold
// is always true.
type valueFilter struct {
	words []uint64 // a power of two of them
	room  int      // values that may be inserted before it is full
}

// newValueFilter returns a filter with room for n values.
func newValueFilter(n int) valueFilter {
	words := 64
	for words*64 < n*filterBitsPerValue {
		words *= 2
	}
	return valueFilter{words: make([]uint64, words), room: words * 64 / filterBitsPerValue}
}

// locate returns the index of the word of the value whose hash is h and
// the mask of its two bits.
func (f *valueFilter) locate(h uint64) (int, uint64) {
	return int(h & uint64(len(f.words)-1)), 1<<(h>>52&63) | 1<<(h>>58)
}

func (f *valueFilter) insert(h uint64) {
	i, m := f.locate(h)
	f.words[i] |= m
	f.room--
}

// mayHold reports whether the value whose hash is h may have been
// inserted; false means it was not.
func (f *valueFilter) mayHold(h uint64) bool {
	if len(f.words) == 0 {
		return true
	}
	i, m := f.locate(h)
	return f.words[i]&m == m
}

// full reports whether the filter has no room left.
func (f *valueFilter) full() bool { return f.room <= 0 }

// mergeCutoffs combines two cut-offs of one subject: the later cut-off refuses
// everything the earlier one does, and it is kept until the later of the
// two expiries (past its own expiry it matches no valid token, so keeping
// it longer is harmless).
func mergeCutoffs(a, b cutoff) cutoff {
	return cutoff{at: max(a.at, b.at), expires: max(a.expires, b.expires)}
}

// Prune drops the entries whose ExpiresAt is before now (they can match
// no valid token any more) and returns how many it dropped. Checks are
// held up only while the expired entries are deleted, not while they are
// looked for.
//
// Revoked keys are never pruned: a verifier may have cached (or may be
// handed again) a token of a leaked key with a far-off expiry, which only
// the key entry refuses once the key has left the key set. They are few.
func (s *RevocationSet) Prune(now time.Time) int {
	t := now.UnixMicro()
	expired := func(exp int64) bool { return exp < t }
	userExpired := func(c cutoff) bool { return c.expires < t }
	var sessions, tokens, users []string
	s.mu.RLock()
	sessions = expiredValues(&s.sessions, expired, sessions)
	tokens = expiredValues(&s.tokens, expired, tokens)
	users = expiredValues(&s.users, userExpired, users)
	all := s.hasAll && s.all.expires < t
	s.mu.RUnlock()
	if len(sessions)+len(tokens)+len(users) == 0 && !all {
		return 0
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// An entry may have been renewed (or the set reset) in between:
	// check each again.
	n := deleteExpired(&s.sessions, s.seed, sessions, expired) +
		deleteExpired(&s.tokens, s.seed, tokens, expired) +
		deleteExpired(&s.users, s.seed, users, userExpired)
	if s.hasAll && s.all.expires < t {
		s.all, s.hasAll = cutoff{}, false
		n++
	}
	return n
}

// expiredValues appends to out the values of t that are expired.
func expiredValues[V any](t *idTable[V], expired func(V) bool, out []string) []string {
	t.each(func(inline []byte, long string, x V) {
		if expired(x) {
			if inline != nil {
				long = string(inline)
			}
			out = append(out, long)
		}
	})
	return out
}

// deleteExpired deletes those of values that t holds and are expired,
// and returns how many; seed is the seed of t's hashes.
func deleteExpired[V any](t *idTable[V], seed maphash.Seed, values []string, expired func(V) bool) int {
	n := 0
	for _, v := range values {
		if t.deleteIf(maphash.String(seed, v), v, expired) {
			n++
		}
	}
	return n
}

// Len returns the number of entries the set holds: revoked sessions,
// tokens and keys, user cut-offs, and 1 for a global cut-off.
func (s *RevocationSet) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.sessions.len() + s.tokens.len() + s.keys.len() + s.users.len()
	if s.hasAll {
		n++
	}
	return n
}

// Skipped returns how many entries the set has ignored since it was made:
// entries of a kind this version does not know (a newer server may send
// some), and entries without the value their kind needs.
func (s *RevocationSet) Skipped() uint64 { return s.skipped.Load() }
