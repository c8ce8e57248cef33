package verifier

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
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
func (s *RevocationSet) Apply(e Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remember(s.add(&e))
}

// applyAll adds entries under one lock.
func (s *RevocationSet) applyAll(entries []Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range entries {
		s.remember(s.add(&entries[i]))
	}
}

// Reset replaces everything the set holds with entries: what a follower
// does with a snapshot of the feed. Checks running at the same time see
// either the old set or the new one, never a mix.
func (s *RevocationSet) Reset(entries []Entry) {
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
	s.sessions, s.tokens, s.keys, s.users, s.filter = fresh.sessions, fresh.tokens, fresh.keys, fresh.users, fresh.filter
	s.all, s.hasAll = fresh.all, fresh.hasAll
	s.skipped.Add(fresh.skipped.Load())
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

// Modes of a Follower (FollowerStatus.Mode).
const (
	// ModeStream follows GET /v1/revocations/stream (server-sent events).
	ModeStream = "stream"
	// ModeLongPoll follows GET /v1/revocations?after=N&wait=30s.
	ModeLongPoll = "long-poll"
)

// DefaultMaxOutage is how long a Follower goes without contact with the
// feed before it is stale, unless FollowerOptions.MaxOutage says
// otherwise.
const DefaultMaxOutage = 2 * time.Minute

// Limits and intervals of a Follower.
const (
	// feedPageSize is the most entries a page of the feed holds: a full
	// page means more follow at once.
	feedPageSize = 1000
	// maxPageBytes bounds a page's body; a full page is about 200 KB.
	maxPageBytes = 8 << 20
	// maxErrorBytes bounds what is read of an error response.
	maxErrorBytes = 4 << 10
	// longPollWait is the wait a long-poll asks for.
	longPollWait = 30 * time.Second
	// requestTimeout bounds a request beyond the wait it asks for.
	requestTimeout = 15 * time.Second
	// streamIdleTimeout ends a stream that sends nothing, not even a
	// heartbeat (the server sends one every 15 s): three missed
	// heartbeats. It also catches proxies that buffer the stream.
	streamIdleTimeout = 45 * time.Second
	// streamRetryAfter is how long a follower that fell back to long-poll
	// waits before it tries the stream again.
	streamRetryAfter = 5 * time.Minute
	// streamAttempts is how many streams in a row may end without
	// delivering anything before the follower falls back to long-poll.
	streamAttempts = 3
	// pruneInterval is how often expired entries are dropped.
	pruneInterval = 30 * time.Second
	// Reconnects back off exponentially between these bounds, with
	// jitter.
	backoffMin = 100 * time.Millisecond
	backoffMax = 10 * time.Second
	// maxSSELine and maxSSEEvent bound a line of the event stream and
	// the fields of one event.
	maxSSELine  = 64 << 10
	maxSSEEvent = 64 << 10
)

// FollowerOptions configure a Follower.
type FollowerOptions struct {
	// FeedURL is the revocation feed, GET …/v1/revocations: the
	// follower bootstraps from it page by page and long-polls it
	// (?after=N&wait=30s) when the stream is unavailable. Required.
	FeedURL string
	// StreamURL is the feed as server-sent events,
	// GET …/v1/revocations/stream. Empty: long-poll only.
	StreamURL string
	// ClientID and ClientSecret are the service client's credentials,
	// sent with HTTP Basic (RFC 6749 §2.3.1). The secret is never logged.
	ClientID, ClientSecret string
	// HTTPClient sends the requests; nil means a new http.Client using
	// http.DefaultTransport. Its Timeout is ignored (it would cut every
	// stream short): the follower bounds each request itself.
	HTTPClient *http.Client
	// MaxOutage is how long the follower may go without contact with
	// the feed (a page, an event or a heartbeat) before it is stale; 0
	// means DefaultMaxOutage (2 minutes). It should exceed the 45 s a
	// silent stream is given before it is dropped.
	MaxOutage time.Duration
	// FailOpen makes Healthy report true while the follower is stale.
	// The default, false, fails closed: a verifier refuses every token
	// while it cannot know what was revoked. Failing open accepts revoked
	// tokens during an outage.
	FailOpen bool
	// Logger receives connection failures and fallbacks; nil discards.
	Logger *slog.Logger
	// Now is the clock for contact, staleness and pruning; nil means
	// time.Now.
	Now func() time.Time
}

// FollowerStatus describes a Follower's connection to the feed.
type FollowerStatus struct {
	// Ready is true once the follower has bootstrapped from the feed.
	Ready bool
	// Mode is ModeStream or ModeLongPoll: how the follower is following
	// the feed (or trying to).
	Mode string
	// Cursor is the seq of the last entry applied.
	Cursor int64
	// LastContact is the last time the feed answered: a page, an event
	// or a heartbeat. Zero before the first.
	LastContact time.Time
	// Lag is how long the follower has been without contact: 0 while a
	// stream is live or the last long-poll succeeded, otherwise the time
	// since LastContact (or since Start, before any contact).
	Lag time.Duration
	// Stale is true before the follower is Ready, whenever it has had
	// no contact for longer than MaxOutage, and once it has stopped
	// (Close, or the end of Start's context).
	Stale bool
	// Reconnects counts the connections made again after a failure or
	// after a stream ended.
	Reconnects uint64
	// Entries is the number of entries in the set (RevocationSet.Len).
	Entries int
	// Skipped is the number of entries the set ignored
	// (RevocationSet.Skipped): kinds this version does not know.
	Skipped uint64
	// LastError describes the most recent failure, at LastErrorAt; empty
	// if there was none. It holds no secrets.
	LastError   string
	LastErrorAt time.Time
}

// Follower keeps a RevocationSet up to date from the auth server's
// revocation feed: it bootstraps from the feed's pages, then follows the
// stream (server-sent events, resumed with Last-Event-ID), falling back to
// long-polls when the stream is unavailable and trying the stream again
// later. Failed connections are retried with exponential back-off and
// jitter, from 100 ms to 10 s. Expired entries are pruned every 30
// seconds.
//
// A Follower is safe for concurrent use. Healthy is cheap enough to call
// on every request.
type Follower struct {
	set    *RevocationSet
	opt    FollowerOptions
	client *http.Client
	log    *slog.Logger
	now    func() time.Time

	// Intervals, from the constants above; tests shorten them.
	pollWait    time.Duration
	streamIdle  time.Duration
	streamRetry time.Duration
	pruneEvery  time.Duration
	healthEvery time.Duration
	backoff     reconnectBackoff

	ready       atomic.Bool
	stopped     atomic.Bool  // the background work has ended
	connected   atomic.Bool  // a stream is open, or the last long-poll succeeded
	healthy     atomic.Bool  // !stale || FailOpen
	streaming   atomic.Bool  // mode
	cursor      atomic.Int64 // seq of the last entry applied
	lastContact atomic.Int64 // Unix nanoseconds by now(); 0: never
	startedAt   atomic.Int64 // Unix nanoseconds by now()
	reconnects  atomic.Uint64

	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
	cancel    context.CancelFunc // set by Start
	closed    bool
	wg        sync.WaitGroup
	feedURL   *url.URL
	streamURL *url.URL
}

// NewFollower returns a Follower that keeps set up to date; Start starts
// it.
func NewFollower(set *RevocationSet, opt FollowerOptions) *Follower {
	if opt.MaxOutage <= 0 {
		opt.MaxOutage = DefaultMaxOutage
	}
	f := &Follower{
		set:         set,
		opt:         opt,
		log:         opt.Logger,
		now:         opt.Now,
		pollWait:    longPollWait,
		streamIdle:  streamIdleTimeout,
		streamRetry: streamRetryAfter,
		pruneEvery:  pruneInterval,
		healthEvery: min(time.Second, max(opt.MaxOutage/4, 10*time.Millisecond)),
		backoff:     reconnectBackoff{min: backoffMin, max: backoffMax},
	}
	if opt.HTTPClient != nil {
		c := *opt.HTTPClient
		c.Timeout = 0 // each request has a deadline of its own
		f.client = &c
	} else {
		f.client = &http.Client{}
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	f.streaming.Store(opt.StreamURL != "")
	f.healthy.Store(false) // not bootstrapped yet, whatever FailOpen says
	return f
}

// Start bootstraps the set from the feed: it reads every page from the
// start and replaces what the set holds with them. Then it follows the
// feed in the background until ctx is done or Close is called. When the
// bootstrap fails Start returns its error, but the follower keeps trying
// in the background; until it succeeds the follower is stale. Start
// fails without starting anything when FeedURL or StreamURL is not an
// http or https URL, and when called a second time.
func (f *Follower) Start(ctx context.Context) error {
	feedURL, err := parseFeedURL("FeedURL", f.opt.FeedURL)
	if err != nil {
		return err
	}
	var streamURL *url.URL
	if f.opt.StreamURL != "" {
		if streamURL, err = parseFeedURL("StreamURL", f.opt.StreamURL); err != nil {
			return err
		}
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return errors.New("verifier: Follower is closed")
	}
	if f.cancel != nil {
		f.mu.Unlock()
		return errors.New("verifier: Follower already started")
	}
	ctx, cancel := context.WithCancel(ctx)
	f.cancel = cancel
	f.feedURL, f.streamURL = feedURL, streamURL
	f.startedAt.Store(f.now().UnixNano())
	f.wg.Add(1) // until the goroutines are started, so that Close waits for them
	f.mu.Unlock()
	defer f.wg.Done()

	err = f.bootstrap(ctx)
	if err != nil {
		f.failed(err)
	}
	f.wg.Add(2)
	go f.follow(ctx)
	go f.maintain(ctx)
	return err
}

// parseFeedURL parses an absolute http or https URL.
func parseFeedURL(name, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("verifier: FollowerOptions.%s must be an http or https URL", name)
	}
	return u, nil
}

// Close stops the follower and waits for its goroutines to end. The set
// keeps what it holds, but the follower is stale from then on, so
// Healthy reports false unless FailOpen is set. Close may be called more
// than once, and before Start.
func (f *Follower) Close() {
	f.mu.Lock()
	f.closed = true
	cancel := f.cancel
	f.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	f.wg.Wait()
}

// Healthy reports whether a verifier may rely on the set: the follower is
// not stale, or FailOpen is set. It is one atomic load.
func (f *Follower) Healthy() bool { return f.healthy.Load() }

// Status returns the follower's state.
func (f *Follower) Status() FollowerStatus {
	now := f.now()
	lc, stale := f.updateHealth()
	st := FollowerStatus{
		Ready:      f.ready.Load(),
		Mode:       ModeLongPoll,
		Cursor:     f.cursor.Load(),
		Stale:      stale,
		Reconnects: f.reconnects.Load(),
		Entries:    f.set.Len(),
		Skipped:    f.set.Skipped(),
	}
	if f.streaming.Load() {
		st.Mode = ModeStream
	}
	if lc != 0 {
		st.LastContact = time.Unix(0, lc).UTC()
	}
	if !f.connected.Load() {
		switch start := f.startedAt.Load(); {
		case lc != 0:
			st.Lag = max(now.Sub(st.LastContact), 0)
		case start != 0:
			st.Lag = max(now.Sub(time.Unix(0, start)), 0)
		}
	}
	f.mu.Lock()
	st.LastError, st.LastErrorAt = f.lastErr, f.lastErrAt
	f.mu.Unlock()
	return st
}

// contact records that the feed answered.
func (f *Follower) contact() {
	f.lastContact.Store(f.now().UnixNano())
	f.updateHealth()
}

// updateHealth recomputes staleness and Healthy from the last contact
// and the follower's state, and returns both. When any of them changes
// while it computes, it computes again, so that of two concurrent calls
// the one that stores last stores the verdict on the latest state: a
// stale verdict never outlives a fresh contact, nor a healthy one the
// follower's stop.
func (f *Follower) updateHealth() (lastContact int64, stale bool) {
	for {
		lc, ready, stopped := f.lastContact.Load(), f.ready.Load(), f.stopped.Load()
		stale = !ready || stopped || lc == 0 || f.now().UnixNano()-lc > int64(f.opt.MaxOutage)
		// FailOpen tolerates an outage, never an empty set that was not
		// loaded yet: until the first bootstrap every token is refused.
		f.healthy.Store(ready && (!stale || f.opt.FailOpen))
		if f.lastContact.Load() == lc && f.ready.Load() == ready && f.stopped.Load() == stopped {
			return lc, stale
		}
	}
}

// recordError records err as the last error (FollowerStatus.LastError).
func (f *Follower) recordError(err error) {
	now := f.now()
	f.mu.Lock()
	f.lastErr, f.lastErrAt = err.Error(), now
	f.mu.Unlock()
}

// failed records err as the last error and logs it.
func (f *Follower) failed(err error) {
	f.recordError(err)
	var se *feedStatusError
	if errors.As(err, &se) && (se.status == http.StatusUnauthorized || se.status == http.StatusForbidden) {
		// The secret is never logged; the client id says which
		// credentials to check.
		f.log.Error("revocation feed refused the client credentials; check the client id and secret",
			"client_id", f.opt.ClientID, "status", se.status, "error", se.code)
		return
	}
	f.log.Warn("revocation feed", "err", err)
}

// maintain keeps Healthy current between contacts and prunes the set.
func (f *Follower) maintain(ctx context.Context) {
	defer f.wg.Done()
	health := time.NewTicker(f.healthEvery)
	defer health.Stop()
	prune := time.NewTicker(f.pruneEvery)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-health.C:
			f.updateHealth()
		case <-prune.C:
			if n := f.set.Prune(f.now()); n > 0 {
				f.log.Debug("revocation set pruned", "entries", n)
			}
		}
	}
}

// follow follows the feed until ctx is done: by stream when there is one
// and it works, by long-poll otherwise, bootstrapping again first while
// the follower is not ready.
func (f *Follower) follow(ctx context.Context) {
	defer f.wg.Done()
	defer func() {
		// A follower that has stopped no longer knows what is revoked.
		f.stopped.Store(true)
		f.connected.Store(false)
		f.updateHealth()
	}()
	b := f.backoff
	failures := 0          // streams in a row that delivered nothing
	var streamAt time.Time // when to try the stream again, by f.now
	for ctx.Err() == nil {
		var (
			progress bool
			err      error
		)
		switch {
		case !f.ready.Load():
			err = f.bootstrap(ctx)
			progress = err == nil
		case f.streamURL != nil && !f.now().Before(streamAt):
			f.streaming.Store(true)
			progress, err = f.stream(ctx)
			if ctx.Err() != nil {
				return
			}
			if _, ok := errors.AsType[*malformedError](err); ok {
				progress = false // a broken stream, however much it said first
			}
			if progress {
				failures = 0
			} else if !isAuthError(err) {
				failures++
			}
			var ue *streamUnavailableError
			if errors.As(err, &ue) || failures >= streamAttempts {
				f.recordError(err)
				f.log.Warn("revocation stream unavailable; following the feed by long-poll",
					"reason", err, "retry_stream_in", f.streamRetry)
				f.streaming.Store(false)
				streamAt = f.now().Add(f.streamRetry)
				failures = 0
				f.reconnects.Add(1)
				continue // long-poll at once
			}
		default:
			f.streaming.Store(false)
			progress, err = f.poll(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		if progress {
			b.reset()
		}
		if err == nil {
			continue
		}
		f.failed(err)
		f.reconnects.Add(1)
		if !sleepContext(ctx, b.next()) {
			return
		}
	}
}

// isAuthError reports whether err is the feed refusing the credentials.
func isAuthError(err error) bool {
	var se *feedStatusError
	return errors.As(err, &se) && (se.status == http.StatusUnauthorized || se.status == http.StatusForbidden)
}

// sleepContext waits for d or until ctx is done, and reports whether ctx is
// still live.
func sleepContext(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// reconnectBackoff computes reconnection delays: doubling from min to max, each
// drawn at random from its upper half ("equal jitter").
type reconnectBackoff struct {
	min, max, cur time.Duration
}

func (b *reconnectBackoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

func (b *reconnectBackoff) reset() { b.cur = 0 }

// bootstrap reads the feed from the start, page by page, and replaces the
// set with its entries in one step, so that checks never see it half
// loaded.
func (f *Follower) bootstrap(ctx context.Context) error {
	first, err := f.fetch(ctx, 0, 0)
	if err != nil {
		return err
	}
	entries, next, err := f.rest(ctx, first)
	if err != nil {
		return err
	}
	f.set.Reset(entries)
	f.cursor.Store(next)
	f.ready.Store(true)
	f.contact()
	f.log.Info("revocation feed bootstrapped", "entries", len(entries), "cursor", next)
	return nil
}

// rest reads the pages that follow first at once while pages are full,
// and returns all their entries and the cursor after them. A snapshot
// among them (the server pruned or was replaced meanwhile) starts the
// collection again.
func (f *Follower) rest(ctx context.Context, first *feedPage) ([]Entry, int64, error) {
	entries, next, full := first.Entries, first.Next, len(first.Entries) >= feedPageSize
	for full {
		p, err := f.fetch(ctx, next, 0)
		if err != nil {
			return nil, 0, err
		}
		if p.Snapshot {
			entries = entries[:0]
		}
		entries = append(entries, p.Entries...)
		next, full = p.Next, len(p.Entries) >= feedPageSize
	}
	return entries, next, nil
}

// poll makes one long-poll and applies what it returns. progress is true
// when the feed answered.
func (f *Follower) poll(ctx context.Context) (progress bool, err error) {
	p, err := f.fetch(ctx, f.cursor.Load(), f.pollWait)
	if err != nil {
		f.connected.Store(false)
		return false, err
	}
	f.connected.Store(true)
	f.contact()
	if p.Snapshot {
		entries, next, err := f.rest(ctx, p)
		if err != nil {
			f.connected.Store(false)
			return true, err
		}
		f.set.Reset(entries)
		f.cursor.Store(next)
		f.log.Info("revocation feed snapshot", "entries", len(entries), "cursor", next)
		return true, nil
	}
	f.set.applyAll(p.Entries)
	f.cursor.Store(p.Next)
	return true, nil
}

// feedPage is an answer of GET /v1/revocations.
type feedPage struct {
	Entries  []Entry `json:"entries"`
	Next     int64   `json:"next"`
	Snapshot bool    `json:"snapshot"`
}

// feedStatusError is an answer of the feed other than 200.
type feedStatusError struct {
	status int
	code   string // the body's "error", when it has a plausible one
}

func (e *feedStatusError) Error() string {
	if e.code != "" {
		return fmt.Sprintf("verifier: revocation feed answered %d %s", e.status, e.code)
	}
	return fmt.Sprintf("verifier: revocation feed answered %d", e.status)
}

// streamUnavailableError says the stream is not served here: the follower
// long-polls instead.
type streamUnavailableError struct{ reason string }

func (e *streamUnavailableError) Error() string {
	return "verifier: revocation stream unavailable: " + e.reason
}

// feedError turns a response other than 200 into a feedStatusError, with the
// error code of an RFC 6749 error body when there is one.
func feedError(res *http.Response) error {
	e := &feedStatusError{status: res.StatusCode}
	var body struct {
		Error string `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBytes))
	if json.Unmarshal(b, &body) == nil && isOAuthErrorCode(body.Error) {
		e.code = body.Error
	}
	return e
}

// isOAuthErrorCode reports whether s looks like an OAuth error code, so that
// nothing else from a response reaches the log.
func isOAuthErrorCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// newRequest returns a GET of u with the client's credentials.
func (f *Follower) newRequest(ctx context.Context, u *url.URL) *http.Request {
	req := (&http.Request{Method: http.MethodGet, URL: u, Header: make(http.Header), Host: u.Host}).WithContext(ctx)
	if f.opt.ClientID != "" || f.opt.ClientSecret != "" {
		// RFC 6749 §2.3.1: both form-urlencoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(f.opt.ClientID), url.QueryEscape(f.opt.ClientSecret))
	}
	return req
}

// fetch reads the page of the feed after the cursor, waiting up to wait
// for entries when there are none, and checks that it is consistent.
func (f *Follower) fetch(ctx context.Context, after int64, wait time.Duration) (*feedPage, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+requestTimeout)
	defer cancel()
	u := *f.feedURL
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	u.RawQuery = q.Encode()
	req := f.newRequest(ctx, &u)
	req.Header.Set("Accept", "application/json")
	res, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("verifier: reading the revocation feed: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, feedError(res)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxPageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("verifier: reading the revocation feed: %w", err)
	}
	if len(body) > maxPageBytes {
		return nil, fmt.Errorf("verifier: revocation feed page larger than %d bytes", maxPageBytes)
	}
	var p feedPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("verifier: malformed revocation feed page: %w", err)
	}
	if err := p.check(after); err != nil {
		return nil, err
	}
	return &p, nil
}

// check verifies that a page read after the cursor is in order: entries
// in increasing seq order, after the cursor unless the page is a
// snapshot, and a next cursor that does not go back.
func (p *feedPage) check(after int64) error {
	last := int64(0)
	if !p.Snapshot {
		last = after
	}
	for _, e := range p.Entries {
		if e.Seq <= last {
			return fmt.Errorf("verifier: revocation feed page out of order: seq %d after %d", e.Seq, last)
		}
		last = e.Seq
	}
	if p.Next < last {
		return fmt.Errorf("verifier: revocation feed page: next %d before seq %d", p.Next, last)
	}
	return nil
}

// stream follows the event stream from the cursor until it ends, and
// reports whether it delivered anything (an event or a heartbeat). It
// always ends with an error: why the stream ended.
func (f *Follower) stream(ctx context.Context) (progress bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Nothing for streamIdle — not even the response headers — ends
	// the stream.
	idle := time.AfterFunc(f.streamIdle, func() { cancel(errStreamIdle) })
	defer idle.Stop()
	f.connected.Store(false)
	defer f.connected.Store(false)
	// cause prefers why the context ended to what it made fail.
	cause := func(err error) error {
		if c := context.Cause(ctx); c != nil {
			return c
		}
		return err
	}

	req := f.newRequest(ctx, f.streamURL)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Last-Event-ID", strconv.FormatInt(f.cursor.Load(), 10))
	res, err := f.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("verifier: opening the revocation stream: %w", cause(err))
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotAcceptable, http.StatusGone, http.StatusNotImplemented:
		return false, &streamUnavailableError{reason: res.Status}
	default:
		return false, feedError(res)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, &streamUnavailableError{reason: fmt.Sprintf("Content-Type %q", res.Header.Get("Content-Type"))}
	}
	f.connected.Store(true)
	events := newSSEReader(res.Body, func() { idle.Reset(f.streamIdle) })
	var snap *streamSnapshot
	for {
		ev, err := events.next()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				err = errStreamEnded
			case errors.Is(err, errSSELineTooLong) || errors.Is(err, errSSEEventTooLong):
				err = &malformedError{err}
			}
			return progress, cause(err)
		}
		switch {
		case ev.comment: // a heartbeat
		case ev.event == "revocation":
			var e Entry
			if err := json.Unmarshal(ev.data, &e); err != nil {
				return progress, malformed("malformed revocation event: %w", err)
			}
			if e.Seq <= 0 || (ev.hasID && ev.id != strconv.FormatInt(e.Seq, 10)) {
				return progress, malformed("malformed revocation event: seq %d, id %q", e.Seq, ev.id)
			}
			switch {
			case snap != nil:
				if n := len(snap.entries); n > 0 && e.Seq <= snap.entries[n-1].Seq {
					return progress, malformed("revocation stream out of order: seq %d after %d", e.Seq, snap.entries[n-1].Seq)
				}
				snap.entries = append(snap.entries, e)
				if e.Seq >= snap.next {
					f.set.Reset(snap.entries)
					f.cursor.Store(e.Seq)
					f.log.Info("revocation feed snapshot", "entries", len(snap.entries), "cursor", e.Seq)
					snap = nil
				}
			case e.Seq <= f.cursor.Load():
				// Already applied.
			default:
				f.set.Apply(e)
				f.cursor.Store(e.Seq)
			}
		case ev.event == "snapshot":
			var s struct {
				Next *int64 `json:"next"`
			}
			if err := json.Unmarshal(ev.data, &s); err != nil || s.Next == nil || *s.Next < 0 {
				return progress, malformed("malformed snapshot event %q", truncateForError(ev.data))
			}
			if ev.hasID {
				// No entries follow: the feed is empty.
				f.set.Reset(nil)
				f.cursor.Store(*s.Next)
				snap = nil
			} else {
				// Drop what the set holds once the entries up to next
				// have arrived, and replace it with them in one step.
				snap = &streamSnapshot{next: *s.Next}
			}
		default:
			// An event this version does not know.
		}
		progress = true
		f.contact()
	}
}

// streamSnapshot collects the entries that follow a snapshot event, up to the
// seq it names.
type streamSnapshot struct {
	next    int64
	entries []Entry
}

var (
	errStreamIdle  = errors.New("verifier: revocation stream silent for too long")
	errStreamEnded = errors.New("verifier: revocation stream ended")
)

// malformedError is a stream that breaks the protocol: it counts as a
// failed stream even after good events, so that a stream that keeps
// breaking is given up for long-polls.
type malformedError struct{ err error }

func (e *malformedError) Error() string { return e.err.Error() }
func (e *malformedError) Unwrap() error { return e.err }

// malformed returns a malformedError with a formatted message.
func malformed(format string, args ...any) error {
	return &malformedError{fmt.Errorf("verifier: "+format, args...)}
}

// truncateForError shortens b for an error message.
func truncateForError(b []byte) string {
	const n = 64
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// Errors of the event stream parser.
var (
	errSSELineTooLong  = fmt.Errorf("verifier: event stream line longer than %d bytes", maxSSELine)
	errSSEEventTooLong = fmt.Errorf("verifier: event stream event larger than %d bytes", maxSSEEvent)
)

// sseReader parses an event stream (HTML Living Standard, "Server-sent
// events", §9.2.6 "Interpreting an event stream"), refusing lines longer
// than maxLine and events whose fields add up to more than maxEvent.
type sseReader struct {
	r        *bufio.Reader
	onLine   func() // called for every line read
	maxLine  int
	maxEvent int
	line     []byte
	skipLF   bool // the last line ended with CR: an LF next belongs to it
	started  bool // the byte order mark was looked for
}

// sseEvent is an event, or a comment between events.
type sseEvent struct {
	comment bool
	event   string // the event type; empty means "message"
	data    []byte
	id      string
	hasID   bool // the event had an id field
}

func newSSEReader(r io.Reader, onLine func()) *sseReader {
	if onLine == nil {
		onLine = func() {}
	}
	return &sseReader{r: bufio.NewReader(r), onLine: onLine, maxLine: maxSSELine, maxEvent: maxSSEEvent}
}

// next returns the next event, or the next comment line between events.
// Events without data are not dispatched, as the standard says. An event
// cut short by the end of the stream is discarded and next returns
// io.EOF (or io.ErrUnexpectedEOF within a line).
func (p *sseReader) next() (sseEvent, error) {
	var (
		ev   sseEvent
		data []byte
		size int
		some bool // a field of the current event was read
	)
	for {
		line, err := p.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		p.onLine()
		if len(line) == 0 {
			if len(data) > 0 {
				ev.data = data[:len(data)-1] // without the last LF
				return ev, nil
			}
			ev, data, size, some = sseEvent{}, nil, 0, false
			continue
		}
		if line[0] == ':' {
			if !some {
				return sseEvent{comment: true}, nil
			}
			continue
		}
		some = true
		if size += len(line); size > p.maxEvent {
			return sseEvent{}, errSSEEventTooLong
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte{' '})
		}
		switch string(field) {
		case "event":
			ev.event = string(value)
		case "data":
			data = append(data, value...)
			data = append(data, '\n')
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.id, ev.hasID = string(value), true
			}
		}
		// "retry" and unknown fields are ignored.
	}
}

// readLine returns the next line without its end (LF, CRLF or CR). The
// slice is valid until the next call.
func (p *sseReader) readLine() ([]byte, error) {
	if !p.started {
		p.started = true
		if bom, err := p.r.Peek(3); err == nil && string(bom) == "\xEF\xBB\xBF" {
			p.r.Discard(3)
		}
	}
	p.line = p.line[:0]
	for {
		c, err := p.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(p.line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if p.skipLF {
			p.skipLF = false
			if c == '\n' {
				continue
			}
		}
		switch c {
		case '\n':
			return p.line, nil
		case '\r':
			p.skipLF = true
			return p.line, nil
		}
		if len(p.line) >= p.maxLine {
			return nil, errSSELineTooLong
		}
		p.line = append(p.line, c)
	}
}
