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
	// sessions, tokens and keys map a revoked value to when its entry
	// expires, in Unix microseconds (math.MaxInt64: never).
	sessions map[string]int64
	tokens   map[string]int64
	keys     map[string]int64
	// users holds the per-user cut-offs.
	users map[string]cutoff
	// all is the global cut-off, when hasAll.
	all    cutoff
	hasAll bool
	// filter holds every value of sessions, tokens, keys and users (and
	// values since deleted): Revoked looks in a map only for what it may
	// hold, so that a token nothing revokes, the common case, costs a few
	// cache-resident reads instead of a cache miss per map.
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
	if kid != "" && s.filter.mayHold(kid) {
		if _, ok := s.keys[kid]; ok {
			return true
		}
	}
	if sid != "" && s.filter.mayHold(sid) {
		if _, ok := s.sessions[sid]; ok {
			return true
		}
	}
	if jti != "" && s.filter.mayHold(jti) {
		if _, ok := s.tokens[jti]; ok {
			return true
		}
	}
	if sub != "" && s.filter.mayHold(sub) {
		if c, ok := s.users[sub]; ok && t < c.at {
			return true
		}
	}
	return false
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
		_, held := s.keys[e.Value]
		newKey = !held
	}
	s.remember(s.add(e))
	return newKey
}

// Reset replaces everything the set holds with entries: what a follower
// does with a snapshot of the feed. Checks running at the same time see
// either the old set or the new one, never a mix.
func (s *RevocationSet) Reset(entries []Entry) { s.reset(entries) }

// reset is Reset, and returns the ids of the keys the new entries revoke
// that the set did not hold before.
func (s *RevocationSet) reset(entries []Entry) (newKeys []string) {
	var counts [4]int // sessions, tokens, keys, users: the maps' sizes
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
		sessions: make(map[string]int64, counts[0]),
		tokens:   make(map[string]int64, counts[1]),
		keys:     make(map[string]int64, counts[2]),
		users:    make(map[string]cutoff, counts[3]),
	}
	for i := range entries {
		fresh.add(&entries[i])
	}
	fresh.rebuildFilter()
	s.mu.Lock()
	defer s.mu.Unlock()
	for kid := range fresh.keys {
		if _, held := s.keys[kid]; !held {
			newKeys = append(newKeys, kid)
		}
	}
	s.sessions, s.tokens, s.keys, s.users, s.filter = fresh.sessions, fresh.tokens, fresh.keys, fresh.users, fresh.filter
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

// add adds e to the maps, and returns the value the filter must then
// remember (see remember), or "" for none. The caller holds s.mu for
// writing (or owns s alone).
func (s *RevocationSet) add(e *Entry) string {
	exp := entryExpiry(e)
	switch e.Kind {
	case KindSession:
		return addValue(&s.sessions, e.Value, exp, &s.skipped)
	case KindToken:
		return addValue(&s.tokens, e.Value, exp, &s.skipped)
	case KindKey:
		return addValue(&s.keys, e.Value, exp, &s.skipped)
	case KindUser:
		if e.Value == "" {
			s.skipped.Add(1)
			return ""
		}
		if s.users == nil {
			s.users = make(map[string]cutoff)
		}
		s.users[e.Value] = mergeCutoffs(s.users[e.Value], cutoff{e.At.UnixMicro(), exp})
		return e.Value
	case KindAll:
		c := cutoff{e.At.UnixMicro(), exp}
		if s.hasAll {
			c = mergeCutoffs(s.all, c)
		}
		s.all, s.hasAll = c, true
	default:
		s.skipped.Add(1)
	}
	return ""
}

// addValue records a revoked value in *m with its expiry, keeping the
// later expiry of duplicates, and returns it. An empty value is counted
// as skipped.
func addValue(m *map[string]int64, v string, exp int64, skipped *atomic.Uint64) string {
	if v == "" {
		skipped.Add(1)
		return ""
	}
	if *m == nil {
		*m = make(map[string]int64)
	}
	if old, ok := (*m)[v]; !ok || exp > old {
		(*m)[v] = exp
	}
	return v
}

// remember puts v, just added to a map, in the filter, rebuilding the
// filter from the maps first when it has no room left (which also
// forgets the values deleted since it was built). The caller holds s.mu
// for writing.
func (s *RevocationSet) remember(v string) {
	if v == "" {
		return
	}
	if s.filter.full() {
		s.rebuildFilter() // v is in a map already
		return
	}
	s.filter.insert(v)
}

// rebuildFilter makes a filter of the values in the maps, with room for
// as many again. The caller holds s.mu for writing (or owns s alone).
func (s *RevocationSet) rebuildFilter() {
	n := len(s.sessions) + len(s.tokens) + len(s.keys) + len(s.users)
	f := newValueFilter(2 * n)
	for _, m := range []map[string]int64{s.sessions, s.tokens, s.keys} {
		for v := range m {
			f.insert(v)
		}
	}
	for v := range s.users {
		f.insert(v)
	}
	s.filter = f
}

// filterBitsPerValue is the size of a valueFilter per value it has room
// for. With two bits set per value in one 64-bit word, a full filter
// answers "may hold" for about 1.5% of the values it does not hold.
const filterBitsPerValue = 16

// valueFilter is a Bloom filter blocked by 64-bit words: a value sets
// two bits of one word, so asking about it reads a single word. It has
// no false negatives: mayHold is true for every value inserted. The zero
// value holds nothing and has no room: mayHold is always true.
type valueFilter struct {
	seed  maphash.Seed
	words []uint64 // a power of two of them
	room  int      // values that may be inserted before it is full
}

// newValueFilter returns a filter with room for n values.
func newValueFilter(n int) valueFilter {
	words := 64
	for words*64 < n*filterBitsPerValue {
		words *= 2
	}
	return valueFilter{seed: maphash.MakeSeed(), words: make([]uint64, words), room: words * 64 / filterBitsPerValue}
}

// locate returns the index of v's word and the mask of its two bits.
func (f *valueFilter) locate(v string) (int, uint64) {
	h := maphash.String(f.seed, v)
	return int(h & uint64(len(f.words)-1)), 1<<(h>>52&63) | 1<<(h>>58)
}

func (f *valueFilter) insert(v string) {
	i, m := f.locate(v)
	f.words[i] |= m
	f.room--
}

// mayHold reports whether v may have been inserted; false means it was
// not.
func (f *valueFilter) mayHold(v string) bool {
	if len(f.words) == 0 {
		return true
	}
	i, m := f.locate(v)
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
	var sessions, tokens, users []string
	s.mu.RLock()
	sessions = expiredValues(s.sessions, t, sessions)
	tokens = expiredValues(s.tokens, t, tokens)
	for v, c := range s.users {
		if c.expires < t {
			users = append(users, v)
		}
	}
	all := s.hasAll && s.all.expires < t
	s.mu.RUnlock()
	if len(sessions)+len(tokens)+len(users) == 0 && !all {
		return 0
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// An entry may have been renewed (or the set reset) in between:
	// check each again.
	n := deleteExpired(s.sessions, sessions, t) + deleteExpired(s.tokens, tokens, t)
	for _, v := range users {
		if c, ok := s.users[v]; ok && c.expires < t {
			delete(s.users, v)
			n++
		}
	}
	if s.hasAll && s.all.expires < t {
		s.all, s.hasAll = cutoff{}, false
		n++
	}
	return n
}

func expiredValues(m map[string]int64, t int64, out []string) []string {
	for v, exp := range m {
		if exp < t {
			out = append(out, v)
		}
	}
	return out
}

func deleteExpired(m map[string]int64, values []string, t int64) int {
	n := 0
	for _, v := range values {
		if exp, ok := m[v]; ok && exp < t {
			delete(m, v)
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
	n := len(s.sessions) + len(s.tokens) + len(s.keys) + len(s.users)
	if s.hasAll {
		n++
	}
	return n
}

// Skipped returns how many entries the set has ignored since it was made:
// entries of a kind this version does not know (a newer server may send
// some), and entries without the value their kind needs.
func (s *RevocationSet) Skipped() uint64 { return s.skipped.Load() }
